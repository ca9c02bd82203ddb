"""The arms of the downstream experiment and their one training loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

import medssl_lab.evaluation.downstream as ds
from medssl_lab.data.stack import ImageStack
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError, TrainingError
from medssl_lab.evaluation.downstream import (
    TrainConfig,
    backbone_stages,
    build_classifier,
    keep_bn_statistics,
    make_optimizer,
    train_classifier,
)
from medssl_lab.evaluation.inference import predict_proba
from medssl_lab.evaluation.metrics import compute_metrics
from medssl_lab.pretrain import PretrainConfig, Pretrainer, load_pretrained
from medssl_lab.tblog import read_events

from .conftest import SMOKE, phantom_split


def count_test_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = ds.predict_proba

    def counting(model, images, *args, **kwargs):
        sizes.append(len(images))
        return real(model, images, *args, **kwargs)

    monkeypatch.setattr(ds, "predict_proba", counting)
    return sizes


@pytest.mark.parametrize("arm", ["scratch", "linear", "finetune", "hybrid"])
def test_every_arm_trains_with_the_same_loop(arm: str, splits, pretrained, monkeypatch: pytest.MonkeyPatch) -> None:
    train, val, test = splits
    before = {k: v.clone() for k, v in pretrained.model.state_dict().items()}
    sizes = count_test_evaluations(monkeypatch)
    pool = make_phantoms(40, 32, seed=7).images if arm == "hybrid" else None
    result = train_classifier(
        arm, train, val, test, pretrained=pretrained if arm != "scratch" else None, pool=pool, target=0.0, **SMOKE
    )
    assert [s for s, _ in result.curve] == [2, 4, 6]
    assert sizes == [len(val)] * 3 + [len(test)]  # validation at each evaluation, test exactly once
    best = max(result.curve, key=lambda p: p[1])
    assert (result.best_step, result.best_val_auc) == best
    again = compute_metrics(
        "binary-class", val.labels, predict_proba(result.model, val, "binary-class", 32, device="cpu")
    )
    assert again["auc"] == pytest.approx(result.best_val_auc)  # the returned weights are those of the best step
    assert 0.0 <= result.test_auc <= 1.0 and 0.0 <= result.test_acc <= 1.0
    assert result.steps_to_target == 2 and len(result.losses) == 6 and result.n_train == 64
    assert all(
        torch.equal(before[k], v) for k, v in pretrained.model.state_dict().items()
    )  # the caller's model is copied
    ssl = np.array([r["ssl"] for r in result.losses])
    if arm == "hybrid":
        assert (ssl > 0).all() and np.isfinite(ssl).all()
        for r in result.losses:
            assert r["loss"] == pytest.approx(r["supervised"] + r["ssl"], rel=1e-5)
    else:
        assert (ssl == 0).all()
    trained = dict(result.model.backbone.state_dict())
    start = {k[len("backbone.") :]: v for k, v in before.items() if k.startswith("backbone.")}
    unchanged = all(torch.equal(start[k], v) for k, v in trained.items())
    assert unchanged == (arm == "linear")  # frozen (weights and batch-norm statistics) only in the linear arm


def test_every_arm_sees_the_same_labelled_batches_and_augmentations_step_by_step(
    splits, pretrained, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comparison's fairness: only the arm differs, never the data (three epochs, augmentation on)."""
    seen: list[tuple[Tensor, Tensor]] = []
    real = ds._ArmRun.labelled_batch

    def recording(run: ds._ArmRun) -> tuple[Tensor, Tensor]:
        index, x = real(run)
        seen.append((index.clone(), x.clone()))
        return index, x

    monkeypatch.setattr(ds._ArmRun, "labelled_batch", recording)
    train, val, test = splits
    pool = make_phantoms(40, 32, seed=7).images
    batches = {}
    for arm in ds.ARMS:
        seen.clear()
        settings = {**SMOKE, "steps": 12, "eval_every": 12}
        train_classifier(
            arm, train, val, test, pretrained=pretrained, pool=pool if arm == "hybrid" else None, **settings
        )
        batches[arm] = list(seen)
    assert len(batches["scratch"]) == 12
    assert not torch.equal(batches["scratch"][0][1], batches["scratch"][4][1])  # augmented anew each epoch
    for arm in ds.ARMS:
        for step, ((index, x), (index0, x0)) in enumerate(zip(batches[arm], batches["scratch"]), 1):
            assert torch.equal(index, index0) and torch.equal(x, x0), f"{arm} differs from scratch at step {step}"


