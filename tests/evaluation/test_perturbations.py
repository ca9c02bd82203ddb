"""The evaluation input (prepare) and the graded robustness perturbations."""

from __future__ import annotations

import pytest
import torch

from medssl_lab.augment import MEAN, STD, affine_theta, affine_warp, make_generator, to_float
from medssl_lab.data.synthetic import make_phantoms
from medssl_lab.evaluation.perturbations import (
    PERTURBATION_IDENTITY,
    PERTURBATION_LEVELS,
    PERTURBATIONS,
    iter_perturbations,
    perturb,
    prepare,
)


@pytest.fixture(scope="module")
def phantoms() -> torch.Tensor:
    """Eight 28 px uint8 phantom slices, (B, H, W)."""
    return torch.from_numpy(make_phantoms(8, size=28, seed=0).images)


def test_prepare_normalises_and_resizes(phantoms: torch.Tensor) -> None:
    x = to_float(phantoms)
    assert torch.allclose(prepare(phantoms), (x - MEAN) / STD)
    extremes = prepare(torch.tensor([[[0, 255]]], dtype=torch.uint8))
    assert extremes.flatten().tolist() == pytest.approx([-MEAN / STD, (1 - MEAN) / STD])
    assert prepare(phantoms, size=16).shape == (8, 1, 16, 16)
    assert prepare(phantoms, size=64).shape == (8, 1, 64, 64)
    with pytest.raises(ValueError, match="size"):
        prepare(phantoms, size=0)


def test_perturbation_tables_are_consistent() -> None:
    assert set(PERTURBATIONS) == set(PERTURBATION_LEVELS) == set(PERTURBATION_IDENTITY)
    assert PERTURBATION_LEVELS["rotation"] == [10.0, 20.0, 30.0]
    assert min(PERTURBATION_LEVELS["scaling"]) == 0.8 and max(PERTURBATION_LEVELS["scaling"]) == 1.2
    pairs = list(iter_perturbations())
    assert len(pairs) == sum(len(v) for v in PERTURBATION_LEVELS.values())
    with pytest.raises(ValueError, match="unknown perturbation"):
        perturb(torch.zeros(1, 4, 4), "elastic", 1.0)
    with pytest.raises(ValueError, match="unknown perturbation"):
        list(iter_perturbations({"elastic": [1.0]}))


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_identity_severity_leaves_image_unchanged(phantoms: torch.Tensor, kind: str) -> None:
    out = perturb(phantoms, kind, PERTURBATION_IDENTITY[kind])
    assert torch.equal(out, to_float(phantoms))


@pytest.mark.parametrize("kind", PERTURBATIONS)
def test_effect_grows_with_severity(phantoms: torch.Tensor, kind: str) -> None:
    clean = to_float(phantoms)
    ident = PERTURBATION_IDENTITY[kind]
    for side in (-1, 1):
        sevs = sorted((s for s in PERTURBATION_LEVELS[kind] if (s - ident) * side > 0), key=lambda s: abs(s - ident))
        mses = [float(((perturb(phantoms, kind, s) - clean) ** 2).mean()) for s in sevs]
        assert all(m > 0 for m in mses)
        assert mses == sorted(mses), (kind, sevs, mses)


def test_intensity_and_gamma_values_on_constant_images() -> None:
    const = torch.full((2, 6, 6), 0.5)
    assert torch.allclose(perturb(const, "intensity_scale", 1.2), torch.full((2, 1, 6, 6), 0.6))
    assert torch.allclose(perturb(const, "intensity_shift", -0.1), torch.full((2, 1, 6, 6), 0.4))
    assert torch.allclose(perturb(const, "gamma", 2.0), torch.full((2, 1, 6, 6), 0.25))
    assert torch.allclose(perturb(torch.full((1, 4, 4), 0.9), "intensity_shift", 0.2), torch.ones(1, 1, 4, 4))
    assert torch.allclose(perturb(const, "blur", 1.0), const[:, None], atol=1e-6)


def test_noise_is_seeded_and_has_the_right_std() -> None:
    x = torch.full((4, 32, 32), 0.5)
    a = perturb(x, "gaussian_noise", 0.05, seed=0)
    assert torch.equal(a, perturb(x, "gaussian_noise", 0.05, seed=0))
    assert not torch.equal(a, perturb(x, "gaussian_noise", 0.05, seed=1))
    assert float((a - 0.5).std()) == pytest.approx(0.05, rel=0.1)


def test_scaling_shrinks_and_enlarges() -> None:
    ones = torch.ones(1, 40, 40)
    assert float(perturb(ones, "scaling", 0.5).mean()) == pytest.approx(0.25, abs=0.03)
    assert torch.allclose(perturb(ones, "scaling", 1.2), torch.ones(1, 1, 40, 40))


@pytest.mark.parametrize("k", [1, -1, 2])
def test_rotation_matches_rot90_and_the_augmentation_warp(k: int) -> None:
    """Positive angles turn the content counter-clockwise as displayed, like torch.rot90 and affine_theta."""
    x = torch.rand(1, 1, 12, 12, generator=make_generator(0))
    expected = torch.rot90(x, k, dims=(-2, -1))
    assert torch.allclose(perturb(x, "rotation", 90.0 * k), expected, atol=1e-5)
    theta = affine_theta((12, 12), torch.tensor([[6.0, 6.0]]), angle_deg=torch.tensor([90.0 * k]))
    assert torch.equal(perturb(x, "rotation", 90.0 * k), affine_warp(x, theta, (12, 12)).clamp(0, 1))
