"""Evaluation: MedMNIST metrics, label fractions, features, probes, the shared training loop, convergence, robustness."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, roc_auc_score

import medssl_lab.evaluate as ev
from medssl_lab.augment import PERTURBATION_LEVELS, MultiCropConfig
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError
from medssl_lab.evaluate import (
    Classifier,
    TrainConfig,
    compute_metrics,
    convergence_target,
    extract_assignments,
    extract_features,
    knn_probe,
    label_fraction_indices,
    linear_probe,
    load_encoder,
    predict_proba,
    robustness_curve,
    step_reduction,
    steps_to_reach,
    train_classifier,
)
from medssl_lab.models import make_backbone
from medssl_lab.pretrain import Pretrainer, PretrainConfig, build_model

# ----------------------------------------------------------------------------- helpers


def phantom_split(n: int, seed: int, binary: bool = True, size: int = 32) -> ImageSet:
    """Phantoms as a labelled split: lesion vs none (binary) or the 4 phantom classes."""
    ph = make_phantoms(n, size, seed=seed)
    if binary:
        return ImageSet(ph.images, (ph.labels > 0).astype(np.int64), ("no_lesion", "lesion"), "binary-class")
    return ImageSet(ph.images, ph.labels, ph.class_names, "multi-class")


@pytest.fixture(scope="module")
def splits() -> tuple[ImageSet, ImageSet, ImageSet]:
    return phantom_split(64, 1), phantom_split(40, 2), phantom_split(48, 3)  # distinct sizes: calls can be told apart


@pytest.fixture(scope="module")
def pretrained():
    torch.manual_seed(0)
    return build_model(PretrainConfig.for_profile("smoke"))  # random weights stand in for a pretrained model


SMOKE = dict(steps=6, eval_every=2, batch_size=16, device="cpu", seed=0)
SMOKE_VIEWS = MultiCropConfig.for_profile("smoke")


# ----------------------------------------------------------------------------- metrics


def test_binary_metrics_match_sklearn_for_both_score_layouts() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.uniform(0, 0.7, 200), 0, 1)
    expected = {"auc": roc_auc_score(y, p), "acc": accuracy_score(y, p > 0.5)}
    for scores in (p, p[:, None], np.stack([1 - p, p], 1)):
        got = compute_metrics("binary-class", y[:, None], scores)
        assert got == pytest.approx(expected)


def test_multiclass_metrics_are_macro_one_vs_rest_auc_and_argmax_acc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 1.5 * np.eye(4)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    got = compute_metrics("multi-class", y, p)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))
    assert got["acc"] == pytest.approx(accuracy_score(y, p.argmax(1)))
    assert compute_metrics("ordinal-regression", y, p) == pytest.approx(got)  # scored as MedMNIST does


def test_multilabel_metrics_mean_over_labels() -> None:
    y = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0]])
    p = np.array([[0.9, 0.2, 0.6], [0.3, 0.7, 0.4], [0.6, 0.4, 0.2], [0.1, 0.3, 0.5], [0.4, 0.1, 0.9], [0.2, 0.8, 0.3]])
    got = compute_metrics("multi-label, binary-class", y, p)
    assert got["auc"] == pytest.approx(roc_auc_score(y, p, average="macro"))
    assert got["acc"] == pytest.approx(np.mean([accuracy_score(y[:, j], p[:, j] > 0.5) for j in range(3)]))


def test_metrics_absent_class_gives_nan_with_explanation_and_bad_scores_raise() -> None:
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.6, 0.3, 0.1]])
    with pytest.warns(RuntimeWarning, match=r"class\(es\) \[2\] never occur"):
        got = compute_metrics("multi-class", np.array([0, 1, 0]), p)
    assert math.isnan(got["auc"]) and got["acc"] == 1.0
    with pytest.warns(RuntimeWarning, match="only class 1"):
        assert math.isnan(compute_metrics("binary-class", np.ones(3), np.array([0.2, 0.6, 0.9]))["auc"])
    with pytest.raises(ValueError, match="probabilities"):
        compute_metrics("binary-class", np.array([0, 1]), np.array([-2.0, 3.0]))  # logits
    with pytest.raises(ValueError, match="unknown task"):
        compute_metrics("regression", np.array([0, 1]), np.array([0.2, 0.8]))


# ----------------------------------------------------------------------------- label fractions


def mednist_like_train_labels() -> np.ndarray:
    counts = [8000, 7163, 8000, 8000, 8000, 8000]  # MedNIST's 80 % train split: 47,163 labels
    labels = np.repeat(np.arange(6), counts)
    return np.random.default_rng(0).permutation(labels)


def test_label_fractions_are_stratified_seeded_and_nested() -> None:
    labels = mednist_like_train_labels()
    assert len(labels) == 47163
    tiny = label_fraction_indices(labels, 0.001, seed=0)
    counts = np.bincount(labels[tiny], minlength=6)
    assert (counts >= 2).all() and counts.sum() < 60  # every class at 0.1 %, about 8 per class
    ten = label_fraction_indices(labels, 0.1, seed=0)
    assert np.allclose(np.bincount(labels[ten]) / np.bincount(labels), 0.1, atol=1e-3)  # stratified
    assert np.array_equal(ten, label_fraction_indices(labels, 0.1, seed=0))  # seeded
    assert not np.array_equal(ten, label_fraction_indices(labels, 0.1, seed=1))
    assert np.isin(label_fraction_indices(labels, 0.01, seed=0), ten).all()  # nested within a seed
    assert np.all(np.diff(ten) > 0) and ten.dtype == np.int64
    assert np.array_equal(label_fraction_indices(labels[:, None], 1.0, seed=3), np.arange(len(labels)))
    with pytest.raises(ValueError, match="fraction"):
        label_fraction_indices(labels, 0.0)


def test_label_fractions_multilabel_keep_every_label() -> None:
    rng = np.random.default_rng(0)
    y = (rng.uniform(size=(2000, 5)) < np.array([0.5, 0.2, 0.05, 0.01, 0.3])).astype(int)
    idx = label_fraction_indices(y, 0.01, seed=0)
    assert (y[idx].sum(0) >= 2).all() and ((1 - y[idx]).sum(0) >= 2).all()
    assert len(idx) < 60


# ----------------------------------------------------------------------------- features and probes


def test_extract_features_batches_restores_the_model_and_resizes() -> None:
    torch.manual_seed(0)
    backbone, dim = make_backbone("resnet_small")
    backbone.train()
    images = make_phantoms(10, 32, seed=0).images
    full = extract_features(backbone, images, batch_size=512, device="cpu")
    chunked = extract_features(backbone, ImageSet(images, np.zeros(10, int), ("a",), "multi-class"), batch_size=3,
                               device="cpu")
    assert full.shape == (10, dim) and full.dtype == np.float32
    assert np.allclose(full, chunked, atol=1e-5)  # eval mode: batch-norm does not depend on the batch
    assert backbone.training  # mode put back
    small = extract_features(backbone, images, image_size=16, device="cpu")
    assert small.shape == (10, dim) and not np.allclose(small, full)


def test_extract_assignments_scores_are_prototype_similarities(pretrained) -> None:
    images = make_phantoms(12, 32, seed=0).images
    emb, scores = extract_assignments(pretrained, images, image_size=16, device="cpu")
    assert emb.shape == (12, 32) and scores.shape == (12, 16)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    w = pretrained.prototypes.weight.detach().numpy()
    assert np.allclose(scores, emb @ w.T, atol=1e-5)
    assert np.allclose(extract_features(pretrained, images, 16, device="cpu").shape, (12, pretrained.feat_dim))


def blobs(n: int, seed: int, n_classes: int = 3, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(size=(n_classes, dim)) * 2
    y = np.arange(n) % n_classes
    return (centres[y] + rng.normal(size=(n, dim))).astype(np.float32), y


@pytest.mark.parametrize("task", ["binary-class", "multi-class", "multi-label, binary-class"])
def test_probes_separate_clusters_and_constant_features_do_not(task: str) -> None:
    n_classes = 2 if task == "binary-class" else 3
    (xtr, ytr), (xva, yva), (xte, yte) = (blobs(n, s, n_classes) for n, s in ((150, 0), (60, 1), (60, 2)))
    if task.startswith("multi-label"):  # labels: "is class 0", "is class 0 or 1"
        ytr, yva, yte = (np.stack([y == 0, y <= 1], 1).astype(int) for y in (ytr, yva, yte))
    knn = knn_probe(xtr, ytr, xte, yte, task, k=10)
    lin = linear_probe(xtr, ytr, xva, yva, xte, yte, task, max_iter=50)
    assert knn["auc"] > 0.95 and lin["auc"] > 0.95 and lin["val_auc"] > 0.95
    const = np.ones_like
    assert knn_probe(const(xtr), ytr, const(xte), yte, task)["auc"] == pytest.approx(0.5)
    assert linear_probe(const(xtr), ytr, const(xva), yva, const(xte), yte, task, max_iter=20)["auc"] == pytest.approx(0.5)


def test_probes_detect_phantom_lesions_from_intensity_features() -> None:
    ph = make_phantoms(240, 32, seed=1)
    y = (ph.labels > 0).astype(int)
    hist = np.stack([np.histogram(im, bins=24, range=(160, 208))[0] for im in ph.images]).astype(np.float32)
    hist = (hist - hist[:120].mean(0)) / (hist[:120].std(0) + 1e-6)
    tr, va, te = slice(0, 120), slice(120, 180), slice(180, 240)
    assert knn_probe(hist[tr], y[tr], hist[te], y[te], "binary-class")["auc"] > 0.9
    assert linear_probe(hist[tr], y[tr], hist[va], y[va], hist[te], y[te], "binary-class")["auc"] > 0.9


def test_linear_probe_picks_weight_decay_on_validation_and_tests_once(monkeypatch: pytest.MonkeyPatch) -> None:
    (xtr, ytr), (xva, yva), (xte, yte) = (blobs(n, s, 3) for n, s in ((90, 0), (45, 1), (30, 2)))
    seen: list[int] = []
    real = ev.compute_metrics
    monkeypatch.setattr(ev, "compute_metrics", lambda task, y, s: (seen.append(len(y)), real(task, y, s))[1])
    wds = (1e-4, 10.0, 1e-2)
    out = linear_probe(xtr, ytr, xva, yva, xte, yte, "multi-class", weight_decays=wds, max_iter=30)
    assert seen == [45, 45, 45, 30]  # every candidate on validation, test once at the end
    monkeypatch.setattr(ev, "compute_metrics", real)
    vals = {wd: linear_probe(xtr, ytr, xva, yva, xte, yte, "multi-class", weight_decays=(wd,), max_iter=30)["val_auc"]
            for wd in wds}
    assert out["weight_decay"] in wds and out["val_auc"] == pytest.approx(max(vals.values()))


# ----------------------------------------------------------------------------- the shared training loop


def count_test_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = ev.predict_proba

    def counting(model, images, *args, **kwargs):
        sizes.append(len(images))
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(ev, "predict_proba", counting)
    return sizes


@pytest.mark.parametrize("arm", ["scratch", "linear", "finetune", "hybrid"])
def test_every_arm_trains_with_the_same_loop(arm: str, splits, pretrained, monkeypatch: pytest.MonkeyPatch) -> None:
    train, val, test = splits
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    sizes = count_test_evaluations(monkeypatch)
    pool = make_phantoms(40, 32, seed=7).images if arm == "hybrid" else None
    result = train_classifier(arm, train, val, test, pretrained=pretrained if arm != "scratch" else None, pool=pool,
                              multicrop=SMOKE_VIEWS, target=0.0, **SMOKE)
    assert [s for s, _ in result.curve] == [2, 4, 6]
    assert sizes == [len(val)] * 3 + [len(test)]  # validation at each evaluation, test exactly once
    best = max(result.curve, key=lambda p: p[1])
    assert (result.best_step, result.best_val_auc) == best
    again = compute_metrics("binary-class", val.labels, predict_proba(result.model, val, "binary-class", 32, device="cpu"))
    assert again["auc"] == pytest.approx(result.best_val_auc)  # the returned weights are those of the best step
    assert 0.0 <= result.test_auc <= 1.0 and 0.0 <= result.test_acc <= 1.0
    assert result.steps_to_target == 2 and len(result.losses) == 6 and result.n_train == 64
    assert all(torch.equal(before[k], v) for k, v in pretrained.state_dict().items())  # the caller's model is copied
    ssl = np.array([r["ssl"] for r in result.losses])
    if arm == "hybrid":
        assert (ssl > 0).all() and np.isfinite(ssl).all()
        for r in result.losses:
            assert r["loss"] == pytest.approx(r["supervised"] + r["ssl"], rel=1e-5)
    else:
        assert (ssl == 0).all()
    trained = dict(result.model.backbone.state_dict())
    start = {k[len("backbone."):]: v for k, v in before.items() if k.startswith("backbone.")}
    unchanged = all(torch.equal(start[k], v) for k, v in trained.items())
    assert unchanged == (arm == "linear")  # frozen (weights and batch-norm statistics) only in the linear arm


def test_hybrid_weight_and_validation_errors(splits, pretrained) -> None:
    train, val, test = splits
    pool = make_phantoms(32, 32, seed=7).images
    r = train_classifier("hybrid", train, val, test, pretrained=pretrained, pool=pool, multicrop=SMOKE_VIEWS,
                         ssl_weight=0.5, **{**SMOKE, "steps": 2})
    assert all(x["loss"] == pytest.approx(x["supervised"] + 0.5 * x["ssl"], rel=1e-5) for x in r.losses)
    with pytest.raises(ValueError, match="needs pretrained"):
        train_classifier("finetune", train, val, test, **SMOKE)
    with pytest.raises(ValueError, match="needs pool"):
        train_classifier("hybrid", train, val, test, pretrained=pretrained, **SMOKE)
    with pytest.raises(ValueError, match="unknown arm"):
        train_classifier("frozen", train, val, test, **SMOKE)


def test_labelled_splits_that_would_give_a_meaningless_figure_are_refused(splits) -> None:
    train, val, test = splits
    unlabelled = ImageSet(train.images, np.full(len(train), -1), train.class_names, train.task)
    with pytest.raises(DataError, match="the train split has 64 label.s. outside 0..1 .no_lesion, lesion., e.g. .-1."):
        train_classifier("scratch", unlabelled, val, test, **SMOKE)
    wrong = ImageSet(val.images, np.where(np.arange(len(val)) == 0, 5, val.labels[:, 0]), val.class_names, val.task)
    with pytest.raises(DataError, match="the val split has 1 label.s. outside 0..1.*e.g. .5."):
        train_classifier("scratch", train, wrong, test, **SMOKE)
    with pytest.raises(DataError, match="the test split is empty"):
        train_classifier("scratch", train, val, test.subset(np.arange(0)), **SMOKE)
    one_class = val.subset(np.flatnonzero(val.labels[:, 0] == 1))
    with pytest.raises(DataError, match="the val split holds only class 'lesion'"):
        train_classifier("scratch", train, one_class, test, **SMOKE)


def test_keep_bn_statistics_uses_batch_statistics_but_leaves_running_ones() -> None:
    from medssl_lab.evaluate import keep_bn_statistics

    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4)).train()
    before = net[1].running_mean.clone()
    x = torch.randn(8, 1, 6, 6) * 5 + 3
    with keep_bn_statistics(net):
        out = net(x)
    assert torch.equal(net[1].running_mean, before) and net[1].momentum == 0.1
    assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-4  # normalised with the batch's own statistics
    net(x)
    assert not torch.equal(net[1].running_mean, before)  # outside the block they move as usual


def test_training_from_a_checkpoint_and_multiclass(tmp_path: Path) -> None:
    pool = phantom_split(64, 5, binary=False)
    Pretrainer(PretrainConfig.for_profile("smoke", batch_size=32, max_steps=2, device="cpu"), pool, tmp_path).fit(
        progress=False
    )
    model, config = load_encoder(tmp_path)
    assert config.image_size == 32 and not model.training
    train, val, test = phantom_split(48, 1, False, 28), phantom_split(24, 2, False, 28), phantom_split(24, 3, False, 28)
    cfg = TrainConfig(steps=3, eval_every=2, batch_size=16, device="cpu")
    r = train_classifier("finetune", train, val, test, pretrained=tmp_path, config=cfg)
    assert r.config.image_size == 32  # evaluated at the pretraining size
    assert [s for s, _ in r.curve] == [2, 3] and r.model.head.out_features == 4
    s = train_classifier("scratch", train, val, test, pretrained=tmp_path, config=cfg)  # same architecture, random
    assert [p.shape for p in s.model.parameters()] == [p.shape for p in r.model.parameters()]


def test_pretrained_lr_scale_slows_only_the_pretrained_weights(splits, pretrained) -> None:
    train, val, test = splits
    start = {k: v.clone() for k, v in pretrained.backbone.named_parameters()}
    frozen = train_classifier("finetune", train, val, test, pretrained=pretrained, pretrained_lr_scale=0.0,
                              **{**SMOKE, "steps": 3})
    assert all(torch.equal(start[k], v) for k, v in frozen.model.backbone.named_parameters())
    moved = train_classifier("finetune", train, val, test, pretrained=pretrained, **{**SMOKE, "steps": 3})
    assert not all(torch.equal(start[k], v) for k, v in moved.model.backbone.named_parameters())
    scaled = train_classifier("scratch", train, val, test, pretrained_lr_scale=0.0, **{**SMOKE, "steps": 3})
    plain = train_classifier("scratch", train, val, test, **{**SMOKE, "steps": 3})
    assert scaled.losses == plain.losses  # the scale never touches scratch
    heads = [train_classifier("linear", train, val, test, pretrained=pretrained, linear_lr=head_lr,
                              **{**SMOKE, "steps": steps, "eval_every": 1}).model.head.weight
             for head_lr, steps in ((0.0, 1), (0.0, 3), (0.1, 3))]
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[1], heads[2])  # linear_lr=0: the head stays put
    ft = train_classifier("finetune", train, val, test, pretrained=pretrained, linear_lr=0.0, **{**SMOKE, "steps": 3})
    assert ft.losses == moved.losses  # linear_lr is the linear arm's alone


def test_dense_evaluation_grid(splits) -> None:
    cfg = TrainConfig(steps=60, eval_every=25, dense_eval=(5, 20))
    assert [s for s in range(1, 61) if cfg.is_eval_step(s)] == [5, 10, 15, 20, 25, 50, 60]
    assert [s for s in range(1, 61) if TrainConfig(steps=60, eval_every=25).is_eval_step(s)] == [25, 50, 60]
    with pytest.raises(ValueError, match="dense_eval"):
        TrainConfig(dense_eval=(0, 10))
    train, val, test = splits
    r = train_classifier("scratch", train, val, test, **{**SMOKE, "eval_every": 4, "dense_eval": (1, 2)})
    assert [s for s, _ in r.curve] == [1, 2, 4, 6]


# ----------------------------------------------------------------------------- convergence


def test_steps_to_reach_and_step_reduction() -> None:
    scratch = [(50, 0.70), (100, 0.80), (150, 0.86), (200, 0.90), (250, 0.89)]
    pretrained = [(50, 0.80), (100, 0.87), (150, 0.91)]
    target = convergence_target(scratch)
    assert target == pytest.approx(0.855)
    assert steps_to_reach(scratch, target) == 150 and steps_to_reach(pretrained, target) == 100
    assert steps_to_reach(pretrained, 0.95) is None
    assert steps_to_reach([(10, float("nan")), (20, 0.9)], 0.5) == 20
    assert step_reduction(100, 150) == pytest.approx(100 / 3)
    assert step_reduction(30, 200) == pytest.approx(85.0)  # the paper's headline figure
    assert step_reduction(300, 150) == pytest.approx(-100.0)
    assert step_reduction(None, 150) is None


# ----------------------------------------------------------------------------- robustness


def test_robustness_rows_cover_every_kind_and_severity(splits) -> None:
    _, _, test = splits
    torch.manual_seed(0)
    backbone, dim = make_backbone("resnet_small")
    model = Classifier(backbone, dim, 2)
    rows = robustness_curve(model, test, image_size=32, device="cpu")
    assert rows[0]["kind"] == "clean" and rows[0]["drop"] == 0.0
    expected = [(k, float(s)) for k, sevs in PERTURBATION_LEVELS.items() for s in sevs]
    assert [(r["kind"], r["severity"]) for r in rows[1:]] == expected
    for r in rows[1:]:
        assert r["drop"] == pytest.approx(rows[0]["auc"] - r["auc"]) and 0 <= r["auc"] <= 1
    same = robustness_curve(model, test, levels={"rotation": [0.0], "gamma": [1.0]}, image_size=32, device="cpu")
    assert [r["drop"] for r in same] == [0.0, 0.0, 0.0]  # identity severities change nothing
    assert any(r["drop"] != 0 for r in rows[1:])


# ----------------------------------------------------------------------------- real data


def test_pneumonia_scratch_learns(data_dir: Path) -> None:
    from medssl_lab.data.medmnist import load_medmnist

    data = load_medmnist("pneumoniamnist", data_dir=data_dir, download=False)
    result = train_classifier("scratch", data.train, data.val, data.test, steps=50, eval_every=25, batch_size=32,
                              device="cpu", seed=0)
    assert len(result.curve) == 2
    assert result.best_val_auc > 0.85, result.curve  # about 0.93 after 25 steps when measured
    assert result.test_auc > 0.8


@pytest.mark.parametrize("field, value", [
    ("steps", 0), ("batch_size", 1), ("eval_every", -1), ("image_size", 4), ("ssl_batch_size", 1), ("lr", 0.0),
    ("lr", float("inf")), ("linear_lr", -1.0), ("ssl_temperature", 0.0), ("weight_decay", -1e-4),
    ("ssl_weight", float("nan")), ("pretrained_lr_scale", -0.5), ("backbone", "resnet_smal"), ("amp", "fp8"),
    ("dense_eval", (0, 100)), ("steps", 2.5),
])
def test_impossible_train_settings_are_refused(field: str, value) -> None:
    with pytest.raises(ValueError, match=f"TrainConfig.{field}[= ]"):
        TrainConfig(**{field: value})