def test_arms_are_declared_by_what_they_start_from_freeze_and_add() -> None:
    cfg = TrainConfig(lr=1e-3, linear_lr=3e-2, pretrained_lr_scale=0.5)
    lrs = {name: (arm.head_lr(cfg), arm.backbone_lr(cfg)) for name, arm in ds.ARM_TYPES.items()}
    assert lrs == {
        "scratch": (1e-3, 1e-3),
        "linear": (3e-2, 5e-4),
        "finetune": (1e-3, 5e-4),
        "hybrid": (1e-3, 5e-4),
    }
    assert [name for name, arm in ds.ARM_TYPES.items() if arm.ssl] == ["hybrid"]
    assert (
        len({seed for seed in range(5) for seed in [g.initial_seed() for g in ds.random_streams(seed).values()]}) == 20
    )


def test_hybrid_weight_and_validation_errors(splits, pretrained) -> None:
    train, val, test = splits
    pool = make_phantoms(32, 32, seed=7).images
    r = train_classifier(
        "hybrid", train, val, test, pretrained=pretrained, pool=pool, ssl_weight=0.5, **{**SMOKE, "steps": 2}
    )
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
    loaded = load_pretrained(tmp_path)
    assert loaded.image_size == 32 and not loaded.model.training
    train, val, test = phantom_split(48, 1, False, 28), phantom_split(24, 2, False, 28), phantom_split(24, 3, False, 28)
    cfg = TrainConfig(steps=3, eval_every=2, batch_size=16, device="cpu")
    r = train_classifier("finetune", train, val, test, pretrained=tmp_path, config=cfg)
    assert r.config.image_size == 32  # evaluated at the pretraining size
    assert [s for s, _ in r.curve] == [2, 3] and r.model.head.out_features == 4
    s = train_classifier("scratch", train, val, test, pretrained=tmp_path, config=cfg)  # same architecture, random
    assert [p.shape for p in s.model.parameters()] == [p.shape for p in r.model.parameters()]


def test_pretrained_lr_scale_slows_only_the_pretrained_weights(splits, pretrained) -> None:
    train, val, test = splits
    start = {k: v.clone() for k, v in pretrained.model.backbone.named_parameters()}
    frozen = train_classifier(
        "finetune", train, val, test, pretrained=pretrained, pretrained_lr_scale=0.0, **{**SMOKE, "steps": 3}
    )
    assert all(torch.equal(start[k], v) for k, v in frozen.model.backbone.named_parameters())
    moved = train_classifier("finetune", train, val, test, pretrained=pretrained, **{**SMOKE, "steps": 3})
    assert not all(torch.equal(start[k], v) for k, v in moved.model.backbone.named_parameters())
    scaled = train_classifier("scratch", train, val, test, pretrained_lr_scale=0.0, **{**SMOKE, "steps": 3})
    plain = train_classifier("scratch", train, val, test, **{**SMOKE, "steps": 3})
    assert scaled.losses == plain.losses  # the scale never touches scratch
    heads = [
        train_classifier(
            "linear",
            train,
            val,
            test,
            pretrained=pretrained,
            linear_lr=head_lr,
            **{**SMOKE, "steps": steps, "eval_every": 1},
        ).model.head.weight
        for head_lr, steps in ((0.0, 1), (0.0, 3), (0.1, 3))
    ]
    assert torch.equal(heads[0], heads[1]) and not torch.equal(heads[1], heads[2])  # linear_lr=0: the head stays put
    ft = train_classifier("finetune", train, val, test, pretrained=pretrained, linear_lr=0.0, **{**SMOKE, "steps": 3})
    assert ft.losses == moved.losses  # linear_lr is the linear arm's alone


def test_head_warmup_trains_only_the_head_first_then_everything(splits, pretrained) -> None:
    train, val, test = splits
    start = {k: v.clone() for k, v in pretrained.model.backbone.state_dict().items()}
    warm = dict(SMOKE, steps=3, head_warmup_steps=3)
    during = train_classifier("finetune", train, val, test, pretrained=pretrained, **warm)
    assert all(torch.equal(start[k], v) for k, v in during.model.backbone.state_dict().items())  # BN statistics too
    linear = train_classifier("linear", train, val, test, pretrained=pretrained, **{**SMOKE, "steps": 3})
    assert during.losses == linear.losses  # the warm-up is the linear arm: frozen backbone, head at linear_lr
    after = train_classifier(
        "finetune", train, val, test, pretrained=pretrained, **{**warm, "steps": 5, "eval_every": 5}
    )
    assert after.losses[:3] == during.losses
    assert not all(torch.equal(start[k], v) for k, v in after.model.backbone.state_dict().items())
    plain = train_classifier("scratch", train, val, test, **{**SMOKE, "steps": 3})
    assert train_classifier("scratch", train, val, test, **warm).losses == plain.losses  # nothing to warm up from


