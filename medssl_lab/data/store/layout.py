"""A pool store on disk: where its files are, what its manifest says, and its secret salt.

::

    STORE/
      store.json               format, image size, the decoding rules (the same for every shard)
      salt                     32 random bytes (mode 0600): keys are keyed hashes with it; keep it private
      shards/000000.npy        (n, size, size) uint8, a plain .npy file (np.load(..., mmap_mode="r") maps it)
      shards/000000.index.csv  one row per image: row, source, file, frame, modality, body_part, patient_key,
                               study_key, series_key, instance_key
      shards/000000.rejected.csv   one row per file that gave no image: source, file, reason, detail
      shards/000000.json       written last: the shard's file list digest and counts; a shard without it is redone
      index/KEY/               the index tables as memory-mapped integer columns, made by the first open
                               (medssl_lab.data.store.index)

A shard holds the images of a fixed number of consecutive source files (``files_per_shard``), so that shard ``k``
is the same work on every machine and in every re-run.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import secrets
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from medssl_lab import __version__
from medssl_lab.data.store.rules import SIZE_RANGE, Rules
from medssl_lab.errors import DataError
from medssl_lab.files import atomic_file

FORMAT = 1
INDEX_COLUMNS = (
    "row",
    "source",
    "file",
    "frame",
    "modality",
    "body_part",
    "patient_key",
    "study_key",
    "series_key",
    "instance_key",
)
REJECTED_COLUMNS = ("source", "file", "reason", "detail")


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / "store.json"

    @property
    def salt_file(self) -> Path:
        return self.root / "salt"

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    def images(self, shard: int) -> Path:
        return self.shards / f"{shard:06d}.npy"

    def index(self, shard: int) -> Path:
        return self.shards / f"{shard:06d}.index.csv"

    def rejected(self, shard: int) -> Path:
        return self.shards / f"{shard:06d}.rejected.csv"

    def done(self, shard: int) -> Path:
        return self.shards / f"{shard:06d}.json"

    def done_shards(self) -> list[int]:
        """The shards whose writing finished, in order."""
        if not self.shards.is_dir():
            return []
        return sorted(int(p.name[:6]) for p in self.shards.glob("[0-9]" * 6 + ".json"))

    def read_done(self, shard: int) -> dict:
        """The ``.json`` of a finished shard, checked to hold its counts."""
        done = read_json_file(self.done(shard), f"shard {shard}'s record")
        if not isinstance(done.get("images"), int) or done["images"] < 0 or not isinstance(done.get("digest"), str):
            raise DataError(
                f"{self.done(shard)}: shard {shard}'s record lacks its image count or digest; delete the file and run "
                "the ingest again (it redoes that shard)"
            )
        return done


def redo(layout: StoreLayout, shard: int) -> str:
    """What to do about a damaged shard: ingest it again."""
    return (
        f"delete {layout.done(shard)} and run the same ingest again (it redoes that shard), or ingest the sources into "
        "a new folder"
    )


def is_store(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a pool store folder (it has a ``store.json``)."""
    return StoreLayout(Path(path)).manifest.is_file()


def _wanted(rules: Rules, files_per_shard: int) -> dict:
    """What a store made with these settings records (through JSON, as the file holds it: tuples become lists)."""
    return json.loads(json.dumps({"format": FORMAT, "rules": asdict(rules), "files_per_shard": files_per_shard}))


def check_out_folder(root: Path, rules: Rules, files_per_shard: int) -> None:
    """Refuse an ingest's ``--out`` that cannot become this store, before any source is read and nothing written:
    a file (or a folder inside one), a folder that holds other things, a store made with other settings."""
    for folder in (root, *root.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == root else f"lies inside {folder}, which is a file"
                raise DataError(
                    f"{root}: --out {where}, not a folder; name a new or empty folder for the store (or a store to "
                    "continue)"
                )
            break
    if StoreLayout(root).manifest.exists():
        held = {k: read_manifest(root).get(k) for k in _wanted(rules, files_per_shard)}
        if held != _wanted(rules, files_per_shard):
            raise DataError(
                f"{root}: this store was made with other settings ({json.dumps(held)}); resume it with those, "
                "or ingest into a new folder (--out)"
            )
    elif root.is_dir() and any(root.iterdir()):
        raise DataError(f"{root}: the folder exists and is not a pool store; choose an empty or new folder for --out")


def create_or_check(root: Path, rules: Rules, files_per_shard: int) -> dict:
    """The manifest of the store at ``root``: written when new, checked against ``rules`` when it exists."""
    check_out_folder(root, rules, files_per_shard)
    layout = StoreLayout(root)
    if layout.manifest.exists():
        return read_manifest(root)
    root.mkdir(parents=True, exist_ok=True)
    manifest = {**_wanted(rules, files_per_shard), "package": __version__}
    with atomic_file(layout.manifest, permissions=0o644) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))
    return manifest


