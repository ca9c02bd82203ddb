"""Tests of medssl_lab.losses: Sinkhorn, SwAV, queue, NT-Xent, hybrid loss, diagnostics."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from medssl_lab.losses import (
    NTXentLoss,
    SwAVLoss,
    assignment_entropy,
    prototype_usage,
    sinkhorn,
)
from medssl_lab.models import Prototypes


def _cosine_scores(b: int, k: int, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(torch.randn(b, d, generator=g), dim=1)
    c = F.normalize(torch.randn(k, d, generator=g), dim=1)
    return z @ c.t()


def _reference_sinkhorn(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    """The reference algorithm (facebookresearch/swav), plain exp, in float64."""
    q = torch.exp(scores.double() / epsilon).t()  # K x B
    k, b = q.shape
    q /= q.sum()
    for _ in range(iterations):
        q /= q.sum(dim=1, keepdim=True)
        q /= k
        q /= q.sum(dim=0, keepdim=True)
        q /= b
    q *= b
    return q.t()


# --- Sinkhorn -------------------------------------------------------------------------


def test_sinkhorn_rows_sum_to_one_and_equipartition() -> None:
    b, k = 64, 8
    codes = sinkhorn(_cosine_scores(b, k), epsilon=0.05, iterations=3)
    assert codes.shape == (b, k) and codes.dtype == torch.float32
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(b))
    assert (codes >= 0).all()
    # Each prototype receives about B/K samples: 3 iterations (SwAV's default) bring the
    # prototype totals closer to B/K than the plain softmax; many iterations converge.
    plain = torch.softmax(_cosine_scores(b, k) / 0.05, dim=1)
    assert codes.sum(dim=0).std() < 0.6 * plain.sum(dim=0).std()
    torch.testing.assert_close(codes.sum(dim=0), torch.full((k,), b / k), rtol=0.35, atol=0.0)
    many = sinkhorn(_cosine_scores(b, k), epsilon=0.05, iterations=50)
    torch.testing.assert_close(many.sum(dim=0), torch.full((k,), b / k), rtol=1e-3, atol=0.0)


@pytest.mark.parametrize("iterations", [0, 1, 3, 10])
def test_sinkhorn_matches_reference(iterations: int) -> None:
    scores = _cosine_scores(32, 10, seed=1)
    codes = sinkhorn(scores, epsilon=0.05, iterations=iterations)
    expected = _reference_sinkhorn(scores, 0.05, iterations)
    if iterations == 0:  # the reference leaves samples unnormalised; ours is a softmax
        expected = torch.softmax(scores.double() / 0.05, dim=1)
    torch.testing.assert_close(codes.double(), expected, atol=1e-5, rtol=1e-4)


def test_sinkhorn_no_grad_and_shift_invariant() -> None:
    scores = _cosine_scores(16, 4).requires_grad_()
    codes = sinkhorn(scores)
    assert not codes.requires_grad
    torch.testing.assert_close(sinkhorn(scores.detach() + 3.0), codes)


def test_sinkhorn_float32_and_finite_under_bf16_autocast() -> None:
    scores = (_cosine_scores(32, 16) * 100.0).to(torch.bfloat16)  # exp(2000) would overflow
    with torch.autocast("cpu", dtype=torch.bfloat16):
        codes = sinkhorn(scores, epsilon=0.05)
    assert codes.dtype == torch.float32
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes.sum(dim=1), torch.ones(32))


def test_sinkhorn_bad_input() -> None:
    with pytest.raises(ValueError, match="batch, prototypes"):
        sinkhorn(torch.zeros(3))
    with pytest.raises(ValueError, match="epsilon"):
        sinkhorn(torch.zeros(3, 2), epsilon=0.0)


# --- SwAV loss --------------------------------------------------------------------------


def test_swav_loss_separable_vs_random_vs_collapsed() -> None:
    k = 8
    loss_fn = SwAVLoss(temperature=0.1)
    # Perfectly separable: sample i sits on prototype i in every view.
    onehot = torch.eye(k).repeat(2, 1)  # B = 16
    separable, codes = loss_fn.loss_and_codes([onehot, onehot], [onehot, onehot])
    assert separable < 0.01
    assert len(codes) == 2 and torch.equal(loss_fn([onehot, onehot], [onehot, onehot]), separable)
    assert (codes[0].argmax(dim=1) == torch.arange(k).repeat(2)).all()
    # Unrelated views: the predictions carry little about the codes.
    random_views = [_cosine_scores(16, k, seed=s) for s in range(4)]
    random_loss = loss_fn(random_views[:2], random_views[2:])
    assert random_loss > 0.5 * math.log(k)
    # Collapse: all samples alike -> uniform codes -> loss >= ln K.
    same = torch.ones(16, k) * 0.3
    collapsed = loss_fn([same, same], [same])
    assert collapsed >= math.log(k) - 1e-4
    assert separable < 0.01 * random_loss


def test_swav_loss_checks_inputs() -> None:
    with pytest.raises(ValueError, match="at least 2 views"):
        SwAVLoss()([torch.zeros(4, 3)])
    with pytest.raises(ValueError, match="crops_for_assign"):
        SwAVLoss(crops_for_assign=[2])([torch.zeros(4, 3)] * 2)
    with pytest.raises(ValueError, match="shape"):
        SwAVLoss()([torch.zeros(4, 3), torch.zeros(4, 5)])


def test_swav_loss_decreases_on_toy_problem() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 12)
    x = x + 3.0 * torch.eye(4).repeat(16, 3)[:, :12]  # 4 loose groups
    encoder = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16))
    protos = Prototypes(16, 8)
    loss_fn = SwAVLoss(temperature=0.1)
    opt = torch.optim.SGD([*encoder.parameters(), *protos.parameters()], lr=0.5, momentum=0.9)

    def step() -> torch.Tensor:
        views = [x + 0.3 * torch.randn_like(x) for _ in range(3)]
        scores = [protos(F.normalize(encoder(v), dim=1)) for v in views]
        return loss_fn(scores[:2], scores[2:])

    with torch.no_grad():
        start = sum(step().item() for _ in range(5)) / 5
    for _ in range(40):
        loss = step()
        opt.zero_grad()
        loss.backward()
        opt.step()
        protos.normalize_()
    with torch.no_grad():
        end = sum(step().item() for _ in range(5)) / 5
    assert end < start - 0.2, (start, end)


def test_ntxent_hand_computed() -> None:
    z0 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z1 = torch.tensor([[0.6, 0.8], [0.0, -2.0]])  # normalised: (0.6, 0.8), (0, -1)
    t = 0.5
    # Cosine similarities among a0=(1,0), a1=(0,1), b0=(.6,.8), b1=(0,-1).
    sims = {
        ("a0", "a1"): 0.0,
        ("a0", "b0"): 0.6,
        ("a0", "b1"): 0.0,
        ("a1", "b0"): 0.8,
        ("a1", "b1"): -1.0,
        ("b0", "b1"): -0.8,
    }
    sim = {**sims, **{(j, i): v for (i, j), v in sims.items()}}
    names = ["a0", "a1", "b0", "b1"]
    partner = {"a0": "b0", "a1": "b1", "b0": "a0", "b1": "a1"}
    total = 0.0
    for i in names:
        denom = sum(math.exp(sim[(i, j)] / t) for j in names if j != i)
        total += -math.log(math.exp(sim[(i, partner[i])] / t) / denom)
    expected = total / 4
    assert NTXentLoss(temperature=t)(z0, z1).item() == pytest.approx(expected, rel=1e-5)


def test_ntxent_prefers_aligned_views() -> None:
    z = torch.randn(16, 8)
    loss_fn = NTXentLoss(temperature=0.1)
    assert loss_fn(z, z + 0.01 * torch.randn_like(z)) < loss_fn(z, torch.randn(16, 8))


# --- hybrid loss ------------------------------------------------------------------------


def test_prototype_usage_and_entropy() -> None:
    k = 4
    onehot = torch.eye(k)[[0, 1, 1, 2]]
    assert prototype_usage(onehot) == pytest.approx(3 / 4)
    assert prototype_usage([onehot, torch.eye(k)[[3]]]) == 1.0
    per_sample, of_mean = assignment_entropy(torch.eye(k))
    assert per_sample == pytest.approx(0.0, abs=1e-6) and of_mean == pytest.approx(math.log(k))
    per_sample, of_mean = assignment_entropy(torch.eye(k)[[2, 2, 2]])
    assert per_sample == pytest.approx(0.0, abs=1e-6) and of_mean == pytest.approx(0.0, abs=1e-6)
    per_sample, _ = assignment_entropy(torch.full((5, k), 1 / k))
    assert per_sample == pytest.approx(math.log(k))
    with pytest.raises(ValueError, match="probabilities"):
        assignment_entropy(torch.randn(3, k) - 5)


def _full_problem() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return {
        "scores": torch.randn(16, 10, generator=g),
        "queue": torch.randn(2, 8, 10, generator=g),  # one queue of 8 per process
        "views": torch.randn(4, 16, 10, generator=g),  # SwAV: 2 global + 2 local views
        "z0": torch.randn(8, 6, generator=g),
        "z1": torch.randn(8, 6, generator=g),
    }


def _dist_worker(rank: int, world: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        p = _full_problem()
        mine = slice(rank * 16 // world, (rank + 1) * 16 // world)
        codes = sinkhorn(p["scores"][mine])
        codes_queue = sinkhorn(torch.cat([p["queue"][rank], p["scores"][mine]]))[-(16 // world) :]
        views = list(p["views"][:, mine])
        swav = SwAVLoss()(views[:2], views[2:])
        half = slice(rank * 8 // world, (rank + 1) * 8 // world)
        z0 = p["z0"][half].clone().requires_grad_()
        z1 = p["z1"][half].clone().requires_grad_()
        nt = NTXentLoss(temperature=0.5, gather_distributed=True)(z0, z1)
        nt.backward()
        torch.save(
            {"codes": codes, "codes_queue": codes_queue, "swav": swav.detach(), "nt": nt.detach(), "grad0": z0.grad},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_distributed_matches_single_process(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    world = 2
    mp.spawn(_dist_worker, args=(world, str(tmp_path / "store"), str(tmp_path)), nprocs=world, join=True)
    got = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(world)]
    p = _full_problem()

    torch.testing.assert_close(torch.cat([g["codes"] for g in got]), sinkhorn(p["scores"]))
    # With per-process queues, one process on all queues and batches gives the same codes.
    joint = torch.cat([p["queue"][0], p["scores"][:8], p["queue"][1], p["scores"][8:]])
    single = sinkhorn(joint)
    torch.testing.assert_close(torch.cat([g["codes_queue"] for g in got]), torch.cat([single[8:16], single[24:]]))
    # Losses: the mean over processes (what DDP optimises) equals the single-process loss.
    views = list(p["views"])
    torch.testing.assert_close(sum(g["swav"] for g in got) / world, SwAVLoss()(views[:2], views[2:]))
    z0 = p["z0"].clone().requires_grad_()
    nt = NTXentLoss(temperature=0.5)(z0, p["z1"])
    nt.backward()
    torch.testing.assert_close(sum(g["nt"] for g in got) / world, nt.detach())
    # Gathering keeps gradients: DDP's gradient average gives the single-process gradient.
    torch.testing.assert_close(torch.cat([g["grad0"] for g in got]) / world, z0.grad)
