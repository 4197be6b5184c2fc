"""The milvus backend against Milvus Lite and against a real Milvus server (the session's
``milvus_server``), checked against the flat index and brute force."""

import itertools
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pytest

from deephash.index import HammingIndex, create_index, load_index

pymilvus = pytest.importorskip("pymilvus", reason="pymilvus is not installed (deephash[milvus])")
milvus_module = pytest.importorskip("deephash.index.milvus")
bands = pytest.importorskip("deephash.index.milvus.bands")

_names = itertools.count()


@pytest.fixture(scope="module")
def lite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One Milvus Lite file for the module (its server starts once, in about a second)."""
    path = str(tmp_path_factory.mktemp("milvus") / "deephash.db")
    try:
        pymilvus.MilvusClient(path).close()
    except Exception as exc:  # e.g. no milvus-lite wheel for this platform
        pytest.skip(f"Milvus Lite cannot start here: {type(exc).__name__}: {exc}")
    return path


@pytest.fixture(scope="module", params=["lite", "server"])
def uri(request: pytest.FixtureRequest) -> str:
    """Each test runs against Milvus Lite and against the session's Milvus server."""
    if request.param == "lite":
        return str(request.getfixturevalue("lite_uri"))
    return str(request.getfixturevalue("milvus_server").uri)


@pytest.fixture
def name() -> str:
    """A fresh collection name per test."""
    return f"t{next(_names)}"


def _true_distances(q: np.ndarray, x: np.ndarray, ids: np.ndarray, found: np.ndarray) -> np.ndarray:
    pos = {int(i): p for p, i in enumerate(ids)}
    rows = np.array([[pos.get(int(i), 0) for i in row] for row in found])
    d = np.bitwise_count(q[:, None, :] ^ x[rows]).sum(-1)
    return np.where(found >= 0, d, -1)


class Filled(NamedTuple):
    index: Any  # the milvus index
    flat: HammingIndex  # the flat index on the same codes, ids and metadata
    x: np.ndarray  # the codes
    ids: np.ndarray  # their ids
    q: np.ndarray  # queries


def _filled(refs, bits: int = 48, n: int = 900, uri: str = "", name: str = "", **options) -> Filled:
    rng = np.random.default_rng(bits + n)
    x = refs["clustered"](rng, n, bits)  # many exact ties and duplicates
    ids = rng.permutation(50 * n)[:n].astype(np.int64)
    meta = {"label": np.arange(n) % 7, "path": np.array([f"img/{i}.png" for i in range(n)])}
    flat = HammingIndex(bits)
    index = create_index(f"milvus:{uri}", bits, collection=name, **options)
    for lo, hi in ((0, 300), (300, n)):  # ids out of order across the two adds
        part = {k: v[lo:hi] for k, v in meta.items()}
        flat.add(x[lo:hi], ids=ids[lo:hi], metadata=part)
        index.add(x[lo:hi], ids=ids[lo:hi], metadata=part)
    return Filled(index, flat, x, ids, refs["clustered"](rng, 25, bits))


def test_search_and_range_search_equal_flat(refs, uri: str, name: str) -> None:
    index, flat, _, _, q = _filled(refs, uri=uri, name=name)
    assert index.ntotal == flat.ntotal == 900
    for k in (1, 10, 100, 1000):  # 1000 > ntotal: padded with -1
        d, i = index.search(q, k)
        fd, fi = flat.search(q, k)
        np.testing.assert_array_equal(d, fd)
        np.testing.assert_array_equal(i, fi)  # exact_ties (BIN_FLAT default): ties by smaller id
        assert d.dtype == np.int32 and i.dtype == np.int64
    for radius in (0, 1, 5, 12, 49):
        for got, want in zip(index.range_search(q, radius), flat.range_search(q, radius)):
            np.testing.assert_array_equal(got, want)
            assert got.dtype == want.dtype


def test_without_exact_ties_distances_are_exact_and_ids_true(refs, uri: str, name: str) -> None:
    index, flat, x, ids, q = _filled(refs, uri=uri, name=name, exact_ties=False)
    for k in (5, 50):
        d, i = index.search(q, k)
        fd, fi = flat.search(q, k)
        np.testing.assert_array_equal(d, fd)
        np.testing.assert_array_equal(_true_distances(q, x, ids, i), d)
        for row, frow, drow in zip(i, fi, d):
            assert len(set(row.tolist())) == k
            last = drow[-1]  # ids may differ from flat's only inside the last tied distance
            np.testing.assert_array_equal(row[drow < last], frow[drow < last])
            assert np.all(np.diff(row[drow == last]) > 0)  # re-sorted by (distance, id)


