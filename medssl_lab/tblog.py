"""TensorBoard event files: what every loop logs, written into its run folder beside its CSV/JSON.

Pretraining (``pretrain/`` scalars, one point per row of history.csv), each downstream run (``train/``, ``val/``,
``test/``) and the reproduction (its pretraining and every downstream run, each in its own folder) write through
:func:`run_log`, so ``tensorboard --logdir RUN`` shows any of them. Why a run stopped (finished, paused, a
non-finite loss, a collapse) is a text event, ``stopped``.

Writing draws no random number and changes no result; without a folder every call is a no-op. TensorBoard is
imported only when a run writes (it takes a second or two to import). :func:`read_events` reads a folder back with
TensorBoard's own reader.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medssl_lab.errors import TrainingError

EVENT_FILE_PREFIX = "events.out.tfevents."


def _file_second(path: Path) -> int:
    """The second an event file was opened, from its name (``events.out.tfevents.<second>.<host>...``); -1 if none."""
    part = path.name[len(EVENT_FILE_PREFIX) :].split(".", 1)[0]
    return int(part) if part.isdigit() else -1


def _after_every_event_file(folder: Path) -> None:
    """Wait (at most a second) until a new event file's name sorts after every one already in ``folder``.

    TensorBoard reads a folder's files in name order, and a name starts with the second it was opened; two files of
    one second are ordered by a counter that sorts ``.10`` before ``.9``. A resumed run opened within the second its
    earlier part was (tests do that) would otherwise be read first and its purge of stale steps come too early.
    """
    newest = max((_file_second(p) for p in folder.glob(EVENT_FILE_PREFIX + "*")), default=-1)
    if newest >= int(time.time()):
        time.sleep(min(1.0, newest + 1 - time.time()))


class RunLog:
    """The event files of one run; every method is a no-op when ``folder`` is None (no folder, or not rank 0).

    Args:
        folder: the run folder (made if missing), or None.
        purge_step: TensorBoard hides the steps from this one on that earlier files of the folder logged, e.g. the
            steps a killed run logged after its last checkpoint, which the resumed run logs again.
    """

    def __init__(self, folder: str | os.PathLike | None, purge_step: int | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self._writer: Any = None
        if self.folder is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.folder.mkdir(parents=True, exist_ok=True)
            _after_every_event_file(self.folder)
            self._writer = SummaryWriter(str(self.folder), purge_step=purge_step, flush_secs=30)

    @property
    def writing(self) -> bool:
        return self._writer is not None

    def scalars(self, values: Mapping[str, float], step: int, prefix: str = "") -> None:
        """One point per value at ``step``, tagged ``prefix + name``."""
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(prefix + name, float(value), int(step))

    def text(self, tag: str, text: str, step: int) -> None:
        """A text event (TensorBoard's text tab)."""
        if self._writer is not None:
            self._writer.add_text(tag, text, int(step))

    def flush(self) -> None:
        """Write what is pending to disk now (a checkpoint follows: a killed run keeps every step it holds)."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Write what is pending and close the file (again: nothing)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@contextlib.contextmanager
def run_log(
    folder: str | os.PathLike | None, purge_step: int | None = None, stop_step: Callable[[], int] = lambda: 0
) -> Iterator[RunLog]:
    """A :class:`RunLog` for the block, closed when it ends, also on an exception.

    A :class:`~medssl_lab.errors.TrainingError` (a non-finite loss, a collapse) is logged first as the text
    ``stopped`` at ``stop_step()``, the run's step when it stopped.
    """
    log = RunLog(folder, purge_step)
    try:
        yield log
    except TrainingError as exc:
        log.text("stopped", f"stopped: {exc}", stop_step())
        raise
    finally:
        log.close()


@dataclass
class Events:
    """What a folder's event files hold, as TensorBoard reads them (steps that a later file purged left out)."""

    scalars: dict[str, list[tuple[int, float]]]  #: tag -> (step, value), in the order written
    texts: dict[str, list[tuple[int, str]]]  #: tag (as given to ``text``) -> (step, text)


def read_events(folder: str | os.PathLike) -> Events:
    """Read a run folder's event files back with TensorBoard's own reader (its ``EventAccumulator``), every point."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    reader = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0}).Reload()
    tags = reader.Tags()
    scalars = {tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in tags["scalars"]}
    texts = {
        tag.removesuffix("/text_summary"): [
            (e.step, make_ndarray(e.tensor_proto).item().decode()) for e in reader.Tensors(tag)
        ]
        for tag in tags["tensors"]
        if tag.endswith("/text_summary")
    }
    return Events(scalars, texts)
