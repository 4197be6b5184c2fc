"""A collection whose engine is the session's Milvus server: the same answers as brute force over
the collection (distances, ties by id, radius) through additions and removals, and the Milvus
index chosen per collection."""

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _brute_hits import brute, pairs

from deephash.collection import Collection, NewItem


def test_collection_on_the_server_equals_brute_force(
    tiny_hash_run: Path, tmp_path: Path, milvus_server: Any
) -> None:
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 256, (3, 2), dtype=np.uint8)
    codes = centres[rng.integers(0, 3, 300)] ^ (rng.random((300, 2)) < 0.1).astype(np.uint8)
    folder = tmp_path / "c"
    with Collection.create(
        folder, tiny_hash_run, backend="milvus", uri=milvus_server.uri, milvus_collection="col_eq"
    ) as col:
        col.add([NewItem(c) for c in codes[:200]])
        col.remove(list(range(0, 200, 7)))
        col.add([NewItem(c) for c in codes[200:]])
        for q in codes[[1, 50, 250]]:
            for k in (1, 10, 120):
                assert pairs(col.search(q, k)[0]) == brute(col, q, k)  # ties by the smaller id
            assert pairs(col.search(q, 500, radius=2)[0]) == brute(col, q, 500, radius=2)
    settings = json.loads((folder / "collection.json").read_text())
    assert settings["uri"] == milvus_server.uri
    assert settings["milvus_index"] == {"index_type": "BIN_FLAT"}
    with Collection.open(folder, load_model=False) as col:  # the engine kept the rows
        assert col.count == 300 - len(range(0, 200, 7))
        assert pairs(col.search(codes[3], 20)[0]) == brute(col, codes[3], 20)


def test_ivf_flat_per_collection(tiny_hash_run: Path, tmp_path: Path, milvus_server: Any) -> None:
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (400, 2), dtype=np.uint8)
    folder = tmp_path / "ivf"
    with Collection.create(
        folder,
        tiny_hash_run,
        backend="milvus",
        uri=milvus_server.uri,
        milvus_collection="col_ivf",
        milvus_index="BIN_IVF_FLAT",
        nlist=8,
        nprobe=8,
    ) as col:
        col.add([NewItem(c) for c in codes])
        engine = col._view.main
        assert engine is not None and engine.index_type == "BIN_IVF_FLAT"
        assert (engine.nlist, engine.nprobe) == (8, 8)
        for q in codes[:5]:  # every cell probed: the distances are exact
            got = col.search(q, 10)[0]
            assert [h.distance for h in got] == [d for _, d in brute(col, q, 10)]
    settings = json.loads((folder / "collection.json").read_text())
    assert settings["milvus_index"] == {"index_type": "BIN_IVF_FLAT", "nlist": 8, "nprobe": 8}


def test_bad_milvus_index_settings_are_refused_before_anything_is_written(
    tiny_hash_run: Path, tmp_path: Path
) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"backend": "mih", "milvus_index": "BIN_FLAT"}, "only for the milvus backend"),
        ({"backend": "milvus", "milvus_index": "HNSW"}, "must be one of"),
        ({"backend": "milvus", "milvus_index": "BIN_IVF_FLAT"}, "needs a Milvus server"),
        ({"backend": "milvus", "nlist": 4}, "for --milvus-index BIN_IVF_FLAT"),
        (
            {"backend": "milvus", "uri": "http://h:1", "milvus_index": "BIN_IVF_FLAT", "nprobe": 0},
            "nprobe must be a positive integer",
        ),
    ]
    for options, message in bad:
        with pytest.raises(ValueError, match=message):
            Collection.create(tmp_path / "x", tiny_hash_run, **options)
        assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("where", ["lite", "server"])
def test_read_your_writes_without_waiting_for_the_engine(
    where: str, tiny_hash_run: Path, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch
) -> None:
    """Against Milvus Lite and the server: each acknowledged addition is found and each removal
    gone in the very next search (from the pending delta, the engine searched at Bounded
    consistency), equal to brute force with ties; an engine write made slow by 1 s delays
    neither; the delta drains once the engine shows the changes."""
    pytest.importorskip("pymilvus")
    from deephash.index.milvus import MilvusBinaryIndex

    uri = request.getfixturevalue("milvus_server").uri if where == "server" else None
    rng = np.random.default_rng(7)
    centres = rng.integers(0, 256, (3, 2), dtype=np.uint8)
    codes = centres[rng.integers(0, 3, 200)] ^ (rng.random((200, 2)) < 0.08).astype(np.uint8)
    folder = tmp_path / "c"
    with Collection.create(
        folder, tiny_hash_run, backend="milvus", uri=uri, milvus_collection=f"ryw_{where}"
    ) as col:
        col.add([NewItem(c) for c in codes[:150]])
        assert col.wait_for_engine(60.0, seen=True)
        engine = col._view.main
        assert isinstance(engine, MilvusBinaryIndex) and engine.consistency == "Bounded"
        insert = MilvusBinaryIndex.insert

        def slow_insert(self: MilvusBinaryIndex, *args: Any, **kwargs: Any) -> None:
            time.sleep(1.0)
            insert(self, *args, **kwargs)

        monkeypatch.setattr(MilvusBinaryIndex, "insert", slow_insert)
        t0 = time.monotonic()
        for c in codes[150:170]:
            (new_id,) = col.add([NewItem(c)])
            assert new_id in [h.id for h in col.search(c, 200, radius=0)[0]]
        col.remove([0, 1, 151])
        hits = col.search(codes[0], 200)[0]
        assert {0, 1, 151}.isdisjoint(h.id for h in hits)
        assert time.monotonic() - t0 < 10.0  # 20 engine writes of 1 s would take 20 s
        assert col.info()["pending_additions"] > 0
        for q in codes[[0, 5, 160]]:
            for k in (1, 10, 120):
                assert pairs(col.search(q, k)[0]) == brute(col, q, k)
        monkeypatch.setattr(MilvusBinaryIndex, "insert", insert)
        assert col.wait_for_engine(60.0, seen=True)
        assert col.info()["pending_additions"] == col.info()["pending_removals"] == 0
        assert engine.ids.tolist() == col.ids.tolist()
        for q in codes[[0, 5, 160]]:
            assert pairs(col.search(q, 120)[0]) == brute(col, q, 120)
