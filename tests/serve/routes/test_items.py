"""The items router alone, in a bare app: what it stores is what was sent, codes equal the run's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deephash.codes import pack_bits, sign
from deephash.serve.dependencies import Tokens
from deephash.serve.routes import items
from deephash.training.runs import load_run


def test_the_items_router_alone_stores_what_was_sent(
    bare_app: Any, collection_dir: Path, tiny_hash_run: Path, png_files: list[tuple[Path, str]]
) -> None:
    (a, _), (b, _) = png_files[70:72]
    model = load_run(tiny_hash_run)
    want_codes = pack_bits(sign(model.encode(model.load_images([a, b]))))
    with bare_app(items.router, collection_dir) as (client, col):
        files = [("image", (p.name, p.read_bytes(), "image/png")) for p in (a, b)]
        r = client.post("/items", files=files, data={"label": ["first", "second"]})
        assert r.status_code == 201 and r.json() == {"ids": [60, 61]}
        for new, path, label, code in zip((60, 61), (a, b), ("first", "second"), want_codes):
            item = client.get(f"/items/{new}").json()
            assert (item["id"], item["label"], item["path"]) == (new, label, path.name)
            assert item["code"] == code.tobytes().hex()
            assert item["image_url"] == f"/items/{new}/image"
            image = client.get(f"/items/{new}/image")
            assert image.content == path.read_bytes()
            assert image.headers["cache-control"] == "public, max-age=86400"
        assert client.delete("/items/60").json() == {"id": 60, "removed": True}
        assert client.get("/items/60").status_code == 404
        assert 60 not in col.ids.tolist() and col.count == 61
        assert client.get("/items/random").json()["id"] in col.ids.tolist()
        assert client.post("/search", json={"id": 1}).status_code == 404  # not mounted here


def test_the_items_router_checks_tokens_after_the_path(bare_app: Any, collection_dir: Path) -> None:
    """A malformed id is a 400 whatever the token; a well-formed one needs the token."""
    with bare_app(items.router, collection_dir, Tokens(read="r", write="w")) as (client, col):
        cases = [
            # (method, url, header, status)
            ("GET", "/items/abc", None, 400),
            ("GET", "/items/abc/image", None, 400),
            ("DELETE", "/items/abc", None, 400),
            ("GET", "/items/3", None, 401),
            ("GET", "/items/3/image", "Bearer w", 200),
            ("GET", "/items/3", "Bearer r", 200),
            ("GET", "/items/random", None, 401),
            ("DELETE", "/items/3", "Bearer r", 401),
            ("POST", "/items", "Bearer r", 401),
            ("DELETE", "/items/3", "Bearer w", 200),
        ]
        for method, url, header, status in cases:
            headers = {"Authorization": header} if header else {}
            r = client.request(method, url, headers=headers)
            assert r.status_code == status, (method, url, header, r.text)
        assert col.count == 59
