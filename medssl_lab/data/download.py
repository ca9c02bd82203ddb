"""Downloading data files: checked against an md5, written atomically, failing with a clear error."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from medssl_lab.config import progress_bar
from medssl_lab.errors import DataError
from medssl_lab.files import atomic_file

_MD5_OK: dict[tuple[str, int, float], str] = {}


def md5sum(path: Path, chunk_size: int = 1 << 20) -> str:
    """md5 of a file, remembered per (path, size, mtime) so large files are hashed once per process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime)
    if key not in _MD5_OK:
        digest = hashlib.md5()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(chunk_size), b""):
                digest.update(chunk)
        _MD5_OK[key] = digest.hexdigest()
    return _MD5_OK[key]


def check_md5(path: Path, expected: str | None, how_to_fix: str) -> None:
    """Raise :class:`DataError` if ``path`` does not have the ``expected`` md5 (skipped when None)."""
    if expected is None:
        return
    actual = md5sum(path)
    if actual != expected:
        raise DataError(
            f"{path}: md5 is {actual}, expected {expected} (corrupt, truncated or a different file). {how_to_fix}"
        )


def download_file(url: str, dest: Path, md5: str | None = None, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` through a temporary file in the same folder; nothing is left on failure."""
    try:
        with atomic_file(dest, suffix=".part") as tmp:
            with open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress_bar(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            check_md5(tmp, md5, f"The download from {url} is damaged; try again.")
    except DataError:
        raise
    except (OSError, ValueError) as exc:  # URLError, HTTPError and socket timeouts are OSErrors
        raise DataError(f"could not download {url} to {dest}: {exc}") from exc
    return dest