def test_saturated_requests_are_split_exactly(refs, uri: str, name: str, monkeypatch) -> None:
    # With Milvus's 16384-result cap lowered to 16, k > cap and crowded distances (hundreds of
    # codes at one distance) take the band and id-range splitting paths.
    monkeypatch.setattr(bands, "_MAX_LIMIT", 16)
    calls: list[tuple] = []
    band = bands.band

    def spy(searcher, queries, lo, hi, id_lo=0, id_hi=None):
        calls.append((hi - lo, id_lo, id_hi))
        return band(searcher, queries, lo, hi, id_lo, id_hi)

    monkeypatch.setattr(bands, "band", spy)
    index, flat, _, _, q = _filled(refs, bits=16, n=600, uri=uri, name=name)
    q = q[:6]
    assert np.max(np.unique(flat.search(q[:1], 600)[0], return_counts=True)[1]) > 16
    for k in (40, 600):
        d, i = index.search(q, k)
        fd, fi = flat.search(q, k)
        np.testing.assert_array_equal(d, fd)
        np.testing.assert_array_equal(i, fi)
    for got, want in zip(index.range_search(q, 9), flat.range_search(q, 9)):
        np.testing.assert_array_equal(got, want)
    assert any(1 < width < 9 for width, _, _ in calls)  # the radius-9 band was split
    assert any(id_hi is not None for _, _, id_hi in calls)  # id-range split


def test_removals_and_additions_behave_like_flat(refs, uri: str, name: str) -> None:
    index, flat, _, ids, q = _filled(refs, bits=32, n=400, uri=uri, name=name)
    rng = np.random.default_rng(5)
    gone = np.concatenate([ids[rng.permutation(400)[:150]], [10**9, 10**9], ids[:1], ids[:1]])
    assert index.remove_ids(gone) == flat.remove_ids(gone) == 150
    assert index.remove_ids(np.array([10**9])) == flat.remove_ids(np.array([10**9])) == 0
    extra = refs["clustered"](rng, 60, 32)
    meta = {"label": np.arange(60), "path": np.array([f"new/{i}" for i in range(60)])}
    free = np.setdiff1d(np.arange(1000), flat.ids)[:30]  # small ids: out of order again
    for idx in (index, flat):
        idx.add(extra[:30], metadata={k: v[:30] for k, v in meta.items()})  # after the largest id
        idx.add(extra[30:], ids=free, metadata={k: v[30:] for k, v in meta.items()})
    assert index.ntotal == flat.ntotal == 310
    np.testing.assert_array_equal(index.ids, flat.ids)
    np.testing.assert_array_equal(index.codes, flat.codes)
    for key, values in flat.metadata.items():
        np.testing.assert_array_equal(index.metadata[key], values)
    for got, want in zip(index.search(q, 20), flat.search(q, 20)):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(index.range_search(q, 6), flat.range_search(q, 6)):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="more than once"):
        index.add(extra[:1], ids=free[:1], metadata={k: v[:1] for k, v in meta.items()})
    with pytest.raises(ValueError, match="more than once"):
        index.add(extra[:2], ids=[7, 7], metadata={k: v[:2] for k, v in meta.items()})
    assert index.ntotal == 310
    index.reset()
    assert index.ntotal == 0
    with pytest.raises(ValueError, match="empty"):
        index.search(q, 1)


def test_metadata_round_trip(refs, uri: str, name: str) -> None:
    index, flat, x, _, q = _filled(refs, bits=32, n=200, uri=uri, name=name)
    _, found = flat.search(q, 4)
    got, want = index.metadata_for(found), flat.metadata_for(found)
    assert set(got) == {"label", "path"}
    for key in want:
        assert got[key].shape == found.shape
        np.testing.assert_array_equal(got[key], want[key])
    with pytest.raises(ValueError, match="not in the index"):
        index.metadata_for([-1])
    with pytest.raises(ValueError, match="pass metadata="):
        index.add(x[:1])
    with pytest.raises(ValueError, match="differ"):
        index.add(x[:1], metadata={"label": [1]})
    with pytest.raises(ValueError, match="mixes strings"):
        index.add(x[:1], metadata={"label": ["a"], "path": ["p"]})
    plain = create_index(f"milvus:{uri}", 32, collection=f"{name}_plain")
    plain.add(x[:3])
    assert plain.metadata == {}
    with pytest.raises(ValueError, match="no metadata"):
        plain.metadata_for([0])


