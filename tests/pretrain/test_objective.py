"""The SSL objective: SwAV or SimCLR loss, queue, prototype freezing and normalisation in one place."""

from __future__ import annotations

import math

import torch

from medssl_lab.augment import MultiCropAugment, make_generator
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.pretrain import PretrainConfig, SSLObjective, build_model


def views_of(config: PretrainConfig, n: int = 16) -> list[torch.Tensor]:
    images = torch.from_numpy(make_phantoms(n, 32, seed=0).images)
    return MultiCropAugment(config.augment_config())(images, generator=make_generator(0))


def test_swav_loss_diagnostics_freezing_and_normalising() -> None:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke", freeze_prototypes_steps=2)
    model = build_model(config)
    objective = SSLObjective(model, config)
    loss, metrics = objective(views_of(config), diagnose=True)
    assert 0 < float(loss.detach()) < 2 * math.log(config.n_prototypes)
    assert set(metrics) == {"prototype_usage", "entropy_sample", "entropy_mean"}
    assert objective(views_of(config))[1] == {}  # diagnostics only when asked
    loss.backward()
    objective.before_optimizer_step(step=1)
    assert model.prototypes.weight.grad is None  # frozen during the first steps
    loss, _ = objective(views_of(config))
    loss.backward()
    objective.before_optimizer_step(step=2)
    assert model.prototypes.weight.grad is not None
    with torch.no_grad():
        model.prototypes.weight.mul_(3.0)
    objective.after_optimizer_step()
    assert torch.allclose(model.prototypes.weight.norm(dim=1), torch.ones(config.n_prototypes))


def test_queue_fills_from_its_start_epoch_and_a_continued_objective_has_none() -> None:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke", queue_length=32, queue_start_epoch=1, freeze_prototypes_steps=5)
    model = build_model(config)
    objective = SSLObjective(model, config)
    assert objective.queue is not None
    objective(views_of(config), epoch=0)
    assert objective.queue.filled == 0  # not used before its start epoch
    objective(views_of(config), epoch=1)
    objective(views_of(config), epoch=1)
    assert objective.queue.full and objective.state_dict()
    continued = SSLObjective(model, config, continued=True)
    assert continued.queue is None and continued.freeze_steps == 0 and continued.state_dict() == {}


def test_simclr_uses_the_first_two_views() -> None:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke", method="simclr", n_local=0)
    loss, _ = SSLObjective(build_model(config), config)(views_of(config))
    assert math.isfinite(float(loss.detach())) and float(loss.detach()) > 0