def test_layer_decay_slows_the_stages_nearest_the_input(pretrained) -> None:
    model = build_classifier(ds.ARM_TYPES["finetune"], pretrained.copy(), "resnet_small", 32, 2)
    optimizer = make_optimizer(ds.ARM_TYPES["finetune"], model, None, TrainConfig(lr=1e-3, layer_decay=0.5))
    lrs = [group["lr"] for group in optimizer.param_groups]
    stages = backbone_stages(model.backbone)
    assert len(stages) >= 4 and lrs[0] == 1e-3  # the head
    assert lrs[1:] == pytest.approx([1e-3 * 0.5 ** (len(stages) - i) for i in range(len(stages))])
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    scratch = build_classifier(ds.ARM_TYPES["scratch"], pretrained.copy(), "resnet_small", 32, 2)
    fresh = make_optimizer(ds.ARM_TYPES["scratch"], scratch, None, TrainConfig(lr=1e-3, layer_decay=0.5))
    assert {group["lr"] for group in fresh.param_groups} == {1e-3}  # fresh weights have nothing to keep


def test_patience_stops_after_that_many_validations_without_a_better_auc(splits) -> None:
    train, val, test = splits
    full = train_classifier("scratch", train, val, test, **{**SMOKE, "steps": 40, "eval_every": 1})
    aucs = [auc for _, auc in full.curve]
    stopped = train_classifier("scratch", train, val, test, **{**SMOKE, "steps": 40, "eval_every": 1, "patience": 2})
    best = [i for i in range(len(aucs)) if aucs[i] > max(aucs[:i], default=-1.0)]
    stop = next(i for i in range(len(aucs)) if i - max(b for b in best if b <= i) >= 2) + 1  # steps are 1-based
    assert stopped.curve == full.curve[:stop] and len(stopped.losses) == stop < 40
    assert stopped.best_step == min(s for s, a in stopped.curve if a == max(aucs[:stop]))


def test_dense_evaluation_grid(splits) -> None:
    cfg = TrainConfig(steps=60, eval_every=25, dense_eval=(5, 20))
    assert [s for s in range(1, 61) if cfg.is_eval_step(s)] == [5, 10, 15, 20, 25, 50, 60]
    assert [s for s in range(1, 61) if TrainConfig(steps=60, eval_every=25).is_eval_step(s)] == [25, 50, 60]
    with pytest.raises(ValueError, match="dense_eval"):
        TrainConfig(dense_eval=(0, 10))
    train, val, test = splits
    r = train_classifier("scratch", train, val, test, **{**SMOKE, "eval_every": 4, "dense_eval": (1, 2)})
    assert [s for s, _ in r.curve] == [1, 2, 4, 6]


def test_pneumonia_scratch_learns(data_dir: Path) -> None:
    from medssl_lab.data.medmnist import load_medmnist

    data = load_medmnist("pneumoniamnist", data_dir=data_dir, download=False)
    result = train_classifier(
        "scratch", data.train, data.val, data.test, steps=50, eval_every=25, batch_size=32, device="cpu", seed=0
    )
    assert len(result.curve) == 2
    assert result.best_val_auc > 0.85, result.curve  # about 0.93 after 25 steps when measured
    assert result.test_auc > 0.8


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 0),
        ("batch_size", 1),
        ("eval_every", -1),
        ("image_size", 4),
        ("ssl_batch_size", 1),
        ("lr", 0.0),
        ("lr", float("inf")),
        ("linear_lr", -1.0),
        ("weight_decay", -1e-4),
        ("ssl_weight", float("nan")),
        ("pretrained_lr_scale", -0.5),
        ("backbone", "resnet_smal"),
        ("amp", "fp8"),
        ("dense_eval", (0, 100)),
        ("steps", 2.5),
        ("layer_decay", 0.0),
        ("layer_decay", 1.5),
        ("patience", 0),
        ("head_warmup_steps", -1),
    ],
)
def test_impossible_train_settings_are_refused(field: str, value) -> None:
    with pytest.raises(ValueError, match=f"TrainConfig.{field}[= ]"):
        TrainConfig(**{field: value})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pretrained")
    pool = phantom_split(64, 5, binary=False)
    Pretrainer(PretrainConfig.for_profile("smoke", batch_size=32, max_steps=2, device="cpu"), pool, folder).fit(
        progress=False
    )
    return folder


