"""The SSL objective: SwAV or SimCLR loss, queue, prototype freezing and normalisation in one place."""

from __future__ import annotations

import math

import torch

from medssl_lab.augment import MultiCropAugment, make_generator
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.pretrain import PretrainConfig, build_model, make_objective
from medssl_lab.pretrain.simclr import SIMCLR_TEMPERATURE, SimCLRObjective
from medssl_lab.pretrain.swav import SwAVObjective


def views_of(config: PretrainConfig, n: int = 16) -> list[torch.Tensor]:
    images = torch.from_numpy(make_phantoms(n, 32, seed=0).images)
    return MultiCropAugment(config.augment_config())(images, generator=make_generator(0))


def test_swav_loss_diagnostics_freezing_and_normalising() -> None:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke", freeze_prototypes_steps=2)
    model = build_model(config)
    objective = make_objective(model, config)
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
    objective = make_objective(model, config)
    assert objective.queue is not None
    objective(views_of(config), epoch=0)
    assert objective.queue.filled == 0  # not used before its start epoch
    objective(views_of(config), epoch=1)
    objective(views_of(config), epoch=1)
    assert objective.queue.full and objective.state_dict()
    continued = make_objective(model, config, continued=True)
    assert continued.queue is None and continued.freeze_steps == 0 and continued.state_dict() == {}


def test_each_method_is_its_own_objective() -> None:
    swav, simclr = (PretrainConfig.for_profile("smoke", method=m) for m in ("swav", "simclr"))
    assert isinstance(make_objective(build_model(swav), swav), SwAVObjective)
    assert isinstance(make_objective(build_model(simclr), simclr), SimCLRObjective)
    assert build_model(simclr).prototypes is None  # SimCLR trains no prototypes, so it builds none


def nt_xent_by_hand(z0: torch.Tensor, z1: torch.Tensor, temperature: float) -> float:
    """NT-Xent written out pair by pair (Chen et al. 2020, eq. 1), in Python floats: each of the 2N unit embeddings
    must pick its partner among the other 2N - 1."""
    z = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in torch.cat([z0, z1]).double().tolist()]
    n = len(z0)
    total = 0.0
    for i, zi in enumerate(z):
        sims = [sum(a * b for a, b in zip(zi, zk)) / temperature for zk in z]
        partner = (i + n) % (2 * n)
        total -= sims[partner] - math.log(sum(math.exp(s) for k, s in enumerate(sims) if k != i))
    return total / (2 * n)


def test_simclr_is_nt_xent_between_the_first_two_views_and_logs_the_spread() -> None:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke", method="simclr")
    model = build_model(config).eval()
    objective = make_objective(model, config)
    views = [v.requires_grad_() for v in views_of(config)]
    assert len(views) == 4  # 2 global + 2 local views
    loss, metrics = objective(views, diagnose=True)
    with torch.no_grad():
        embeddings, scores = model(views)
    assert scores == []
    expected = nt_xent_by_hand(embeddings[0], embeddings[1], SIMCLR_TEMPERATURE)
    assert math.isclose(float(loss.detach()), expected, rel_tol=1e-5)
    # only views 0 and 1 enter: other local views, or none, give the same loss; another view 1 does not
    noise = [*views[:2], *(torch.rand_like(v) for v in views[2:])]
    assert torch.equal(objective(noise)[0], loss) and torch.equal(objective(views[:2])[0], loss)
    assert not torch.allclose(objective([views[0], views[1].flip(-1), *views[2:]])[0], loss)
    loss.backward()
    assert views[0].grad.abs().sum() > 0 and views[1].grad.abs().sum() > 0
    assert all(v.grad is None or not v.grad.any() for v in views[2:])
    # the spread it logs is the mean per-dimension std of view 0's embeddings
    assert set(metrics) == {"embedding_std"}
    assert math.isclose(metrics["embedding_std"], float(embeddings[0].std(dim=0).mean()), rel_tol=1e-5)
    assert make_objective(model, config).collapse_hint(math.log(16), metrics) is None  # no ln K to compare with


def test_simclr_loss_ignores_the_local_views_in_training_mode_too() -> None:
    torch.manual_seed(0)
    config = PretrainConfig.for_profile("smoke", method="simclr")
    objective = make_objective(build_model(config).train(), config)
    views = views_of(config)
    torch.testing.assert_close(objective(views)[0], objective(views[:2])[0])
