import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from deephash.codes import hamming_distance_matrix, pack_bits, sign
from deephash.collection import Collection, CollectionLockedError, NewItem
from deephash.collection.log import read_log
from deephash.training.runs import load_run


def brute_force(db_codes: np.ndarray, db_ids: np.ndarray, query: np.ndarray, k: int):  # type: ignore[no-untyped-def]
    """(ids, distances) of the k nearest by (distance, id), by a full sort."""
    d = hamming_distance_matrix(query[None, :], db_codes)[0]
    order = np.lexsort((db_ids, d))[:k]
    return db_ids[order].tolist(), d[order].tolist()


def add_files(col: Collection, paths: list[Path], labels: list[str]) -> list[int]:
    return col.add_images([p.read_bytes() for p in paths], labels, [str(p) for p in paths])


@pytest.mark.parametrize("backend", ["mih", "flat"])
def test_codes_and_search_match_brute_force(
    backend: str, tiny_hash_run: Path, files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    paths, labels = files
    with Collection.create(tmp_path / "c", tiny_hash_run, backend=backend) as col:
        ids = add_files(col, paths, labels)
        assert ids == list(range(len(paths))) and col.count == len(paths)
        # the codes are the run's own encoding of the files (LoadedRun's decoder, not ours)
        run = load_run(tiny_hash_run)
        expected = pack_bits(sign(run.encode(run.load_images(paths))))
        np.testing.assert_array_equal(col.codes, expected)
        assert col.get(3).label == labels[3] and col.get(3).path == str(paths[3])
        assert (col.directory / "images" / "3.png").read_bytes() == paths[3].read_bytes()
        col.remove([0, 5, 6])
        db_ids = np.array([i for i in ids if i not in (0, 5, 6)])
        db_codes = expected[db_ids]
        for q in (1, 7, 42):
            for k in (1, 10, 200):
                got = col.search(expected[q], k)[0]
                assert ([h.id for h in got], [h.distance for h in got]) == brute_force(
                    db_codes, db_ids, expected[q], k
                )
            by_id = col.search_by_id(q, 10)
            assert [h.id for h in by_id] == brute_force(db_codes, db_ids, expected[q], 10)[0]
            near = col.search(expected[q], 200, radius=2)[0]
            ref_ids, ref_d = brute_force(db_codes, db_ids, expected[q], 200)
            assert [h.id for h in near] == [i for i, d in zip(ref_ids, ref_d) if d <= 2]
        with pytest.raises(KeyError, match="no item with id 5"):
            col.search_by_id(5, 3)


def test_reopen_replays_and_never_reuses_ids(
    crash: Callable[[Collection], None],
    tiny_hash_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    col = Collection.create(tmp_path / "c", tiny_hash_run, load_model=True)
    add_files(col, paths[:10], labels[:10])
    col.remove([8, 9])
    codes, ids = col.codes.copy(), col.ids.copy()
    crash(col)  # nothing compacted: the state lives in the log
    assert len(read_log(tmp_path / "c" / "log.bin").records) == 3
    col = Collection.open(tmp_path / "c")
    np.testing.assert_array_equal(col.codes, codes)
    np.testing.assert_array_equal(col.ids, ids)
    assert col.get(4).label == labels[4]
    col.close()  # compacts: the snapshot holds everything, the log only its begin record
    assert read_log(tmp_path / "c" / "log.bin").records == [{"op": "begin", "next_id": 10}]
    with Collection.open(tmp_path / "c") as col:
        np.testing.assert_array_equal(col.codes, codes)
        assert add_files(col, paths[10:11], labels[10:11]) == [10]  # 8 and 9 stay retired
        assert sorted(p.name for p in (tmp_path / "c" / "images").iterdir()) == sorted(
            f"{i}.png" for i in [*range(8), 10]
        )


def test_torn_tail_and_orphan_images_are_dropped(
    crash: Callable[[Collection], None],
    tiny_hash_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    col = Collection.create(tmp_path / "c", tiny_hash_run)
    add_files(col, paths[:3], labels[:3])
    crash(col)
    log = tmp_path / "c" / "log.bin"
    good = log.stat().st_size
    with log.open("ab") as f:  # a record cut short by kill -9, and its image written before it
        f.write(b'\xff\x00\x00\x00\x12\x34\x56\x78{"op":"add","items":[{"id":3')
    (tmp_path / "c" / "images" / "3.png").write_bytes(paths[3].read_bytes())
    with pytest.warns(UserWarning, match="dropped 36 bytes"):
        col = Collection.open(tmp_path / "c")
    assert col.count == 3 and log.stat().st_size == good
    assert not (tmp_path / "c" / "images" / "3.png").exists()
    assert add_files(col, paths[3:4], labels[3:4]) == [3]
    crash(col)
    with Collection.open(tmp_path / "c") as col:
        assert col.ids.tolist() == [0, 1, 2, 3] and col.get(3).path == str(paths[3])


def test_crash_inside_compact_keeps_each_item_once(
    crash: Callable[[Collection], None],
    tiny_hash_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    col = Collection.create(tmp_path / "c", tiny_hash_run)
    add_files(col, paths[:6], labels[:6])
    col.remove([1, 4])
    codes = col.codes.copy()
    log = tmp_path / "c" / "log.bin"
    old_log = log.read_bytes()
    col.compact()
    crash(col)
    log.write_bytes(old_log)  # new snapshot written, old log not yet replaced
    with Collection.open(tmp_path / "c") as col:
        assert col.ids.tolist() == [0, 2, 3, 5]
        np.testing.assert_array_equal(col.codes, codes)
        assert add_files(col, paths[6:7], labels[6:7]) == [6]


def test_one_writer_at_a_time(tiny_hash_run: Path, tmp_path: Path) -> None:
    col = Collection.create(tmp_path / "c", tiny_hash_run)
    with pytest.raises(CollectionLockedError, match="in use by process"):
        Collection.open(tmp_path / "c", load_model=False)
    reader = Collection.open(tmp_path / "c", read_only=True, load_model=False)
    assert reader.count == 0
    with pytest.raises(RuntimeError, match="read-only"):
        reader.remove([0])
    col.close()
    Collection.open(tmp_path / "c", load_model=False).close()


def test_model_and_index_widths_must_agree(tiny_hash_run: Path, tmp_path: Path) -> None:
    from deephash.index import create_index

    Collection.create(tmp_path / "c", tiny_hash_run).close()
    settings = json.loads((tmp_path / "c" / "collection.json").read_text())
    (tmp_path / "c" / "collection.json").write_text(json.dumps({**settings, "bits": 8}))
    with pytest.raises(ValueError, match=r"holds 16-bit codes but collection\.json says 8"):
        Collection.open(tmp_path / "c", load_model=False)
    create_index("mih", 8).save(tmp_path / "c" / "index.dhx")
    with pytest.raises(ValueError, match=r"makes 16-bit codes but collection .* holds 8-bit"):
        Collection.open(tmp_path / "c")
    # the failed open released the lock
    Collection.open(tmp_path / "c", load_model=False).close()


def test_create_errors(tiny_hash_run: Path, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        Collection.create(tmp_path / "full", tiny_hash_run)
    with pytest.raises(ValueError, match="unknown collection backend"):
        Collection.create(tmp_path / "a", tiny_hash_run, backend="faiss")
    with pytest.raises(FileNotFoundError, match="not a deephash run folder"):
        Collection.create(tmp_path / "b", tmp_path)
    with pytest.raises(FileNotFoundError, match="not a deephash collection"):
        Collection.open(tmp_path / "full")


def test_bad_additions_change_nothing(tiny_hash_run: Path, tmp_path: Path) -> None:
    with Collection.create(tmp_path / "c", tiny_hash_run) as col:
        col.add([NewItem(np.array([1, 2], np.uint8))])
        before = (col.count, col.next_id, (tmp_path / "c" / "log.bin").stat().st_size)
        with pytest.raises(ValueError, match="not a readable image"):
            col.add_images([b"\x89PNG\r\n\x1a\n" + b"\x00" * 40])
        with pytest.raises(ValueError, match="codes must have 2 bytes"):
            col.add([NewItem(np.array([1, 2, 3], np.uint8))])
        with pytest.raises(KeyError):
            col.remove([0, 99])
        assert (col.count, col.next_id, (tmp_path / "c" / "log.bin").stat().st_size) == before


def test_concurrent_searches_see_whole_changes(tiny_hash_run: Path, tmp_path: Path) -> None:
    """Writers add and remove batches of 4 items with the query's exact code while readers
    search: every answer holds whole batches (a multiple of 4 exact matches, each batch complete)."""
    rng = np.random.default_rng(0)
    q = np.array([0xAA, 0x55], np.uint8)
    batch = 4
    errors: list[str] = []
    stop = threading.Event()
    with Collection.create(tmp_path / "c", tiny_hash_run, backend="mih") as col:
        noise = rng.integers(0, 256, (200, 2), dtype=np.uint8)
        noise[(noise == q).all(axis=1)] ^= 1
        col.add([NewItem(c) for c in noise])

        def reader() -> None:
            while not stop.is_set():
                hits = col.search(q, 300)[0]
                exact = sorted(h.id for h in hits if h.distance == 0)
                if len(exact) % batch or any(
                    exact[i : i + batch] != list(range(exact[i], exact[i] + batch))
                    for i in range(0, len(exact), batch)
                ):
                    errors.append(f"half-applied change seen: {exact}")

        def writer() -> None:
            live: list[list[int]] = []
            for step in range(60):
                live.append(col.add([NewItem(q) for _ in range(batch)]))
                if step % 3 == 2:
                    col.remove(live.pop(0))

        readers = [threading.Thread(target=reader) for _ in range(3)]
        for t in readers:
            t.start()
        writer()
        stop.set()
        for t in readers:
            t.join()
        assert not errors, errors[:3]
        ids, d = brute_force(col.codes, col.ids, q, 300)
        assert [h.id for h in col.search(q, 300)[0]] == ids
        assert sum(x == 0 for x in d) == 40 * batch


def test_random_changes_match_brute_force_through_rebuilds(
    tiny_hash_run: Path, tmp_path: Path
) -> None:
    """Additions and removals hit the delta, the removed set and rebuilds of the main index;
    after each one, searches equal a brute-force ranking of what a plain dict says is there."""
    rng = np.random.default_rng(1)
    truth: dict[int, bytes] = {}
    with Collection.create(tmp_path / "c", tiny_hash_run, backend="mih") as col:
        col.rebuild_min = 8
        for step in range(150):
            if truth and rng.random() < 0.4:
                gone = rng.choice(sorted(truth), size=min(len(truth), int(rng.integers(1, 4))))
                col.remove(gone.tolist())
                for i in gone.tolist():
                    truth.pop(i, None)
            else:
                codes = rng.integers(0, 256, (int(rng.integers(1, 6)), 2), dtype=np.uint8)
                if truth and rng.random() < 0.5:  # exact duplicates make ties
                    codes[0] = np.frombuffer(truth[int(rng.choice(sorted(truth)))], np.uint8)
                for i, c in zip(col.add([NewItem(c) for c in codes]), codes):
                    truth[i] = c.tobytes()
            ids = np.array(sorted(truth), dtype=np.int64)
            assert col.ids.tolist() == ids.tolist()
            if not len(ids):
                continue
            db = np.stack([np.frombuffer(truth[i], np.uint8) for i in ids.tolist()])
            np.testing.assert_array_equal(col.codes, db)
            for q in rng.integers(0, 256, (2, 2), dtype=np.uint8):
                k = int(rng.integers(1, 12))
                got = col.search(q, k)[0]
                assert ([h.id for h in got], [h.distance for h in got]) == brute_force(
                    db, ids, q, k
                )
            if step == 100:  # the same through a reopen
                col.close()
                col = Collection.open(tmp_path / "c")
                col.rebuild_min = 8
        col.close()


def test_images_lost_in_a_crash_come_back_from_the_log(
    crash: Callable[[Collection], None],
    tiny_hash_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    col = Collection.create(tmp_path / "c", tiny_hash_run)
    add_files(col, paths[:4], labels[:4])
    crash(col)
    # the files were written without their own fsync: a power cut may lose or truncate them
    (tmp_path / "c" / "images" / "1.png").unlink()
    (tmp_path / "c" / "images" / "2.png").write_bytes(b"")
    with Collection.open(tmp_path / "c") as col:
        for i in range(4):
            image = col.image_file(i)
            assert image is not None and image.read_bytes() == paths[i].read_bytes()
    # once compacted (closing does it), the log no longer holds the image bytes
    assert read_log(tmp_path / "c" / "log.bin").records == [{"op": "begin", "next_id": 4}]
