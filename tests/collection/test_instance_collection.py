"""A collection of binary ``instance`` descriptors: search equals brute force over the union of
code and descriptor candidates, codes and descriptors stay in step, bad input is refused."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from _instance_reference import (
    BITS,
    brute_force,
    check_against_brute_force,
    hamming,
    random_items,
    triples,
)

from deephash.collection import Collection, NewItem
from deephash.training.runs import load_run


@pytest.fixture(autouse=True)
def torch_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored bits are compared with torch's own signs (ONNX Runtime may differ in rounding)."""
    monkeypatch.setenv("DEEPHASH_ENCODER", "torch")


def reference_bits(run_dir: Path, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(codes, instance bits) of the files by hand: the network's two outputs, signs packed
    with numpy (bit j of byte b is output 8 b + j, as deephash.codes.pack_bits)."""
    run = load_run(run_dir)
    with torch.no_grad():
        out, inst = run.net.with_instance(run.preprocess(run.load_images(paths)))

    def pack(x: torch.Tensor) -> np.ndarray:
        return np.packbits((x.numpy() >= 0).astype(np.uint8), axis=1, bitorder="little")

    return pack(out), pack(inst)


@pytest.mark.parametrize("rebuild_min", [1024, 8])  # changes kept in deltas / rebuilt often
def test_search_equals_brute_force_through_adds_and_removes(
    rebuild_min: int,
    tiny_instance_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    ref_codes, ref_bits = reference_bits(tiny_instance_run, paths[:40])
    rng = np.random.default_rng(rebuild_min)
    with Collection.create(tmp_path / "c", tiny_instance_run, rerank="instance") as col:
        col.rebuild_min = rebuild_min
        assert col.descriptor == "instance" and col.binary_descriptor
        assert (col.candidates, col.descriptor_candidates, col.descriptor_dim) == (32, 32, BITS)
        ids = col.add_images([p.read_bytes() for p in paths[:40]], labels[:40])
        np.testing.assert_array_equal(col.codes, ref_codes)
        np.testing.assert_array_equal(col.descriptors, ref_bits)
        col.add(random_items(rng, 150, ref_bits[0]))
        gone = rng.choice(col.ids, 50, replace=False).tolist()
        col.remove(gone)
        col.add(random_items(rng, 30, ref_bits[3]))
        live = [i for i in range(220) if i not in set(gone)]
        assert col.ids.tolist() == live and len(col.descriptors) == len(live)  # type: ignore[arg-type]
        kept = [i for i in ids if i not in set(gone)]
        np.testing.assert_array_equal(col.descriptors[: len(kept)], ref_bits[kept])  # type: ignore[index]
        queries = rng.choice(col.ids, 12, replace=False).tolist()
        assert check_against_brute_force(col, queries) == 60
        # by image: one pass gives code and bits, equal to the reference; search as brute force
        codes, bits = col.encode_with_descriptors(
            np.stack([col.decode(p.read_bytes()).rgb for p in paths[:5]])
        )
        np.testing.assert_array_equal(codes, ref_codes[:5])
        np.testing.assert_array_equal(bits, ref_bits[:5])
        hits = col.search(codes, 7, descriptors=bits)
        for row, (c, d) in enumerate(zip(codes, bits)):
            assert triples(hits[row]) == brute_force(col, c, d, 7, 32, 32)
        # by code alone: Hamming order as before, no score
        by_code = col.search(codes[:1], 4)[0]
        dc = hamming(codes[0], col.codes)
        want = [int(col.ids[j]) for j in np.lexsort((col.ids, dc))[:4]]
        assert [h.id for h in by_code] == want and all(h.score is None for h in by_code)


def test_restart_and_replay_keep_codes_and_descriptors_in_step(
    crash: Callable[[Collection], None],
    tiny_instance_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    rng = np.random.default_rng(1)
    _, ref_bits = reference_bits(tiny_instance_run, paths[:1])
    col = Collection.create(tmp_path / "c", tiny_instance_run, rerank="instance")
    col.add_images([p.read_bytes() for p in paths[:20]], labels[:20])
    col.add(random_items(rng, 60, ref_bits[0]))
    col.compact()  # a snapshot and descriptors.npz (packed bits) ...
    col.add(random_items(rng, 40, ref_bits[0]))  # ... plus the log
    col.remove([3, 25, 90])
    before = (col.ids.copy(), col.codes.copy(), col.descriptors.copy())  # type: ignore[union-attr]
    answers = {q: triples(col.search_by_id(q, 6, candidates=4)) for q in (0, 30, 85)}
    crash(col)
    with np.load(tmp_path / "c" / "descriptors.npz") as f:
        assert f["descriptors"].dtype == np.uint8 and f["descriptors"].shape == (80, 8)
    for _ in range(2):  # replayed after the crash, then from the snapshot after a clean close
        with Collection.open(tmp_path / "c", load_model=False) as col:
            for want, got in zip(before, (col.ids, col.codes, col.descriptors)):
                np.testing.assert_array_equal(got, want)
            assert {q: triples(col.search_by_id(q, 6, candidates=4)) for q in answers} == answers
            assert check_against_brute_force(col, [0, 30, 85]) == 15


def test_old_collections_open_and_search_as_before(tmp_path: Path) -> None:
    """Collections written by the code before binary descriptors (data/old-collections, made by
    its make_old_collections.py: version 1 without descriptors, version 2 with float16
    early-stages, each a snapshot plus a log): same items, descriptors and answers."""
    import hashlib
    import shutil

    data = Path(__file__).parent / "data" / "old-collections"
    expected = json.loads((data / "expected.json").read_text())
    for name, version in (("v1", 1), ("v2", 2)):
        folder = tmp_path / name
        shutil.copytree(data / name, folder)
        (folder / "images").mkdir(exist_ok=True)  # git keeps no empty folder
        assert json.loads((folder / "collection.json").read_text())["version"] == version
        want = expected[name]
        with Collection.open(folder, load_model=False) as col:
            assert col.ids.tolist() == want["ids"] and col.codes.tolist() == want["codes"]
            assert not col.binary_descriptor and col.reranks == (version == 2)
            if version == 2:
                stored = col.descriptors.astype("<f2").tobytes()  # type: ignore[union-attr]
                assert hashlib.sha256(stored).hexdigest() == want["descriptors_sha256"]
            for item_id, hits in want["search"].items():
                got = [[h.id, h.distance, h.score] for h in col.search_by_id(int(item_id), 5)]
                assert got == hits
            assert len(want["search"]) == col.count
        # closed: compacted by the new code, still the old version and readable again
        assert json.loads((folder / "collection.json").read_text())["version"] == version
        with Collection.open(folder, load_model=False) as col:
            assert col.ids.tolist() == want["ids"]


def test_bad_input_is_refused_and_nothing_is_written(
    tiny_instance_run: Path, tiny_hash_run: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="instance outputs"):
        Collection.create(tmp_path / "no", tiny_hash_run, rerank="instance")
    assert not (tmp_path / "no").exists()
    with pytest.raises(ValueError, match="binary descriptor"):
        Collection.create(
            tmp_path / "f", tiny_hash_run, rerank="early-stages", descriptor_candidates=4
        )
    assert not (tmp_path / "f").exists()
    with Collection.create(
        tmp_path / "c", tiny_instance_run, rerank="instance", candidates=8, descriptor_candidates=16
    ) as col:
        col.add([NewItem(np.array([1, 2], np.uint8), descriptor=np.arange(8, dtype=np.uint8))])
        log_size = (tmp_path / "c" / "log.bin").stat().st_size
        for bad, message in (
            (np.zeros(7, np.uint8), "8 bytes of packed bits"),
            (np.zeros(64, np.float32), "8 bytes of packed bits"),
            (np.zeros(8, np.float32), "packed uint8 instance bits"),
        ):
            with pytest.raises(ValueError, match=message):
                col.add([NewItem(np.array([1, 2], np.uint8), descriptor=bad)])
        with pytest.raises(ValueError, match="needs one"):
            col.add([NewItem(np.array([1, 2], np.uint8))])
        assert col.count == 1 and (tmp_path / "c" / "log.bin").stat().st_size == log_size
        code = col.code_of(0)[None]
        with pytest.raises(ValueError, match="packed uint8 instance bits"):
            col.search(code, 1, descriptors=np.zeros((1, 64), np.float32))
        with pytest.raises(ValueError, match="packed uint8 instance bits"):
            col.search(code, 1, descriptors=np.zeros((1, 9), np.uint8))
        with pytest.raises(ValueError, match="descriptor_candidates"):
            col.search_by_id(0, 1, descriptor_candidates=0)
        settings = json.loads((tmp_path / "c" / "collection.json").read_text())
        assert settings["version"] == 3
        assert settings["rerank"] == {
            "descriptor": "instance", "dim": 64, "dtype": "bits", "bytes": 8,
            "candidates": 8, "descriptor_candidates": 16, "descriptor_index": "mih",
                "copy_radius": 10,  # by default 5/32 of the 64 bits
        }  # fmt: skip
        info = col.info()["rerank"]
        assert (info["bytes_per_item"], info["memory_bytes_per_item"]) == (8, 8)
    with Collection.create(tmp_path / "plain", tiny_instance_run, rerank=None) as col:
        col.add([NewItem(np.array([1, 2], np.uint8))])
        with pytest.raises(ValueError, match="stores no descriptors"):
            col.search(col.code_of(0)[None], 1, descriptors=np.zeros((1, 8), np.uint8))
        with pytest.raises(ValueError, match="descriptor_candidates is for"):
            col.search_by_id(0, 1, descriptor_candidates=4)


def test_duplicates_pair_items_by_their_bits(tiny_instance_run: Path, tmp_path: Path) -> None:
    """``find_duplicates`` on instance bits: its score is 1 - 2 d / 64, so min_score 1 - 2 * 2 /
    64 pairs items at most 2 bits apart (whose codes are within the radius)."""
    from deephash.collection.duplicates import find_duplicates

    rng = np.random.default_rng(5)
    far = rng.integers(0, 256, (12, 8), dtype=np.uint8)  # random: ~32 bits apart
    near = far[[0, 0, 5]].copy()
    near[0, 0] ^= 0b11  # 2 bits from item 0: a copy
    near[1, 3] ^= 0b111  # 3 bits from item 0: not
    near[2, 7] ^= 0b1  # 1 bit from item 5: a copy
    code = np.array([9, 0], np.uint8)
    with Collection.create(tmp_path / "c", tiny_instance_run, rerank="instance") as col:
        col.add([NewItem(code, descriptor=d) for d in np.concatenate([far, near])])
        found = find_duplicates(col, radius=0, min_score=1 - 4 / BITS)
    assert found.groups == [[0, 12], [5, 14]]


def test_the_copy_radius_is_recorded_and_checked(tiny_instance_run: Path, tmp_path: Path) -> None:
    with Collection.create(
        tmp_path / "c", tiny_instance_run, rerank="instance", copy_radius=3
    ) as col:
        assert col.copy_radius == 3
    settings = json.loads((tmp_path / "c" / "collection.json").read_text())
    assert settings["rerank"]["copy_radius"] == 3
    with Collection.open(tmp_path / "c") as col:
        assert col.copy_radius == 3
    for bad in (-1, True, 2.5):
        with pytest.raises(ValueError, match="copy_radius is a number of differing bits"):
            Collection.create(
                tmp_path / "bad", tiny_instance_run, rerank="instance", copy_radius=bad
            )  # type: ignore[arg-type]
        assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match="copy radius are for a binary descriptor"):
        Collection.create(tmp_path / "bad", tiny_instance_run, rerank="early-stages", copy_radius=8)
    assert not (tmp_path / "bad").exists()


def test_the_default_copy_radius_is_five_32nds_of_the_bits() -> None:
    from deephash.collection.settings import default_copy_radius

    assert [default_copy_radius(b) for b in (32, 64, 128, 256)] == [5, 10, 20, 40]
