"""A collection that stores descriptors: two-stage search, durability, old collections, errors."""

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection, NewItem
from deephash.collection.log import read_log
from deephash.models.descriptors import compute_descriptors
from deephash.training.runs import load_run

KIND = "early-stages"


@pytest.fixture(autouse=True)
def torch_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests compare stored descriptors bit for bit with torch's own; the ONNX Runtime
    engine is checked against torch (within float rounding) in test_encoder.py."""
    monkeypatch.setenv("DEEPHASH_ENCODER", "torch")


def reference_descriptors(run_dir: Path, paths: list[Path]) -> np.ndarray:
    """The run's network on the files (LoadedRun's decoder), float16-rounded as stored."""
    run = load_run(run_dir)
    x = run.preprocess(run.load_images(paths))
    with torch.no_grad():
        desc, _ = compute_descriptors(run.net, x, KIND)
    return desc.numpy().astype(np.float16).astype(np.float32)


def brute_force(col: Collection, code: np.ndarray, desc: np.ndarray, k: int, kp: int):  # type: ignore[no-untyped-def]
    """Top-kp live items by (Hamming, id), re-ranked by (cosine score, Hamming, id), in float64."""
    ham = hamming_distance_matrix(code[None, :], col.codes)[0]
    ids = col.ids
    cand = sorted(range(len(ids)), key=lambda j: (int(ham[j]), int(ids[j])))[:kp]
    stored = col.descriptors.astype(np.float64)  # type: ignore[union-attr]
    q = desc.astype(np.float16).astype(np.float64)
    score = {j: 1 - float(np.sum((q - stored[j]) ** 2)) / 2 for j in cand}
    best = sorted(cand, key=lambda j: (-score[j], int(ham[j]), int(ids[j])))[:k]
    return [int(ids[j]) for j in best], [score[j] for j in best]


def test_two_stage_search_and_descriptors_in_step(
    tiny_hash_run: Path, files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    paths, labels = files
    ref = reference_descriptors(tiny_hash_run, paths)
    with Collection.create(tmp_path / "c", tiny_hash_run, backend="mih", rerank=KIND) as col:
        assert col.reranks and col.descriptor_dim == ref.shape[1]
        ids = col.add_images([p.read_bytes() for p in paths], labels, [str(p) for p in paths])
        np.testing.assert_array_equal(col.descriptors, ref)
        col.remove([0, 5, 6])
        more = col.add_images([paths[0].read_bytes()], [labels[0]], ["again"])  # a new id
        live = [i for i in ids if i not in (0, 5, 6)] + more
        assert col.ids.tolist() == live
        # the same rows moved with their ids; the one image encoded alone agrees to rounding
        # (a batch of 1 runs other convolution kernels than a batch of 100)
        np.testing.assert_array_equal(col.descriptors[:-1], ref[live[:-1]])
        np.testing.assert_allclose(col.descriptors[-1], ref[0], atol=1e-4)
        for q in (1, 7, 42, more[0]):
            code, desc = col.code_of(q), col.descriptor_of(q)
            for k, kp in ((1, 5), (10, 20), (10, 200)):
                got = col.search(code[None], k, descriptors=desc[None], candidates=kp)[0]
                want_ids, want_scores = brute_force(col, code, desc, k, max(k, kp))
                assert [h.id for h in got] == want_ids
                np.testing.assert_allclose([h.score for h in got], want_scores, atol=1e-5)
            # the item itself (or its equal twin with a smaller id) first, score exactly 1
            first = col.search_by_id(q, 1, candidates=200)[0]
            assert first.score == 1.0 and first.id == q
        info = col.info()
        assert info["rerank"]["descriptor"] == KIND
        assert info["rerank"]["bytes_per_item"] == 2 * col.descriptor_dim
    # reopened (snapshot + descriptors.npz after close): the same descriptors, in step
    with Collection.open(tmp_path / "c", load_model=False) as col:
        assert col.ids.tolist() == live
        np.testing.assert_array_equal(col.descriptors[:-1], ref[live[:-1]])
        np.testing.assert_allclose(col.descriptors[-1], ref[0], atol=1e-4)


def test_kill_9_keeps_every_acknowledged_descriptor(
    crash: Callable[[Collection], None],
    tiny_hash_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    paths, labels = files
    ref = reference_descriptors(tiny_hash_run, paths)
    col = Collection.create(tmp_path / "c", tiny_hash_run, rerank=KIND)
    col.add_images([p.read_bytes() for p in paths[:40]], labels[:40])
    col.compact()  # a snapshot and descriptors.npz ...
    col.add_images([p.read_bytes() for p in paths[40:70]], labels[40:70])  # ... plus the log
    col.remove([3, 45])
    crash(col)
    assert [r["op"] for r in read_log(tmp_path / "c" / "log.bin").records] == [
        "begin",
        "add",
        "remove",
    ]
    with Collection.open(tmp_path / "c", load_model=False) as col:
        want = [i for i in range(70) if i not in (3, 45)]
        assert col.ids.tolist() == want
        np.testing.assert_array_equal(col.descriptors, ref[want])


def test_crash_between_the_descriptor_and_code_snapshots(
    crash: Callable[[Collection], None],
    tiny_hash_run: Path,
    files: tuple[list[Path], list[str]],
    tmp_path: Path,
) -> None:
    """compact writes descriptors.npz, then index.dhx: a crash between leaves the new descriptor
    snapshot beside the old code snapshot and the old log; every item still finds its own."""
    paths, labels = files
    ref = reference_descriptors(tiny_hash_run, paths)
    col = Collection.create(tmp_path / "c", tiny_hash_run, rerank=KIND)
    col.add_images([p.read_bytes() for p in paths[:30]], labels[:30])
    col.compact()
    col.add_images([p.read_bytes() for p in paths[30:50]], labels[30:50])
    col.remove([2, 35])
    from deephash.collection.descriptor_file import write_descriptors

    write_descriptors(tmp_path / "c" / "descriptors.npz", col.ids, col.descriptors)  # type: ignore[arg-type]
    crash(col)
    with Collection.open(tmp_path / "c", load_model=False) as col:
        want = [i for i in range(50) if i not in (2, 35)]
        assert col.ids.tolist() == want
        np.testing.assert_array_equal(col.descriptors, ref[want])


def test_collections_without_descriptors_and_bad_input(
    tiny_hash_run: Path, files: tuple[list[Path], list[str]], tmp_path: Path
) -> None:
    paths, labels = files
    with Collection.create(tmp_path / "old", tiny_hash_run) as col:  # as before: no re-ranking
        col.add_images([p.read_bytes() for p in paths[:10]], labels[:10])
        assert not col.reranks and col.descriptors is None and col.info()["rerank"] is None
        hits = col.search_by_id(3, 3)
        assert hits[0].distance == 0 and hits[0].score is None  # ties by id: maybe not 3
        with pytest.raises(ValueError, match="stores no descriptors"):
            col.search(col.code_of(3)[None], 3, descriptors=np.zeros((1, 8), np.float32))
        with pytest.raises(ValueError, match="stores no descriptors"):
            col.add([NewItem(col.code_of(3), descriptor=np.zeros(8, np.float32))])
    settings = json.loads((tmp_path / "old" / "collection.json").read_text())
    assert settings["version"] == 1 and "rerank" not in settings  # older deephash reads it

    with Collection.create(tmp_path / "new", tiny_hash_run, rerank=KIND) as col:
        dim = col.descriptor_dim
        col.add_images([p.read_bytes() for p in paths[:5]], labels[:5])
        with pytest.raises(ValueError, match=f"{dim} values"):
            col.add([NewItem(col.code_of(0), descriptor=np.zeros(dim + 1, np.float32))])
        with pytest.raises(ValueError, match="needs one"):
            col.add([NewItem(col.code_of(0))])
        with pytest.raises(ValueError, match=rf"shape \(n, {dim}\)"):
            col.search(col.code_of(0)[None], 3, descriptors=np.zeros((1, 3), np.float32))
        with pytest.raises(ValueError, match="NaN"):
            col.search(col.code_of(0)[None], 3, descriptors=np.full((1, dim), np.nan))
        with pytest.raises(ValueError, match="candidates"):
            col.search_by_id(0, 3, candidates=0)
        assert col.count == 5
        # Hamming-only search still works on a re-ranking collection (e.g. search by code)
        assert col.search(col.code_of(0)[None], 2)[0][0].score is None
    with pytest.raises(ValueError, match="unknown re-rank descriptor"):
        Collection.create(tmp_path / "bad", tiny_hash_run, rerank="sift")
