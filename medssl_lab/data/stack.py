"""Images that stay where they are (arrays in memory, ``.npy`` shards of a pool store on disk) until indexed.

An :class:`ImageStack` looks like an (N, H, W) uint8 array to the rest of the package: ``len``, ``shape``,
``dtype``, and indexing with an integer array returns the images as a NumPy array. Only the rows asked for are read
(positioned reads from the shard files, runs of neighbouring rows in one read), so the process's memory does not
grow with the store: the operating system's page cache keeps what is read often. :meth:`ImageStack.select` gives a
subset without reading anything. Every process opens its own file handles (one per shard it reads), so DDP ranks and
data workers share nothing; threads of one process may read at once.

``positions`` (where each image is in the parts, counted from the first part's first image) may be any integer
array, a memory-mapped column of a store's index included (uint32: 4 bytes per image, in the page cache that every
process shares): it is indexed, never copied whole.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medssl_lab.data.resize import resize_uint8
from medssl_lab.errors import DataError


def _iov_max() -> int:
    """Buffers one ``preadv`` call takes (1,024 on Linux; POSIX promises at least 16)."""
    try:
        return max(16, int(os.sysconf("SC_IOV_MAX")))
    except (AttributeError, ValueError, OSError):
        return 16


IOV_MAX = _iov_max()


def npy_layout(path: Path) -> tuple[tuple[int, ...], int]:
    """(shape, offset of the first byte of data) of a uint8 C-order ``.npy`` file, read from its header."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
            offset = handle.tell()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy shard ({exc}); ingest the store again") from exc
    if dtype != np.uint8 or fortran or len(shape) != 3:
        raise DataError(f"{path}: want (n, H, W) uint8 in C order, found {shape} {dtype}; ingest the store again")
    return shape, offset


