"""TensorBoard event files: written, closed on every way out, read back by TensorBoard's own reader."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from medssl_lab.errors import TrainingError
from medssl_lab.tblog import RunLog, read_events, run_log


def test_without_a_folder_nothing_is_written(tmp_path: Path) -> None:
    log = RunLog(None)
    log.scalars({"loss": 1.0}, 1)
    log.text("stopped", "finished", 1)
    log.close()
    assert not log.writing and list(tmp_path.iterdir()) == []


def test_scalars_and_text_come_back_from_tensorboards_reader(tmp_path: Path) -> None:
    values = [0.1, 1 / 3, 2.5e-7, float("nan")]
    with run_log(tmp_path / "run") as log:
        assert log.writing
        for step, value in enumerate(values, 1):
            log.scalars({"loss": value, "lr": 1e-3}, step, prefix="pretrain/")
        log.text("stopped", "finished after 4 steps", 4)
    assert not log.writing  # closed
    events = read_events(tmp_path / "run")
    assert set(events.scalars) == {"pretrain/loss", "pretrain/lr"}
    steps, read = zip(*events.scalars["pretrain/loss"])
    assert steps == (1, 2, 3, 4)
    np.testing.assert_array_equal(np.float32(read), np.float32(values))  # float32 on disk, nan included
    assert events.texts == {"stopped": [(4, "finished after 4 steps")]}


def test_a_training_error_is_logged_as_text_and_every_exception_closes_the_file(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="loss became nan"):
        with run_log(tmp_path / "nan", stop_step=lambda: 7) as log:
            log.scalars({"loss": 2.0}, 6)
            raise TrainingError("the loss became nan at step 7")
    assert not log.writing
    events = read_events(tmp_path / "nan")
    assert events.texts == {"stopped": [(7, "stopped: the loss became nan at step 7")]}
    assert events.scalars == {"loss": [(6, 2.0)]}
    with pytest.raises(KeyError):
        with run_log(tmp_path / "other") as other:
            other.scalars({"loss": 1.0}, 1)
            raise KeyError("not a training error: no text")
    assert not other.writing and read_events(tmp_path / "other").texts == {}


def test_a_continued_run_hides_the_steps_that_it_logs_again(tmp_path: Path) -> None:
    """Steps 4 and 5 logged after the last checkpoint (3) are logged again by the resumed run, in the same second
    here: the resumed file must still be read after the first one, or its purge would hide nothing."""
    with run_log(tmp_path) as log:
        for step in range(1, 6):
            log.scalars({"loss": float(step)}, step)
    with run_log(tmp_path, purge_step=4) as log:
        for step in range(4, 8):
            log.scalars({"loss": 10.0 * step}, step)
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    assert read_events(tmp_path).scalars["loss"] == [
        (1, 1.0),
        (2, 2.0),
        (3, 3.0),
        (4, 40.0),
        (5, 50.0),
        (6, 60.0),
        (7, 70.0),
    ]


def test_a_new_file_sorts_after_every_file_of_its_second(tmp_path: Path) -> None:
    """TensorBoard reads files in name order; within a second a counter orders them, and ``.10`` sorts before ``.9``."""
    earlier = tmp_path / f"events.out.tfevents.{int(time.time()):010d}.host.1.9"
    earlier.write_bytes(b"")
    RunLog(tmp_path).close()
    assert sorted(p.name for p in tmp_path.iterdir())[-1] != earlier.name
