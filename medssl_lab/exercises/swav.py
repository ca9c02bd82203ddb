"""Checks of notebook 01's exercises: Sinkhorn-Knopp codes and SwAV's swapped-prediction loss.

Both compare with the package's own implementation (:func:`medssl_lab.losses.sinkhorn` and
:class:`medssl_lab.losses.SwAVLoss`, the functions pretraining runs) on small seeded batches of
prototype scores: cosine similarities, as a network would give them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from medssl_lab.exercises.feedback import Case, CheckResult, Mistake, Problem, array_problem, run_check
from medssl_lab.losses import SwAVLoss, sinkhorn

#: SwAV's Sinkhorn regularisation, used for the codes of the loss's cases
SWAV_EPSILON = 0.05


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, dim=1)


def toy_scores(seed: int = 0, n: int = 32, k: int = 8, lean: float = 1.5) -> torch.Tensor:
    """Scores of notebook 01's toy batch: ``n`` unit embeddings that lean towards prototype 0, against the unit axes."""
    g = torch.Generator().manual_seed(seed)
    z = _unit(torch.randn(n, k, generator=g) + torch.tensor([lean] + [0.0] * (k - 1)))
    return z @ torch.eye(k)


def random_scores(seed: int, n: int, k: int, dim: int = 16) -> torch.Tensor:
    """Cosine similarities of ``n`` random unit embeddings with ``k`` random unit prototypes."""
    g = torch.Generator().manual_seed(seed)
    return _unit(torch.randn(n, dim, generator=g)) @ _unit(torch.randn(k, dim, generator=g)).T


def second_view(scores: torch.Tensor, seed: int, noise: float = 0.3) -> torch.Tensor:
    """Scores of a second view of the same samples: the first view's, slightly perturbed."""
    g = torch.Generator().manual_seed(seed)
    return (scores + noise * torch.randn(scores.shape, generator=g)).clamp(-1.0, 1.0)


# ---------------------------------------------------------------------------- Sinkhorn-Knopp codes


def _sinkhorn_cases() -> list[Case]:
    return [
        Case(
            "32 samples that lean to prototype 0 (the toy batch below), epsilon 0.05, 3 iterations",
            (toy_scores(), 0.05, 3),
        ),
        Case(
            "all-equal scores (6 samples x 4 prototypes), epsilon 0.05, 3 iterations",
            (torch.full((6, 4), 0.3), 0.05, 3),
        ),
        Case(
            "a seeded random batch (16 samples x 6 prototypes), epsilon 0.05, 3 iterations",
            (random_scores(1, 16, 6), 0.05, 3),
        ),
        Case("the toy batch with epsilon 0.5 and 5 iterations", (toy_scores(), 0.5, 5)),
    ]


