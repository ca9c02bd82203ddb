"""SwAV's feature queue: first in, first out, used once full, and saved with its fill level."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medssl_lab.losses import SwAVLoss
from medssl_lab.models import Prototypes
from medssl_lab.pretrain.queue import FeatureQueue


def test_feature_queue_and_loss_with_queue() -> None:
    queue = FeatureQueue(length=12, dim=4, n_views=2, start_epoch=3)
    assert not queue.enabled(2) and queue.enabled(3)
    protos = Prototypes(4, 5)
    assert queue.scores(protos) is None  # empty
    batches = [[F.normalize(torch.randn(4, 4), dim=1) for _ in range(2)] for _ in range(4)]
    for b in batches[:3]:
        queue.push(b)
    assert queue.full
    queue.push(batches[3])
    # Newest first; the oldest batch has dropped out.
    torch.testing.assert_close(queue.embeddings[0, :4], batches[3][0])
    torch.testing.assert_close(queue.embeddings[1, 8:], batches[1][1])
    qs = queue.scores(protos)
    assert qs is not None and len(qs) == 2 and qs[0].shape == (12, 5)
    # State (including how full it is) survives a state_dict round trip.
    other = FeatureQueue(length=12, dim=4, n_views=2)
    other.load_state_dict(queue.state_dict())
    assert other.full and other.start_epoch == 3
    torch.testing.assert_close(other.embeddings, queue.embeddings)
    # The queue changes the codes of the batch, but the codes keep the batch's size.
    scores = [protos(F.normalize(torch.randn(4, 4), dim=1)) for _ in range(3)]
    loss_fn = SwAVLoss()
    with_queue = loss_fn(scores[:2], scores[2:], qs)
    assert loss_fn.loss_and_codes(scores[:2], scores[2:], qs)[1][0].shape == (4, 5)
    without = loss_fn(scores[:2], scores[2:])
    assert torch.isfinite(with_queue) and not torch.allclose(with_queue, without)
    with pytest.raises(ValueError, match="one per assigned view"):
        loss_fn(scores[:2], scores[2:], qs[:1])
