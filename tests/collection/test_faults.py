"""A full disk under a collection, injected at the system calls: nothing acknowledged is lost,
nothing half-made is left, searches keep working, and writes work again once there is space."""

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deephash.collection.compaction as compaction_module
import deephash.collection.log as log_module
from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection, NewItem
from deephash.collection.image_store import ImageStore
from deephash.collection.log import read_log


def brute_ids(col: Collection, query: np.ndarray, k: int) -> list[int]:
    d = hamming_distance_matrix(query[None, :], col.codes)[0]
    return col.ids[np.lexsort((col.ids, d))[:k]].tolist()


def full_disk_pwrite(real: Any, room: int) -> Any:
    """os.pwrite on a disk with ``room`` bytes left: a short write, then ENOSPC."""

    def pwrite(fd: int, data: bytes, offset: int) -> int:
        if room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(real(fd, data[:room], offset))

    return pwrite


@pytest.mark.parametrize("room", [0, 10])  # nothing written / a short (torn) write
def test_a_full_disk_refuses_the_change_and_loses_nothing(
    tiny_hash_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, room: int
) -> None:
    rng = np.random.default_rng(room)
    codes = rng.integers(0, 256, (40, 2), dtype=np.uint8)
    folder = tmp_path / "c"
    col = Collection.create(folder, tiny_hash_run)
    acked = col.add([NewItem(c, b"\x89PNG fake", ".png", "a") for c in codes[:30]])
    col.remove(acked[:3])
    log_size = (folder / "log.bin").stat().st_size
    before = brute_ids(col, codes[5], 10)

    monkeypatch.setattr(log_module.os, "pwrite", full_disk_pwrite(os.pwrite, room))
    with pytest.raises(OSError) as add_error:
        col.add([NewItem(c) for c in codes[30:]])
    assert add_error.value.errno == errno.ENOSPC
    with pytest.raises(OSError):
        col.remove([acked[5]])
    assert (folder / "log.bin").stat().st_size == log_size  # the torn part was cut off
    assert col.count == 27 and col.next_id == 30
    assert [h.id for h in col.search(codes[5], 10)[0]] == before  # searches keep working
    monkeypatch.undo()

    late = col.add([NewItem(c) for c in codes[30:]])  # space again: ids continue, none reused
    assert late == list(range(30, 40))
    expected = sorted(set(acked[3:]) | set(late))
    col.close()
    with Collection.open(folder, load_model=False) as again:
        assert again.ids.tolist() == expected
        assert [h.id for h in again.search(codes[5], 10)[0]] == brute_ids(again, codes[5], 10)
        assert (folder / "images" / f"{acked[4]}.png").read_bytes() == b"\x89PNG fake"


def test_image_files_and_compaction_that_hit_a_full_disk_do_not_fail_an_addition(
    tiny_hash_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The log record is durable first; the image file and the automatic compaction come after
    # it: their failures are retried later, and the addition stands.
    folder = tmp_path / "c"
    col = Collection.create(folder, tiny_hash_run)
    col.compact_every = 2
    rng = np.random.default_rng(1)
    real_write_image = ImageStore.write

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ImageStore, "write", no_space)
    ids = []
    for i in range(4):
        ids += col.add([NewItem(rng.integers(0, 256, 2, dtype=np.uint8), f"img{i}".encode())])
    assert ids == [0, 1, 2, 3] and col.count == 4
    assert not list((folder / "images").iterdir())  # no file, no half-written file
    assert len(read_log(folder / "log.bin").records) == 5  # compaction failed: log kept
    col.remove([1])
    monkeypatch.setattr(ImageStore, "write", real_write_image)
    assert col._journal is not None
    col._journal.retry_at = 0.0
    col.compact()  # writes the images the disk refused before it drops the log
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["0.png", "2.png", "3.png"]
    assert (folder / "images" / "3.png").read_bytes() == b"img3"
    col.close()
    with Collection.open(folder, load_model=False) as again:
        assert again.ids.tolist() == [0, 2, 3]


def test_a_failed_compaction_keeps_the_old_log_open(
    tiny_hash_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "c"
    col = Collection.create(folder, tiny_hash_run)
    rng = np.random.default_rng(2)
    col.add([NewItem(c) for c in rng.integers(0, 256, (5, 2), dtype=np.uint8)])

    def no_space(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(compaction_module, "write_new_log", no_space)
    with pytest.raises(OSError):
        col.compact()
    monkeypatch.undo()
    assert col.add([NewItem(rng.integers(0, 256, 2, dtype=np.uint8))]) == [5]  # log still open
    col.close()
    with Collection.open(folder, load_model=False) as again:
        assert again.ids.tolist() == list(range(6))
