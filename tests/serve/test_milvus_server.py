"""`deephash serve` over a collection whose engine is a real Milvus server (the session's
``milvus_server``), and a restart of that server under the running service."""

import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection
from deephash.index import create_index


def expected(folder: Path, item_id: int, k: int) -> list[tuple[int, int]]:
    """(id, distance) of the k nearest items by brute force over the collection's log."""
    col = Collection.open(folder, read_only=True, load_model=False)
    q = col.code_of(item_id)
    d = hamming_distance_matrix(q[None, :], col.codes)[0]
    order = np.lexsort((col.ids, d))[:k]
    return [(int(i), int(x)) for i, x in zip(col.ids[order], d[order])]


def search(url: str, item_id: int, k: int = 10) -> httpx.Response:
    return httpx.post(f"{url}/search", json={"id": item_id, "k": k}, timeout=30.0)


def found(r: httpx.Response) -> list[tuple[int, int]]:
    assert r.status_code == 200, r.text
    return [(h["id"], h["distance"]) for h in r.json()["results"]]


def test_serve_survives_a_milvus_server_restart(
    tmp_path: Path,
    tiny_hash_run: Path,
    png_files: list[tuple[Path, str]],
    milvus_server: Any,
    server_process: Any,
) -> None:
    folder = tmp_path / "col"
    with Collection.create(
        folder,
        tiny_hash_run,
        backend="milvus",
        uri=milvus_server.uri,
        milvus_collection="serve_restart",
    ) as col:
        col.add_images(
            [f.read_bytes() for f, _ in png_files[:60]], [lab for _, lab in png_files[:60]]
        )
    server = server_process(folder)
    server.wait_ready()
    for item_id in (0, 17, 59):
        assert found(search(server.url, item_id)) == expected(folder, item_id, 10)

    milvus_server.kill()  # as a crash would: the harder case
    try:
        t0 = time.monotonic()
        r = search(server.url, 17)
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "engine_unavailable" and "Milvus" in r.json()["detail"]
        assert r.headers["retry-after"] == "1"
        assert time.monotonic() - t0 < 5.0
        # writes while the engine is down go to the collection's log and are acknowledged
        path, label = png_files[80]
        r = httpx.post(
            f"{server.url}/items",
            files={"image": (path.name, path.read_bytes(), "image/png")},
            data={"label": label},
            timeout=30.0,
        )
        assert r.status_code == 201, r.text
        (added,) = r.json()["ids"]
        assert httpx.delete(f"{server.url}/items/7", timeout=30.0).status_code == 200
        assert search(server.url, 17).status_code == 503
    finally:
        milvus_server.start()

    deadline = time.monotonic() + 90.0
    while (r := search(server.url, 17)).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.5)
    # the changes made while it was down are served at once (the pending delta) ...
    assert found(r) == expected(folder, 17, 10)
    assert found(search(server.url, added, 61)) == expected(folder, added, 61)
    assert 7 not in [i for i, _ in found(search(server.url, 17, 61))]
    server.stop()  # ... and reach the engine in the background (at the latest on close)
    engine = create_index(f"milvus:{milvus_server.uri}", 16, collection="serve_restart")
    want = sorted(set(range(60)) - {7} | {added})
    deadline = time.monotonic() + 30.0  # a full read right after a restart may lag a few seconds
    while (held := engine.ids.tolist()) != want and time.monotonic() < deadline:
        time.sleep(0.5)
    assert held == want
    engine.close()
    with Collection.open(folder, load_model=False) as col:
        assert col.ids.tolist() == sorted(set(range(60)) - {7} | {added})
