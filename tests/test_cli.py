"""The `medssl-lab` command: the default data job, its synthetic demo on request, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from medssl_lab.cli import main
from medssl_lab.pretrain import PretrainConfig, load_checkpoint
from medssl_lab.runconfig import DataSettings


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


def test_every_option_of_every_command_says_what_it_does() -> None:
    import argparse

    from medssl_lab.cli import build_parser

    missing = []
    parsers = [build_parser()]
    while parsers:
        parser = parsers.pop()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                described = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{parser.prog} {name}" for name in action.choices if name not in described]
                parsers += list(action.choices.values())
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{parser.prog} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"options without a help text: {', '.join(sorted(missing))}"


def test_a_run_folder_config_repeats_the_run_bit_for_bit(tmp_path: Path) -> None:
    import torch

    first, again = tmp_path / "first", tmp_path / "again"
    assert (
        main(["pretrain", "--profile", "smoke", "--synthetic", "--max-steps", "3", "--seed", "7", "--out", str(first)])
        == 0
    )
    text = (first / "config.yaml").read_text()
    assert "profile: smoke\n" in text and "max_steps: 3\n" in text and "seed: 7\n" in text and "synthetic: true" in text
    assert main(["pretrain", "--config", str(first / "config.yaml"), "--out", str(again)]) == 0
    assert (again / "config.yaml").read_text() == text
    one, two = load_checkpoint(first / "checkpoint.pt"), load_checkpoint(again / "checkpoint.pt")
    assert one["config"] == two["config"] and one["step"] == two["step"] == 3
    assert one["model"].keys() == two["model"].keys()
    assert all(torch.equal(one["model"][k], two["model"][k]) for k in one["model"])
    moments = [(a, b) for a, b in zip(one["optimizer"]["state"].values(), two["optimizer"]["state"].values())]
    assert moments and all(torch.equal(a["exp_avg"], b["exp_avg"]) for a, b in moments)


def test_a_config_file_is_overridden_by_flags_and_then_by_set(tmp_path: Path) -> None:
    from medssl_lab.cli import build_parser, pretrain_settings, reproduce_settings

    path = tmp_path / "config.yaml"
    path.write_text("profile: smoke\nlr: 0.5\nseed: 1\nepochs: 3\naugment: {hflip_p: 0.5}\ndata: {data_dir: /there}\n")
    argv = ["pretrain", "--config", str(path), "--seed", "2", "--epochs", "4", "--set", "epochs=5", "--set", "lr=1e-3"]
    config, data = pretrain_settings(build_parser().parse_args([*argv, "--data-dir", "/here"]))
    assert (config.profile, config.seed, config.epochs, config.lr) == ("smoke", 2, 5, 0.001)
    assert config.batch_size == 64 and config.augment == {"hflip_p": 0.5}  # the smoke profile's, the file's
    assert data == DataSettings(sources=None, data_dir="/here", synthetic=False)
    config, _ = pretrain_settings(build_parser().parse_args(["pretrain", "--config", str(path), "--profile", "cpu"]))
    assert (config.profile, config.lr, config.batch_size) == ("cpu", 0.5, 256)  # the profile fills what the file lacks
    config, _ = pretrain_settings(build_parser().parse_args(["pretrain"]))
    assert config == PretrainConfig.for_profile("cpu")
    (tmp_path / "rep.yaml").write_text("profile: smoke\nsteps: 20\npretrain_overrides: {epochs: 2}\n")
    argv = [
        "reproduce",
        "--config",
        str(tmp_path / "rep.yaml"),
        "--seeds",
        "4",
        "5",
        "--set",
        "pretrain_overrides.lr=0.01",
    ]
    rep, data = reproduce_settings(build_parser().parse_args([*argv, "--source", "mednist"]))
    assert (rep.profile, rep.steps, rep.seeds, rep.batch_size) == ("smoke", 20, (4, 5), 32)
    assert rep.pretrain_overrides == {"epochs": 2, "lr": 0.01} and data.sources == ("mednist",)


BAD_FILE = {
    "unknown": "lrr: 0.1\n",
    "text": "lr: fast\n",
    "fraction": "epochs: 2.5\n",
    "list": "lr: [1, 2]\n",
    "not yaml": "lr: [1, 2\n",
    "not a mapping": "- lr\n- epochs\n",
}


@pytest.mark.parametrize(
    "command, extra, message",
    [
        ("pretrain", ["--config", "unknown"], "unknown.yaml: unknown key lrr; did you mean lr?"),
        ("pretrain", ["--config", "text"], "text.yaml: lr expects float, got 'fast' (str)"),
        ("pretrain", ["--config", "fraction"], "fraction.yaml: epochs expects int (a whole number), got 2.5 (float)"),
        ("pretrain", ["--config", "list"], "list.yaml: lr expects float, got [1, 2] (list)"),
        ("pretrain", ["--config", "not yaml"], "not yaml.yaml: not a YAML file: while parsing a flow sequence"),
        ("pretrain", ["--config", "not a mapping"], "not a mapping.yaml: holds a list, not a mapping of settings"),
        ("pretrain", ["--config", "missing"], "missing.yaml: no such settings file"),
        ("pretrain", ["--set", "lrr=0.1"], "--set lrr=0.1: unknown key lrr; did you mean lr?"),
        ("pretrain", ["--set", "epochs=many"], "--set epochs=many: epochs expects int (a whole number), got 'many'"),
        ("pretrain", ["--set", "data.sorces=[x]"], "--set data.sorces=[x]: unknown key data.sorces; did you mean"),
        ("pretrain", ["--set", "augment.flip=1"], "unknown key augment.flip; did you mean augment.vflip_p?"),
        ("pretrain", ["--set", "lr"], "--set lr: want KEY=VALUE"),
        ("reproduce", ["--config", "unknown"], "unknown.yaml: unknown key lrr; did you mean lr?"),
        ("reproduce", ["--set", "step=3"], "--set step=3: unknown key step; did you mean steps?"),
        ("reproduce", ["--set", "pretrain_overrides.device=cpu"], "unknown key pretrain_overrides.device; the keys"),
        ("reproduce", ["--set", "data.synthetic=true"], "unknown key data.synthetic; the keys here are sources"),
        ("reproduce", ["--set", "seeds=[0, x]"], "seeds expects a list of int (a whole number), got [0, 'x'] (list)"),
    ],
)
def test_bad_config_input_is_one_line_naming_file_key_and_what_fits(
    command: str, extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for name, text in BAD_FILE.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    if extra[0] == "--config":
        extra = ["--config", str(tmp_path / f"{extra[1]}.yaml")]
        message = f"{tmp_path}/{message}"
    out = tmp_path / "out"
    assert main([command, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in err
    assert not out.exists()  # refused before any work
