"""The page router alone: ``/`` is the packaged index.html, byte for byte."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

import deephash.serve
from deephash.serve.routes import page


def test_the_page_router_alone_serves_the_packaged_page() -> None:
    app = FastAPI()
    app.include_router(page.router)
    with TestClient(app) as client:
        r = client.get("/")
    packaged = Path(deephash.serve.__file__).parent / "static" / "index.html"
    assert r.status_code == 200 and r.content == packaged.read_bytes()
    assert r.headers["content-type"].startswith("text/html")
    assert "/" not in app.openapi()["paths"]  # not part of the API's schema
