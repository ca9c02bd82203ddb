"""Ingest sources (DICOM trees, NIfTI/MHA/NRRD volumes, image folders, MedMNIST .npz, MedNIST) into a pool store.

The sources' files are listed in a fixed order (sources as given, files sorted) and cut into shards of
``files_per_shard`` files; each worker process decodes one shard and writes it atomically, its ``.json`` last. A
re-run skips every shard whose ``.json`` names the same files (paths, sizes, modification times), so a killed ingest
continues where it stopped and a repeated one adds nothing; ``shards=range(a, b)`` gives a cluster scheduler one
part of the work per machine. A file that gives no image is listed in the shard's rejected table with its reason;
it never stops the ingest.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medssl_lab.data.store.decode import Decoded, Rejected, decode_file, salted_key, square_resize
from medssl_lab.data.store.layout import StoreLayout, check_out_folder, create_or_check, save_shard, store_salt
from medssl_lab.data.store.rules import Rules
from medssl_lab.errors import DataError
from medssl_lab.files import remove_leftovers

DATASET_SUFFIXES = (".npz",)


@dataclass(frozen=True)
class Unit:
    """One piece of input: a file of a folder source, or a whole data set (MedNIST, a MedMNIST file)."""

    source: str  # the source's tag in the store (NAME=, else the folder's or data set's name)
    path: Path
    relative: str  # what the index records (when paths are kept)
    kind: str = "file"  # "file", "medmnist" or "mednist"


def _walk(root: Path) -> Iterator[Path]:
    """Every file under ``root``, sorted, hidden files and folders and DICOMDIR left out."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.upper() != "DICOMDIR":
                yield Path(folder) / name


def split_source_name(text: str) -> tuple[str | None, str]:
    """``NAME=SOURCE`` gives a source its tag in the store; else (None, text), and the tag is the folder's or data
    set's name. A path that exists is taken whole, even with an ``=`` in it."""
    name, sep, rest = text.partition("=")
    if sep and rest and re.fullmatch(r"[\w.-]+", name) and not Path(text).expanduser().exists():
        return name, rest
    return None, text


def plan_units(sources: Sequence[str], data_dir: str | os.PathLike | None = None) -> list[Unit]:
    """The units of ``sources`` in their fixed order: folders walked, data sets by name or file."""
    from medssl_lab.data.medmnist import medmnist_subsets

    units: list[Unit] = []
    for given in sources:
        name, text = split_source_name(given)
        path = Path(text).expanduser()
        if text == "mednist" or (path.is_dir() and path.name == "MedNIST" and not path.suffix):
            units.append(Unit(name or "mednist", path, "MedNIST", "mednist"))
        elif text in medmnist_subsets():
            units.append(Unit(name or text, Path(text), text, "medmnist"))
        elif path.is_file():
            kind = "medmnist" if path.suffix.lower() in DATASET_SUFFIXES else "file"
            tag = name or (path.stem if kind == "medmnist" else path.parent.name)
            units.append(Unit(tag, path.resolve(), path.name, kind))
        elif path.is_dir():
            root = path.resolve()
            found = [Unit(name or root.name, f, f.relative_to(root).as_posix()) for f in _walk(root)]
            if not found:
                raise DataError(f"{path}: the folder holds no files; point at a folder of DICOM, volume or image files")
            units += [
                Unit(u.source, u.path, u.relative, "medmnist") if u.path.suffix.lower() in DATASET_SUFFIXES else u
                for u in found
            ]
        else:
            raise DataError(
                f"{text}: no such file or folder, and not a data set name ('mednist' or a MedMNIST subset); "
                "check the path"
            )
    return units


def plan_shards(units: Sequence[Unit], files_per_shard: int) -> list[list[Unit]]:
    """Consecutive groups of ``files_per_shard`` files; a whole data set is a shard of its own."""
    shards: list[list[Unit]] = []
    current: list[Unit] = []
    for unit in units:
        if unit.kind != "file":
            shards += [current] if current else []
            shards.append([unit])
            current = []
            continue
        current.append(unit)
        if len(current) == files_per_shard:
            shards.append(current)
            current = []
    return shards + ([current] if current else [])


