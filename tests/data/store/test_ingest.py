"""`medssl-lab ingest`: every kind of file handled or rejected with its reason, privacy, resume, shard ranges."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medssl_lab.cli import main
from medssl_lab.data.store.ingest import ingest, plan_units
from medssl_lab.data.store.layout import StoreLayout
from medssl_lab.data.store.reader import open_store
from medssl_lab.data.store.rules import Rules
from medssl_lab.errors import DataError
from tests.data.store.conftest import (
    ACCESSION,
    EXPECTED_REJECTIONS,
    EXPECTED_VOLUME_REJECTIONS,
    PATIENT_ID,
    PATIENT_NAME,
    REAL_VOLUMES,
)


def _table(paths: list[Path]) -> list[dict]:
    rows = []
    for path in paths:
        with path.open(newline="") as handle:
            rows += list(csv.DictReader(handle))
    return rows


def _store_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_every_kind_of_file_is_ingested_or_rejected_with_its_reason(archive: Path, tmp_path: Path) -> None:
    report = ingest([str(archive)], tmp_path / "store", Rules(size=32), workers=1, keep_paths=True, progress=False)
    layout = StoreLayout(tmp_path / "store")
    rejected = {r["file"]: r["reason"] for r in _table(sorted(layout.shards.glob("*.rejected.csv")))}
    assert rejected == EXPECTED_REJECTIONS
    index = _table(sorted(layout.shards.glob("*.index.csv")))
    by_file: dict[str, list[dict]] = {}
    for row in index:
        by_file.setdefault(row["file"], []).append(row)
    assert len(by_file["patient2/mr_multiframe/1.dcm"]) == 10  # every frame of a multi-frame file
    assert {r["modality"] for r in index} == {"CT", "MR", "ultrasound", "unknown"}
    assert by_file["patient1/ct/1.dcm"][0]["body_part"] == "CHEST"
    assert report.images == len(index) == 15 and sum(report.rejected.values()) == len(EXPECTED_REJECTIONS)
    images = np.load(layout.images(0))
    wide = images[int(by_file["photos/wide.png"][0]["row"])]
    ramp = wide[16].astype(int)  # 12 bits in use in a 16-bit PNG: a ramp over the full 8-bit range
    assert ramp[0] <= 5 and ramp[-1] >= 250 and (np.diff(ramp) >= 0).all()
    flat = images[int(by_file["photos/flat.jpg"][0]["row"])]
    assert flat[0].max() == 0 and flat[16, 16] == 200  # 30x20 padded with black to a square, nothing cut off


def test_burned_in_files_only_when_allowed(archive: Path, tmp_path: Path) -> None:
    rules = Rules(size=32, allow_burned_in=True)
    ingest([str(archive)], tmp_path / "store", rules, workers=1, keep_paths=True, progress=False)
    files = {r["file"] for r in _table(sorted(StoreLayout(tmp_path / "store").shards.glob("*.index.csv")))}
    assert "patient4/burned_in.dcm" in files


def test_nothing_identifying_is_stored_or_printed(archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["ingest", str(archive), "--out", str(tmp_path / "store"), "--size", "32", "--workers", "1"]) == 0
    printed = capsys.readouterr()
    stored = b"".join(_store_files(tmp_path / "store").values())
    for secret in (PATIENT_NAME, PATIENT_ID, ACCESSION, "19700101", "Doe", "patient1", "jpeg12bit"):
        assert secret.encode() not in stored, f"{secret!r} reached the store"
        assert secret not in printed.out + printed.err, f"{secret!r} was printed"
    row = _table([StoreLayout(tmp_path / "store").index(0)])[0]
    assert len(row["patient_key"]) == 16 and len(row["file"]) == 16  # salted keys, not the values
    assert (tmp_path / "store" / "salt").stat().st_mode & 0o777 == 0o600


def test_a_rerun_adds_nothing_and_copies_are_kept_once(archive: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ingest([str(archive)], store, Rules(size=32), files_per_shard=4, workers=2, progress=False)
    before = _store_files(store)
    again = ingest([str(archive)], store, Rules(size=32), files_per_shard=4, workers=2, progress=False)
    assert again.shards_written == 0 and again.shards_skipped == again.shards_total
    assert _store_files(store) == before
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "same_ct.dcm").write_bytes((archive / "patient1/ct/1.dcm").read_bytes())
    ingest([str(archive), str(copy)], store, Rules(size=32), files_per_shard=4, workers=2, progress=False)
    assert len(open_store(store)) == 15  # the copy has the same SOP Instance UID: one image


def test_other_settings_on_an_existing_store_are_an_error(archive: Path, tmp_path: Path) -> None:
    ingest([str(archive)], tmp_path / "store", Rules(size=32), workers=1, progress=False)
    with pytest.raises(DataError, match="made with other settings"):
        ingest([str(archive)], tmp_path / "store", Rules(size=64), workers=1, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("x")
    with pytest.raises(DataError, match="not a pool store"):
        ingest([str(archive)], tmp_path / "busy", Rules(size=32), workers=1, progress=False)
    with pytest.raises(DataError, match="no such file or folder"):
        ingest([str(tmp_path / "nowhere")], tmp_path / "new", Rules(size=32), progress=False)


def test_shard_ranges_on_two_machines_make_the_same_store(archive: Path, tmp_path: Path) -> None:
    whole, split = tmp_path / "whole", tmp_path / "split"
    ingest([str(archive)], whole, Rules(size=32), files_per_shard=3, workers=1, progress=False)
    (split).mkdir()
    (split / "salt").write_bytes((whole / "salt").read_bytes())  # one store, one salt (shared folder)
    (split / "store.json").write_bytes((whole / "store.json").read_bytes())
    first = ingest([str(archive)], split, Rules(size=32), files_per_shard=3, shards=range(0, 3), progress=False)
    second = ingest([str(archive)], split, Rules(size=32), files_per_shard=3, shards=range(3, 99), progress=False)
    assert first.shards_written == 3 and second.shards_written == first.shards_total - 3
    assert np.array_equal(np.asarray(open_store(split).images), np.asarray(open_store(whole).images))


@pytest.mark.slow
def test_a_killed_ingest_continues_where_it_stopped(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    tree = tmp_path / "tree"
    for i in range(60):  # a tree of real files, many shards of work
        (tree / f"{i:03d}").mkdir(parents=True)
        for name in ("CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm"):
            (tree / f"{i:03d}" / name).write_bytes(Path(get_testdata_file(name)).read_bytes())
    command = [sys.executable, "-m", "medssl_lab.cli", "ingest", str(tree), "--size", "32", "--files-per-shard", "3"]
    command += ["--workers", "1"]
    reference = tmp_path / "reference"
    subprocess.run([*command, "--out", str(reference)], check=True, capture_output=True)
    store = tmp_path / "store"
    run = subprocess.Popen([*command, "--out", str(store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    layout = StoreLayout(store)
    deadline = time.monotonic() + 120
    while len(layout.done_shards()) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    done = len(layout.done_shards())
    assert 5 <= done < 60, "the ingest should have been killed part-way"
    resumed = subprocess.run([*command, "--out", str(store)], check=True, capture_output=True, text=True)
    assert f"{60 - done} shard(s) written, {done} already done" in resumed.stdout
    assert not [p for p in layout.shards.iterdir() if p.name.startswith(".")], "a half-written file was left"
    same = {k: v for k, v in _store_files(store).items() if not k.endswith(".json") and k != "salt"}
    ref = {k: v for k, v in _store_files(reference).items() if not k.endswith(".json") and k != "salt"}
    assert same.keys() == ref.keys()
    for name in same:  # keys are salted per store; the pixels are identical
        if name.endswith(".npy"):
            assert same[name] == ref[name], name


def test_data_sets_by_name_and_by_file_give_their_train_split(data_dir: Path, tmp_path: Path) -> None:
    by_name = ingest(["pneumoniamnist"], tmp_path / "a", Rules(size=28), data_dir=data_dir, progress=False)
    folder = tmp_path / "downloads"
    folder.mkdir()
    (folder / "pneumoniamnist.npz").symlink_to(data_dir / "pneumoniamnist.npz")
    by_file = ingest([str(folder)], tmp_path / "b", Rules(size=28), progress=False)
    assert by_name.counts == {("pneumoniamnist", "X-ray"): 4708}  # the train split: val and test stay unseen
    assert by_file.counts == {("downloads", "X-ray"): 4708}
    from medssl_lab.data.medmnist import load_medmnist

    train = load_medmnist("pneumoniamnist", data_dir=data_dir).train.images
    _, first = np.unique(train.reshape(len(train), -1), axis=0, return_index=True)
    distinct = train[np.sort(first)]  # the train split holds 18 pixel-identical copies: the store keeps each once
    assert len(distinct) == 4690
    assert np.array_equal(np.asarray(open_store(tmp_path / "a").images), distinct)  # 28 px in, 28 px out


def test_name_equals_source_sets_the_tag_and_an_existing_path_is_taken_whole(tmp_path: Path) -> None:
    folder, odd = tmp_path / "data", tmp_path / "a=b"
    for f in (folder, odd):
        f.mkdir()
        (f / "x.png").write_bytes(b"")
    tags = {u.source for u in plan_units([f"hospital-1={folder}", "pneumo=pneumoniamnist", str(folder), str(odd)])}
    assert tags == {"hospital-1", "pneumo", "data", "a=b"}
    subset = plan_units(["pneumo=pneumoniamnist"])[0]
    assert (subset.kind, subset.relative) == ("medmnist", "pneumoniamnist")  # still read as the named data set
    with pytest.raises(DataError, match="no such file or folder"):
        plan_units([f"two words={folder}"])


def test_machines_starting_one_store_at_once_share_one_salt(tmp_path: Path) -> None:
    script = "import sys; from pathlib import Path; from medssl_lab.data.store.layout import store_salt; "
    script += "print(store_salt(Path(sys.argv[1])).hex())"
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE) for _ in range(4)]
    salts = {run.communicate()[0].strip() for run in runs}
    assert len(salts) == 1 and [p.name for p in tmp_path.iterdir()] == ["salt"]


def test_real_volumes_are_ingested_slice_by_slice_and_bad_ones_rejected(volumes: Path, tmp_path: Path) -> None:
    report = ingest([str(volumes)], tmp_path / "store", Rules(size=32), workers=1, keep_paths=True, progress=False)
    layout = StoreLayout(tmp_path / "store")
    rejected = {r["file"]: r["reason"] for r in _table(sorted(layout.shards.glob("*.rejected.csv")))}
    assert rejected == EXPECTED_VOLUME_REJECTIONS
    index = _table(sorted(layout.shards.glob("*.index.csv")))
    per_file = {f: sum(r["file"] == f for r in index) for f in {r["file"] for r in index}}
    expected = {where: n for where, n in REAL_VOLUMES.values() if n}
    expected.update({"brain/copies/anatomical.mha": 25, "brain/copies/anatomical.nrrd": 25, "ct/ct_small.nii.gz": 1})
    assert per_file == expected
    assert {r["file"]: r["modality"] for r in index if r["file"].startswith("ct/")} == {"ct/ct_small.nii.gz": "CT"}
    assert {r["modality"] for r in index if not r["file"].startswith("ct/")} == {"MR"}
    assert report.images == len(index) == 137
    assert len(open_store(tmp_path / "store")) == 137 - 50  # the MHA and NRRD copies hold the same voxels


def test_the_ingest_command_reads_a_folder_of_volumes_with_a_stride(
    volumes: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "store"
    command = ["ingest", str(volumes), "--out", str(out), "--size", "32", "--stride", "2", "--workers", "1"]
    assert main(command) == 0
    printed = capsys.readouterr().out
    index = _table(sorted(StoreLayout(out).shards.glob("*.index.csv")))
    assert len(index) == 13 * 3 + 11 + 12 + 6 + 2 + 1  # every other slice, from slice 0
    assert {int(r["frame"]) for r in index if r["modality"] == "MR"} == set(range(0, 25, 2))
    assert "corrupt" in printed and "unsupported_volume" in printed and "empty" in printed
    assert "anatomical" not in printed and "anatomical" not in "".join(r["file"] for r in index)  # paths salted


def _pngs(folder: Path, n: int) -> Path:
    """``n`` small image files: a source that ingests in a moment."""
    from PIL import Image

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(["ingest", *args, "--workers", "1"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


BAD_SETTINGS = {  # option -> what the message must say
    ("--size", "0"): "--size 0",
    ("--size", "-3"): "--size -3",
    ("--size", "99999"): "from 8 to 1024",
    ("--stride", "0"): "--stride 0",
    ("--files-per-shard", "0"): "--files-per-shard 0",
    ("--shards", "5:2"): "--shards 5:2",
    ("--shards", "7:9"): "the plan has 1 shard(s)",
    ("--ct-window", "40,0"): "width must be positive",
}


@pytest.mark.parametrize("option", list(BAD_SETTINGS), ids=" ".join)
def test_bad_settings_are_refused_before_any_file_is_read_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, option: tuple[str, str]
) -> None:
    from medssl_lab.data.store import ingest as ingest_module

    source = _pngs(tmp_path / "photos", 3)

    def no_reading(*args: object) -> None:
        raise AssertionError("a file was decoded before the settings were checked")

    monkeypatch.setattr(ingest_module, "decode_file", no_reading)
    code, out, err = _cli(capsys, str(source), "--out", str(tmp_path / "store"), *option)
    assert code == 2 and err.startswith("error: ") and BAD_SETTINGS[option] in err, err
    assert "Traceback" not in err and "pretrain on it" not in out
    assert not (tmp_path / "store").exists()  # nothing half-made left behind


def test_an_out_that_is_a_file_or_inside_one_or_inside_a_source_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = _pngs(tmp_path / "photos", 3)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for out, says in (
        (notes, "--out is a file, not a folder"),
        (notes / "store", f"--out lies inside {notes}, which is a file"),
        (source / "store", f"--out lies inside the source folder {source}"),
    ):
        code, _, err = _cli(capsys, str(source), "--out", str(out))
        assert code == 2 and says in err and "NotADirectoryError" not in err, err
    assert notes.read_text() == "mine" and sorted(p.name for p in source.iterdir()) == ["0.png", "1.png", "2.png"]


def test_an_empty_shard_range_makes_the_store_and_shows_the_plan(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    source = _pngs(tmp_path / "photos", 3)
    code, out, _ = _cli(capsys, str(source), "--out", str(tmp_path / "store"), "--shards", "0:0")
    assert code == 0 and "0 shard(s) written, 0 already done, of 1 planned" in out  # docs/stores.md's first step
    assert (tmp_path / "store" / "store.json").is_file() and (tmp_path / "store" / "salt").is_file()


def test_an_ingest_whose_every_file_is_rejected_is_an_error_that_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "readme.txt").write_text("exported by the PACS\n")
    (junk / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    store = tmp_path / "store"
    code, out, err = _cli(capsys, str(junk), "--out", str(store), "--keep-paths")
    assert code == 2 and "pretrain on it" not in out
    assert "none of the 2 file(s) this run read gave an image, and the store holds no image" in err
    assert "1 corrupt, 1 not_an_image" in err and "broken.png: corrupt" in err and "*.rejected.csv" in err
    with pytest.raises(DataError, match="the store holds no image"):
        open_store(store)  # and pretraining on it says so too
    # a store that holds images from before: a run whose new files are all rejected still fails, and says so
    photos = _pngs(tmp_path / "photos", 2)
    other = tmp_path / "other"
    assert _cli(capsys, str(photos), "--out", str(other), "--files-per-shard", "2")[0] == 0
    code, out, err = _cli(capsys, str(photos), str(junk), "--out", str(other), "--files-per-shard", "2")
    assert code == 2 and "the store holds 2 image(s) from earlier runs" in err, err
    assert len(open_store(other)) == 2
