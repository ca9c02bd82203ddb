"""A tag per image (source, modality) held as small integer codes and their names, read like an array of str.

A large store keeps its tags as memory-mapped columns of codes (one byte per image where there are fewer than 256
names, in the page cache that every process shares); :class:`CodedTags` gives them to the rest of the package in
the shape of the object arrays an :class:`~medssl_lab.data.types.ImageSet` holds, without making one string
pointer (8 bytes) per image: ``len``, indexing (a whole number gives the name, an index array, boolean mask or
slice gives another :class:`CodedTags`), ``==`` and ``!=`` a name (a boolean array, from the codes), iteration,
``np.asarray`` (the names, made now: for small selections). ``codes`` and ``names`` are there for code that counts
(:func:`~medssl_lab.data.sampling.balanced_weights`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class CodedTags:
    """(N,) tags: ``names[codes[i]]`` is image ``i``'s tag.

    Args:
        codes: (N,) integer codes, e.g. a memory-mapped uint8 column (indexed, never copied whole).
        names: the name of each code.
    """

    dtype = np.dtype(object)
    ndim = 1
    __hash__ = None  # type: ignore[assignment]  # compared element-wise, like an array

    def __init__(self, codes: np.ndarray, names: Sequence[str] | np.ndarray) -> None:
        self.codes = codes
        self.names = np.asarray(list(names), dtype=object)

    @property
    def shape(self) -> tuple[int]:
        return (len(self.codes),)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> str | CodedTags:
        if isinstance(index, (int, np.integer)):
            return str(self.names[self.codes[index]])
        return CodedTags(np.asarray(self.codes[index]), self.names)

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.codes), 1 << 16):
            yield from self.names[np.asarray(self.codes[start : start + (1 << 16)])].tolist()

    def __array__(self, dtype: np.dtype | None = None, copy: object = None) -> np.ndarray:
        tags = self.names[np.asarray(self.codes)]
        return tags if dtype is None else tags.astype(dtype)

    def _matches(self, name: object) -> np.ndarray:
        found = np.flatnonzero(self.names == name)
        if not found.size:
            return np.zeros(len(self.codes), bool)
        return np.isin(np.asarray(self.codes), found)

    def __eq__(self, other: object) -> np.ndarray:  # type: ignore[override]
        if isinstance(other, str):
            return self._matches(other)
        return np.asarray(self) == np.asarray(other)

    def __ne__(self, other: object) -> np.ndarray:  # type: ignore[override]
        return ~self.__eq__(other)

    def astype(self, dtype: np.dtype | type, copy: bool = True) -> np.ndarray:
        return np.asarray(self).astype(dtype)

    def tolist(self) -> list[str]:
        return list(self)

    def __repr__(self) -> str:
        return f"CodedTags({len(self):,} tags of {len(self.names)} names: {', '.join(map(str, self.names[:8]))})"