class ImageStack:
    """(N, size, size) uint8 images kept in parts, read on indexing; a part of another size is resized on reading."""

    def __init__(self, parts: Sequence[np.ndarray | Path], size: int, positions: np.ndarray | None = None) -> None:
        self.parts = list(parts)
        shapes, self._data_offsets = [], []
        for part in self.parts:
            if isinstance(part, np.ndarray):
                if part.ndim != 3 or part.dtype != np.uint8:
                    raise ValueError(f"an ImageStack part must be (n, H, W) uint8, got {part.shape} {part.dtype}")
                shapes.append(part.shape)
                self._data_offsets.append(0)
            else:
                shape, offset = npy_layout(Path(part))
                shapes.append(shape)
                self._data_offsets.append(offset)
        self._sides = [tuple(int(v) for v in shape[1:]) for shape in shapes]
        self._starts = np.concatenate([[0], np.cumsum([s[0] for s in shapes])]).astype(np.int64)
        if positions is None:
            self.positions = np.arange(self._starts[-1])
        elif isinstance(positions, np.ndarray) and positions.dtype.kind in "iu":
            self.positions = positions  # a memory-mapped column stays one
        else:
            self.positions = np.asarray(positions, np.int64)
        self.size = int(size)
        self._handles: dict[int, dict[int, int]] = {}  # pid -> part -> file descriptor
        self._opening = threading.Lock()  # reading threads open a part's file once

    # the array interface the package relies on
    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.positions), self.size, self.size)

    dtype = np.dtype(np.uint8)
    ndim = 3

    @property
    def nbytes(self) -> int:
        """What the images would take in memory (they stay on disk)."""
        return len(self) * self.size * self.size

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index: int | slice | np.ndarray | Sequence[int]) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._read(self.positions[[index]])[0]
        return self._read(self.positions[index])

    def __array__(self, dtype: np.dtype | None = None, copy: object = None) -> np.ndarray:
        """All the images, read now (``np.asarray(stack)``): for small stacks only."""
        images = self._read(self.positions)
        return images if dtype is None else images.astype(dtype)

    def select(self, index: np.ndarray | slice | Sequence[int]) -> ImageStack:
        """The images at ``index``, still unread."""
        chosen = ImageStack.__new__(ImageStack)
        chosen.__dict__.update(self.__dict__)
        chosen.positions, chosen._handles, chosen._opening = self.positions[index], {}, threading.Lock()
        return chosen

    def resized(self, size: int) -> ImageStack:
        """The same images, read at ``size`` px."""
        other = self.select(slice(None))
        other.size = int(size)
        return other

    def fingerprint(self) -> str:
        """A hash naming exactly these images: the parts (bytes in memory, name, size and mtime on disk) and rows."""
        digest = hashlib.blake2b(digest_size=10)
        for part in self.parts:
            if isinstance(part, np.ndarray):
                digest.update(np.ascontiguousarray(part).data)
            else:
                stat = Path(part).stat()
                digest.update(f"{Path(part).name}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
        for start in range(0, len(self.positions), 1 << 22):  # as int64 bytes, whatever the column's type, in pieces
            digest.update(np.ascontiguousarray(self.positions[start : start + (1 << 22)], np.int64).tobytes())
        return digest.hexdigest()

    # reading
    def read_into(self, out: np.ndarray, rows: np.ndarray, index: np.ndarray) -> None:
        """The images at ``index`` straight into rows ``rows`` of ``out`` (C-ordered ``(B, size, size)`` uint8), with
        no array of their own in between: what a batch reader's threads do, each with its share of a batch."""
        self._read(self.positions[index], out, np.asarray(rows, np.int64))

    def _read(self, positions: np.ndarray, out: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
        """The images at ``positions`` (into ``out[rows]`` when given), read in the order of the files: each run of
        neighbouring rows of a part is one read (straight into ``out``'s rows where the system has ``preadv``), the
        kernel hears of every run before the first is read, and a part of another size is resized in one go."""
        positions = np.atleast_1d(np.asarray(positions, np.int64))
        if out is None or rows is None:
            out, rows = np.empty((len(positions), self.size, self.size), dtype=np.uint8), np.arange(len(positions))
        order = np.argsort(positions, kind="stable")
        ranked, targets = positions[order], rows[order]
        part_of = np.searchsorted(self._starts, ranked, side="right") - 1
        breaks = (np.flatnonzero((np.diff(part_of) != 0) | (np.diff(ranked) != 1)) + 1).tolist()
        first_rows = (ranked - self._starts[part_of]).tolist()
        runs = [(int(part_of[f]), f, t) for f, t in zip([0, *breaks], [*breaks, len(ranked)]) if t > f]
        for part, first, last in runs:  # ask for every run first, so that the disk serves them together
            self._advise(part, first_rows[first], last - first)
        other: dict[int, list[tuple[int, int, np.ndarray]]] = {}
        for part, first, last in runs:
            if self._sides[part] != (self.size, self.size):
                other.setdefault(part, []).append((first, last, self._read_run(part, first_rows[first], last - first)))
            elif isinstance(self.parts[part], np.ndarray) or not hasattr(os, "preadv"):
                out[targets[first:last]] = self._read_run(part, first_rows[first], last - first)
            else:
                self._read_run_into(part, first_rows[first], out, targets[first:last])
        for pieces in other.values():
            where = np.concatenate([targets[first:last] for first, last, _ in pieces])
            out[where] = resize_uint8(np.concatenate([images for _, _, images in pieces]), self.size)
        return out

    def _read_run_into(self, part: int, row: int, out: np.ndarray, targets: np.ndarray) -> None:
        """Neighbouring images of a file part from ``row`` on, each into its row of ``out``: one system call per
        ``IOV_MAX`` images (1,024 on Linux)."""
        height, width = self._sides[part]
        fd, offset = self._handle(part), self._data_offsets[part] + row * height * width
        for start in range(0, len(targets), IOV_MAX):
            buffers = [memoryview(out[t]).cast("B") for t in targets[start : start + IOV_MAX].tolist()]
            length = len(buffers) * height * width
            if os.preadv(fd, buffers, offset) != length:
                raise DataError(
                    f"{self.parts[part]}: the shard is shorter than its header says; ingest the store again"
                )
            offset += length

    def _advise(self, part: int, row: int, count: int) -> None:
        """Tell the kernel which bytes come next (Linux): it reads them in parallel, ahead of the reads below."""
        if isinstance(self.parts[part], np.ndarray) or not hasattr(os, "posix_fadvise"):
            return
        height, width = self._sides[part]
        offset = self._data_offsets[part] + row * height * width
        os.posix_fadvise(self._handle(part), offset, count * height * width, os.POSIX_FADV_WILLNEED)

    def _read_run(self, part: int, row: int, count: int) -> np.ndarray:
        """``count`` neighbouring images of one part from ``row`` on, at the part's own size, in one read."""
        source = self.parts[part]
        if isinstance(source, np.ndarray):
            return source[row : row + count]
        height, width = self._sides[part]
        length = count * height * width
        data = os.pread(self._handle(part), length, self._data_offsets[part] + row * height * width)
        if len(data) != length:
            raise DataError(f"{source}: the shard is shorter than its header says; ingest the store again")
        return np.frombuffer(data, np.uint8).reshape(count, height, width)

    def _handle(self, part: int) -> int:
        handles = self._handles.get(os.getpid())  # a forked worker opens its own
        if handles is None or part not in handles:
            with self._opening:
                handles = self._handles.setdefault(os.getpid(), {})
                if part not in handles:
                    handles[part] = os.open(Path(self.parts[part]), os.O_RDONLY)  # type: ignore[arg-type]  # a file
        return handles[part]

    def __del__(self) -> None:
        for fd in getattr(self, "_handles", {}).get(os.getpid(), {}).values():
            try:
                os.close(fd)
            except OSError:
                pass

    def __getstate__(self) -> dict:
        state = {**self.__dict__, "_handles": {}}
        del state["_opening"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _opening=threading.Lock())


def concatenate_images(parts: Sequence[np.ndarray | ImageStack], size: int) -> np.ndarray | ImageStack:
    """Images of several sources as one at ``size`` px: an array when all are in memory (resized now), else a stack
    that reads (and resizes) on indexing."""
    arrays = [p for p in parts if isinstance(p, np.ndarray)]
    if len(arrays) == len(parts):
        return np.concatenate([resize_uint8(p, size) for p in arrays])
    all_parts: list[np.ndarray | Path] = []
    positions = []
    offset = 0
    for part in parts:
        stack = part if isinstance(part, ImageStack) else ImageStack([part], size)
        positions.append(stack.positions.astype(np.int64) + offset)
        offset += int(stack._starts[-1])
        all_parts += stack.parts
    return ImageStack(all_parts, size, np.concatenate(positions))
