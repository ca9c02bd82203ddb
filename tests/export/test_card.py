import yaml

from medssl_lab.export.card import INTENDED_USE, model_card


def _card(benchmark=None):
    config = {
        "feature_size": 128,
        "input": {"mean": 0.5, "std": 0.25},
        "pretraining": dict(
            method="swav",
            backbone="resnet_small",
            image_size=32,
            batch_size=256,
            epochs=4,
            optimizer="adamw",
            lr=0.002,
            n_prototypes=64,
            n_global=2,
            n_local=4,
            seed=0,
            device="cpu",
        ),
        "data": {"counts": [["mednist", "CT", 30000], ["pneumoniamnist", "X-ray", 4708]]},
    }
    state = {"made_by": "medssl-lab pretrain --profile cpu", "step": 992, "train_seconds": 750.0}
    files = {"encoder.safetensors": 1_240_000, "encoder.onnx": 1_270_000}
    return model_card(config, state, files, {"safetensors": 0.0, "onnx": 2e-6}, 15, benchmark)


def test_the_card_has_front_matter_a_hub_reads_and_says_not_for_clinical_use():
    card = _card()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["license"] == "apache-2.0" and front["library_name"] == "monai"
    assert "medical-imaging" in front["tags"] and "swav" in front["tags"]
    assert INTENDED_USE in card and "Not for clinical use" in card


def test_the_card_reports_data_compute_files_and_figures():
    card = _card({"pretrained": {"score": 0.81}, "random_init": {"score": 0.6}})
    assert "| mednist | CT | 30,000 |" in card and "**34,708**" in card
    assert "`medssl-lab pretrain --profile cpu`" in card and "12.5 min" in card
    assert "| `encoder.onnx` | onnx | 1.27 MB | 2.0e-06 |" in card
    assert "encoder.torchscript.pt` |" not in card  # only the files that were written
    assert "| score | 0.810 | 0.600 |" in card
    assert "Not measured" in _card(None)