def test_reopen_and_load_index_see_the_same_rows(refs, uri: str, name: str, tmp_path) -> None:
    index, flat, _, ids, q = _filled(refs, bits=32, n=200, uri=uri, name=name)
    assert index.persistent and not flat.persistent
    again = create_index(f"milvus:{uri}", 32, collection=name)  # a second client, same rows
    assert again.ntotal == 200
    np.testing.assert_array_equal(again.search(q, 7)[1], flat.search(q, 7)[1])
    again.remove_ids(ids[:10])
    assert index.ntotal == 190  # one collection seen by both
    server = milvus_module.is_server_uri(uri)
    pointer = (tmp_path if server else Path(uri).parent) / "pointer.dhi"  # Lite: stored relative
    index.save(pointer)
    loaded = load_index(pointer)
    assert isinstance(loaded, milvus_module.MilvusBinaryIndex)
    assert (loaded.uri, loaded.collection, loaded.bits) == (index.uri, name, 32)
    np.testing.assert_array_equal(loaded.ids, np.sort(ids[10:]))
    elsewhere = tmp_path / "sub" / "pointer.dhi"
    elsewhere.parent.mkdir()
    index.save(elsewhere)
    assert load_index(elsewhere).ntotal == 190


def test_clear_errors(refs, uri: str, name: str) -> None:
    x = refs["random"](np.random.default_rng(0), 5, 32)
    create_index(f"milvus:{uri}", 32, collection=name).add(x)
    with pytest.raises(ValueError, match="holds 32-bit codes, not 64-bit"):
        create_index(f"milvus:{uri}", 64, collection=name)
    with pytest.raises(ValueError, match="has a BIN_FLAT index, not BIN_IVF_FLAT"):
        create_index(f"milvus:{uri}", 32, collection=name, index_type="BIN_IVF_FLAT")
    with pytest.raises(ValueError, match="multiple of 8"):
        create_index(f"milvus:{uri}", 12, collection=f"{name}_b")
    if not milvus_module.is_server_uri(uri):
        with pytest.raises(ValueError, match="Milvus Lite builds only BIN_FLAT"):
            create_index(f"milvus:{uri}", 32, collection=f"{name}_ivf", index_type="BIN_IVF_FLAT")
        assert not pymilvus.MilvusClient(uri).has_collection(f"{name}_ivf")  # not left half-made
    with pytest.raises(ValueError, match="timeout"):
        create_index(f"milvus:{uri}", 32, collection=name, timeout=0)
    with pytest.raises(ValueError, match=r"ending in '\.db'"):
        create_index("milvus:/tmp/no-suffix", 32)
    with pytest.raises(ValueError, match="Milvus URI"):
        create_index("milvus:", 32)
    with pytest.raises(ValueError, match="collection name"):
        create_index(f"milvus:{uri}", 32, collection="bad-name")
    with pytest.raises(ValueError, match="bad options"):
        create_index(f"milvus:{uri}", 32, collection=name, num_tables=3)
    with pytest.raises(ValueError, match="empty"):
        create_index(f"milvus:{uri}", 32, collection=f"{name}_e").search(x, 1)
    assert "milvus:<uri>" in __import__("deephash.index").index.list_indexes()


def test_a_second_process_is_refused_clearly(lite_uri: str) -> None:
    # Milvus Lite serves one file to one process (this one holds `uri`).
    code = (
        "import sys\nfrom deephash.index.milvus import MilvusBinaryIndex\n"
        "try:\n    MilvusBinaryIndex(32, sys.argv[1])\n"
        "except RuntimeError as e:\n    print('REFUSED', e)\n"
    )
    src = str(Path(milvus_module.__file__).parents[3])  # src/deephash/index/milvus/__init__.py
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", code, lite_uri], capture_output=True, text=True, env=env, timeout=120
    )
    assert "REFUSED" in out.stdout and "one process at a time" in out.stdout, out.stderr[-2000:]


def test_ivf_flat_on_the_server(refs, milvus_server: Any, name: str) -> None:
    # BIN_IVF_FLAT: every distance returned is the true one; with nprobe = nlist every cell is
    # searched, so the k-NN distances equal flat's; with fewer cells, recall drops but stays > 0.
    rng = np.random.default_rng(3)
    x = refs["clustered"](rng, 3000, 64, centres=32)
    q = x[rng.permutation(3000)[:40]] ^ (rng.random((40, 8)) < 0.05).astype(np.uint8)
    flat = HammingIndex(64)
    flat.add(x)
    fd, fi = flat.search(q, 10)
    index = create_index(
        f"milvus:{milvus_server.uri}", 64, collection=name, index_type="BIN_IVF_FLAT", nlist=32
    )
    index.add(x)
    assert index.index_type == "BIN_IVF_FLAT" and not index.exact_ties
    recall = {}
    for nprobe in (1, 32):
        index.nprobe = nprobe
        d, i = index.search(q, 10)
        np.testing.assert_array_equal(_true_distances(q, x, np.arange(3000), i), d)
        recall[nprobe] = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i, fi)])
    np.testing.assert_array_equal(d, fd)  # nprobe = nlist: exact distances
    assert recall[32] >= recall[1] > 0 and recall[32] >= 0.9
    again = create_index(f"milvus:{milvus_server.uri}", 64, collection=name)  # type kept
    assert (again.index_type, again.ntotal) == ("BIN_IVF_FLAT", 3000)