@pytest.mark.parametrize("arm", ["scratch", "linear", "finetune", "hybrid"])
def test_a_pretrained_object_and_its_checkpoint_path_give_identical_runs(arm: str, splits, checkpoint: Path) -> None:
    train, val, test = splits
    pool = make_phantoms(40, 32, seed=7).images if arm == "hybrid" else None
    in_memory = load_pretrained(checkpoint)
    runs = [train_classifier(arm, train, val, test, pretrained=p, pool=pool, **SMOKE) for p in (in_memory, checkpoint)]
    assert runs[0].losses == runs[1].losses and runs[0].curve == runs[1].curve
    assert (runs[0].test_auc, runs[0].test_acc) == (runs[1].test_auc, runs[1].test_acc)
    assert runs[0].config.image_size == in_memory.image_size == 32
    if arm == "scratch":  # the pretrained architecture, freshly initialised
        fresh, _ = in_memory.fresh_backbone()
        assert [p.shape for p in runs[0].model.backbone.parameters()] == [p.shape for p in fresh.parameters()]


def test_supervised_loss_is_cross_entropy_or_bce() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5], [-1.0, 3.0]])
    labels = torch.tensor([0, 1, 1])
    expected = torch.nn.functional.cross_entropy(logits, labels)
    assert ds.supervised_loss(logits, labels, multilabel=False) == pytest.approx(float(expected))
    multi = torch.tensor([[1, 0], [0, 1], [1, 1]])
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, multi.float())
    assert ds.supervised_loss(logits, multi, multilabel=True) == pytest.approx(float(expected))


def test_train_config_for_profile_reads_the_profile_table() -> None:
    from medssl_lab.profiles import DOWNSTREAM, PROFILES

    for profile in PROFILES:
        cfg = TrainConfig.for_profile(profile, seed=3)
        assert (cfg.steps, cfg.batch_size, cfg.seed) == (
            DOWNSTREAM[profile]["steps"],
            DOWNSTREAM[profile]["batch_size"],
            3,
        )
    with pytest.raises(ValueError, match="unknown profile"):
        TrainConfig.for_profile("laptop")


def test_the_hybrid_arm_reads_a_store_pool_batch_by_batch_with_the_same_result(
    splits, checkpoint: Path, tmp_path: Path
) -> None:
    train, val, test = splits
    images = make_phantoms(40, 48, seed=7).images  # another size than the encoder's: resized on reading
    np.save(tmp_path / "000000.npy", images)
    on_disk = ImageSet(ImageStack([tmp_path / "000000.npy"], 48), np.zeros(40, np.int64), ("x",), "unlabelled")  # type: ignore[arg-type]
    runs = [
        train_classifier("hybrid", train, val, test, pretrained=checkpoint, pool=pool, **SMOKE)
        for pool in (images, on_disk)
    ]
    assert runs[0].losses == runs[1].losses and runs[0].test_auc == runs[1].test_auc


def test_a_run_writes_its_losses_validation_and_test_figures_to_event_files(
    splits, pretrained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, val, test = splits
    pool = make_phantoms(40, 32, seed=7).images
    logged = train_classifier("hybrid", train, val, test, pretrained=pretrained, pool=pool, log_dir=tmp_path, **SMOKE)
    plain = train_classifier("hybrid", train, val, test, pretrained=pretrained, pool=pool, **SMOKE)
    assert (logged.curve, logged.test_auc, logged.losses) == (plain.curve, plain.test_auc, plain.losses)  # no effect
    scalars = read_events(tmp_path).scalars
    assert set(scalars) == {"train/loss", "train/supervised", "train/ssl", "val/auc", "test/auc", "test/acc"}
    for term in ("loss", "supervised", "ssl"):
        assert scalars[f"train/{term}"] == [(r["step"], float(np.float32(r[term]))) for r in logged.losses]
    assert scalars["val/auc"] == [(step, float(np.float32(auc))) for step, auc in logged.curve]
    assert scalars["test/auc"] == [(logged.best_step, float(np.float32(logged.test_auc)))]
    monkeypatch.setattr(ds, "supervised_loss", lambda *args: torch.tensor(float("nan")))
    with pytest.raises(TrainingError, match="loss became nan in the scratch arm at step 1"):
        train_classifier("scratch", train, val, test, log_dir=tmp_path / "nan", **SMOKE)
    events = read_events(tmp_path / "nan")
    assert "train/ssl" not in events.scalars and events.scalars.get("train/loss") is None
    assert events.texts["stopped"][0][0] == 1 and "loss became nan" in events.texts["stopped"][0][1]
