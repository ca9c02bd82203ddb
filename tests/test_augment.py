"""Tests of the batched multi-crop augmentation, its declared ops and random stream, and the view plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math  # noqa: E402
from dataclasses import replace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from medssl_lab.augment import (  # noqa: E402
    OPS,
    MultiCropAugment,
    MultiCropConfig,
    affine_grid,
    affine_theta,
    affine_warp,
    denormalize,
    gaussian_blur,
    make_generator,
    normalize,
    to_float,
    uniform_columns,
)
from medssl_lab.data.synthetic import make_phantoms  # noqa: E402
from medssl_lab.evaluation.perturbations import prepare  # noqa: E402

#: View sets of the smoke profile and of the cpu profile at 28 px (PneumoniaMNIST's size).
VIEWS = {
    "smoke": MultiCropConfig(global_size=16, local_size=8, n_local=2),
    "cpu": MultiCropConfig(global_size=28, local_size=16, n_local=4),
}


@pytest.fixture(scope="module")
def phantoms() -> torch.Tensor:
    """Eight 28 px uint8 phantom slices, (B, H, W)."""
    return torch.from_numpy(make_phantoms(8, size=28, seed=0).images)


def asymmetric(size: int = 12) -> torch.Tensor:
    """A float (1, 1, H, W) image with no rotational or mirror symmetry (an L plus a ramp)."""
    img = torch.zeros(size, size)
    img[2:9, 3] = 1.0
    img[8, 3:7] = 0.6
    img += torch.linspace(0, 0.2, size).unsqueeze(0) * torch.linspace(0.5, 1.0, size).unsqueeze(1)
    return img.clamp(0, 1)[None, None]


# --------------------------------------------------------------------------- basics


def test_to_float_and_normalize(phantoms: torch.Tensor) -> None:
    x = to_float(phantoms)
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32
    assert torch.equal(to_float(phantoms[:, None]), x)
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert torch.allclose(denormalize(normalize(x)), x, atol=1e-6)


@pytest.mark.parametrize("bad", [torch.zeros(28, 28, dtype=torch.uint8), torch.zeros(2, 3, 28, 28, dtype=torch.uint8)])
def test_bad_shapes_are_refused(bad: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        to_float(bad)
    with pytest.raises(ValueError):
        MultiCropAugment()(bad)


def test_bad_dtype_is_refused() -> None:
    with pytest.raises(TypeError, match="uint8"):
        to_float(torch.zeros(2, 8, 8, dtype=torch.int32))


# --------------------------------------------------------------------------- config


def test_profile_views_and_validation() -> None:
    from medssl_lab.pretrain import PretrainConfig

    smoke, cpu, gpu = (PretrainConfig.for_profile(p).augment_config() for p in ("smoke", "cpu", "gpu"))
    assert (smoke.global_size, smoke.local_size, smoke.n_local) == (16, 8, 2)
    assert (cpu.n_global, cpu.global_size, cpu.n_local, cpu.local_size) == (2, 32, 4, 16)
    assert (gpu.global_size, gpu.local_size, gpu.n_local) == (64, 32, 6)
    assert PretrainConfig.for_profile("cpu", augment={"hflip_p": 0.5}).augment_config().hflip_p == 0.5
    assert cpu.hflip_p == 0.0 and cpu.vflip_p == 0.0  # laterality matters
    assert set(cpu.to_dict()) >= {"global_scale", "local_scale", "blur_sigma"}
    with pytest.raises(ValueError, match="global_scale"):
        MultiCropConfig(global_scale=(0.9, 0.4))
    with pytest.raises(ValueError, match="probability"):
        MultiCropConfig(blur_p=1.5)
    with pytest.raises(ValueError, match="n_global"):
        MultiCropConfig(n_global=0)


# --------------------------------------------------------------------------- multi-crop


def test_ops_declare_the_columns_of_the_historical_table() -> None:
    """Offsets follow from the declared widths and reproduce the table every committed result was drawn with."""
    assert {name: (s.start, s.stop) for name, s in uniform_columns().items()} == {
        "crop": (0, 4),
        "rotation": (4, 5),
        "zoom": (5, 6),
        "flip": (6, 8),
        "window": (8, 11),
        "intensity": (11, 15),
        "blur": (15, 17),
        "noise": (17, 19),
    }
    assert [op.name for op in OPS if op.apply is None] == ["crop", "rotation", "zoom", "flip"]
    off = MultiCropConfig.identity(8)
    assert [op.name for op in OPS if op.active(off)] == ["crop", "rotation", "zoom", "flip"]


def test_pinned_views_of_a_seed() -> None:
    """The random stream of the views: a few values of a seed's views, and where the generator is left after them.

    Committed results and the shipped encoder were trained on this stream; a change to an op's columns, their
    order or the draws of the noise moves these numbers (pinned before the ops were declared one by one).
    """
    cfg = MultiCropConfig(
        n_global=1, global_size=12, n_local=2, local_size=8, hflip_p=0.5, vflip_p=0.5, window_p=0.5, noise_p=1.0,
        blur_p=0.5, max_rotation_deg=30.0,
    )  # fmt: skip
    g = make_generator(0)
    views = MultiCropAugment(cfg)(torch.from_numpy(make_phantoms(2, size=28, seed=0).images), generator=g)
    assert [float(v.sum()) for v in views] == pytest.approx([-200.5614, -106.7465, -20.2655], abs=2e-3)
    assert [float(v[1, 0, 3, 5]) for v in views] == pytest.approx([0.87719, -0.55841, 0.42925], abs=1e-4)
    assert float(torch.rand(1, generator=g)) == 0.2612995505332947  # the same number of draws


@pytest.mark.parametrize("profile", ["smoke", "cpu"])
def test_views_shapes_dtypes_and_count(phantoms: torch.Tensor, profile: str) -> None:
    cfg = VIEWS[profile]
    aug = MultiCropAugment(cfg)
    views = aug(phantoms, generator=make_generator(0))
    assert len(views) == cfg.n_global + cfg.n_local == aug.n_views
    assert [v.shape[-1] for v in views] == aug.view_sizes
    for i, v in enumerate(views):
        size = cfg.global_size if i < cfg.n_global else cfg.local_size
        assert v.shape == (8, 1, size, size)
        assert v.dtype == torch.float32 and v.is_contiguous()
        assert torch.isfinite(v).all()
        assert float(v.min()) >= normalize(torch.tensor(0.0)) - 1e-5
        assert float(v.max()) <= normalize(torch.tensor(1.0)) + 1e-5
    # (B, 1, H, W) input and the global RNG also work.
    assert len(aug(phantoms[:, None])) == aug.n_views


def test_same_seed_same_views_different_seed_different(phantoms: torch.Tensor) -> None:
    aug = MultiCropAugment(VIEWS["cpu"])
    a = aug(phantoms, generator=make_generator(1))
    b = aug(phantoms, generator=make_generator(1))
    c = aug(phantoms, generator=make_generator(2))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert all(not torch.allclose(x, y) for x, y in zip(a, c))
    # Views of one image differ from each other, and samples get their own parameters.
    assert not torch.allclose(a[0], a[1])


def test_identity_config_reproduces_input(phantoms: torch.Tensor) -> None:
    aug = MultiCropAugment(MultiCropConfig.identity(28, n_global=2, n_local=1))
    views = aug(phantoms, generator=make_generator(0))
    expected = prepare(phantoms)
    for v in views:
        assert torch.allclose(v, expected, atol=1e-5)
    # Resizing views: equal to a plain bilinear resize up to interpolation differences.
    small = MultiCropAugment(MultiCropConfig.identity(14))(phantoms)[0]
    ref = prepare(phantoms, size=14)
    assert (denormalize(small) - denormalize(ref)).abs().mean() < 0.05


def test_hflip_matches_torch_flip() -> None:
    x = asymmetric()
    cfg = MultiCropConfig.identity(12)
    cfg.hflip_p = 1.0
    out = denormalize(MultiCropAugment(cfg)(x)[0])
    assert torch.allclose(out, torch.flip(x, dims=[-1]), atol=1e-5)


@pytest.mark.parametrize("k", [1, -1, 2])
def test_rotation_matches_rot90(k: int) -> None:
    """Positive angles turn the content counter-clockwise as displayed, like torch.rot90."""
    x = asymmetric()
    expected = torch.rot90(x, k, dims=(-2, -1))
    theta = affine_theta((12, 12), torch.tensor([[6.0, 6.0]]), angle_deg=torch.tensor([90.0 * k]))
    assert torch.allclose(affine_warp(x, theta, (12, 12)), expected, atol=1e-5)


def test_rotation_on_non_square_image_does_not_shear() -> None:
    """A centred disc stays a disc when a wide image is rotated (rotation acts in pixel units)."""
    h, w = 20, 40
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5 - h / 2, torch.arange(w) + 0.5 - w / 2, indexing="ij")
    disc = ((yy**2 + xx**2) <= 8.0**2).float()[None, None]
    theta = affine_theta((h, w), torch.tensor([[w / 2, h / 2]]), angle_deg=torch.tensor([45.0]))
    out = affine_warp(disc, theta, (h, w))
    assert (out - disc).abs().mean() < 0.02


@pytest.mark.parametrize("which", ["global", "local"])
def test_crop_area_fraction_is_respected(which: str) -> None:
    """Views of an x-ramp and a y-ramp with the same seed measure each crop's width and height."""
    size, b = 128, 64
    cfg = replace(
        VIEWS["cpu"],
        max_rotation_deg=0.0,
        scale_jitter=(1.0, 1.0),
        intensity_p=0.0,
        window_p=0.0,
        noise_p=0.0,
        blur_p=0.0,
    )
    aug = MultiCropAugment(cfg)
    ramp = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    xr = ramp.expand(b, size, size).contiguous()
    yr = ramp[:, None].expand(b, size, size).contiguous()
    idx = 0 if which == "global" else cfg.n_global
    out = cfg.global_size if which == "global" else cfg.local_size
    lo, hi = cfg.global_scale if which == "global" else cfg.local_scale
    vx = denormalize(aug(xr, generator=make_generator(3))[idx]).flatten(1)
    vy = denormalize(aug(yr, generator=make_generator(3))[idx]).flatten(1)
    # A ramp sampled at the view's outermost pixel centres spans frac * (1 - 1/out).
    fw = (vx.max(1).values - vx.min(1).values) / (1 - 1 / out)
    fh = (vy.max(1).values - vy.min(1).values) / (1 - 1 / out)
    area = fw * fh
    assert float(area.min()) >= lo - 0.01 and float(area.max()) <= hi + 0.01
    assert float(area.max() - area.min()) > 0.3 * (hi - lo)  # scales really vary
    ratio = fw / fh
    assert float(ratio.min()) >= 3 / 4 - 0.02 and float(ratio.max()) <= 4 / 3 + 0.02


