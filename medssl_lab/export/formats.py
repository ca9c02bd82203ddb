"""The encoder in files other tools read: safetensors + config.json (MONAI), TorchScript and ONNX.

Each writer takes the backbone (a ``monai.networks.nets.ResNet`` mapping ``(B, 1, H, W)`` normalised images to
``(B, D)`` features) and writes one file into a folder (:func:`medssl_lab.export.export_encoder` writes into a
staging folder and moves the files into place only when all of them are checked); each reader loads that file
with the other tool alone, so the export can be checked feature for feature against the package.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMATS: tuple[str, ...] = ("safetensors", "torchscript", "onnx")
FILE_NAMES = {"safetensors": "encoder.safetensors", "torchscript": "encoder.torchscript.pt", "onnx": "encoder.onnx"}

#: How to load the safetensors export without medssl-lab: the model card and config.json print these lines.
LOAD_WITH_MONAI = """\
import json, torch
from monai.networks.nets import ResNet
from safetensors.torch import load_file

config = json.load(open("config.json"))
encoder = ResNet(**config["monai_resnet"]).eval()
encoder.load_state_dict(load_file("encoder.safetensors"))
# images: (B, 1, H, W) float, grey levels in [0, 1], then (x - mean) / std with config["input"]
features = encoder((images - config["input"]["mean"]) / config["input"]["std"])  # (B, feature_size)"""

Encode = Callable[[torch.Tensor], np.ndarray]


def write_config(config: dict[str, Any], out_dir: Path) -> Path:
    """``config.json``: everything needed to rebuild and feed the encoder, in plain JSON."""
    target = out_dir / "config.json"
    target.write_text(json.dumps(config, indent=1) + "\n")
    return target


def write_safetensors(backbone: nn.Module, out_dir: Path) -> Path:
    """The backbone's weights and buffers (batch-norm statistics included) as safetensors."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()}
    target = out_dir / FILE_NAMES["safetensors"]
    save_file(state, str(target), metadata={"format": "pt"})
    return target


def write_torchscript(backbone: nn.Module, example: torch.Tensor, out_dir: Path) -> Path:
    """The backbone traced to TorchScript (``torch.jit.load`` reads it without MONAI or medssl-lab)."""
    traced = torch.jit.trace(backbone.cpu().eval(), example.cpu(), check_trace=False)
    target = out_dir / FILE_NAMES["torchscript"]
    traced.save(str(target))
    _drop_debug_records(target)
    return target


def _drop_debug_records(path: Path) -> None:
    """Remove TorchScript's optional ``*.debug_pkl`` records: source positions naming the exporting machine's
    folders. ``torch.jit.load`` does not need them."""
    with zipfile.ZipFile(path) as archive:
        kept = [(info, archive.read(info)) for info in archive.infolist() if not info.filename.endswith(".debug_pkl")]
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in kept:
            archive.writestr(info, data)


def write_onnx(backbone: nn.Module, example: torch.Tensor, out_dir: Path) -> Path:
    """The backbone as ONNX with a dynamic batch axis: input ``image`` (B, 1, H, W), output ``features``."""
    target = out_dir / FILE_NAMES["onnx"]
    registry_log = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registry_log.level
    registry_log.setLevel(logging.ERROR)  # not "torchvision is not installed": the encoder uses none of its ops
    try:
        torch.onnx.export(
            backbone.cpu().eval(),
            (example.cpu(),),
            str(target),
            input_names=["image"],
            output_names=["features"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    finally:
        registry_log.setLevel(level)
    _drop_trace_metadata(target)
    return target


def _drop_trace_metadata(path: Path) -> None:
    """Remove the exporter's per-node stack traces: they name the exporting machine's folders, not the model."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
    onnx.save(model, str(path))


def load_safetensors_encoder(out_dir: Path) -> Encode:
    """The safetensors export rebuilt as a plain MONAI ResNet from its ``config.json`` (what a user does)."""
    from monai.networks.nets import ResNet
    from safetensors.torch import load_file

    config = json.loads((out_dir / "config.json").read_text())
    encoder = ResNet(**config["monai_resnet"]).eval()
    encoder.load_state_dict(load_file(str(out_dir / FILE_NAMES["safetensors"])))
    return lambda x: encoder(x).detach().numpy()


def load_torchscript_encoder(out_dir: Path) -> Encode:
    """The TorchScript export, loaded with ``torch.jit.load``."""
    encoder = torch.jit.load(str(out_dir / FILE_NAMES["torchscript"]), map_location="cpu").eval()
    return lambda x: encoder(x).detach().numpy()


def load_onnx_encoder(out_dir: Path) -> Encode:
    """The ONNX export, run by onnxruntime on the CPU."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(out_dir / FILE_NAMES["onnx"]), providers=["CPUExecutionProvider"])
    return lambda x: session.run(["features"], {"image": x.numpy()})[0]


LOADERS: dict[str, Callable[[Path], Encode]] = {
    "safetensors": load_safetensors_encoder,
    "torchscript": load_torchscript_encoder,
    "onnx": load_onnx_encoder,
}


def max_difference(reference: np.ndarray, encode: Encode, inputs: torch.Tensor) -> float:
    """The largest absolute difference between the package's features and an export's on the same inputs."""
    with torch.no_grad():
        return float(np.max(np.abs(encode(inputs) - reference)))