def _softmax_only(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    return torch.softmax(scores.float() / epsilon, dim=1)


def _columns_last(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    q = torch.exp(scores.double() / epsilon)
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True)
        q = q / q.sum(dim=0, keepdim=True)
    return q.float()


def _one_less(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    return sinkhorn(scores, epsilon, max(iterations - 1, 1))


def _one_more(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    return sinkhorn(scores, epsilon, iterations + 1)


def _no_epsilon(scores: torch.Tensor, epsilon: float, iterations: int) -> torch.Tensor:
    return sinkhorn(scores, 1.0, iterations)


def _codes_problem(got: Any, want: torch.Tensor) -> Problem:
    if not isinstance(got, torch.Tensor):
        return f"the codes should be a torch tensor like the scores, but they are {type(got).__name__}"
    return array_problem(
        got, want, atol=1e-4, rtol=1e-4, what="the code", where=lambda i: f"sample {i[0]}, prototype {i[1]}"
    )


def check_sinkhorn_codes(student: Callable[[torch.Tensor, float, int], Any]) -> CheckResult:
    """``sinkhorn_codes(scores, epsilon, iterations)``: ``(B, K)`` scores to ``(B, K)`` codes by Sinkhorn-Knopp."""
    return run_check(
        "sinkhorn_codes",
        student,
        sinkhorn,
        _sinkhorn_cases(),
        _codes_problem,
        mistakes=[
            Mistake(
                "these are softmax(scores / epsilon) codes: the prototypes' columns were never normalised, "
                "so nothing spreads the batch over the prototypes",
                _softmax_only,
            ),
            Mistake(
                "the columns were normalised last: in each iteration normalise the prototypes' columns first, "
                "then each sample's row, so that every row sums to 1 at the end",
                _columns_last,
            ),
            Mistake("one iteration too few: repeat the two normalisations exactly `iterations` times", _one_less),
            Mistake("one iteration too many: repeat the two normalisations exactly `iterations` times", _one_more),
            Mistake("the scores were not divided by epsilon before the exponential", _no_epsilon),
        ],
        library_name="medssl_lab.losses.sinkhorn",
    )


# ---------------------------------------------------------------------------- swapped prediction


def library_swapped_loss(
    scores_1: torch.Tensor, scores_2: torch.Tensor, codes_1: torch.Tensor, codes_2: torch.Tensor, temperature: float
) -> torch.Tensor:
    """The package's SwAV loss of two views.

    ``codes_1`` and ``codes_2`` are not read: :class:`SwAVLoss` computes the codes itself, with
    ``sinkhorn(scores_i, SWAV_EPSILON, 3)``, so callers pass codes made that way (the cases and
    notebook 01 do) and both functions see the same targets.
    """
    return SwAVLoss(temperature, SWAV_EPSILON)([scores_1, scores_2])


def _loss_case(name: str, scores_1: torch.Tensor, scores_2: torch.Tensor, temperature: float = 0.1) -> Case:
    codes = [sinkhorn(s, SWAV_EPSILON, 3) for s in (scores_1, scores_2)]
    return Case(name, (scores_1, scores_2, *codes, temperature))


def _loss_cases() -> list[Case]:
    toy = toy_scores()
    small = random_scores(2, 4, 3)
    batch = random_scores(3, 16, 6)
    return [
        _loss_case("two views of the toy batch (32 samples x 8 prototypes), temperature 0.1", toy, second_view(toy, 4)),
        _loss_case(
            "4 samples x 3 prototypes, the two views alike, temperature 0.1", small, second_view(small, 5, 0.05)
        ),
        _loss_case("a seeded random batch (16 samples x 6 prototypes), temperature 0.1", batch, second_view(batch, 6)),
        _loss_case("the same random batch with temperature 0.5", batch, second_view(batch, 6), 0.5),
    ]


def _cross_entropy(codes: torch.Tensor, scores: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per sample: minus the sum over prototypes of code x log prediction."""
    return -(codes * F.log_softmax(scores / temperature, dim=1)).sum(dim=1)


def _not_swapped(s1: torch.Tensor, s2: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, t: float) -> torch.Tensor:
    return (_cross_entropy(c1, s1, t).mean() + _cross_entropy(c2, s2, t).mean()) / 2


def _summed_over_batch(
    s1: torch.Tensor, s2: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, t: float
) -> torch.Tensor:
    return (_cross_entropy(c2, s1, t).sum() + _cross_entropy(c1, s2, t).sum()) / 2


def _both_directions_added(
    s1: torch.Tensor, s2: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, t: float
) -> torch.Tensor:
    return _cross_entropy(c2, s1, t).mean() + _cross_entropy(c1, s2, t).mean()


def _no_temperature(s1: torch.Tensor, s2: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, t: float) -> torch.Tensor:
    return (_cross_entropy(c2, s1, 1.0).mean() + _cross_entropy(c1, s2, 1.0).mean()) / 2


def _sign_flipped(s1: torch.Tensor, s2: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, t: float) -> torch.Tensor:
    return -library_swapped_loss(s1, s2, c1, c2, t)


def _loss_problem(got: Any, want: torch.Tensor) -> Problem:
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.reshape(())
    return array_problem(got, want, atol=1e-4, rtol=1e-4, what="the loss")


def check_swapped_prediction_loss(student: Callable[..., Any]) -> CheckResult:
    """``swapped_prediction_loss(scores_1, scores_2, codes_1, codes_2, temperature)``: SwAV's loss of two views."""
    return run_check(
        "swapped_prediction_loss",
        student,
        library_swapped_loss,
        _loss_cases(),
        _loss_problem,
        mistakes=[
            Mistake(
                "each view predicts its own codes: the prediction from scores_1 must be compared with codes_2, "
                "and the prediction from scores_2 with codes_1",
                _not_swapped,
            ),
            Mistake(
                "the cross-entropies are summed over the batch: take their mean over the samples", _summed_over_batch
            ),
            Mistake("the two directions are added: average them (divide by 2)", _both_directions_added),
            Mistake("the scores were not divided by the temperature before the softmax", _no_temperature),
            Mistake(
                "the sign is flipped: a cross-entropy is minus the sum of code times log prediction, "
                "so the loss is positive",
                _sign_flipped,
            ),
        ],
        library_name="medssl_lab.losses.SwAVLoss",
    )
