import io
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from deephash.codes import hamming_distance_matrix, pack_bits, sign
from deephash.training.runs import load_run


def expected_codes(run: Path, files: list[Path]) -> np.ndarray:
    """Codes computed by the run itself (its own file decoder), independent of the service."""
    model = load_run(run)
    return pack_bits(sign(model.encode(model.load_images(files))))


def brute_force(client: TestClient, query: np.ndarray, k: int) -> list[tuple[int, int]]:
    col = client.app.state.collection  # type: ignore[attr-defined]
    d = hamming_distance_matrix(query[None, :], col.codes)[0]
    order = np.lexsort((col.ids, d))[:k]
    return [(int(col.ids[i]), int(d[i])) for i in order]


def pairs(body: dict[str, Any]) -> list[tuple[int, int]]:
    return [(h["id"], h["distance"]) for h in body["results"]]


def upload(path: Path, name: str = "image") -> dict[str, Any]:
    return {name: (path.name, path.read_bytes(), "image/png")}


def test_search_by_upload_matches_brute_force(
    client: TestClient, tiny_hash_run: Path, png_files: list[tuple[Path, str]]
) -> None:
    queries = [f for f, _ in png_files[60:64]]
    codes = expected_codes(tiny_hash_run, queries)
    for q, code in zip(queries, codes):
        r = client.post("/search?k=10", files=upload(q))
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"query_ms", "results"} and body["query_ms"] > 0
        assert pairs(body) == brute_force(client, code, 10)
        for hit in body["results"]:
            assert set(hit) == {"id", "distance", "score", "label", "path", "image_url"}
            assert hit["score"] is None  # no descriptors: Hamming ranking
            assert hit["label"] == png_files[hit["id"]][1]
            assert hit["path"] == png_files[hit["id"]][0].name
            assert hit["image_url"] == f"/items/{hit['id']}/image"
    # several images at once: one list per image, the same answers
    files = [("image", (q.name, q.read_bytes(), "image/png")) for q in queries]
    batch = client.post("/search/batch?k=5", files=files).json()
    assert [[(h["id"], h["distance"]) for h in row] for row in batch["results"]] == [
        brute_force(client, c, 5) for c in codes
    ]


def test_search_by_id_code_and_radius(client: TestClient) -> None:
    col = client.app.state.collection  # type: ignore[attr-defined]
    code = col.codes[7]
    by_id = client.post("/search", json={"id": 7, "k": 15}).json()
    assert pairs(by_id) == brute_force(client, code, 15)
    by_code = client.post("/search?k=15", json={"code": code.tobytes().hex()}).json()
    assert pairs(by_code) == pairs(by_id)
    near = client.post("/search?k=100&radius=3", json={"id": 7}).json()
    assert pairs(near) == [(i, d) for i, d in brute_force(client, code, 100) if d <= 3]
    assert len(client.post("/search", json={"id": 7}).json()["results"]) == 10  # default k


def test_items_lifecycle(client: TestClient, png_files: list[tuple[Path, str]]) -> None:
    (a, _), (b, _) = png_files[70:72]
    files = [
        ("image", (a.name, a.read_bytes(), "image/png")),
        ("image", (b.name, b.read_bytes(), "image/png")),
    ]
    r = client.post("/items", files=files, data={"label": ["first", "second"]})
    assert r.status_code == 201 and r.json() == {"ids": [60, 61]}
    item = client.get("/items/61").json()
    assert item["id"] == 61 and item["label"] == "second" and item["path"] == b.name
    assert item["image_url"] == "/items/61/image" and len(item["code"]) == 4
    image = client.get("/items/61/image")
    assert image.status_code == 200 and image.content == b.read_bytes()
    assert image.headers["content-type"] == "image/png"
    hits = client.post("/search?k=3", files=upload(b)).json()["results"]
    assert hits[0]["distance"] == 0 and 61 in [h["id"] for h in hits if h["distance"] == 0]
    assert client.get("/health").json() == {"status": "ok", "count": 62}
    assert client.delete("/items/61").json() == {"id": 61, "removed": True}
    assert client.get("/items/61").status_code == 404
    assert client.delete("/items/61").status_code == 404
    assert client.get("/health").json()["count"] == 61
    one_label = client.post("/items", files=files, data={"label": "shared"}).json()["ids"]
    assert [client.get(f"/items/{i}").json()["label"] for i in one_label] == ["shared"] * 2
    random_item = client.get("/items/random").json()
    assert random_item["id"] in client.app.state.collection.ids.tolist()  # type: ignore[attr-defined]


def test_status_docs_and_page(client: TestClient, tiny_hash_run: Path) -> None:
    for _ in range(5):
        client.post("/search", json={"id": 1})
    stats = client.get("/stats").json()
    assert stats["count"] == 60 and stats["bits"] == 16 and stats["backend"] == "mih"
    assert stats["run"] == str(tiny_hash_run.resolve()) and stats["uptime_s"] > 0
    assert stats["engine_pending"] is None  # a local index: nothing pending anywhere
    lat = stats["query_latency_ms"]
    assert lat["count"] == 5 and 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/search/batch", "/items", "/items/{item_id}", "/stats"} <= set(paths)
    assert "multipart/form-data" in paths["/search"]["post"]["requestBody"]["content"]
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert "http" not in client.get("/static/app.js").text  # no CDN, nothing off this server