def shard_digest(units: Sequence[Unit]) -> str:
    """What a shard was made from: its files' sources, paths, sizes and modification times."""
    digest = hashlib.blake2b(digest_size=12)
    for u in units:
        stat = u.path.stat() if u.path.exists() else None
        size, mtime = (stat.st_size, stat.st_mtime_ns) if stat else (None, None)
        digest.update(f"{u.source}\0{u.path}\0{u.kind}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def _dataset_images(unit: Unit, rules: Rules, salt: bytes, data_dir: str | None) -> Iterator[Decoded]:
    """MedNIST (all of it) or a MedMNIST file's train split (val and test stay unseen for evaluation)."""
    if unit.kind == "mednist":
        from medssl_lab.data.mednist import load_mednist

        images = load_mednist(str(unit.path) if unit.path.is_dir() else data_dir).all
    else:
        from medssl_lab.data.medmnist import load_medmnist

        if unit.path.is_file():
            flag, _, size = unit.path.stem.partition("_")
            images = load_medmnist(flag, size=int(size or 28), data_dir=unit.path.parent).train
        else:
            images = load_medmnist(unit.relative, data_dir=data_dir).train  # the subset name
    for i, (pixels, modality) in enumerate(zip(images.images, images.modality)):
        key = salted_key(salt, hashlib.blake2b(pixels.tobytes(), digest_size=16).hexdigest())
        yield Decoded(square_resize(pixels, rules.size)[None], [i], str(modality), "", "", "", "", [key])


def _decode_unit(unit: Unit, rules: Rules, salt: bytes, data_dir: str | None) -> Iterator[Decoded]:
    if unit.kind == "file":
        yield decode_file(unit.path, rules, salt)
    else:
        yield from _dataset_images(unit, rules, salt, data_dir)


@contextmanager
def _quiet() -> Iterator[None]:
    """No warnings and no pydicom log records while decoding (their content goes to the rejected table)."""
    log = logging.getLogger("pydicom")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _reason(exc: Exception) -> tuple[str, str]:
    """The rejected table's reason and detail for what a file raised."""
    if isinstance(exc, Rejected):
        return exc.reason, exc.detail
    if isinstance(exc, DataError):  # a data set source that cannot be read
        return "corrupt", str(exc)
    return "decode_error", f"{type(exc).__name__}: {exc}"


def write_shard(
    root: Path, shard: int, units: Sequence[Unit], rules: Rules, keep_paths: bool, data_dir: str | None
) -> dict:
    """Decode one shard's units and write its images, index, rejected table and (last) its ``.json``."""
    start = time.perf_counter()
    layout, salt = StoreLayout(root), store_salt(root)
    images: list[np.ndarray] = []
    rows: list[list[object]] = []
    rejected: list[list[object]] = []
    for unit in units:
        name = unit.relative if keep_paths else salted_key(salt, unit.relative)
        try:
            with _quiet():  # what matters about a file lands in the tables, not on the console
                decoded = list(_decode_unit(unit, rules, salt, data_dir))
            for d in decoded:
                for image, frame, key in zip(d.images, d.frames, d.instances):
                    row = [len(rows), unit.source, name, frame, d.modality, d.body_part, d.patient, d.study, d.series]
                    rows.append([*row, key])
                    images.append(image)
        except Exception as exc:  # whatever one file does, the ingest goes on and says why
            reason, detail = _reason(exc)
            rejected.append([unit.source, name, reason, detail.replace(str(unit.path), name)])
    stack = np.stack(images) if images else np.zeros((0, rules.size, rules.size), np.uint8)
    return save_shard(
        layout, shard, stack, rows, rejected, shard_digest(units), len(units), time.perf_counter() - start
    )


@dataclass
class IngestReport:
    """What an ingest did (this run) and what the store now holds."""

    store: Path
    shards_total: int
    shards_written: int
    shards_skipped: int
    files: int = 0
    images: int = 0
    seconds: float = 0.0
    counts: Counter = field(default_factory=Counter)  # (source, modality) -> images, whole store
    rejected: Counter = field(default_factory=Counter)  # reason -> files, whole store

    def lines(self) -> list[str]:
        seconds = max(self.seconds, 1e-9)
        rate = f"{self.files / seconds:.1f} files/s, {self.images / seconds:.1f} images/s"
        out = [
            f"{self.store}: {self.shards_written} shard(s) written, {self.shards_skipped} already done, "
            f"of {self.shards_total} planned",
            f"this run: {self.files} files -> {self.images} images in {self.seconds:.1f} s ({rate})"
            if self.shards_written
            else "this run: nothing to do",
            "the store holds:",
        ]
        out += [f"  {s:<24} {m:<18} {n:>9,}" for (s, m), n in sorted(self.counts.items())]
        if self.rejected:
            out.append("rejected files by reason (see shards/*.rejected.csv):")
            out += [f"  {reason:<24} {n:>9,}" for reason, n in sorted(self.rejected.items())]
        return out

    def check(self) -> None:
        """Raise a :class:`DataError` when this run's files gave no image, or the store holds none: an ingest that
        did not work, said with reasons and examples, never a success."""
        from medssl_lab.data.store.reader import rejected_files

        held = sum(self.counts.values())
        if (held and (self.images or not self.files)) or not self.shards_written + self.shards_skipped:
            return  # images, or no shard asked for (``--shards 0:0`` makes the store and shows the plan)
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items())) or "none"
        examples = "; ".join(
            f"{r['file']}: {r['reason']} ({_short(r['detail'])})" for r in rejected_files(self.store)[:2]
        )
        what = f"none of the {self.files} file(s) this run read gave an image" if self.files else "nothing to do"
        held_text = f"the store holds {held:,} image(s) from earlier runs" if held else "the store holds no image"
        raise DataError(
            f"{self.store}: {what}, and {held_text}. Rejected files by reason: {reasons}"
            + (f"; e.g. {examples}" if examples else "")
            + f". Every file's reason is in {self.store / 'shards'}/*.rejected.csv. Check that the sources hold "
            "DICOM, NIfTI/MHA/NRRD or image files and that the settings suit them; to ingest again with other "
            "settings, delete this store or choose a new --out"
        )


