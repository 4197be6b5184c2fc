"""The collection over an external engine (how the milvus backend plugs in), with a stand-in
engine: a flat index that outlives the collection object, as a Milvus server does."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import deephash.collection.engine_backing as engine_module
from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection, NewItem
from deephash.index import BinaryIndex, create_index


@pytest.fixture()
def engines(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], BinaryIndex]:
    servers: dict[tuple[str, str], BinaryIndex] = {}
    real = engine_module.create_index

    def fake_create_index(name: str, bits: int, **options: Any) -> BinaryIndex:
        if not name.startswith("milvus:"):
            return real(name, bits, **options)
        key = (name[len("milvus:") :], options["collection"])
        return servers.setdefault(key, create_index("flat", bits))

    monkeypatch.setattr(engine_module, "create_index", fake_create_index)
    return servers


def test_external_engine_mirrors_the_collection(
    engines: dict[tuple[str, str], BinaryIndex], tiny_hash_run: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    col = Collection.create(
        tmp_path / "my col", tiny_hash_run, backend="milvus", uri="http://milvus.test:19530"
    )
    assert col.settings["uri"] == "http://milvus.test:19530"
    assert col.settings["milvus_collection"] == "deephash_my_col"
    engine = engines[("http://milvus.test:19530", "deephash_my_col")]
    codes = rng.integers(0, 256, (50, 2), dtype=np.uint8)
    col.add([NewItem(c) for c in codes])
    col.remove([3, 4, 5])
    assert col.wait_for_engine(10.0)  # the engine is written off the request path
    assert engine.ids.tolist() == col.ids.tolist()
    q = codes[7]
    d = hamming_distance_matrix(q[None], col.codes)[0]
    order = np.lexsort((col.ids, d))[:10]
    assert [h.id for h in col.search(q, 10)[0]] == col.ids[order].tolist()
    col.close()
    # the snapshot is the collection's own (a flat index file), the engine is rebuilt from it:
    # something the engine kept that the collection does not hold (an unacknowledged insert) goes
    engine.add(codes[:1], np.array([1000]))
    engine.remove_ids(np.array([10]))
    with Collection.open(tmp_path / "my col", load_model=False) as col:
        assert engine.ids.tolist() == col.ids.tolist() == sorted(set(range(50)) - {3, 4, 5})


def test_default_uri_is_a_milvus_lite_file_in_the_folder(
    engines: dict[tuple[str, str], BinaryIndex], tiny_hash_run: Path, tmp_path: Path
) -> None:
    with Collection.create(tmp_path / "c", tiny_hash_run, backend="milvus") as col:
        assert col.settings["uri"] == str((tmp_path / "c" / "milvus.db").resolve())
    with pytest.raises(ValueError, match="only for the milvus backend"):
        Collection.create(tmp_path / "d", tiny_hash_run, backend="mih", uri="x.db")


def test_external_engine_gives_candidates_to_re_rank(
    engines: dict[tuple[str, str], BinaryIndex], tiny_hash_run: Path, tmp_path: Path
) -> None:
    """With descriptors, the engine's Hamming neighbours are re-ranked as a local index's are."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, (60, 2), dtype=np.uint8)
    results = {}
    for backend in ("milvus", "flat"):
        col = Collection.create(
            tmp_path / backend, tiny_hash_run, backend=backend, rerank="early-stages"
        )
        desc = np.random.default_rng(2).standard_normal((60, col.descriptor_dim))
        col.add([NewItem(c, descriptor=d) for c, d in zip(codes, desc)])
        col.remove([3, 4])
        results[backend] = [
            [(h.id, h.distance, h.score) for h in col.search_by_id(q, 8, candidates=20)]
            for q in (0, 7, 59)
        ]
        assert results[backend][0][0][:1] == (0,) and results[backend][0][0][2] == 1.0
        col.close()
    assert results["milvus"] == results["flat"]


def test_instance_descriptors_beside_an_external_engine(
    engines: dict[tuple[str, str], BinaryIndex], tiny_instance_run: Path, tmp_path: Path
) -> None:
    """The codes in the engine, the binary descriptors in an index of this process: searches
    equal brute force over the union of both candidate sets, before and after the engine
    applied the changes and after a restart."""
    from _instance_reference import check_against_brute_force, random_items, triples

    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, 8, dtype=np.uint8)
    folder = tmp_path / "c"
    col = Collection.create(
        folder,
        tiny_instance_run,
        backend="milvus",
        uri="http://milvus.test:19530",
        rerank="instance",
    )
    col.add(random_items(rng, 120, base))
    col.remove([4, 50, 51])
    col.add(random_items(rng, 20, base))
    queries = [0, 60, 130]
    assert check_against_brute_force(col, queries) == 15  # pending delta or engine: the same
    assert col.wait_for_engine(10.0, seen=True)
    assert check_against_brute_force(col, queries) == 15
    answers = {q: triples(col.search_by_id(q, 5, candidates=3)) for q in queries}
    col.close()
    with Collection.open(folder, load_model=False) as col:
        assert {q: triples(col.search_by_id(q, 5, candidates=3)) for q in queries} == answers
        assert col.descriptors is not None and col.descriptors.shape == (137, 8)