def read_json_file(path: Path, what: str) -> dict:
    """A JSON object from one of a store's files, or a :class:`DataError` naming the file, what it is and the fix."""
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise DataError(f"{path}: {what} is missing; ingest the sources again into a new folder (--out)") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: json's error
        raise DataError(
            f"{path}: {what} is damaged, not JSON ({exc}); restore it from a copy, or ingest the sources again into "
            "a new folder (--out)"
        ) from exc
    if not isinstance(value, dict):
        raise DataError(f"{path}: {what} holds {type(value).__name__}, not a JSON object; ingest the sources again")
    return value


def read_manifest(root: str | os.PathLike) -> dict:
    """``store.json`` of a store, checked: a clear error for a folder that is none or a damaged manifest."""
    layout = StoreLayout(Path(root))
    if not layout.manifest.is_file():
        raise DataError(f"{root}: not a pool store (no store.json); make one with `medssl-lab ingest SOURCE --out DIR`")
    manifest = read_json_file(layout.manifest, "the store's manifest")
    if manifest.get("format") != FORMAT:
        raise DataError(f"{root}: store format {manifest.get('format')}, this package reads {FORMAT}; ingest again")
    rules, files_per_shard = manifest.get("rules"), manifest.get("files_per_shard")
    size = rules.get("size") if isinstance(rules, dict) else None
    low, high = SIZE_RANGE
    if not (isinstance(size, int) and low <= size <= high and isinstance(files_per_shard, int) and files_per_shard > 0):
        raise DataError(
            f"{layout.manifest}: the manifest's rules.size ({size!r}, want {low} to {high}) or files_per_shard "
            f"({files_per_shard!r}, want >= 1) is missing or wrong; restore store.json from a copy, or ingest again"
        )
    return manifest


def store_salt(root: Path) -> bytes:
    """The store's salt, made once (a private file) so that re-runs give the same keys.

    Made by linking a finished temporary file into place, which fails when the salt exists: of several machines
    starting one store at the same moment, one salt wins and every machine reads that one.
    """
    path = StoreLayout(root).salt_file
    if not path.exists():
        fd, name = tempfile.mkstemp(prefix=".salt.", dir=path.parent)  # private: mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
            with contextlib.suppress(FileExistsError):
                os.link(name, path)
        finally:
            os.unlink(name)
    return path.read_bytes()


def save_shard(
    layout: StoreLayout,
    shard: int,
    images: np.ndarray,
    rows: Sequence[Sequence[object]],
    rejected: Sequence[Sequence[object]],
    digest: str,
    files: int,
    seconds: float,
) -> dict:
    """Write one shard: images, index (rows in :data:`INDEX_COLUMNS` order), rejected table, then its ``.json``.

    Each file appears whole or not at all, and the ``.json`` that marks the shard done comes last.
    """
    with atomic_file(layout.images(shard), permissions=0o644) as tmp:
        with tmp.open("wb") as handle:
            np.save(handle, images)
    for path, columns, table in (
        (layout.index(shard), INDEX_COLUMNS, rows),
        (layout.rejected(shard), REJECTED_COLUMNS, rejected),
    ):
        with atomic_file(path, permissions=0o644) as tmp:
            with tmp.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(columns)
                writer.writerows(table)
    done = {
        "digest": digest,
        "files": files,
        "images": len(rows),
        "seconds": round(seconds, 3),
        "counts": sorted([*k, n] for k, n in Counter((str(r[1]), str(r[4])) for r in rows).items()),
        "rejected": dict(Counter(str(r[2]) for r in rejected)),
    }
    with atomic_file(layout.done(shard), permissions=0o644) as tmp:
        tmp.write_text(json.dumps(done))
    return done
