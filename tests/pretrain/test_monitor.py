"""The online kNN monitor: its own subset and generator, the model left as it was, the weights of a run unchanged."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.pretrain import PretrainConfig, Pretrainer, build_model
from medssl_lab.pretrain.monitor import KnnMonitor, monitor_split


def tagged_pool(n: int = 128) -> ImageSet:
    """Phantoms tagged by their four classes, as build_pool tags images "<source>/<class>"."""
    ph = make_phantoms(n, 32, seed=0)
    return ImageSet(ph.images, ph.labels, ph.class_names, "unlabelled", np.full(n, "CT", object))


def test_the_split_takes_every_tag_alike_with_its_own_generator() -> None:
    tags = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 6 + ["d"])
    torch_state, numpy_state = torch.get_rng_state(), np.random.get_state()
    bank, queries = monitor_split(tags, 60, seed=3)
    assert torch.equal(torch.get_rng_state(), torch_state)  # no training stream is touched
    assert np.array_equal(np.random.get_state()[1], numpy_state[1])
    # 60 over the 3 tags with 2 images or more: 20 of a and b (10 bank, 10 queries), all 6 of c; d alone is left out
    assert [int((tags[bank] == t).sum()) for t in "abcd"] == [10, 10, 3, 0]
    assert [int((tags[queries] == t).sum()) for t in "abcd"] == [10, 10, 3, 0]
    assert not set(bank) & set(queries)
    again = monitor_split(tags, 60, seed=3)
    assert again is not None and np.array_equal(again[0], bank) and np.array_equal(again[1], queries)
    other = monitor_split(tags, 60, seed=4)
    assert other is not None and not np.array_equal(other[0], bank)
    assert monitor_split(np.array(["a"] * 10 + ["b"]), 60, seed=0) is None  # nothing to tell apart


class _ByIntensity(nn.Module):
    """An encoder whose features are the image itself: constant images of distinct grey levels are told apart."""

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.flatten(1), torch.ones(len(x), 1)], dim=1)  # the constant keeps dark images off zero


def test_separable_tags_score_one_and_the_accuracy_is_the_mean_over_tags() -> None:
    levels = np.repeat([10, 120, 240], [40, 40, 8])
    images = np.broadcast_to(levels[:, None, None], (len(levels), 8, 8)).astype(np.uint8)
    pool = ImageSet(images, np.repeat([0, 1, 2], [40, 40, 8]), ("a", "b", "c"), "unlabelled")
    monitor = KnnMonitor.from_pool(pool, 60, seed=0, device=torch.device("cpu"))
    assert monitor is not None and monitor.n_tags == 3
    assert monitor(_ByIntensity()) == 1.0
    assert monitor.calls == 1 and monitor.seconds > 0
    one_tag = ImageSet(images, np.zeros(len(images), dtype=np.int64), ("a",), "unlabelled")
    assert KnnMonitor.from_pool(one_tag, 60, seed=0, device=torch.device("cpu")) is None


def test_the_model_is_scored_in_eval_mode_without_gradients_and_left_as_it_was() -> None:
    model = build_model(PretrainConfig.for_profile("smoke"))
    model.train()
    model.head.eval()  # a mix of modes must come back as it was
    modes = [m.training for m in model.modules()]
    before = {k: v.clone() for k, v in model.state_dict().items()}  # batch-norm running statistics included
    monitor = KnnMonitor.from_pool(tagged_pool(), 64, seed=0, device=torch.device("cpu"))
    assert monitor is not None
    accuracy = monitor(model)
    assert 0.0 <= accuracy <= 1.0
    assert [m.training for m in model.modules()] == modes
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert monitor(model) == accuracy  # the same subset every time


def _config(**overrides) -> PretrainConfig:
    base = dict(pool_limit=None, batch_size=32, epochs=2, log_every=1, checkpoint_every=100, device="cpu")
    return PretrainConfig.for_profile("smoke", **{**base, **overrides})


def test_pretraining_with_the_monitor_on_or_off_ends_with_the_same_weights(tmp_path: Path) -> None:
    """The smoke profile's monitor (every 4 steps) and the event files on, against neither: bit-identical."""
    on = Pretrainer(_config(), tagged_pool(), tmp_path)
    off = Pretrainer(_config(knn_every=0), tagged_pool())
    assert on.monitor is not None and off.monitor is None
    on.fit(progress=False)
    off.fit(progress=False)
    for name, value in off.model.state_dict().items():
        assert torch.equal(on.model.state_dict()[name], value), name
    assert np.array_equal(on.history.column("loss"), off.history.column("loss"))
    assert torch.equal(on.aug_generator.get_state(), off.aug_generator.get_state())
    # steps 0, 4 (the first logging step at or after each multiple of 4) and the last, 7; rows count steps from 1
    knn = {row["step"]: row["knn_accuracy"] for row in on.history.rows if "knn_accuracy" in row}
    assert list(knn) == [1, 5, 8] and all(0.0 <= a <= 1.0 for a in knn.values()) and on.monitor.calls == 3
    assert np.isnan(off.history.column("knn_accuracy")).all()
    with open(tmp_path / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["knn_accuracy"]) if r["knn_accuracy"] else None for r in rows] == [
        knn.get(int(r["step"])) for r in rows
    ]  # empty on steps without it


def test_the_monitor_follows_the_logging_grid_and_its_own_period() -> None:
    trainer = Pretrainer(_config(epochs=4, log_every=3, knn_every=5), tagged_pool())  # 16 steps
    logged = [s for s in range(trainer.total_steps) if s % 3 == 0 or s == trainer.total_steps - 1]
    assert [s for s in logged if trainer._knn_due(s)] == [0, 6, 12, 15]  # at or after 0, 5, 10, 15; the last
    assert not any(Pretrainer(_config(knn_every=0), tagged_pool())._knn_due(s) for s in range(8))
