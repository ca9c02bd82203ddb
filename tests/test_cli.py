"""The `medssl-lab` command: the default data job, its synthetic demo on request, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl_lab.cli import main
from medssl_lab.pretrain import load_checkpoint


def test_default_job_on_real_data(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--data-dir", str(data_dir), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Pretraining pool: 63662 images at 32x32 px" in out
    assert "pneumoniamnist  X-ray               4708" in out and "mednist         MR                  8954" in out
    assert (tmp_path / "pool_overview.png").stat().st_size > 10_000


def test_missing_data_is_an_error_and_phantoms_only_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("MEDSSL_DATA_DIR", raising=False)
    from medssl_lab.data import mednist

    monkeypatch.setattr(mednist, "MEDNIST_URL", (tmp_path / "offline").as_uri() + "/MedNIST.tar.gz")
    typo = tmp_path / "dta"
    for command in (["data"], ["pretrain", "--profile", "smoke"]):
        assert main([*command, "--data-dir", str(typo), "--out", str(tmp_path / "out")]) == 2
        assert f"the data folder {typo} does not exist" in capsys.readouterr().err and not typo.exists()
    (tmp_path / "empty").mkdir()
    assert (
        main(["pretrain", "--profile", "smoke", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "out")])
        == 2
    )
    assert "not found in" in capsys.readouterr().err and not (tmp_path / "out" / "checkpoint.pt").exists()
    assert main(["data", "--synthetic", "--out", str(tmp_path / "out"), "--size", "28"]) == 0
    captured = capsys.readouterr()
    assert "SYNTHETIC phantoms" in captured.err and "phantoms" in captured.out
    assert (tmp_path / "out" / "pool_overview.png").exists()


def test_pretrain_refuses_a_corrupt_checkpoint_in_out_and_leaves_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    code = main(["pretrain", "--profile", "smoke", "--synthetic", "--out", str(tmp_path)])
    assert code == 2 and "not a readable medssl-lab checkpoint" in capsys.readouterr().err
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"not a checkpoint"  # nothing trained over it


def test_pretrain_into_a_missing_folder_makes_it_and_starts_a_run(tmp_path: Path) -> None:
    """A missing --out folder is no error for pretrain (it is for benchmark: see the parametrized test below)."""
    out = tmp_path / "not" / "yet"
    assert main(["pretrain", "--profile", "smoke", "--synthetic", "--max-steps", "1", "--out", str(out)]) == 0
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["pretrain", "--synthetic", "--device", "gpu"], "device 'gpu' is not a device name"),
        (
            ["pretrain", "--synthetic", "--backbone", "resnet_smal"],
            "PretrainConfig.backbone='resnet_smal'; choose one of",
        ),
        (["pretrain", "--synthetic", "--epochs", "0"], "PretrainConfig.epochs=0; it must be a whole number >= 1"),
        (["pretrain", "--synthetic", "--batch-size", "-8"], "PretrainConfig.batch_size=-8"),
        (
            ["pretrain", "--synthetic", "--profile", "smoke", "--out", "FILE"],
            "is a file, not a folder for checkpoint.pt",
        ),
        (["benchmark", "MISSING"], "no checkpoint there"),
    ],
)
def test_bad_settings_are_one_line_errors_before_any_work(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "FILE").write_text("not a folder")
    argv = [str(tmp_path / a) if a in ("FILE", "MISSING") else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in err


def test_pool_size_is_checked(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["data", "--data-dir", str(data_dir), "--size", "0", "--out", str(tmp_path)]) == 2
    assert "pool image size must be a whole number of pixels >= 8, got 0" in capsys.readouterr().err


def test_notebook_parameters_from_the_command_line() -> None:
    from medssl_lab.cli import parse_assignments

    assert parse_assignments(["train=False", "epochs=2", "note=hello world"]) == {
        "train": False,
        "epochs": 2,
        "note": "hello world",
    }
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_assignments(["train"])


def test_links_prints_binder_and_colab_addresses(capsys: pytest.CaptureFixture) -> None:
    assert main(["notebooks", "links", "https://github.com/someone/medssl-lab.git"]) == 0
    out = capsys.readouterr().out
    assert "https://mybinder.org/v2/gh/someone/medssl-lab/main?urlpath=lab/tree/notebooks/05_robustness.ipynb" in out
    assert "https://colab.research.google.com/github/someone/medssl-lab/blob/main/notebooks/00_data_tour.ipynb" in out
    assert main(["notebooks", "links", "https://example.org/x/y"]) == 2


def test_shard_ranges_from_the_command_line() -> None:
    from medssl_lab.cli import parse_shard_range

    assert parse_shard_range("10:20") == range(10, 20) and parse_shard_range(":5") == range(0, 5)
    assert parse_shard_range("3:").start == 3 and parse_shard_range(None) is None
    for bad in ("7", "a:b", "-1:4"):
        with pytest.raises(ValueError, match="START:STOP"):
            parse_shard_range(bad)
