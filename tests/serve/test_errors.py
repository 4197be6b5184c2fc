"""The JSON errors on a bare app: every failure answers {"error", "detail"} with its status."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from deephash.index import EngineUnavailableError
from deephash.serve.errors import ApiError, add_error_handlers


def app_raising() -> FastAPI:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/api/{status}")
    async def api(status: int) -> None:
        raise ApiError(status, "some_code", "what to do")

    @app.get("/engine")
    async def engine() -> None:
        raise EngineUnavailableError("milvus at 127.0.0.1:1 cannot be reached")

    @app.get("/bug")
    async def bug() -> None:
        raise ZeroDivisionError("division by zero")

    @app.get("/number")
    async def number(n: int, m: int) -> None:
        return None

    return app


def test_each_failure_answers_json() -> None:
    c = TestClient(app_raising(), raise_server_exceptions=False)
    cases = [
        # (method, url, status, body, headers that must be there)
        ("GET", "/api/400", 400, {"error": "some_code", "detail": "what to do"}, {}),
        ("GET", "/api/401", 401, {"error": "some_code", "detail": "what to do"},
         {"www-authenticate": 'Bearer realm="deephash"'}),
        ("GET", "/engine", 503, {"error": "engine_unavailable",
                                 "detail": "milvus at 127.0.0.1:1 cannot be reached"},
         {"retry-after": "1"}),
        ("GET", "/bug", 500, {"error": "internal_error",
                              "detail": "ZeroDivisionError: division by zero (see the server's log)"}, {}),
        ("GET", "/nothing", 404, {"error": "not_found", "detail": "no route GET /nothing; see /docs"}, {}),
        ("POST", "/engine", 405, {"error": "method_not_allowed", "detail": "Method Not Allowed"}, {}),
    ]  # fmt: skip
    for method, url, status, body, headers in cases:
        r = c.request(method, url)
        assert (r.status_code, r.json()) == (status, body), url
        assert {k: r.headers.get(k) for k in headers} == headers
    assert "www-authenticate" not in c.get("/api/403").headers


def test_invalid_parameters_are_400_naming_each() -> None:
    c = TestClient(app_raising())
    r = c.get("/number?n=x")
    assert r.status_code == 400 and r.json()["error"] == "bad_parameter"
    parts = r.json()["detail"].split("; ")
    assert len(parts) == 2
    assert parts[0].startswith("query.n: ") and parts[1].startswith("query.m: ")
