"""The body limit around a bare app that echoes the size of what it received."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from deephash.serve.body_limit import BodyLimit

LIMIT = 1000


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


def client() -> TestClient:
    app = Starlette(routes=[Route("/", echo, methods=["GET", "POST", "PUT"])])
    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    return TestClient(app)


def test_bodies_up_to_the_limit_pass_whole() -> None:
    c = client()
    for size in (0, 1, LIMIT - 1, LIMIT):
        r = c.post("/", content=b"x" * size)
        assert r.status_code == 200 and r.json() == {"received": size}
    assert c.get("/").json() == {"received": 0}


def test_a_body_over_the_limit_is_413_json() -> None:
    c = client()
    for method in ("POST", "PUT"):
        r = c.request(method, "/", content=b"x" * (LIMIT + 1))
        assert r.status_code == 413
        assert r.json() == {
            "error": "request_too_large",
            "detail": f"the request body is larger than the server's limit of {LIMIT:,} bytes "
            "(deephash serve --max-upload-mb); send fewer or smaller images per request",
        }


def chunks(n: int, size: int) -> Iterator[bytes]:
    for _ in range(n):
        yield b"y" * size


def test_a_chunked_body_is_counted_as_it_comes() -> None:
    c = client()
    ok = c.post("/", content=chunks(4, LIMIT // 4))  # no Content-Length: chunked
    assert ok.status_code == 200 and ok.json() == {"received": LIMIT}
    assert c.post("/", content=chunks(5, LIMIT // 4)).status_code == 413


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    c = client()
    r = c.post("/", content=b"z", headers={"content-length": str(LIMIT + 1)})
    assert r.status_code == 413
