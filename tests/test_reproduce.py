"""`medssl-lab reproduce --profile smoke` on the real data: files, columns, resumability, convergence figures."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from medssl_lab.cli import main
from medssl_lab.errors import TrainingError
from medssl_lab.evaluation.reports import summary_markdown
from medssl_lab.profiles import DOWNSTREAM, VAL_LIMIT
from medssl_lab.reproduce import ReproduceConfig, load_records, run_protocol, run_settings, write_reports


@pytest.fixture(scope="module")
def smoke_run(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reproduce")
    assert main(["reproduce", "--profile", "smoke", "--data-dir", str(data_dir), "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_results_table(smoke_run: Path) -> None:
    with open(smoke_run / "results.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8  # 2 tasks x 1 fraction x 4 arms x 1 seed in smoke
    assert {"task", "fraction", "arm", "seed", "test_auc", "test_acc", "steps_to_target"} <= set(rows[0])
    assert {r["arm"] for r in rows} == {"scratch", "linear", "finetune", "hybrid"}
    assert {(r["task"], float(r["fraction"])) for r in rows} == {("pneumoniamnist", 0.1), ("mednist", 0.01)}
    assert all(0.0 <= float(r["test_auc"]) <= 1.0 for r in rows)
    scratch = [r for r in rows if r["arm"] == "scratch"]
    assert all(r["steps_to_target"] != "" for r in scratch)  # scratch always reaches 95 % of its own best
    summary = (smoke_run / "summary.md").read_text()
    assert "### Test AUC" in summary and "| pneumoniamnist | 0.1 |" in summary and "### Robustness" in summary
    assert "Pretrained on 63,662 images at 32 px (mednist CT 30,000, mednist MR 8,954" in summary
    for name in ("label_efficiency.png", "convergence.png", "robustness.png", "curves.csv", "robustness.csv"):
        assert (smoke_run / name).stat().st_size > 0
    with open(smoke_run / "label_efficiency.csv") as handle:
        per_class = list(csv.DictReader(handle))
    assert len(per_class) == 8  # 2 tasks x 5 labels per class x 4 arms x 1 seed in smoke
    assert {"task", "labels_per_class", "arm", "seed", "test_auc"} <= set(per_class[0])
    assert {(r["task"], r["labels_per_class"], r["n_train"]) for r in per_class} == {
        ("pneumoniamnist", "5", "10"),
        ("mednist", "5", "30"),
    }
    assert "### Label efficiency in labels per class" in summary and "| pneumoniamnist | 5 | 1 |" in summary
    assert (smoke_run / "labels_per_class.png").stat().st_size > 0
    with open(smoke_run / "robustness.csv") as handle:
        robust = list(csv.DictReader(handle))
    assert {r["kind"] for r in robust} >= {"clean", "rotation", "scaling", "gamma", "gaussian_noise"}
    assert {r["arm"] for r in robust} == {"scratch", "linear", "finetune", "hybrid"}


@pytest.mark.slow
def test_rerun_only_redoes_missing_runs(smoke_run: Path, data_dir: Path) -> None:
    runs = sorted((smoke_run / "runs").glob("*.json"))
    missing = runs[0]
    missing.unlink()
    before = {p: p.stat().st_mtime_ns for p in runs[1:]}
    assert main(["reproduce", "--profile", "smoke", "--data-dir", str(data_dir), "--out", str(smoke_run)]) == 0
    assert missing.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())


@pytest.mark.slow
def test_runs_made_with_other_settings_are_not_mixed(smoke_run: Path, data_dir: Path) -> None:
    settings = json.loads((smoke_run / "settings.json").read_text())
    assert settings["steps"] == DOWNSTREAM["smoke"]["steps"] and settings["linear_lr"] == 0.03
    assert settings["val_limit"] == VAL_LIMIT["smoke"] == 300
    assert settings["pool"]["images"] == 63662 and len(settings["pool"]["pixels_hash"]) == 20
    changed = dict(settings, lr=settings["lr"] * 10)
    (smoke_run / "settings.json").write_text(json.dumps(changed))
    try:
        with pytest.raises(TrainingError, match="other settings \\(lr differ\\)"):
            run_protocol(ReproduceConfig.for_profile("smoke"), smoke_run, data_dir, progress=False)
        assert main(["reproduce", "--profile", "smoke", "--data-dir", str(data_dir), "--out", str(smoke_run)]) == 2
    finally:
        (smoke_run / "settings.json").write_text(json.dumps(settings))


@pytest.mark.slow
def test_a_folder_older_than_a_setting_is_taken_as_made_with_its_default(smoke_run: Path, data_dir: Path) -> None:
    """Settings the file predates: a TrainConfig field means its default; the few-label recipe is adopted."""
    settings = json.loads((smoke_run / "settings.json").read_text())
    older = {k: v for k, v in settings.items() if k not in ("layer_decay", "few_label_recipe", "few_label_budget")}
    (smoke_run / "settings.json").write_text(json.dumps(older))
    try:
        run_protocol(ReproduceConfig.for_profile("smoke"), smoke_run, data_dir, progress=False)
        assert json.loads((smoke_run / "settings.json").read_text()) == settings  # written back whole
        no_steps = {k: v for k, v in settings.items() if k != "steps"}  # made with TrainConfig's 300, not smoke's 12
        (smoke_run / "settings.json").write_text(json.dumps(no_steps))
        with pytest.raises(TrainingError, match="other settings \\(steps differ\\)"):
            run_protocol(ReproduceConfig.for_profile("smoke"), smoke_run, data_dir, progress=False)
    finally:
        (smoke_run / "settings.json").write_text(json.dumps(settings))


def test_convergence_figures_from_curves(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    curves = {
        "scratch": [[10, 0.70], [20, 0.80], [30, 0.90], [40, 1.0]],
        "finetune": [[10, 0.96], [20, 0.97]],
        "linear": [[10, 0.5], [20, 0.6]],
    }
    for arm, curve in curves.items():
        record = {"task": "t", "fraction": 0.1, "arm": arm, "seed": 0, "test_auc": 0.9, "test_acc": 0.8, "curve": curve}
        (tmp_path / "runs" / f"{arm}.json").write_text(json.dumps(record))
    records = {r["arm"]: r for r in load_records(tmp_path)}
    assert records["scratch"]["steps_to_target"] == 40  # target 0.95 * 1.0
    assert records["finetune"]["steps_to_target"] == 10 and records["finetune"]["step_reduction_pct"] == 75.0
    assert records["linear"]["steps_to_target"] is None and records["linear"]["step_reduction_pct"] is None
    text = summary_markdown(list(records.values()), [], {"profile": "test"})
    assert "| t | 0.1 | 40 (+0 %), 1/1 reached | 0/1 reached | 10 (+75 %), 1/1 reached |" in text


def test_a_folder_of_labels_per_class_runs_only_gets_its_table_and_figure(tmp_path: Path) -> None:
    (tmp_path / "per_class").mkdir()
    for arm, seed, auc in [("scratch", 0, 0.8), ("finetune", 0, 0.9), ("scratch", 1, 0.7), ("finetune", 1, 0.9)]:
        record = dict(task="t", labels_per_class="10", arm=arm, seed=seed, test_auc=auc, test_acc=auc - 0.1)
        (tmp_path / "per_class" / f"{arm}{seed}.json").write_text(json.dumps(record))
    summary = write_reports(tmp_path).read_text()
    assert "| t | 10 | 2 | 0.750 ± 0.050 | 0.900 ± 0.000 | +0.150 ± 0.050 (worst +0.100) |" in summary
    assert "| t | 10 | 2 | 0.650 ± 0.050 | 0.800 ± 0.000 | +0.150 ± 0.050 (worst +0.100) |" in summary
    assert "test ACC" in summary and (tmp_path / "labels_per_class.png").exists()
    assert not (tmp_path / "convergence.png").exists()
    assert "### Test AUC" not in summary, "no empty tables of label fractions"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(seeds=()), "seeds is empty"),
        (dict(tasks={"chestmnist": (0.1,)}), "unknown tasks \\['chestmnist'\\]"),
        (dict(tasks={"mednist": (0.0,)}), "label fractions must lie in \\(0, 1\\]"),
        (dict(tasks={"mednist": (1.5,)}), "label fractions must lie in \\(0, 1\\]"),
        (dict(arms=("finetune",)), "scratch included"),
        (dict(arms=("scratch", "frozen")), "choose from"),
        (dict(val_limit=1), "val_limit must be None or >= 2"),
    ],
)
def test_impossible_reproduction_settings_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReproduceConfig.for_profile("smoke", **overrides)


def test_a_reproduction_config_gives_back_its_settings_and_its_whole_pretraining(tmp_path: Path) -> None:
    """config.yaml holds every pretraining field, so a later profile table cannot change what the file runs."""
    from medssl_lab.cli import build_parser, reproduce_settings
    from medssl_lab.pretrain import PretrainConfig
    from medssl_lab.runconfig import write_run_config

    config = ReproduceConfig.for_profile("smoke", seeds=(3,), device="cpu", pretrain_overrides={"lr": 0.01})
    pre_config = PretrainConfig.for_profile("smoke", device="cpu", lr=0.01)
    settings = run_settings(config, pre_config)
    assert set(settings["pretrain_overrides"]) == {f for f in asdict(pre_config) if f not in ("profile", "device")}
    path = write_run_config(tmp_path, "reproduce", settings, {"sources": ["mednist"], "data_dir": "/data"})
    again, data = reproduce_settings(build_parser().parse_args(["reproduce", "--config", str(path)]))
    assert {k: v for k, v in asdict(again).items() if k != "pretrain_overrides"} == {
        k: v for k, v in asdict(config).items() if k != "pretrain_overrides"
    }
    assert PretrainConfig.for_profile(again.profile, device=again.device, **again.pretrain_overrides) == pre_config
    assert (data.sources, data.data_dir) == (("mednist",), "/data")


@pytest.mark.slow
def test_a_reproduction_folder_holds_its_config(smoke_run: Path, data_dir: Path) -> None:
    from medssl_lab.cli import build_parser, reproduce_settings

    args = build_parser().parse_args(["reproduce", "--config", str(smoke_run / "config.yaml")])
    config, data = reproduce_settings(args)
    assert config.profile == "smoke" and config.seeds == (0,) and data.data_dir == str(data_dir)
    assert data.sources == ("mednist", "pneumoniamnist")
    pretraining = (smoke_run / "pretrain" / "config.yaml").read_text()
    assert pretraining.endswith(
        f"data:\n  sources: [mednist, pneumoniamnist]\n  data_dir: {data_dir}\n  synthetic: false\n"
    )


def test_the_committed_tables_are_made_from_the_committed_runs() -> None:
    """README, docs/results.md and summary.md quote the test AUCs of benchmarks/results/results.csv, every cell."""
    from medssl_lab.evaluation.reports import mean_std

    root = Path(__file__).resolve().parents[1]
    rows = list(csv.DictReader((root / "benchmarks" / "results" / "results.csv").open()))
    assert len(rows) == 72  # 2 tasks x 3 fractions x 4 arms x 3 seeds
    arms = ["scratch", "linear", "finetune", "hybrid"]
    table = []
    for task, fraction in sorted({(r["task"], float(r["fraction"])) for r in rows}):
        cells = [
            mean_std(
                [
                    float(r["test_auc"])
                    for r in rows
                    if (r["task"], float(r["fraction"]), r["arm"]) == (task, fraction, a)
                ]
            )
            for a in arms
        ]
        table.append(f"| {task} | {fraction:g} | " + " | ".join(cells) + " |")
    for document in ("README.md", "docs/results.md", "benchmarks/results/summary.md"):
        text = (root / document).read_text()
        missing = [line for line in table if line not in text]
        assert not missing, f"{document} does not quote results.csv: {missing}"


@pytest.mark.slow
def test_the_pretraining_and_every_run_leave_event_files_beside_their_files(smoke_run: Path) -> None:
    """After the re-run of a deleted run too (test_rerun_only_redoes_missing_runs): each step once."""
    from medssl_lab.tblog import read_events

    pretraining = read_events(smoke_run / "pretrain")
    with open(smoke_run / "pretrain" / "history.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert [step for step, _ in pretraining.scalars["pretrain/loss"]] == steps
    assert [step for step, _ in pretraining.scalars["pretrain/knn_accuracy"]] == [1, 5, 8]  # every 4 steps, the last
    runs = sorted((smoke_run / "runs").glob("*.json"))
    assert len(runs) == 8
    for run in runs:
        events = read_events(run.with_name(run.stem))
        record = json.loads(run.read_text())
        assert events.scalars["val/auc"] == [(step, pytest.approx(auc)) for step, auc in record["curve"]], run.stem
        assert [step for step, _ in events.scalars["train/loss"]] == list(range(1, record["steps"] + 1))


def test_the_label_efficiency_tables_are_made_from_the_committed_runs() -> None:
    """README, docs/results.md and summary.md hold the labels-per-class table of label_efficiency.csv, every row."""
    from medssl_lab.evaluation.reports import label_efficiency_markdown

    root = Path(__file__).resolve().parents[1]
    rows = [
        dict(r, seed=int(r["seed"]), test_auc=float(r["test_auc"]))
        for r in csv.DictReader((root / "benchmarks" / "results" / "label_efficiency.csv").open())
    ]
    table = [line for line in label_efficiency_markdown(rows).splitlines() if line.startswith(("| pneu", "| mednist"))]
    for task in ("| pneumoniamnist |", "| mednist |"):
        assert sum(line.startswith(task) for line in table) == 6, f"{task} at 5, 10, 25, 50, 100 per class and all"
    for document in ("README.md", "docs/results.md", "benchmarks/results/summary.md"):
        text = (root / document).read_text()
        missing = [line for line in table if line not in text]
        assert not missing, f"{document} does not hold the table of label_efficiency.csv: {missing}"
