"""The pretraining engine: runs, checkpoints, exact resume, NaN and collapse stops, DDP, CLI."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import math
import os
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medssl_lab.augment import MultiCropAugment, make_generator
from medssl_lab.cli import main
from medssl_lab.data.provenance import describe_provenance
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import TrainingError
from medssl_lab.pretrain import (
    History,
    PretrainConfig,
    Pretrainer,
    load_checkpoint,
    load_pretrained,
    make_objective,
    pretrain,
)
from medssl_lab.profiles import PROFILES
from medssl_lab.reproduce import ReproduceConfig
from medssl_lab.tblog import read_events


def phantom_pool(n: int = 128) -> ImageSet:
    ph = make_phantoms(n, 32, seed=0)
    return ImageSet(
        ph.images, ph.labels, ph.class_names, "multi-class", np.full(n, "CT", object), np.full(n, "phantoms", object)
    )


def tiny_config(**overrides) -> PretrainConfig:
    base = dict(pool_limit=None, batch_size=32, epochs=2, log_every=1, checkpoint_every=100, device="cpu")
    return PretrainConfig.for_profile("smoke", **{**base, **overrides})


def test_smoke_run_writes_checkpoint_and_history(tmp_path: Path) -> None:
    trainer = pretrain(tiny_config(), phantom_pool(), tmp_path, progress=False)
    assert trainer.step == trainer.total_steps == 8
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 8 and len(state["history"]) == 8 and state["train_seconds"] > 0
    losses = trainer.history.column("loss")
    assert np.isfinite(losses).all() and losses[-3:].mean() < losses[:3].mean()  # it learns something
    assert (tmp_path / "history.csv").read_text().startswith("step,epoch,lr,loss")
    norms = trainer.model.prototypes.weight.norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)  # normalised after each step
    loaded = load_pretrained(tmp_path)
    model, config = loaded.model, loaded.config
    assert config.n_prototypes == 16 and not model.training
    for a, b in zip(model.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)


def test_resume_continues_exactly(tmp_path: Path) -> None:
    pool = phantom_pool()
    config = tiny_config(queue_length=64, queue_start_epoch=1)  # the queue's state must survive too
    straight = Pretrainer(config, pool)
    straight.fit(progress=False)
    first = Pretrainer(config, pool, tmp_path)
    first.fit(progress=False, stop_after=5)  # "interrupted" in epoch 1, mid-way
    assert first.history.stopped == "paused" and load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 5
    resumed = pretrain(config, pool, tmp_path, progress=False)
    assert resumed.step == straight.step and resumed.history.stopped == "finished"
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name  # bit-identical, not merely close
    assert np.array_equal(resumed.history.column("loss"), straight.history.column("loss"))
    queues = resumed.objective.queue, straight.objective.queue
    assert queues[0].filled == queues[1].filled > 0 and torch.equal(queues[0].embeddings, queues[1].embeddings)


def _pretrain_command(out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "medssl_lab.cli",
        "pretrain",
        "--profile",
        "smoke",
        "--synthetic",
        "--epochs",
        "6",
        "--out",
        str(out),
    ]


def _checkpoint_step(path: Path) -> int:
    return load_checkpoint(path)["step"] if path.exists() else -1


@pytest.mark.slow
def test_killed_at_any_moment_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """SIGKILL a real CLI run three times at different moments (one may land in a checkpoint write)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MEDSSL_INTERACTIVE": "0"}
    subprocess.run(_pretrain_command(tmp_path / "straight"), env=env, check=True, capture_output=True)
    checkpoint, killed_at = tmp_path / "killed" / "checkpoint.pt", []
    for delay in (0.0, 0.05, 0.3):
        before = _checkpoint_step(checkpoint)
        run = subprocess.Popen(
            _pretrain_command(checkpoint.parent), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while _checkpoint_step(checkpoint) <= before and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        run.kill()
        run.wait()
        killed_at.append(_checkpoint_step(checkpoint))
    assert killed_at == sorted(killed_at) and killed_at[-1] < 48, f"every kill must land mid-run: {killed_at}"
    subprocess.run(_pretrain_command(checkpoint.parent), env=env, check=True, capture_output=True)
    straight, resumed = load_checkpoint(tmp_path / "straight" / "checkpoint.pt"), load_checkpoint(checkpoint)
    assert resumed["step"] == straight["step"] == 48 and resumed["stopped"] == "finished"
    for name, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    assert [p.name for p in checkpoint.parent.iterdir() if p.name.startswith(".")] == []  # no half-written file
    logged = [step for step, _ in read_events(checkpoint.parent).scalars["pretrain/loss"]]
    assert logged == [int(row["step"]) for row in _history_csv(checkpoint.parent)]  # in TensorBoard once, none lost


def test_augment_overrides_reach_the_views_and_typos_are_refused() -> None:
    assert tiny_config(augment={"global_scale": (0.2, 0.5)}).augment_config().global_scale == (0.2, 0.5)
    with pytest.raises(ValueError, match="unknown MultiCropConfig fields \\['global_scael'\\]"):
        tiny_config(augment={"global_scael": (0.2, 0.5)}).augment_config()


def test_every_profile_has_every_preset_and_cpu_long_only_trains_longer() -> None:
    for profile in PROFILES:
        assert PretrainConfig.for_profile(profile).augment_config() is not None
        assert ReproduceConfig.for_profile(profile).profile == profile
    cpu, long = asdict(PretrainConfig.for_profile("cpu")), asdict(PretrainConfig.for_profile("cpu_long"))
    assert {k for k in cpu if cpu[k] != long[k]} == {"profile", "epochs"} and long["epochs"] > cpu["epochs"]
    assert PretrainConfig.for_profile("cpu_long").augment_config() == PretrainConfig.for_profile("cpu").augment_config()
    with pytest.raises(ValueError, match="unknown profile 'laptop'"):
        PretrainConfig.for_profile("laptop")


def test_resume_refuses_other_settings_or_data_and_says_what_differs(tmp_path: Path) -> None:
    pretrain(tiny_config(epochs=1), phantom_pool(), tmp_path, progress=False)
    data = load_checkpoint(tmp_path / "checkpoint.pt")["data"]  # the checkpoint records its data
    assert data["images"] == 128 and data["counts"] == [["phantoms", "CT", 128]] and data["package"]
    assert describe_provenance(data) == "128 images at 32 px (phantoms CT 128)"
    with pytest.raises(TrainingError, match="cannot resume the run in .*n_prototypes 16 -> 8.*--restart"):
        pretrain(tiny_config(epochs=1, n_prototypes=8), phantom_pool(), tmp_path, progress=False)
    other_views = tiny_config(epochs=2, augment={"global_scale": [0.3, 1.0]}, optimizer="sgd")
    with pytest.raises(TrainingError, match="epochs 1 -> 2; optimizer 'adamw' -> 'sgd'; augment {} -> {'global_scale'"):
        pretrain(other_views, phantom_pool(), tmp_path, progress=False)
    other = phantom_pool()
    other.images[0] ^= 1  # one pixel of one image
    with pytest.raises(TrainingError, match="trained on other data .128 images at 32 px.*--data-dir"):
        pretrain(tiny_config(epochs=1), other, tmp_path, progress=False)
    # settings that do not change what is computed may differ
    pretrain(tiny_config(epochs=1, log_every=5, checkpoint_every=7), phantom_pool(), tmp_path, progress=False)


@pytest.mark.parametrize(
    "field, value, allowed",
    [
        ("epochs", 0, ">= 1"),
        ("batch_size", -4, ">= 2"),
        ("batch_size", 0, ">= 2"),
        ("n_prototypes", 1, ">= 2"),
        ("image_size", 2.5, ">= 8"),
        ("max_steps", 0, ">= 1"),
        ("n_global", 1, ">= 2"),
        ("lr", 0.0, "> 0"),
        ("lr", float("nan"), "> 0"),
        ("temperature", -0.1, "> 0"),
        ("warmup_fraction", 1.0, "in \\[0.0, 0.99\\]"),
        ("method", "byol", "one of"),
        ("backbone", "resnet_smal", "one of"),
        ("balance", "sources", "one of"),
        ("optimizer", "adam", "one of"),
        ("amp", "fp8", "one of"),
        ("epochs", True, ">= 1"),
    ],
)
def test_impossible_settings_are_refused_before_any_work(field: str, value, allowed: str) -> None:
    with pytest.raises(ValueError, match=f"PretrainConfig.{field}={value!r}.*{allowed}".replace("(", "\\(")):
        tiny_config(**{field: value})


def test_nan_loss_stops_with_hint_and_keeps_checkpoint(tmp_path: Path) -> None:
    trainer = Pretrainer(tiny_config(), phantom_pool(), tmp_path)
    trainer.fit(progress=False, stop_after=2)
    good = (tmp_path / "checkpoint.pt").read_bytes()
    trainer.objective.loss_fn = lambda *a, **k: torch.tensor(float("nan"))
    with pytest.raises(TrainingError, match="loss became nan at step 2.*lower lr"):
        trainer.fit(progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == good
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_collapse_detector_stops(tmp_path: Path) -> None:
    trainer = Pretrainer(tiny_config(collapse_min_steps=0), phantom_pool(), tmp_path)
    trainer.step = trainer.total_steps
    with pytest.raises(TrainingError, match="possible collapse.*ln K"):
        trainer._check_collapse({"loss_avg": math.log(16), "prototype_usage": 0.02})
    assert trainer.history.stopped == "collapse"


def test_corrupt_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(TrainingError, match="not a readable medssl-lab checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")
    with pytest.raises(TrainingError, match="no checkpoint there"):
        load_pretrained(tmp_path / "nothing")


def test_simclr_baseline_learns_and_logs_its_spread_on_its_grid_without_prototypes() -> None:
    config = tiny_config(method="simclr", epochs=4, log_every=2)
    trainer = Pretrainer(config, phantom_pool())
    untrained = copy.deepcopy(trainer.model)
    history = trainer.fit(progress=False)
    assert [row["step"] for row in history.rows] == [1, 3, 5, 7, 9, 11, 13, 15, 16]  # every 2nd step and the last
    assert trainer.model.prototypes is None
    for row in history.rows:  # its own diagnostic, none of SwAV's
        assert "embedding_std" in row and not {"prototype_usage", "entropy_sample", "entropy_mean"} & set(row)
    assert ((history.column("embedding_std") > 0) & (history.column("embedding_std") <= 1)).all()
    assert np.isfinite(history.column("loss")).all()
    changed = [not torch.equal(p, q) for p, q in zip(trainer.model.parameters(), untrained.parameters(), strict=True)]
    assert all(changed)  # every weight was trained
    held_out = torch.from_numpy(make_phantoms(64, 32, seed=1).images)
    views = MultiCropAugment(config.augment_config())(held_out, generator=make_generator(1))
    with torch.no_grad():
        before, after = (float(make_objective(m.train(), config)(views)[0]) for m in (untrained, trainer.model))
    assert after < before - 0.05  # it learns: lower NT-Xent on images it never saw (the logged loss is too noisy)


def _pretrain_command_worker(rank: int, port: int, out: str) -> None:
    """One of two processes, with the variables ``torchrun --nproc_per_node 2`` sets, running ``medssl-lab pretrain``.

    After training (the group still joined), the two replicas' weights are gathered; after the command, whether its
    trainer (and DDP wrapper) was freed. Each process writes what it saw to ``rank{rank}.pt``.
    """
    env = dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    os.environ.update(env, RANK=str(rank), LOCAL_RANK=str(rank))
    seen: dict = {}
    fit = Pretrainer.fit

    def fit_and_gather(self: Pretrainer, *args, **kwargs) -> History:
        history = fit(self, *args, **kwargs)
        flat = torch.cat([p.detach().flatten() for p in self.model.parameters()])
        replicas = [torch.zeros_like(flat) for _ in range(2)]
        dist.all_gather(replicas, flat)
        seen.update(replicas_equal=torch.equal(*replicas), trainer=weakref.ref(self))
        return history

    Pretrainer.fit = fit_and_gather  # in this spawned process only
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["pretrain", "--profile", "smoke", "--synthetic", "--device", "cpu", "--out", out])
    result = {"code": code, "printed": printed.getvalue(), "replicas_equal": seen["replicas_equal"]}
    torch.save({**result, "trainer_freed": seen["trainer"]() is None}, Path(out) / f"rank{rank}.pt")


@pytest.mark.slow
def test_pretrain_command_in_two_processes_keeps_replicas_equal_and_leaves_the_group(tmp_path: Path) -> None:
    """The README's ``torchrun --nproc_per_node 2 -m medssl_lab.cli pretrain``, as two spawned processes: both end
    with status 0 (mp.spawn raises otherwise, also for an abort while Python shuts down), the replicas stay
    identical, the trainer goes with the group, only the first process reports, and the checkpoint is written."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_pretrain_command_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["code"] for r in ranks] == [0, 0]
    assert all(r["replicas_equal"] and r["trainer_freed"] for r in ranks)
    assert "SYNTHETIC phantoms: 512 images; 8 steps" in ranks[0]["printed"] and ranks[1]["printed"] == ""
    assert load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 8


def test_cli_pretrain_smoke_on_real_data(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["pretrain", "--profile", "smoke", "--data-dir", str(data_dir), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "checkpoint.pt").exists()
    assert "real pool: 512 images" in capsys.readouterr().out


def _history_csv(folder: Path) -> list[dict[str, str]]:
    with open(folder / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_event_files_hold_each_row_of_history_csv_once_also_after_a_kill_and_a_resume(tmp_path: Path) -> None:
    """Steps 5 and 6 reach the event files after the checkpoint of step 4, then the run dies; the resumed run logs
    them again, and TensorBoard's reader shows each step once, with the values of history.csv."""

    class Killed(Exception):
        pass

    def killed_after_step_6(trainer: Pretrainer, row: dict) -> None:
        if trainer.step == 6:
            raise Killed

    config = tiny_config(checkpoint_every=4)  # 8 steps, a row each, the kNN monitor at steps 1, 5 and 8
    with pytest.raises(Killed):
        Pretrainer(config, phantom_pool(), tmp_path).fit(progress=False, callback=killed_after_step_6)
    assert load_checkpoint(tmp_path)["step"] == 4
    pretrain(config, phantom_pool(), tmp_path, progress=False)
    rows = _history_csv(tmp_path)
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    events = read_events(tmp_path)
    columns = [name for name in rows[0] if name != "step"]
    assert {"loss", "loss_avg", "lr", "prototype_usage", "img_per_s", "knn_accuracy"} <= set(columns)
    assert set(events.scalars) == {f"pretrain/{name}" for name in columns}
    for name in columns:
        logged = [(int(r["step"]), np.float32(r[name])) for r in rows if r[name] != ""]
        assert [(step, np.float32(value)) for step, value in events.scalars[f"pretrain/{name}"]] == logged, name
    assert [step for step, _ in events.scalars["pretrain/knn_accuracy"]] == [1, 5, 8]
    assert events.texts["stopped"][-1] == (8, "finished after 8 of 8 steps")


def test_a_nan_stop_and_a_collapse_stop_are_text_in_the_event_files(tmp_path: Path) -> None:
    trainer = Pretrainer(tiny_config(), phantom_pool(), tmp_path / "nan")
    trainer.fit(progress=False, stop_after=2)
    trainer.objective.loss_fn = lambda *a, **k: torch.tensor(float("nan"))
    with pytest.raises(TrainingError, match="loss became nan"):
        trainer.fit(progress=False)
    assert not trainer.events.writing  # closed on the way out
    texts = read_events(tmp_path / "nan").texts["stopped"]
    assert texts[0] == (2, "paused after 2 of 8 steps")
    assert texts[1][0] == 2 and texts[1][1].startswith("stopped: the loss became nan at step 2 (epoch 0)")
    collapsing = Pretrainer(tiny_config(collapse_min_steps=0), phantom_pool(), tmp_path / "collapse")
    collapsing.objective.collapse_hint = lambda loss, row: "possible collapse (a stand-in hint)"
    with pytest.raises(TrainingError, match="possible collapse"):
        collapsing.fit(progress=False)
    assert read_events(tmp_path / "collapse").texts["stopped"] == [
        (4, "stopped: stopped at step 4: possible collapse (a stand-in hint)")
    ]


def test_the_loop_lets_the_thread_count_follow_the_machine_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    import medssl_lab.pretrain.trainer as trainer_module

    calls: list[int] = []
    trainer = Pretrainer(tiny_config(epochs=1), phantom_pool())
    monkeypatch.setattr(trainer_module, "adapt_threads", lambda: calls.append(trainer.step) or False)
    trainer.fit(progress=False)
    assert calls == list(range(trainer.total_steps)) and trainer.total_steps == 4  # once after each step
