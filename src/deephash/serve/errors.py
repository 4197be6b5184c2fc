"""Errors answered as JSON ``{"error": <short code>, "detail": <what is wrong and what to do>}``.

:class:`ApiError` is what routes raise; :func:`add_error_handlers` makes every other failure
answer the same way: 400 for an invalid parameter, 404 for an unknown route, 405 for a wrong
method, 503 ``engine_unavailable`` (with ``Retry-After``) while an external engine cannot be
reached, 500 ``internal_error`` for anything unexpected.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from deephash.index import EngineUnavailableError

__all__ = ["ApiError", "add_error_handlers", "error_response"]

# Starlette's own errors (no route, wrong method, bad form) and their short codes.
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


class ApiError(Exception):
    """An error answered as JSON ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def error_response(status: int, code: str, detail: Any) -> JSONResponse:
    """The JSON answer ``{"error": code, "detail": detail}`` with HTTP ``status``."""
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


async def api_error(request: Request, exc: ApiError) -> JSONResponse:
    response = error_response(exc.status, exc.code, exc.detail)
    if exc.status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="deephash"'
    return response


async def engine_unavailable(request: Request, exc: EngineUnavailableError) -> JSONResponse:
    # searches recover by themselves once the engine is back: the client may simply retry
    response = error_response(503, "engine_unavailable", str(exc))
    response.headers["Retry-After"] = "1"
    return response


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.method} {request.url.path}; see /docs"
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "http_error"), detail)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        500, "internal_error", f"{type(exc).__name__}: {exc} (see the server's log)"
    )


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    parts = [
        f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()
    ]
    return error_response(400, "bad_parameter", "; ".join(parts))


def add_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` as JSON ``{"error", "detail"}``."""
    handlers: dict[type[Exception], Callable[[Request, Any], Awaitable[Response]]] = {
        ApiError: api_error,
        EngineUnavailableError: engine_unavailable,
        StarletteHTTPException: http_error,
        Exception: internal_error,
        RequestValidationError: validation_error,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
