"""The HTTP API and the page over a :class:`~deephash.collection.Collection` (FastAPI).

Every error is JSON ``{"error": <short code>, "detail": <what is wrong and what to do>}``:
400 for bad input (not an image, a truncated file, an image bomb, a malformed JSON body, a code
of the wrong width, k or radius out of range), 404 for an unknown id or route, 405 for a wrong
method, 413 for a request over the size limit, 415 for a body that is neither multipart nor JSON,
503 ``engine_unavailable`` while an external engine (a Milvus server) cannot be reached (with
``Retry-After``; searches recover by themselves once it is back), 507 ``insufficient_storage`` when
the collection's disk is full (the addition or removal was not made; searches keep working).
A request that fails changes nothing: additions decode and encode every image before the first
one is written.

The app is a composition: the routes (:mod:`deephash.serve.routes`, one router per resource), the
errors (:mod:`~deephash.serve.errors`), the body limit (:mod:`~deephash.serve.body_limit`), and the
state they share (:class:`~deephash.serve.service.Service` and the tokens, read by the
dependencies of :mod:`~deephash.serve.dependencies`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from deephash.collection import Collection
from deephash.serve.body_limit import BodyLimit
from deephash.serve.dependencies import Tokens
from deephash.serve.errors import ApiError, add_error_handlers
from deephash.serve.openapi import DESCRIPTION, TITLE
from deephash.serve.routes import items, page, search, status
from deephash.serve.service import Service

__all__ = ["DEFAULT_MAX_K", "DEFAULT_MAX_UPLOAD_MB", "ApiError", "create_app"]

DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_MAX_K = 1000


def create_app(
    collection: Collection,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_k: int = DEFAULT_MAX_K,
    max_batch: int = 64,
    on_startup: Callable[[], None] | None = None,
    on_shutdown: Callable[[], None] | None = None,
    write_token: str | None = None,
    read_token: str | None = None,
) -> FastAPI:
    """The FastAPI app serving ``collection`` (opened by the caller, who also closes it).

    write_token: when set, adding and removing items needs ``Authorization: Bearer <token>``
    (401 JSON otherwise, before the body is read; see :mod:`deephash.serve.auth`).
    read_token: when set, searches, items and images need it (or the write token); the page,
    ``/health`` and ``/stats`` stay open.

    max_upload_mb: largest request body (413 above). max_k: largest k a search may ask for.
    max_batch: most images per model pass of the micro-batcher. on_startup / on_shutdown: called
    when the server starts serving / has stopped serving (uvicorn re-raises SIGTERM after that, so
    code after ``Server.run`` may never run).
    """
    service = Service(collection, max_k=max_k, max_batch=max_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        yield
        service.close()
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(title=TITLE, description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service
    app.state.tokens = Tokens(write=write_token, read=read_token)
    # the parts, by name, for callers and tests that look inside a running app
    app.state.collection = collection
    app.state.batcher = service.batcher
    app.state.latency = service.latency
    app.add_middleware(BodyLimit, max_bytes=int(max_upload_mb * 1024 * 1024))
    add_error_handlers(app)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC_DIR), name="static")
    for router in (search.router, items.router, status.router):
        app.include_router(router)
    return app
