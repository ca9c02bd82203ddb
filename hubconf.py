"""torch.hub entry points of medssl-lab: ``torch.hub.load("<owner>/medssl-lab", "encoder_cpu")``, or from a checkout
``torch.hub.load(path, "encoder_cpu", source="local")``.

Needs torch, MONAI and safetensors only (not medssl-lab itself). Research and teaching only; not for clinical use.
"""

import json
from pathlib import Path

dependencies = ["torch", "monai", "safetensors"]

_WEIGHTS = Path(__file__).resolve().parent / "medssl_lab" / "weights"


def encoder_cpu(pretrained: bool = True):
    """The SwAV encoder shipped with medssl-lab (cpu profile): a ``monai.networks.nets.ResNet`` mapping
    ``(B, 1, 32, 32)`` images (grey levels in [0, 1], then ``(x - 0.5) / 0.25``) to ``(B, 128)`` features.

    Its model card, with training data, evaluation and limitations: ``medssl_lab/weights/encoder_cpu/README.md``.
    ``pretrained=False`` gives the same network with random weights.
    """
    from monai.networks.nets import ResNet
    from safetensors.torch import load_file

    folder = _WEIGHTS / "encoder_cpu"
    encoder = ResNet(**json.loads((folder / "config.json").read_text())["monai_resnet"])
    if pretrained:
        encoder.load_state_dict(load_file(str(folder / "encoder.safetensors")))
    return encoder.eval()
