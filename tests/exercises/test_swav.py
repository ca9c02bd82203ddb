"""Notebook 01's checks on seeded prototype scores: the solutions pass, the usual mistakes are named."""

from __future__ import annotations

import pytest
import torch

from medssl_lab.exercises import check_sinkhorn_codes, check_swapped_prediction_loss
from medssl_lab.losses import sinkhorn


def sinkhorn_codes(scores, epsilon, iterations):
    q = torch.exp(scores / epsilon)
    for _ in range(iterations):
        q = q / q.sum(dim=0, keepdim=True)
        q = q / q.sum(dim=1, keepdim=True)
    return q


def sinkhorn_codes_log(scores, epsilon, iterations):
    log_q = scores / epsilon
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True)
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True)
    return log_q.exp()


def cross_entropy(codes, scores, temperature):
    return -(codes * torch.log_softmax(scores / temperature, dim=1)).sum(dim=1)


def swapped_prediction_loss(scores_1, scores_2, codes_1, codes_2, temperature):
    return (
        cross_entropy(codes_2, scores_1, temperature).mean() + cross_entropy(codes_1, scores_2, temperature).mean()
    ) / 2


def columns_last(scores, epsilon, iterations):
    q = torch.exp(scores / epsilon)
    for _ in range(iterations):
        q = q / q.sum(dim=1, keepdim=True)
        q = q / q.sum(dim=0, keepdim=True)
    return q


def stub(*args):
    raise NotImplementedError("not solved yet")


@pytest.mark.parametrize("student", [sinkhorn_codes, sinkhorn_codes_log])
def test_sinkhorn_solutions_pass_in_either_domain(student, capsys: pytest.CaptureFixture[str]) -> None:
    result = check_sinkhorn_codes(student)
    assert result.points(2) == 2 and result.function is student
    assert capsys.readouterr().out.startswith("✓ sinkhorn_codes is correct on all 4 cases")


def test_swapped_loss_solution_passes(capsys: pytest.CaptureFixture[str]) -> None:
    result = check_swapped_prediction_loss(swapped_prediction_loss)
    assert result.points(2) == 2
    assert capsys.readouterr().out.startswith("✓ swapped_prediction_loss is correct on all 4 cases")


def test_a_float_loss_is_accepted() -> None:
    assert check_swapped_prediction_loss(lambda *args: float(swapped_prediction_loss(*args)))


@pytest.mark.parametrize(
    ("check", "name"),
    [(check_sinkhorn_codes, "sinkhorn_codes"), (check_swapped_prediction_loss, "swapped_prediction_loss")],
)
def test_a_stub_is_not_solved_yet_and_the_library_goes_on(check, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = check(stub)
    assert not result.solved and result.points(2) == 0 and result.function is not stub
    assert f"… {name} is not solved yet" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda s, eps, n: torch.softmax(s / eps, dim=1), "columns were never normalised"),
        (columns_last, "the columns were normalised last"),
        (lambda s, eps, n: sinkhorn_codes(s, eps, n - 1), "one iteration too few"),
        (lambda s, eps, n: sinkhorn_codes(s, eps, n + 1), "one iteration too many"),
        (lambda s, eps, n: sinkhorn_codes(s, 1.0, n), "not divided by epsilon"),
    ],
)
def test_sinkhorn_mistakes_are_named(student, cause: str, capsys: pytest.CaptureFixture[str]) -> None:
    result = check_sinkhorn_codes(student)
    assert not result and result.solved and cause in result.message
    assert "Likely cause" in capsys.readouterr().out


def sum_over_batch(s1, s2, c1, c2, t):
    return (cross_entropy(c2, s1, t).sum() + cross_entropy(c1, s2, t).sum()) / 2


@pytest.mark.parametrize(
    ("student", "cause"),
    [
        (lambda s1, s2, c1, c2, t: swapped_prediction_loss(s1, s2, c2, c1, t), "each view predicts its own codes"),
        (sum_over_batch, "summed over the batch"),
        (lambda s1, s2, c1, c2, t: 2 * swapped_prediction_loss(s1, s2, c1, c2, t), "the two directions are added"),
        (lambda s1, s2, c1, c2, t: swapped_prediction_loss(s1, s2, c1, c2, 1.0), "not divided by the temperature"),
        (lambda *args: -swapped_prediction_loss(*args), "the sign is flipped"),
    ],
)
def test_swapped_loss_mistakes_are_named(student, cause: str) -> None:
    result = check_swapped_prediction_loss(student)
    assert not result and cause in result.message


@pytest.mark.parametrize("check", [check_sinkhorn_codes, check_swapped_prediction_loss])
def test_a_function_that_raises_is_reported_without_crashing(check) -> None:
    def broken(scores, *args):
        return scores[100]

    result = check(broken)
    assert not result and "raised IndexError" in result.message and "case '" in result.message


def test_codes_that_are_not_a_tensor_are_told_so() -> None:
    result = check_sinkhorn_codes(lambda s, eps, n: sinkhorn_codes(s, eps, n).numpy())
    assert "should be a torch tensor" in result.message


def test_the_feedback_gives_no_formula_away() -> None:
    for result in (
        check_sinkhorn_codes(lambda s, eps, n: torch.zeros_like(s)),
        check_swapped_prediction_loss(lambda *args: torch.tensor(0.0)),
    ):
        assert "expected" in result.message
        for fragment in ("logsumexp", "log_softmax", "exp(", ".sum(", "mean("):
            assert fragment not in result.message


def test_the_toy_batch_case_leans_on_prototype_0_like_the_notebook() -> None:
    from medssl_lab.exercises.swav import toy_scores

    scores = toy_scores()
    assert scores.shape == (32, 8) and torch.softmax(scores / 0.05, dim=1).sum(0).argmax() == 0
    assert torch.allclose(sinkhorn(scores, 0.05, 50).sum(0), torch.full((8,), 4.0), atol=0.2)
