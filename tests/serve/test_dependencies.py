"""The token checks as dependencies, on a bare app: who may read and write, for every pair of
tokens, against a table written by hand."""

from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from deephash.serve.dependencies import (
    ReadableItemId,
    RemovableItemId,
    Tokens,
    require_reader,
    require_writer,
)
from deephash.serve.errors import add_error_handlers


def guarded_app(tokens: Tokens) -> TestClient:
    app = FastAPI()
    add_error_handlers(app)
    app.state.tokens = tokens

    @app.get("/read", dependencies=[Depends(require_reader)])
    async def read() -> str:
        return "ok"

    @app.post("/write", dependencies=[Depends(require_writer)])
    async def write() -> str:
        return "ok"

    @app.get("/things/{item_id}")
    async def thing(item_id: ReadableItemId) -> int:
        return item_id

    @app.delete("/things/{item_id}")
    async def remove(item_id: RemovableItemId) -> int:
        return item_id

    return TestClient(app)


HEADERS = {"none": None, "read": "Bearer R", "write": "Bearer W", "wrong": "Bearer X",
           "basic": "Basic W", "lower": "bearer W"}  # fmt: skip

# (write token, read token) -> the headers that may read, the headers that may write
ALLOWED = {
    (None, None): (set(HEADERS), set(HEADERS)),
    ("W", None): (set(HEADERS), {"write", "lower"}),
    (None, "R"): ({"read"}, set(HEADERS)),
    ("W", "R"): ({"read", "write", "lower"}, {"write", "lower"}),
}


@pytest.mark.parametrize(("write", "read"), list(ALLOWED))
def test_who_may_read_and_write(write: str | None, read: str | None) -> None:
    c = guarded_app(Tokens(write=write, read=read))
    readers, writers = ALLOWED[(write, read)]
    for name, header in HEADERS.items():
        h = {"Authorization": header} if header else {}
        for (method, url), allowed in (
            (("GET", "/read"), name in readers),
            (("GET", "/things/5"), name in readers),
            (("POST", "/write"), name in writers),
            (("DELETE", "/things/5"), name in writers),
        ):
            r = c.request(method, url, headers=h)
            assert r.status_code == (200 if allowed else 401), (name, method, url)
            if not allowed:
                assert (
                    r.json()["error"] == "unauthorized" and "Bearer <token>" in r.json()["detail"]
                )
        # a malformed id is refused for what it is, whatever the token
        assert c.get("/things/five", headers=h).status_code == 400
        assert c.delete("/things/five", headers=h).status_code == 400
