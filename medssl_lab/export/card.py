"""The model card (``README.md``) of an exported encoder: what it is, what it saw, how good it is, what it is for.

Front matter in the form model hubs read (licence, library, tags), then plain Markdown a person reads.
"""

from __future__ import annotations

from typing import Any

from medssl_lab import __version__
from medssl_lab.export.formats import FILE_NAMES, LOAD_WITH_MONAI

INTENDED_USE = (
    "Research and teaching only. **Not for clinical use**: not a medical device, not validated for diagnosis, "
    "triage or any decision about a patient."
)

LIMITATIONS = """\
- Trained on small grey-level images (MedNIST and PneumoniaMNIST unless the table above says otherwise) at the
  size stated; features of other sizes, modalities or scanners are untested.
- Judged by frozen-feature probes on two public data sets, not by any clinical end point.
- The training data carry their own biases (sources, sites, patient groups); nothing here corrects them."""

#: how the methods are written in prose
METHOD_NAMES = {"swav": "SwAV", "simclr": "SimCLR"}


def _data_table(data: dict[str, Any]) -> str:
    counts = data.get("counts") or []
    if not counts:
        return "Not recorded in the checkpoint."
    rows = [f"| {source} | {modality} | {n:,} |" for source, modality, n in counts]
    total = sum(n for _, _, n in counts)
    return "\n".join(["| source | modality | images |", "|---|---|---:|", *rows, f"| **all** | | **{total:,}** |"])


def _benchmark_table(benchmark: dict[str, dict[str, float]] | None) -> str:
    if not benchmark:
        return "Not measured for this export (`medssl-lab export --benchmark` measures it)."
    from medssl_lab.evaluation.representation import format_table

    return (
        "Frozen features on validation splits, against the same network at random init and the raw pixels "
        "(few-shot figures: mean ± spread over draws):\n\n" + format_table(benchmark, "val")
    )


def _files_table(files: dict[str, int], differences: dict[str, float]) -> str:
    rows = []
    for fmt, name in FILE_NAMES.items():
        if name in files:
            rows.append(f"| `{name}` | {fmt} | {files[name] / 1e6:.2f} MB | {differences.get(fmt, 0.0):.1e} |")
    header = ["| file | format | size | max abs feature difference vs medssl-lab |", "|---|---|---:|---:|"]
    return "\n".join(header + rows)


def _front_matter(method: str) -> str:
    """The YAML block model hubs read: licence, library, task and tags."""
    tags = ["medical-imaging", "self-supervised-learning", method, "feature-extraction", "medssl-lab"]
    head = ["---", "license: apache-2.0", "library_name: monai", "pipeline_tag: image-feature-extraction", "tags:"]
    return "\n".join([*head, *(f"- {tag}" for tag in tags), "---"])


def model_card(
    config: dict[str, Any],
    state: dict[str, Any],
    files: dict[str, int],
    differences: dict[str, float],
    n_check_images: int,
    benchmark: dict[str, dict[str, float]] | None,
) -> str:
    """The card's Markdown. ``config`` is the export's config.json, ``state`` the checkpoint it came from."""
    pre = config["pretraining"]
    seconds = state.get("train_seconds")
    compute = f"{seconds / 60:.1f} min" if seconds else "not recorded"
    script, onnx = FILE_NAMES["torchscript"], FILE_NAMES["onnx"]
    title = f"medssl-lab encoder: {pre['method']} {pre['backbone']} at {pre['image_size']} px"
    return f"""{_front_matter(pre["method"])}

# {title}

{INTENDED_USE}

A {pre["backbone"]} backbone (`monai.networks.nets.ResNet`, 2D, one input channel) pretrained without labels with
{METHOD_NAMES.get(pre["method"], pre["method"])} by medssl-lab {__version__}, after Ghesu et al. 2022,
*Self-supervised Learning from 100 Million Medical Images*. It maps a grey-level image of {pre["image_size"]} x
{pre["image_size"]} px to a vector of {config["feature_size"]} features.

## Training data

{_data_table(config.get("data", {}))}

## How it was made

- Command: `{state.get("made_by", "not recorded")}`
- {state.get("step", "?")} steps of batch {pre["batch_size"]}, {pre["epochs"]} epochs, {pre["optimizer"]} at
  learning rate {pre["lr"]}, {pre["n_prototypes"]} prototypes, {pre["n_global"]} global + {pre["n_local"]} local
  views, seed {pre["seed"]}; every setting is in `config.json` under `pretraining`.
- Compute: {compute} of training on `{pre["device"]}`.

## Evaluation

{_benchmark_table(benchmark)}

## Files

{_files_table(files, differences)}

Each file was loaded back with its own tool and compared with medssl-lab's features on {n_check_images} real
images (CT, MR, ultrasound, radiograph and nuclear-medicine files of pydicom and pydicom-data, decoded by
the store's rules).

## Use

Input: `(B, 1, {pre["image_size"]}, {pre["image_size"]})` float32, grey levels scaled to [0, 1] (uint8 / 255),
then normalised with mean {config["input"]["mean"]} and std {config["input"]["std"]}. Without medssl-lab
installed:

```python
{LOAD_WITH_MONAI}
```

TorchScript: `torch.jit.load("{script}")`. ONNX: `onnxruntime.InferenceSession("{onnx}")`, input `image`,
output `features`, any batch size.

## Intended use

{INTENDED_USE} Use it to learn about self-supervised pretraining, as a starting point for research
fine-tuning, or as a baseline.

## Limitations

{LIMITATIONS}

## Citation

Cite medssl-lab (`CITATION.cff` in its repository) and Ghesu et al., arXiv:2201.01283 (2022).
"""
