"""Writing files so that a reader never sees half of one: the one atomic-write helper of the package."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp", permissions: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it into place, on any error remove it.

    The temporary file sits in the same folder (so the final move is atomic) and is hidden
    (leading dot), so an interrupted write leaves neither a truncated file nor clutter.
    It is created private (mode 0o600); pass ``permissions`` (e.g. 0o644) for a file that
    others must be able to read, such as data files meant to be shared.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if permissions is not None:
            os.chmod(tmp, permissions)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _plain(value: Any) -> Any:
    """JSON for what results hold beyond Python's own types: numpy and torch scalars and arrays as numbers (lists),
    anything else number-like through ``float``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return float(value)


def write_json(path: str | os.PathLike, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically, readable by others; numpy and torch numbers become plain ones.

    The one way results are written (the notebooks' through :func:`save_results`, the reproduction's runs): a run
    killed while writing leaves the previous file, never half of one that a later report would choke on.
    """
    path = Path(path)
    text = json.dumps(payload, indent=1, default=_plain)  # before the file is touched: a bad payload writes nothing
    with atomic_file(path, permissions=0o644) as tmp:
        tmp.write_text(text)
    return path


def save_results(output_dir: str | os.PathLike, part: str, name: str, payload: Any) -> Path:
    """Write one result file of a course notebook to ``{output_dir}/{part}/{name}`` and return its path.

    Every notebook keeps its results in its own folder of the course's output folder (``embeddings``,
    ``clusters``...); a ``.json`` name gets ``payload`` as JSON (:func:`write_json`), any other name a text
    ``payload`` as it is (a Markdown summary).
    """
    path = Path(output_dir) / part / name
    if path.suffix == ".json":
        return write_json(path, payload)
    if not isinstance(payload, str):
        raise TypeError(f"{name}: only a .json file takes a {type(payload).__name__}; pass text for other files")
    with atomic_file(path, permissions=0o644) as tmp:
        tmp.write_text(payload)
    return path


def remove_leftovers(path: str | os.PathLike) -> None:
    """Delete the hidden temporary files :func:`atomic_file` left beside ``path`` in a process that was killed
    (SIGKILL gives it no chance to clean up). Only for a path no other process is writing now."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*"):
        tmp.unlink(missing_ok=True)


def content_key(path: str | os.PathLike) -> str:
    """A short hash of a file's bytes, or of a folder's file list with sizes and mtimes: what a cache is keyed by.

    A cache named by this key is never reused for other data, whatever the sizes.
    """
    path = Path(path)
    digest = hashlib.blake2b(digest_size=10)
    if path.is_file():
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            stat = item.stat()
            digest.update(f"{item.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()