def test_blur_matches_conv_reference_and_sigma_zero_is_identity() -> None:
    x = torch.rand(3, 1, 10, 13, generator=make_generator(0))
    sigma = torch.tensor([0.0, 0.8, 1.5])
    out = gaussian_blur(x, sigma)
    assert torch.allclose(out[0], x[0], atol=1e-6)
    r = math.ceil(3 * 1.5)
    for i in (1, 2):
        t = torch.arange(-r, r + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (t / sigma[i]) ** 2)
        k = k / k.sum()
        ref = F.pad(x[i : i + 1], (r, r, r, r), mode="replicate")
        ref = F.conv2d(F.conv2d(ref, k.view(1, 1, 1, -1)), k.view(1, 1, -1, 1))
        assert torch.allclose(out[i : i + 1], ref, atol=1e-5)


# --------------------------------------------------------------------------- plots


def test_plot_views_and_perturbations(phantoms: torch.Tensor) -> None:
    from matplotlib.figure import Figure

    from medssl_lab.viz import plot_perturbations, plot_views

    aug = MultiCropAugment(VIEWS["smoke"])
    fig = plot_views(phantoms[0].numpy(), aug, n_samples=2, seed=0)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * (1 + aug.n_views)
    levels = {"rotation": [10, 20, 30], "gamma": [0.5, 2.0]}
    fig2 = plot_perturbations(phantoms[0], levels)
    assert isinstance(fig2, Figure)
    assert len(fig2.axes) == 2 * 4
    import matplotlib.pyplot as plt

    plt.close(fig)
    plt.close(fig2)


def test_affine_grid_matches_torch() -> None:
    theta = torch.randn(5, 2, 3, generator=make_generator(0))
    for size in [(7, 7), (6, 11)]:
        ref = F.affine_grid(theta, [5, 1, *size], align_corners=False)
        assert torch.allclose(affine_grid(theta, size), ref, atol=1e-6)
