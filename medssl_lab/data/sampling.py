"""Which images a training step sees: index batches and balancing weights.

Apart from the pool, so that every training loop can draw batches without importing the data sources (DICOM,
image codecs, stores).

Up to :data:`LARGE_POOL` images an epoch's order is a stored permutation (``torch.randperm``, 8 bytes per image),
or ``n`` weighted draws (``torch.multinomial``, whose limit that size is) when balancing; every committed result
and the shipped encoder were made that way. Above it nothing per image is stored: :class:`ComputedBatches` computes
batch ``i`` of an epoch when it is asked for, from a seeded bijection of ``[0, n)`` (a Feistel network), or, when
balancing, from seeded draws of a tag and of one of its images (a table of tag counts per block of 512 images).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import torch

#: images above which an epoch's order is computed batch by batch instead of stored (torch.multinomial's limit)
LARGE_POOL = 1 << 24
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))
BLOCK = 512  # rows per block of the balanced sampler's count table (4 bytes per block and tag)


def balanced_weights(tags: np.ndarray) -> np.ndarray:
    """Per-image sampling weights that give every tag (e.g. modality) the same total weight."""
    inverse = getattr(tags, "codes", None)  # tags held as integer codes (a large store's): no pass over strings
    if inverse is None:
        codes: dict[object, int] = {}  # a few distinct tags over up to millions of images: no sort, no string copies
        inverse = np.fromiter((codes.setdefault(t, len(codes)) for t in tags), np.int64, len(tags))
    weights = 1.0 / np.bincount(inverse)[inverse]
    return weights / weights.sum()


def epoch_batches(
    n: int, batch_size: int, generator: torch.Generator, weights: np.ndarray | None = None, drop_last: bool = True
) -> Iterator[torch.Tensor]:
    """Index batches for one epoch: a permutation, or ``n`` weighted draws with replacement when balancing.

    Above :data:`LARGE_POOL` images without weights, the permutation is computed batch by batch
    (:class:`ComputedBatches`, keyed by one draw from ``generator``) instead of stored.
    """
    if n > LARGE_POOL and weights is None:
        key = int(torch.randint(0, 2**62, (1,), generator=generator))
        yield from ComputedBatches(n, batch_size, key, drop_last=drop_last)
        return
    if weights is None:
        order = torch.randperm(n, generator=generator)
    else:
        order = torch.multinomial(
            torch.as_tensor(weights, dtype=torch.float64), n, replacement=True, generator=generator
        )
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


def smallest_int(largest: int) -> type:
    """int32 when it holds ``largest``, else int64."""
    return np.int32 if largest < 2**31 else np.int64


def mix64(x: np.ndarray) -> np.ndarray:
    """A bijective 64-bit mix of each value (SplitMix64's finaliser): neighbouring inputs give unrelated outputs."""
    x = np.asarray(x, np.uint64)
    x = (x ^ (x >> np.uint64(30))) * _MIX[0]
    x = (x ^ (x >> np.uint64(27))) * _MIX[1]
    return x ^ (x >> np.uint64(31))


def _hash(key: int, values: np.ndarray, lane: int) -> np.ndarray:
    """Seeded pseudo-random 64-bit numbers, one per value: a counter-based generator (any one computed alone).

    Arrays throughout: numpy wraps array arithmetic modulo 2**64 silently, as these hashes want."""
    seeds = mix64(np.array([key % 2**64, lane + 1], np.uint64))
    x = (np.asarray(values, np.uint64) + seeds[1:]) * _GOLDEN
    return mix64(mix64(x ^ seeds[:1]))


class Permutation:
    """A seeded bijection of ``[0, n)`` computed value by value: nothing stored per value.

    A four-round Feistel network on the smallest number of bits that holds ``n`` (a domain under ``2 n``; the two
    halves differ by a bit when that number is odd, and swap sizes each round), its round function :func:`mix64`
    keyed by ``key``; values that land outside ``[0, n)`` are sent through again (cycle walking) until they land
    inside, which keeps it a bijection of ``[0, n)``.
    """

    ROUNDS = 4

    def __init__(self, n: int, key: int) -> None:
        if n < 1:
            raise ValueError(f"a permutation of {n} values: want n >= 1")
        self.n, self.key = int(n), int(key)
        bits = max(2, (int(n) - 1).bit_length())
        self.high, self.low = bits // 2, bits - bits // 2  # bits of the left and the right half
        self.round_keys = [
            int(k) for k in mix64(np.arange(self.ROUNDS, dtype=np.uint64) ^ mix64(np.array([key % 2**64])))
        ]

    def _once(self, x: np.ndarray) -> np.ndarray:
        left_bits, right_bits = self.high, self.low
        left, right = x >> np.uint64(right_bits), x & np.uint64((1 << right_bits) - 1)
        for k in self.round_keys:  # (L, R) -> (R, L ^ F(R)): the halves trade places, and sizes
            mixed = left ^ (_hash(k, right, 0) & np.uint64((1 << left_bits) - 1))
            left, right, left_bits, right_bits = right, mixed, right_bits, left_bits
        return (left << np.uint64(right_bits)) | right

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The images at places ``values`` (integers in ``[0, n)``) of the permuted order, as int64."""
        y = self._once(np.asarray(values, np.uint64))
        outside = np.flatnonzero(y >= np.uint64(self.n))
        while outside.size:
            y[outside] = self._once(y[outside])
            outside = outside[y[outside] >= np.uint64(self.n)]
        return y.astype(np.int64)


class TagDraws:
    """Balanced draws from ``n`` images tagged by integer ``codes``: a tag drawn uniformly among those present, then
    one of its images uniformly; the distribution of ``torch.multinomial`` with :func:`balanced_weights`, but
    computed draw by draw from a table of each tag's count per block of :data:`BLOCK` images.

    ``codes`` may be a memory-mapped column: it is read once to count, then a block per draw.
    """

    def __init__(self, codes: np.ndarray) -> None:
        self.codes = codes
        n, step = len(codes), 1 << 16  # a pass over the column, 65,536 rows at a time (small temporaries)
        if n == 0:
            raise ValueError("balanced draws from no image")
        n_codes = max(int(np.max(codes[i : i + step])) for i in range(0, n, step)) + 1
        blocks = -(-n // BLOCK)
        counts = np.zeros((blocks, n_codes), np.int64)
        for start in range(0, n, step):
            chunk = np.asarray(codes[start : start + step], np.int64)
            block = np.arange(start, start + len(chunk)) // BLOCK
            counts += np.bincount(block * n_codes + chunk, minlength=blocks * n_codes).reshape(blocks, n_codes)
        self.present = np.flatnonzero(counts.sum(axis=0))  # the tags that have images
        self.starts: np.ndarray = np.zeros((n_codes, blocks + 1), smallest_int(n))  # tag, block -> images before it
        self.starts[:, 1:] = np.cumsum(counts.T, axis=1)

    def __call__(self, key: int, draws: np.ndarray) -> np.ndarray:
        """The image of each draw number in ``draws`` (int64)."""
        tags = self.present[(_hash(key, draws, 1) % np.uint64(len(self.present))).astype(np.int64)]
        totals = self.starts[tags, -1]
        ranks = (_hash(key, draws, 2) % totals.astype(np.uint64)).astype(np.int64)
        blocks = np.empty(len(draws), np.int64)
        for tag in np.unique(tags).tolist():  # the block that holds each draw's image: its tag's counts, cumulated
            mine = tags == tag
            blocks[mine] = np.searchsorted(self.starts[tag], ranks[mine], side="right") - 1
        within = ranks - self.starts[tags, blocks].astype(np.int64)  # which of its tag's images in that block
        rows = blocks[:, None] * BLOCK + np.arange(BLOCK)  # every row of each draw's block, read in one go
        n = len(self.codes)
        seen = (np.asarray(self.codes[np.minimum(rows, n - 1)]) == tags[:, None]) & (rows < n)
        return blocks * BLOCK + np.argmax(seen.cumsum(axis=1, dtype=np.int32) > within[:, None], axis=1)


class ComputedBatches(Sequence[torch.Tensor]):
    """The index batches of one epoch of ``n`` images, each computed when asked for (nothing stored per image).

    Without ``draws`` a permutation (:class:`Permutation` keyed by ``key``): every image once per epoch. With a
    :class:`TagDraws`, ``n`` balanced draws with replacement (draw numbers ``i * batch_size ...`` keyed by
    ``key``). Batch ``i`` is the same whenever and wherever it is computed: every DDP rank and a resumed run see
    the same batches.
    """

    def __init__(
        self, n: int, batch_size: int, key: int, draws: TagDraws | None = None, drop_last: bool = True
    ) -> None:
        self.n, self.batch_size, self.key, self.draws = n, batch_size, key, draws
        self.permutation = Permutation(n, key) if draws is None else None
        self.batches = n // batch_size if drop_last else -(-n // batch_size)
        self._recent: dict[int, torch.Tensor] = {}  # the last batches computed: a loop asks for each one twice

    def __len__(self) -> int:
        return self.batches

    @overload
    def __getitem__(self, i: int) -> torch.Tensor: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[torch.Tensor]: ...
    def __getitem__(self, i: int | slice) -> torch.Tensor | Sequence[torch.Tensor]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.batches))]
        if not -self.batches <= i < self.batches:
            raise IndexError(f"batch {i} of an epoch of {self.batches}")
        i %= self.batches
        if i not in self._recent:
            places = np.arange(i * self.batch_size, min((i + 1) * self.batch_size, self.n), dtype=np.int64)
            if self.permutation is not None:
                chosen = self.permutation(places)
            else:
                assert self.draws is not None
                chosen = self.draws(self.key, places)
            if len(self._recent) >= 4:
                self._recent.pop(next(iter(self._recent)))
            self._recent[i] = torch.from_numpy(chosen)
        return self._recent[i]


class BatchOrder:
    """The batches of every epoch of a pool of ``n`` images, balanced over ``tags`` when given.

    Epoch ``e``'s batches depend only on ``seed + e``: up to :data:`LARGE_POOL` images they are
    :func:`epoch_batches` of a ``torch.Generator`` seeded so (a list; the order every committed run used), above it
    :class:`ComputedBatches` keyed so, which store nothing per image (tags held as integer codes, as a large store's
    are, are used as they are).
    """

    def __init__(self, n: int, batch_size: int, seed: int, tags: np.ndarray | None = None) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.large = n > LARGE_POOL
        self.weights = balanced_weights(tags) if tags is not None and not self.large else None
        self.draws = None
        if tags is not None and self.large:
            codes = getattr(tags, "codes", None)
            self.draws = TagDraws(codes if codes is not None else np.unique(np.asarray(tags), return_inverse=True)[1])

    def epoch(self, epoch: int) -> Sequence[torch.Tensor]:
        """Every batch of ``epoch``."""
        if self.large:
            return ComputedBatches(self.n, self.batch_size, self.seed + epoch, self.draws)
        generator = torch.Generator().manual_seed(self.seed + epoch)
        return list(epoch_batches(self.n, self.batch_size, generator, self.weights))
