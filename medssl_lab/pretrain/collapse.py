"""When SwAV training looks collapsed, and what to try: the advice the training loop and notebook 01 give."""

from __future__ import annotations

import math


def collapse_hint(
    loss: float, n_prototypes: int, usage: float | None = None, *, loss_tol: float = 0.02, min_usage: float = 0.05
) -> str | None:
    """Say whether SwAV training looks collapsed, and what to try; None when it looks fine.

    Collapse shows as a swapped-prediction loss near ``ln K`` (predictions carry no
    information about the codes) or as few prototypes being anyone's favourite.

    Args:
        loss: the current (e.g. epoch-mean) SwAV loss.
        n_prototypes: ``K``.
        usage: :func:`prototype_usage` of raw scores, if known.
        loss_tol: relative distance to ``ln K`` counted as "near".
        min_usage: usage below which prototypes are considered unused.
    """
    ln_k = math.log(n_prototypes)
    problems = []
    if not math.isfinite(loss):
        problems.append(f"the loss is {loss}")
    elif loss >= (1.0 - loss_tol) * ln_k:
        problems.append(f"the loss {loss:.3f} is at ln K = {ln_k:.3f} (uniform predictions)")
    if usage is not None and usage < min_usage:
        problems.append(f"only {usage:.1%} of the {n_prototypes} prototypes are used")
    if not problems:
        return None
    return (
        "possible collapse: " + "; ".join(problems) + ". Try: freeze the prototypes for the first "
        "iterations, a lower learning rate or longer warm-up, fewer prototypes or a feature queue "
        "when the batch is smaller than K, a smaller Sinkhorn epsilon, and check that the "
        "augmentations are not so strong that the views share nothing."
    )
