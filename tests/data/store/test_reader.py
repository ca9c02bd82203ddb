"""A store as a pool: tags from the index, mixed with the built-in sources, pretrained on exactly like memory."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from medssl_lab.data.pool import balanced_weights, build_pool, pool_provenance
from medssl_lab.data.stack import ImageStack
from medssl_lab.data.store.decode import decode_file
from medssl_lab.data.store.ingest import ingest
from medssl_lab.data.store.reader import image_bytes, open_store, rejected_files, stored_image, stored_rows
from medssl_lab.data.store.rules import Rules
from medssl_lab.data.types import ImageSet
from medssl_lab.errors import DataError
from medssl_lab.pretrain import PretrainConfig, Pretrainer, pretrain, process_group
from tests.data.store.conftest import EXPECTED_REJECTIONS


@pytest.fixture
def store(archive: Path, tmp_path: Path) -> Path:
    ingest([str(archive)], tmp_path / "store", Rules(size=32), files_per_shard=4, workers=1, progress=False)
    return tmp_path / "store"


def test_a_store_opens_as_a_tagged_pool_read_on_indexing(store: Path) -> None:
    pool = open_store(store)
    assert isinstance(pool.images, ImageStack) and pool.images.shape == (15, 32, 32)
    assert sorted(set(pool.modality)) == ["CT", "MR", "ultrasound", "unknown"]
    assert (pool.source == "archive").all() and pool.class_names[0].startswith("store/")
    weights = balanced_weights(pool.modality)
    assert np.isclose(weights[pool.modality == "CT"].sum(), 0.25)
    assert open_store(store, size=16).images[np.array([0])].shape == (1, 16, 16)


def test_a_store_mixes_with_the_built_in_sources(store: Path, data_dir: Path) -> None:
    pool = build_pool(["pneumoniamnist", str(store)], size=32, data_dir=data_dir)
    assert len(pool) == 4708 + 15 and isinstance(pool.images, ImageStack)
    assert set(pool.source) == {"pneumoniamnist", "archive"}
    assert len(pool_provenance(pool)["pixels_hash"]) == 20


def test_the_stores_tables_images_and_size_read_without_its_file_layout(archive: Path, tmp_path: Path) -> None:
    root = tmp_path / "kept"
    ingest([str(archive)], root, Rules(size=32), files_per_shard=4, workers=1, keep_paths=True, progress=False)
    rows = stored_rows(root)
    shards = [int(r["shard"]) for r in rows]
    assert len(rows) == 15 and shards == sorted(shards) and len(set(shards)) > 1  # every finished shard, in order
    assert sum(r["file"] == "patient2/mr_multiframe/1.dcm" for r in rows) == 10  # one row per frame
    assert {r["file"]: r["reason"] for r in rejected_files(root)} == EXPECTED_REJECTIONS
    ct = stored_image(root, "archive", "patient1/ct/1.dcm")
    assert ct is not None and ct.dtype == np.uint8 and ct.shape == (32, 32)
    decoded = decode_file(archive / "patient1/ct/1.dcm", Rules(size=32), b"salt")
    assert np.array_equal(ct, decoded.images[0])  # the image the ingest made of that file
    frames = [stored_image(root, "archive", "patient2/mr_multiframe/1.dcm", frame) for frame in (0, 9)]
    assert frames[0] is not None and frames[1] is not None and not np.array_equal(frames[0], frames[1])
    assert stored_image(root, "archive", "patient3/rt/plan.dcm") is None  # rejected: no image
    assert stored_image(root, "other", "patient1/ct/1.dcm") is None
    assert stored_image(root, "archive", "patient1/ct/1.dcm", frame=1) is None
    assert image_bytes(root) == sum(p.stat().st_size for p in (root / "shards").glob("*.npy"))
    assert image_bytes(root) > 15 * 32 * 32
    with pytest.raises(DataError, match="not a pool store"):
        stored_rows(tmp_path)


def test_an_unfinished_or_missing_store_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a pool store"):
        open_store(tmp_path)
    with pytest.raises(ValueError, match="pool store folder"):
        build_pool([str(tmp_path)], size=32)


def _config(**overrides: object) -> PretrainConfig:
    settings: dict = dict(batch_size=8, epochs=2, n_prototypes=8, log_every=1, device="cpu", balance=None)
    return PretrainConfig.for_profile("smoke", **{**settings, **overrides})


def test_pretraining_from_a_store_equals_pretraining_from_memory(store: Path) -> None:
    on_disk = open_store(store)
    in_memory = ImageSet(
        np.asarray(on_disk.images), on_disk.labels, on_disk.class_names, on_disk.task, on_disk.modality, on_disk.source
    )
    torch.set_num_threads(1)
    losses = [Pretrainer(_config(), pool).fit(progress=False).column("loss") for pool in (on_disk, in_memory)]
    assert len(losses[0]) == 2 and np.array_equal(losses[0], losses[1])


def test_a_run_on_a_store_resumes_exactly(store: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    whole = Pretrainer(_config(epochs=4), open_store(store)).fit(progress=False).column("loss")
    first = Pretrainer(_config(epochs=4), open_store(store), tmp_path)
    first.fit(progress=False, stop_after=2)
    first.save()
    resumed = pretrain(_config(epochs=4), open_store(store), tmp_path, progress=False)
    assert np.array_equal(resumed.history.column("loss"), whole)


def _ddp_worker(rank: int, port: int, store: str, out: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2"
    )
    torch.set_num_threads(1)
    with process_group("cpu"):
        _train_and_compare_shares(rank, store, out)


def _train_and_compare_shares(rank: int, store: str, out: str) -> None:
    read: list[np.ndarray] = []  # what each step's batch was, in step order
    trainer = Pretrainer(_config(), open_store(store), out)
    original = trainer.reader.get
    trainer.reader.get = lambda index: (read.append(index.numpy().copy()), original(index))[1]  # type: ignore[method-assign]
    trainer.fit(progress=False)
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(2)]
    dist.all_gather(gathered, flat)
    mine = torch.as_tensor(np.stack(read))  # (steps, 4): this rank's share of every global batch
    both = [torch.zeros_like(mine) for _ in range(2)]
    dist.all_gather(both, mine)
    if rank == 0:
        disjoint = all(not set(a.tolist()) & set(b.tolist()) for a, b in zip(both[0], both[1]))
        result = {"same": torch.equal(gathered[0], gathered[1]), "disjoint": disjoint, "steps": trainer.step}
        torch.save(result, Path(out) / "ddp.pt")
    dist.barrier()


@pytest.mark.slow
def test_two_ddp_processes_read_disjoint_shares_of_a_store(store: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, str(store), str(tmp_path / "run")), nprocs=2, join=True)
    result = torch.load(tmp_path / "run" / "ddp.pt", weights_only=True)
    assert result["same"] and result["disjoint"] and result["steps"] == 2  # 15 images, batch 8: 1 step per epoch


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """Six image files in two shards of three, opened once (so its index cache exists, as in a store in use)."""
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(rng.integers(0, 256, (40, 40), dtype=np.uint8)).save(photos / f"{i}.png")
    ingest([str(photos)], tmp_path / "small", Rules(size=16), files_per_shard=3, workers=1, progress=False)
    assert len(open_store(tmp_path / "small")) == 6
    return tmp_path / "small"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # seen as changed at once


def _save(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as handle:
        np.save(handle, array)


#: what is damaged -> (the damage, the file the message names, what it says)
DAMAGE = {
    "store.json not JSON": (lambda s: (s / "store.json").write_text("{rules: 16"), "store.json", "not JSON"),
    "store.json a list": (lambda s: (s / "store.json").write_text("[1]"), "store.json", "not a JSON object"),
    "store.json without size": (
        lambda s: _edit(s / "store.json", '"size": 16', '"width": 16'),
        "store.json",
        "rules.size (None, want 8 to 1024)",
    ),
    "shard record not JSON": (
        lambda s: (s / "shards/000001.json").write_text("{"),
        "shards/000001.json",
        "shard 1's record is damaged",
    ),
    "shard record without count": (
        lambda s: (s / "shards/000001.json").write_text('{"digest": "x"}'),
        "shards/000001.json",
        "lacks its image count",
    ),
    "index row past the end": (
        lambda s: _edit(s / "shards/000001.index.csv", "\n2,", "\n7,"),
        "shards/000001.index.csv",
        "a row points at image 7, past the end of its shard (images 0 to 2)",
    ),
    "index row negative": (
        lambda s: _edit(s / "shards/000000.index.csv", "\n1,", "\n-1,"),
        "shards/000000.index.csv",
        "a row points at image -1",
    ),
    "index row twice": (
        lambda s: _edit(s / "shards/000000.index.csv", "\n1,", "\n0,"),
        "shards/000000.index.csv",
        "two rows point at image 0",
    ),
    "index row missing": (
        lambda s: (s / "shards/000001.index.csv").write_text(
            "\n".join((s / "shards/000001.index.csv").read_text().splitlines()[:-1]) + "\n"
        ),
        "shards/000001.index.csv",
        "2 row(s), but the shard holds 3 image(s)",
    ),
    "index not a number": (
        lambda s: _edit(s / "shards/000000.index.csv", "\n1,", "\none,"),
        "shards/000000.index.csv",
        "index cannot be read",
    ),
    "index without its columns": (
        lambda s: (s / "shards/000000.index.csv").write_text("a,b\n1,2\n"),
        "shards/000000.index.csv",
        "index cannot be read",
    ),
    "index missing": (
        lambda s: (s / "shards/000000.index.csv").unlink(),
        "shards/000000.index.csv",
        "index cannot be read",
    ),
    "shard cut short": (
        lambda s: (s / "shards/000001.npy").write_bytes((s / "shards/000001.npy").read_bytes()[:-100]),
        "shards/000001.npy",
        "the file is cut short",
    ),
    "shard of another size": (
        lambda s: _save(s / "shards/000001.npy", np.zeros((3, 32, 32), np.uint8)),
        "shards/000001.npy",
        "holds 3 image(s) of 32x32 px, but its record says 3 and store.json says 16x16 px",
    ),
    "shard with another count": (
        lambda s: _save(s / "shards/000001.npy", np.zeros((4, 16, 16), np.uint8)),
        "shards/000001.npy",
        "holds 4 image(s)",
    ),
    "shard of floats": (
        lambda s: _save(s / "shards/000000.npy", np.zeros((3, 16, 16), np.float32)),
        "shards/000000.npy",
        "want (n, H, W) uint8",
    ),
    "shard missing": (lambda s: (s / "shards/000000.npy").unlink(), "shards/000000.npy", "images are missing"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_store_is_named_when_opened_with_what_and_where(small_store: Path, case: str) -> None:
    damage, where, says = DAMAGE[case]
    damage(small_store)
    with pytest.raises(DataError) as info:
        open_store(small_store)
    message = str(info.value)
    assert message.startswith(f"{small_store / where}: ") and says in message, message
    assert "ingest" in message or "restore" in message  # and what to do


def test_pretraining_on_a_store_whose_index_points_past_its_shard_is_a_clear_error(
    small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from medssl_lab.cli import main

    _edit(small_store / "shards/000001.index.csv", "\n2,", "\n70,")
    command = ["pretrain", "--source", str(small_store), "--profile", "smoke", "--out", str(tmp_path / "run")]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"error: {small_store / 'shards/000001.index.csv'}: a row points at image 70" in err
    assert "IndexError" not in err and "Traceback" not in err and not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_damaged_index_cache_is_made_again(small_store: Path) -> None:
    (folder,) = (small_store / "index").iterdir()
    (folder / "position.npy").write_bytes(b"\x93NUMPY not an array")
    assert len(open_store(small_store)) == 6
    assert np.load(folder / "position.npy").tolist() == list(range(6))  # rebuilt
