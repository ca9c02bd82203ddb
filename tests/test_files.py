"""The atomic-write helper (a file appears whole or not at all), its leftovers after a kill, and cache keys."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medssl_lab.files import atomic_file, content_key, remove_leftovers, save_results, write_json
from medssl_lab.pretrain.checkpoint import save_checkpoint


def test_atomic_file_replaces_on_success_and_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    with atomic_file(target) as tmp:
        assert tmp.parent == target.parent and not target.exists()
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_file(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]  # no temporary file left behind


def test_atomic_file_sets_the_permissions_asked_for(tmp_path: Path) -> None:
    with atomic_file(tmp_path / "shared.dcm", permissions=0o644) as tmp:
        tmp.write_bytes(b"data")
    assert stat.S_IMODE((tmp_path / "shared.dcm").stat().st_mode) == 0o644


def test_content_key_changes_with_the_bytes_not_only_the_size(tmp_path: Path) -> None:
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    first.write_bytes(b"x" * 1000)
    second.write_bytes(b"x" * 500 + b"y" * 500)
    assert content_key(first) != content_key(second) and content_key(first) == content_key(first)
    folder = tmp_path / "MedNIST" / "CXR"
    folder.mkdir(parents=True)
    (folder / "0.jpeg").write_bytes(b"jpeg")
    before = content_key(folder.parent)
    (folder / "1.jpeg").write_bytes(b"jpeg")
    added = content_key(folder.parent)
    assert added != before  # an added file, same folder size
    os.utime(folder / "1.jpeg", ns=(1, 1))
    assert content_key(folder.parent) != added  # a rewritten file


def test_leftovers_of_a_killed_write_are_removed_and_nothing_else(tmp_path: Path) -> None:
    script = (
        "import os, signal, sys\n"
        "from medssl_lab.files import atomic_file\n"
        "with atomic_file(sys.argv[1]) as tmp:\n"
        "    tmp.write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "checkpoint.pt")])
    (tmp_path / ".other.pt.abc.tmp").write_text("another file's")
    assert len(list(tmp_path.glob(".checkpoint.pt.*"))) == 1  # SIGKILL left the temporary file
    save_checkpoint({"step": 1}, tmp_path / "checkpoint.pt")  # the next save of that path clears it
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.pt.abc.tmp", "checkpoint.pt"]
    remove_leftovers(tmp_path / "other.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_save_results_writes_json_with_plain_numbers_and_text_as_it_is(tmp_path: Path) -> None:
    payload = {
        "auc": np.float32(0.5),
        "n": np.int64(3),
        "ok": np.bool_(True),
        "curve": np.arange(2),
        "t": torch.tensor(2.5),
    }
    path = save_results(tmp_path, "robustness", "robustness.json", payload)
    assert path == tmp_path / "robustness" / "robustness.json"
    assert json.loads(path.read_text()) == {"auc": 0.5, "n": 3, "ok": True, "curve": [0, 1], "t": 2.5}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # results are for reading, unlike the store's salt
    summary = save_results(tmp_path, "finetuning", "summary.md", "| arm |\n")
    assert summary.read_text() == "| arm |\n"
    with pytest.raises(TypeError, match="only a .json file"):
        save_results(tmp_path, "finetuning", "summary.md", {"not": "text"})


def test_write_json_leaves_the_old_file_when_the_payload_cannot_be_written(tmp_path: Path) -> None:
    path = write_json(tmp_path / "runs" / "run.json", {"seed": 0})
    with pytest.raises(TypeError):
        write_json(path, {"seed": object()})
    assert json.loads(path.read_text()) == {"seed": 0}
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]