# ---------------------------------------------------------------------------------- bad input
def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        buf, "JPEG"
    )
    return buf.getvalue()


def bomb() -> bytes:
    data = png()
    ihdr = bytearray(data[12:29])
    ihdr[4:12] = struct.pack(">II", 12_000, 12_000)  # 144 megapixels declared in 100 bytes
    return data[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + data[33:]


def image_part(data: bytes, name: str = "x.png") -> dict[str, Any]:
    return {"files": {"image": (name, data, "application/octet-stream")}}


BAD_REQUESTS = [
    # (name, method, url, request kwargs, status, error)
    ("non-image", "post", "/search", image_part(b"just some text"), 400, "invalid_image"),
    ("truncated png", "post", "/search", image_part(png()[:200]), 400, "invalid_image"),
    ("truncated jpeg", "post", "/search", image_part(jpeg()[:-200]), 400, "invalid_image"),
    ("image bomb", "post", "/search", image_part(bomb()), 400, "image_too_large"),
    ("oversized request", "post", "/search", image_part(b"\0" * 1_500_000), 413, "request_too_large"),
    ("non-image add", "post", "/items", {"files": [("image", ("a.png", png(), "image/png")), ("image", ("b.png", b"text", "image/png"))]}, 400, "invalid_image"),
    ("truncated add", "post", "/items", image_part(png()[:-40]), 400, "invalid_image"),
    ("bomb add", "post", "/items", image_part(bomb()), 400, "image_too_large"),
    ("oversized add", "post", "/items", image_part(png() + b"\0" * 1_500_000), 413, "request_too_large"),
    ("labels mismatch", "post", "/items", {"files": [("image", ("a.png", png(), "image/png"))], "data": {"label": ["a", "b"]}}, 400, "bad_request"),
    ("wrong-width code", "post", "/search", {"json": {"code": "abcdef"}}, 400, "bad_code"),
    ("non-hex code", "post", "/search", {"json": {"code": "zz00"}}, 400, "bad_code"),
    ("unknown id search", "post", "/search", {"json": {"id": 999}}, 404, "not_found"),
    ("unknown id get", "get", "/items/999", {}, 404, "not_found"),
    ("unknown id image", "get", "/items/999/image", {}, 404, "not_found"),
    ("unknown id delete", "delete", "/items/999", {}, 404, "not_found"),
    ("non-integer id", "get", "/items/abc", {}, 400, "bad_parameter"),
    ("k zero", "post", "/search?k=0", {"json": {"id": 1}}, 400, "bad_parameter"),
    ("k too large", "post", "/search", {"json": {"id": 1, "k": 101}}, 400, "bad_parameter"),
    ("k not a number", "post", "/search?k=ten", {"json": {"id": 1}}, 400, "bad_parameter"),
    ("radius out of range", "post", "/search?radius=17", {"json": {"id": 1}}, 400, "bad_parameter"),
    ("malformed json", "post", "/search", {"content": b'{"id": 1', "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
    ("json without id or code", "post", "/search", {"json": {"k": 3}}, 400, "bad_request"),
    ("wrong content type", "post", "/search", {"content": b"id=1", "headers": {"content-type": "text/plain"}}, 415, "unsupported_media_type"),
    ("no image part", "post", "/search", {"files": {"picture": ("x.png", png(), "image/png")}}, 400, "bad_request"),
    ("two images to /search", "post", "/search", {"files": [("image", ("a.png", png(), "image/png")), ("image", ("b.png", png(1), "image/png"))]}, 400, "bad_request"),
    ("unknown route", "get", "/nothing", {}, 404, "not_found"),
    ("wrong method", "put", "/search", {}, 405, "method_not_allowed"),
]  # fmt: skip


def snapshot(client: TestClient) -> tuple[Any, ...]:
    col = client.app.state.collection  # type: ignore[attr-defined]
    answer = client.post("/search?k=20", json={"id": 3}).json()["results"]
    files = sorted(p.name for p in (col.directory / "images").iterdir())
    return (
        client.get("/health").json()["count"],
        answer,
        (col.directory / "log.bin").stat().st_size,
        files,
    )


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status", "error"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_is_refused_and_changes_nothing(
    client: TestClient, method: str, url: str, kwargs: dict[str, Any], status: int, error: str
) -> None:
    before = snapshot(client)
    r = client.request(method.upper(), url, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "detail"} and body["error"] == error and body["detail"]
    assert snapshot(client) == before


def test_a_server_fault_is_json_too(collection_dir: Path) -> None:
    from deephash.collection import Collection
    from deephash.serve import create_app

    col = Collection.open(collection_dir)
    try:
        with TestClient(create_app(col), raise_server_exceptions=False) as client:
            col.close()  # writes now fail inside the server
            r = client.delete("/items/3")
            assert r.status_code == 500
            assert r.json()["error"] == "internal_error" and "closed" in r.json()["detail"]
    finally:
        col.close()


def test_a_re_ranking_collection_over_http(
    rerank_collection_dir: Path, tiny_hash_run: Path, png_files: list[tuple[Path, str]]
) -> None:
    """Search by upload and by id re-rank by descriptor; the answer equals the library's, the
    item itself comes first with score 1; a search by code ranks by Hamming (score null)."""
    from deephash.collection import Collection
    from deephash.serve import create_app

    col = Collection.open(rerank_collection_dir)
    try:
        with TestClient(create_app(col, max_upload_mb=1.0, max_k=100)) as client:
            stats = client.get("/stats").json()
            assert stats["rerank"]["descriptor"] == "early-stages"
            for item_id in (3, 41):
                body = client.post("/search", json={"id": item_id, "k": 8}).json()
                want = col.search_by_id(item_id, 8)
                assert [(h["id"], h["distance"], h["score"]) for h in body["results"]] == [
                    (h.id, h.distance, h.score) for h in want
                ]
                assert body["results"][0]["id"] == item_id
                assert body["results"][0]["score"] == 1.0
            path, _ = png_files[22]  # stored as id 22: an exact copy finds it first
            body = client.post("/search?k=5&candidates=30", files=upload(path)).json()
            assert body["results"][0]["id"] == 22 and body["results"][0]["score"] > 0.9999
            scores = [h["score"] for h in body["results"]]
            assert scores == sorted(scores, reverse=True)
            by_code = client.post("/search?k=5", json={"code": col.code_of(22).tobytes().hex()})
            assert all(h["score"] is None for h in by_code.json()["results"])
            # an added image gets its descriptor: its own upload finds it first
            new_path, label = png_files[90]
            added = client.post("/items", files=upload(new_path), data={"label": label}).json()
            body = client.post("/search?k=3", files=upload(new_path)).json()
            assert body["results"][0]["id"] == added["ids"][0]
            bad = client.post("/search?candidates=0", json={"id": 3})
            assert bad.status_code == 400 and "candidates" in bad.json()["detail"]
    finally:
        col.close()


def test_an_instance_collection_over_http(
    tmp_path: Path, tiny_instance_run: Path, png_files: list[tuple[Path, str]]
) -> None:
    """Search by id and by upload rank by the binary descriptor; the answers equal the
    library's; a search by code ranks by Hamming (score null)."""
    from deephash.collection import Collection
    from deephash.serve import create_app

    def made(folder: Path, n: int, rerank: str | None) -> Path:
        with Collection.create(folder, tiny_instance_run, rerank=rerank) as c:
            c.add_images(
                [f.read_bytes() for f, _ in png_files[:n]], [lab for _, lab in png_files[:n]]
            )
        return folder

    col = Collection.open(made(tmp_path / "icol", 60, "instance"))
    try:
        with TestClient(create_app(col, max_upload_mb=1.0, max_k=100)) as client:
            stats = client.get("/stats").json()["rerank"]
            assert (stats["descriptor"], stats["dtype"], stats["bytes_per_item"]) == (
                "instance",
                "bits",
                8,
            )
            checked = 0
            for item_id, query in ((3, "k=8"), (41, "k=8&candidates=2&descriptor_candidates=3")):
                body = client.post(f"/search?{query}", json={"id": item_id}).json()
                kc = 2 if "candidates=2" in query else None
                kd = 3 if "descriptor_candidates" in query else None
                want = col.search_by_id(item_id, 8, candidates=kc, descriptor_candidates=kd)
                assert [(h["id"], h["distance"], h["score"]) for h in body["results"]] == [
                    (h.id, h.distance, h.score) for h in want
                ]
                assert body["results"][0]["score"] == 1.0
                checked += 1
            assert checked == 2
            path, _ = png_files[22]
            body = client.post("/search?k=5", files=upload(path)).json()
            codes, bits = col.encode_with_descriptors(col.decode(path.read_bytes()).rgb[None])
            want = col.search(codes, 5, descriptors=bits)[0]
            assert [(h["id"], h["distance"], h["score"]) for h in body["results"]] == [
                (h.id, h.distance, h.score) for h in want
            ]
            assert len(want) == 5 and want[0].score == 1.0
            files = [("image", (path.name, path.read_bytes(), "image/png"))] * 2
            batch = client.post("/search/batch?k=5", files=files).json()
            assert [[h["id"] for h in row] for row in batch["results"]] == [
                [h.id for h in want]
            ] * 2
            by_code = client.post("/search?k=5", json={"code": col.code_of(22).tobytes().hex()})
            assert all(h["score"] is None for h in by_code.json()["results"])
            bad = client.post("/search?descriptor_candidates=0", json={"id": 3})
            assert bad.status_code == 400 and "descriptor_candidates" in bad.json()["detail"]
    finally:
        col.close()
    plain = Collection.open(made(tmp_path / "p", 3, None))
    try:
        with TestClient(create_app(plain, max_upload_mb=1.0, max_k=100)) as client:
            bad = client.post("/search?descriptor_candidates=4", json={"id": 0})
            assert bad.status_code == 400 and "binary (instance)" in bad.json()["detail"]
    finally:
        plain.close()