def _short(text: str, length: int = 100) -> str:
    return text if len(text) <= length else text[: length - 3] + "..."


def _remove_stale_temporaries(layout: StoreLayout, shards: Sequence[int]) -> None:
    """Hidden half-written files a killed run left behind (only this run's shards: others may be in progress)."""
    for shard in shards:
        for path in (layout.images(shard), layout.index(shard), layout.rejected(shard), layout.done(shard)):
            remove_leftovers(path)


def ingest(
    sources: Sequence[str],
    out: str | os.PathLike,
    rules: Rules | None = None,
    files_per_shard: int = 1000,
    workers: int | None = None,
    shards: range | None = None,
    keep_paths: bool = False,
    data_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> IngestReport:
    """Ingest ``sources`` into the store at ``out`` (made when new, continued when it exists); default rules: 64 px."""
    from tqdm.auto import tqdm

    from medssl_lab.threads import affinity_cpus

    rules = rules or Rules()  # Rules checks its own settings
    root = Path(out).resolve()
    check_settings(sources, root, files_per_shard, workers, shards)
    check_out_folder(root, rules, files_per_shard)  # nothing is read or written before these checks pass
    plan = plan_shards(plan_units(sources, data_dir), files_per_shard)
    if shards is not None and shards.start >= len(plan):
        raise DataError(
            f"--shards {shards.start}:{shards.stop}: the plan has {len(plan)} shard(s), 0 to {len(plan) - 1}; "
            "choose a range that starts within it"
        )
    create_or_check(root, rules, files_per_shard)
    layout = StoreLayout(root)
    layout.shards.mkdir(exist_ok=True)
    store_salt(root)
    chosen = range(len(plan)) if shards is None else range(shards.start, min(shards.stop, len(plan)))
    _remove_stale_temporaries(layout, chosen)
    todo = [k for k in chosen if not _is_done(layout, k, plan[k])]
    report = IngestReport(root, len(plan), len(todo), len(chosen) - len(todo))
    data = None if data_dir is None else str(data_dir)
    workers = max(1, min(workers or len(affinity_cpus()), len(todo) or 1))
    start = time.perf_counter()
    bar = tqdm(total=sum(len(plan[k]) for k in todo), unit="file", disable=not progress or not todo)
    if workers == 1:
        for k in todo:
            _account(report, write_shard(root, k, plan[k], rules, keep_paths, data), bar)
    else:
        context = multiprocessing.get_context("spawn")  # no state inherited from the caller (threads, torch)
        with ProcessPoolExecutor(workers, mp_context=context) as pool:
            futures = [pool.submit(write_shard, root, k, plan[k], rules, keep_paths, data) for k in todo]
            for future in as_completed(futures):
                _account(report, future.result(), bar)
    bar.close()
    report.seconds = time.perf_counter() - start if todo else 0.0
    for k in layout.done_shards():
        done = layout.read_done(k)
        report.counts.update({(s, m): n for s, m, n in done["counts"]})
        report.rejected.update(done["rejected"])
    return report


def _whole(value: object, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def check_settings(
    sources: Sequence[str], root: Path, files_per_shard: int, workers: int | None, shards: range | None
) -> None:
    """Refuse an ingest's settings before any file is read: counts, the shard range, and a store inside a source
    folder (a re-run would ingest the store's own files)."""
    if not _whole(files_per_shard, 1):
        raise ValueError(f"--files-per-shard {files_per_shard!r}: files per shard must be a whole number >= 1")
    if workers is not None and not _whole(workers, 1):
        raise ValueError(f"--workers {workers!r}: decoding processes must be a whole number >= 1 (omit for all CPUs)")
    if shards is not None and (shards.start < 0 or shards.stop < shards.start):  # START:START only makes the store
        raise ValueError(f"--shards {shards.start}:{shards.stop}: want START:STOP with 0 <= START <= STOP")
    if not sources:
        raise ValueError("no sources: name folders, files or data sets to ingest")
    for given in sources:
        folder = Path(split_source_name(given)[1]).expanduser().resolve()
        if folder.is_dir() and (folder == root or folder in root.parents):
            raise DataError(
                f"{root}: --out lies inside the source folder {folder}, so a re-run would ingest the store's own "
                "files; choose an --out outside every source folder"
            )


def _is_done(layout: StoreLayout, shard: int, units: Sequence[Unit]) -> bool:
    return layout.done(shard).exists() and layout.read_done(shard)["digest"] == shard_digest(units)


def _account(report: IngestReport, done: dict, bar) -> None:
    report.files += done["files"]
    report.images += done["images"]
    bar.update(done["files"])
