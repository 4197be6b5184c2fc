"""The search router alone, in a bare app: answers equal a brute-force Hamming ranking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deephash.codes import hamming_distance_matrix, pack_bits, sign
from deephash.serve.dependencies import Tokens
from deephash.serve.routes import search
from deephash.training.runs import load_run


def brute_force(codes: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[list[int]]:
    """[id, distance] of the k nearest codes, ties by the smaller id."""
    d = hamming_distance_matrix(query[None, :], codes)[0]
    order = np.lexsort((ids, d))[:k]
    return [[int(ids[i]), int(d[i])] for i in order]


def pairs(rows: list[dict[str, Any]]) -> list[list[int]]:
    return [[h["id"], h["distance"]] for h in rows]


def test_the_search_router_alone_ranks_as_brute_force(
    bare_app: Any, collection_dir: Path, tiny_hash_run: Path, png_files: list[tuple[Path, str]]
) -> None:
    queries = [f for f, _ in png_files[60:63]]
    model = load_run(tiny_hash_run)
    query_codes = pack_bits(sign(model.encode(model.load_images(queries))))
    with bare_app(search.router, collection_dir) as (client, col):
        codes, ids = col.codes.copy(), col.ids.copy()
        assert len(ids) == 60
        body = client.post("/search", json={"id": 7, "k": 12}).json()
        assert pairs(body["results"]) == brute_force(codes, ids, codes[7], 12)
        hexcode = query_codes[0].tobytes().hex()
        body = client.post("/search?k=9&radius=5", json={"code": hexcode}).json()
        want = [p for p in brute_force(codes, ids, query_codes[0], 9) if p[1] <= 5]
        assert pairs(body["results"]) == want
        files = [("image", (q.name, q.read_bytes(), "image/png")) for q in queries]
        batch = client.post("/search/batch?k=4", files=files).json()["results"]
        assert [pairs(row) for row in batch] == [brute_force(codes, ids, c, 4) for c in query_codes]
        one = client.post("/search?k=4", files=files[:1]).json()["results"]
        assert pairs(one) == brute_force(codes, ids, query_codes[0], 4)
        assert one[0]["image_url"] == f"/items/{one[0]['id']}/image"
        # the service's limit, not create_app's default
        r = client.post("/search", json={"id": 7, "k": 21})
        assert r.status_code == 400 and r.json()["detail"] == "k must be between 1 and 20, got 21"
        # only this router is mounted
        assert client.get("/health").status_code == 404
        assert client.get("/items/7").status_code == 404


def test_the_search_router_needs_the_read_token(bare_app: Any, collection_dir: Path) -> None:
    with bare_app(search.router, collection_dir, Tokens(read="r", write="w")) as (client, _):
        for header, status in (
            (None, 401),
            ("Bearer x", 401),
            ("Bearer r", 200),
            ("Bearer w", 200),
        ):
            headers = {"Authorization": header} if header else {}
            for url in ("/search", "/search/batch"):
                r = client.post(url, json={"id": 1}, headers=headers)
                # /search/batch takes images only: past the token check, JSON is a 415
                assert r.status_code == (415 if status == 200 and url.endswith("batch") else status)
                if status == 401:
                    assert r.json()["error"] == "unauthorized"
                    assert r.headers["www-authenticate"] == 'Bearer realm="deephash"'