@pytest.mark.slow  # 22 s; make test covers a restart end to end through the service
def test_a_server_restart_is_survived_by_the_same_index(
    refs, milvus_server: Any, name: str
) -> None:
    # While the server is down a request fails fast with EngineUnavailableError; once it is back
    # the same index object answers again at once (a fresh client, the collection reloaded).
    from deephash.index import EngineUnavailableError

    index, flat, _, _, q = _filled(refs, bits=32, n=300, uri=milvus_server.uri, name=name)
    milvus_server.kill()  # as a crash would: the harder case
    try:
        t0 = time.monotonic()
        with pytest.raises(EngineUnavailableError, match="cannot be reached"):
            index.search(q, 5)
        assert time.monotonic() - t0 < 5.0
        t0 = time.monotonic()
        with pytest.raises(EngineUnavailableError):
            index.search(q, 5)
        assert time.monotonic() - t0 < 0.5  # no new connection attempt within a second
    finally:
        milvus_server.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    for got, want in zip(index.search(q, 5), flat.search(q, 5)):
        np.testing.assert_array_equal(got, want)
    assert time.monotonic() - t0 < 30.0


def _ladder(n: int = 17) -> np.ndarray:
    """16-bit codes at distances 0, 1, ..., 16 from the zero code (code i has i low bits set)."""
    bits = (np.arange(16)[None, :] < np.arange(n)[:, None]).astype(np.uint8)
    return np.packbits(bits, axis=1, bitorder="little")


def test_one_request_per_search_unless_the_cut_is_tied(uri: str, name: str, monkeypatch) -> None:
    # k + 1 rows are asked for; the tied distance is re-read only when the k-th and (k+1)-th rows
    # are at the same distance; no count request.
    index = create_index(f"milvus:{uri}", 16, collection=name)
    flat = HammingIndex(16)
    for idx in (index, flat):
        idx.add(_ladder())
    cuts: list[int] = []  # the distances whose band was read
    band = bands.band
    monkeypatch.setattr(
        bands,
        "band",
        lambda searcher, queries, lo, hi, *a: (
            cuts.append(lo) or band(searcher, queries, lo, hi, *a)
        ),
    )

    def no_count(*args: Any) -> int:
        raise AssertionError("a count request on the search path")

    monkeypatch.setattr(index, "_count", no_count)
    q = np.zeros((1, 2), np.uint8)
    for k in (1, 5, 16, 17, 30):  # distinct distances: one request each
        for got, want in zip(index.search(q, k), flat.search(q, k)):
            np.testing.assert_array_equal(got, want)
    assert cuts == []
    tie = _ladder(5)[4:]  # a second code at distance 4
    for idx in (index, flat):
        idx.add(tie, ids=np.array([100]))
        idx.add(tie, ids=np.array([3]) + 200)
    for k, tied in ((4, False), (5, True), (6, True), (7, False)):  # distance 4: ids 4, 100, 203
        cuts.clear()
        for got, want in zip(index.search(q, k), flat.search(q, k)):
            np.testing.assert_array_equal(got, want)
        assert cuts == ([4] if tied else []), k


def test_insert_delete_and_stored_for_a_writer_that_keeps_the_ids(
    refs, uri: str, name: str
) -> None:
    x = refs["random"](np.random.default_rng(4), 50, 32)
    index = create_index(f"milvus:{uri}", 32, collection=name, consistency="Bounded")
    index.insert(x[:30], np.arange(30))
    index.insert(x[20:40], np.arange(20, 40), replace=True)  # a retry: nothing stored twice
    index.delete(np.array([3, 4, 1000]))
    assert index.ntotal == 38  # a Strong count
    deadline = time.monotonic() + 30.0  # a Bounded read may lag the writes by a few seconds
    while (seen := index.stored(np.array([0, 3, 39, 40])).tolist()) != [0, 39]:
        assert set(seen) <= {0, 39} and time.monotonic() < deadline
        time.sleep(0.2)
    flat = HammingIndex(32)
    flat.add(x[:40], np.arange(40))
    flat.remove_ids(np.array([3, 4]))
    np.testing.assert_array_equal(index.ids, flat.ids)
    np.testing.assert_array_equal(index.codes, flat.codes)


def test_flush_seals_without_changing_any_answer(refs, uri: str, name: str) -> None:
    index, flat, _, _, q = _filled(refs, uri=uri, name=name, n=400)
    before = index.search(q, 50)
    index.flush()  # growing segments sealed: searched through the index from now on
    index.flush()  # nothing new to seal: still fine
    after = index.search(q, 50)
    for got, was, want in zip(after, before, flat.search(q, 50)):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(was, want)
    assert index.ntotal == 400
