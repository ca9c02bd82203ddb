"""The online kNN monitor of pretraining: how well the backbone, as it is at that step, sorts labelled pool images.

Every ``knn_every`` steps the trainer asks :class:`KnnMonitor` for the weighted kNN accuracy (the vote of the kNN
probe, :func:`medssl_lab.knn.knn_vote`) of the backbone's features on a small held-in subset of the pool: half of it
the bank, half the queries. The labels are the pool's tags, which pretraining never reads: ``build_pool`` tags every
image ``"<source>/<class>"`` (the default pool: MedNIST's six classes and PneumoniaMNIST's normal and pneumonia, eight
in all), a pool store its modality. The subset takes as many images of each tag as it can, and the accuracy is the
mean over tags of the share of their queries voted right (balanced accuracy): chance is one over the number of tags.

Nothing here touches a training random stream: the subset is drawn once, with its own numpy generator, and scoring
is a forward pass in eval mode without gradients (batch-norm statistics untouched). A run with the monitor and one
without end with the same weights (``tests/pretrain/test_monitor.py``).
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from medssl_lab.augment import normalize, to_float
from medssl_lab.data.types import ImageSet
from medssl_lab.knn import knn_vote
from medssl_lab.training import autocast

#: Added to the run's seed for the monitor's own numpy generator (no training stream is a numpy one).
MONITOR_STREAM = 104_729
#: Neighbours and vote sharpness: those of the kNN probe.
K, TEMPERATURE = 20, 0.07


def monitor_split(tags: np.ndarray, n_images: int, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Bank and query indices into ``tags``: of every tag with at least 2 images, ``n_images`` over the number of
    such tags (all of a tag's images when it has fewer), half each, drawn with the monitor's own generator.

    None when fewer than two tags have 2 images: there is nothing to tell apart.
    """
    values, counts = np.unique(tags, return_counts=True)
    kept = values[counts >= 2]
    if len(kept) < 2:
        return None
    per_tag = max(2, n_images // len(kept))
    rng = np.random.default_rng((seed, MONITOR_STREAM))
    bank, queries = [], []
    for tag in kept:
        members = np.flatnonzero(tags == tag)
        drawn = rng.choice(members, size=min(per_tag, len(members)), replace=False)
        bank.append(drawn[: len(drawn) // 2])
        queries.append(drawn[len(drawn) // 2 :])
    return np.sort(np.concatenate(bank)), np.sort(np.concatenate(queries))


class KnnMonitor:
    """The kNN accuracy of a model's backbone features on a fixed labelled subset of the pool.

    Build it with :meth:`from_pool`; call it with the model (a :class:`~medssl_lab.models.SwAVModel`, or anything
    with ``encode``). ``seconds`` and ``calls`` say what it cost.
    """

    def __init__(
        self,
        images: torch.Tensor,
        tags: np.ndarray,
        bank: np.ndarray,
        queries: np.ndarray,
        amp: torch.dtype | None = None,
        batch_size: int = 256,
    ) -> None:
        self.images = images  # (N, H, W) uint8 on the training device: bank rows, then query rows
        classes, codes = np.unique(tags, return_inverse=True)
        self.n_tags = len(classes)
        self.bank, self.queries = torch.as_tensor(bank), torch.as_tensor(queries)
        self.votes = F.one_hot(torch.as_tensor(codes[bank]), self.n_tags).float()
        self.query_tags = torch.as_tensor(codes[queries])
        self.amp, self.batch_size = amp, batch_size
        self.seconds, self.calls = 0.0, 0

    @classmethod
    def from_pool(
        cls, pool: ImageSet, n_images: int, seed: int, device: torch.device, amp: torch.dtype | None = None
    ) -> KnnMonitor | None:
        """The monitor of ``pool`` (its tags: ``labels[:, 0]``), its images on ``device``; None when the pool has
        fewer than two tags with 2 images each."""
        tags = np.asarray(pool.labels[:, 0])
        split = monitor_split(tags, n_images, seed)
        if split is None:
            return None
        index = np.concatenate(split)
        order = np.argsort(index, kind="stable")  # read in stored order (a store reads its shards once)
        images = np.empty((len(index), *pool.images.shape[1:]), dtype=np.uint8)
        images[order] = np.asarray(pool.images[index[order]])
        n_bank = len(split[0])
        tensor = torch.from_numpy(images).to(device)
        return cls(tensor, tags[index], np.arange(n_bank), np.arange(n_bank, len(index)), amp)

    def __call__(self, model: nn.Module) -> float:
        """The mean over tags of the share of their queries whose kNN vote is right."""
        start = time.perf_counter()
        modes = [m.training for m in model.modules()]
        model.eval()
        try:
            encode = getattr(model, "encode", model)
            with torch.no_grad(), autocast(self.amp, self.images.device):
                batches = self.images.split(self.batch_size)
                features = torch.cat([encode(normalize(to_float(batch))).float() for batch in batches])
        finally:
            for module, mode in zip(model.modules(), modes):
                module.training = mode
        features = features.cpu()
        scores = knn_vote(features[self.bank], self.votes, features[self.queries], K, TEMPERATURE)
        right = (scores.argmax(1) == self.query_tags).float()
        per_tag = torch.zeros(self.n_tags).index_add_(0, self.query_tags, right)
        counts = torch.bincount(self.query_tags, minlength=self.n_tags).clamp_min(1)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return float((per_tag / counts).mean())
