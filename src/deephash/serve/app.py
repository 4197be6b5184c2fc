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
"""

from __future__ import annotations

import asyncio
import errno
import json
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deephash.codes import check_padding_bits
from deephash.collection import Collection, Hit, ImageBombError, ImageDecodeError, NewItem
from deephash.index import EngineUnavailableError
from deephash.serve.auth import token_matches
from deephash.serve.batcher import MicroBatcher
from deephash.serve.latency import LatencyRecorder

__all__ = ["DEFAULT_MAX_K", "DEFAULT_MAX_UPLOAD_MB", "ApiError", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_MAX_UPLOAD_MB = 20.0
DEFAULT_MAX_K = 1000
MAX_CANDIDATES = 100_000  # most Hamming candidates a search may ask to re-rank
_MAX_PARTS = 1000
_INLINE_DECODE_BYTES = 64 * 1024  # smaller uploads are decoded on the event loop


class ApiError(Exception):
    """An error answered as JSON ``{"error": code, "detail": detail}`` with ``status``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _error(status: int, code: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413 before the app parses it.

    The body is read here (counting, so a chunked upload without Content-Length is caught too) and
    handed to the app in one piece.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_big = _error(
            413,
            "request_too_large",
            f"the request body is larger than the server's limit of {self.max_bytes:,} bytes "
            "(deephash serve --max-upload-mb); send fewer or smaller images per request",
        )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await too_big(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await too_big(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _int_param(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ApiError(
                400, "bad_parameter", f"{name} must be an integer, got {value!r}"
            ) from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ApiError(
            400, "bad_parameter", f"{name} must be between {low} and {high}, got {value}"
        )
    return value


def _multipart_images(**fields: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body: multipart with one or more ``image`` files, plus ``fields``."""
    image = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"image": image, **fields}}
                }
            },
        }
    }


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
    started = time.time()
    max_candidates = MAX_CANDIDATES
    latency = LatencyRecorder()
    # rows of (code, descriptor when the collection re-ranks): one model pass gives both
    batcher = MicroBatcher(collection.encode_records, max_batch=max_batch)
    # Writes wait for an fsync and for each other: one thread of their own, so a burst of
    # additions never takes the worker threads that decoding needs.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collection-writer")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if on_startup is not None:
            on_startup()
        yield
        batcher.close()
        writer.shutdown(wait=True)
        if on_shutdown is not None:
            on_shutdown()

    app = FastAPI(
        title="deephash image search",
        description="Search a deephash collection by image, by item or by code; add and remove "
        'items. Errors are JSON {"error", "detail"}.',
        lifespan=lifespan,
    )
    app.state.collection = collection
    app.state.batcher = batcher
    app.state.latency = latency
    app.add_middleware(BodyLimit, max_bytes=int(max_upload_mb * 1024 * 1024))

    # ------------------------------------------------------------------ errors as JSON
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        response = _error(exc.status, exc.code, exc.detail)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="deephash"'
        return response

    @app.exception_handler(EngineUnavailableError)
    async def engine_unavailable(request: Request, exc: EngineUnavailableError) -> JSONResponse:
        response = _error(503, "engine_unavailable", str(exc))
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}; see /docs"
        return _error(exc.status_code, codes.get(exc.status_code, "http_error"), detail)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, "internal_error", f"{type(exc).__name__}: {exc} (see the server's log)")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
            for e in exc.errors()
        ]
        return _error(400, "bad_parameter", "; ".join(parts))

    # ------------------------------------------------------------------ helpers
    def hit_json(hit: Hit) -> dict[str, Any]:
        # score: the re-rank score (cosine of the descriptors; null when the search ranked by
        # Hamming distance alone)
        out: dict[str, Any] = {"id": hit.id, "distance": hit.distance, "score": hit.score}
        if hit.item.label is not None:
            out["label"] = hit.item.label
        if hit.item.path is not None:
            out["path"] = hit.item.path
        out["image_url"] = f"/items/{hit.id}/image"
        return out

    def item_json(item_id: int) -> dict[str, Any]:
        try:
            item = collection.get(item_id)
            code = collection.code_of(item_id)
        except KeyError as exc:
            raise ApiError(404, "not_found", str(exc.args[0])) from None
        return {
            **item.to_json(),
            "code": code.tobytes().hex(),
            "image_url": f"/items/{item_id}/image",
        }

    def parse_k(value: Any) -> int:
        return _int_param(value, "k", 1, max_k)

    def parse_radius(value: Any) -> int | None:
        if value is None:
            return None
        return _int_param(value, "radius", 0, collection.bits)

    async def read_form(request: Request) -> FormData:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(
                415,
                "unsupported_media_type",
                f"send multipart/form-data with one or more 'image' file parts, not {ctype or 'no content type'}",
            )
        return await request.form(max_files=_MAX_PARTS, max_fields=_MAX_PARTS)

    async def images_of(form: FormData) -> list[tuple[bytes, str]]:
        parts = form.getlist("image")
        if not parts:
            raise ApiError(
                400, "bad_request", "no 'image' part in the form; send the file as field 'image'"
            )
        out = []
        for i, part in enumerate(parts):
            if not isinstance(part, UploadFile):
                raise ApiError(400, "bad_request", f"form field 'image' #{i} is text, not a file")
            out.append((await part.read(), part.filename or f"upload {i}"))
        return out

    async def encode_uploads(
        files: list[tuple[bytes, str]],
    ) -> tuple[np.ndarray, np.ndarray | None, list[Any]]:
        """Decode (in worker threads) and encode (one micro-batched pass) uploaded images:
        (codes, descriptors or None, decoded images)."""

        def decode(data: bytes, name: str) -> Any:
            try:
                return collection.decode(data, name=name)
            except ImageBombError as exc:
                raise ApiError(400, "image_too_large", str(exc)) from None
            except ImageDecodeError as exc:
                raise ApiError(400, "invalid_image", str(exc)) from None

        if sum(len(d) for d, _ in files) <= _INLINE_DECODE_BYTES:
            decoded = [decode(d, n) for d, n in files]  # cheaper than a hop to a worker thread
        else:
            decoded = await asyncio.gather(*(run_in_threadpool(decode, d, n) for d, n in files))
        rgb = np.stack([d.rgb for d in decoded])
        rows = await asyncio.wrap_future(batcher.submit(rgb))
        desc = rows["descriptor"] if collection.reranks else None
        return np.ascontiguousarray(rows["code"]), desc, decoded

    def parse_candidates(value: Any) -> int | None:
        if value is None:
            return None
        return _int_param(value, "candidates", 1, max_candidates)

    async def run_search(
        codes: np.ndarray,
        k: int,
        radius: int | None,
        t0: float,
        descriptors: np.ndarray | None = None,
        candidates: int | None = None,
    ) -> list[list[Hit]]:
        def go() -> list[list[Hit]]:
            return collection.search(
                codes, k, radius, descriptors=descriptors, candidates=candidates
            )

        if collection.external or descriptors is not None:
            # a network round trip to the engine, or re-ranking (about 2.6 ms for 4,096
            # candidates of 60,000 items, in a kernel that releases the GIL): off the event loop
            hits = await run_in_threadpool(go)
        else:
            # Inline: the kernel holds the GIL and takes ~0.1 ms for 60,000 codes, less than a
            # hop to a worker thread would cost.
            hits = go()
        latency.record((time.perf_counter() - t0) * 1000.0)
        return hits

    # ------------------------------------------------------------------ page
    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # ------------------------------------------------------------------ search
    search_body = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"image": {"type": "string", "format": "binary"}},
                        "required": ["image"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer", "description": "search by a stored item"},
                            "code": {"type": "string", "description": "packed code, hex"},
                            "k": {"type": "integer"},
                            "radius": {"type": "integer"},
                            "candidates": {
                                "type": "integer",
                                "description": "Hamming candidates to re-rank (k')",
                            },
                        },
                    }
                },
            },
        }
    }

    @app.post(
        "/search", openapi_extra=search_body, summary="Search by an uploaded image, an id or a code"
    )
    async def search(request: Request) -> dict[str, Any]:
        """Multipart with one ``image`` part, or JSON ``{"id": ..., "k": ...}`` /
        ``{"code": "<hex>", "k": ...}``. Returns ``{"query_ms", "results": [{"id", "distance",
        "score", "label"?, "path"?, "image_url"}]}``, best first. A collection with descriptors
        re-ranks the ``candidates`` (k') nearest codes of an image or id search by descriptor
        (``score``: cosine similarity, 1 for the same image; then Hamming ``distance``, then
        id); otherwise (and for a search by code) results are by Hamming distance, ties by the
        smaller id, and ``score`` is null. With ``radius``, only items at Hamming distance <=
        radius."""
        require_reader(request)
        t0 = time.perf_counter()
        k = parse_k(request.query_params.get("k", "10"))
        radius = parse_radius(request.query_params.get("radius"))
        candidates = parse_candidates(request.query_params.get("candidates"))
        desc = None
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json") or "+json" in ctype.split(";")[0]:
            raw = await request.body()
            try:
                body = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ApiError(
                    400, "malformed_json", f"the JSON body cannot be parsed: {exc}"
                ) from None
            if not isinstance(body, dict) or ("id" in body) == ("code" in body):
                raise ApiError(
                    400,
                    "bad_request",
                    'send a JSON object with either "id" or "code" (and optional "k", "radius")',
                )
            if "k" in body:
                k = parse_k(body["k"])
            if "radius" in body:
                radius = parse_radius(body["radius"])
            if "candidates" in body:
                candidates = parse_candidates(body["candidates"])
            if "id" in body:
                item_id = body["id"]
                if not isinstance(item_id, int) or isinstance(item_id, bool):
                    raise ApiError(400, "bad_parameter", f"id must be an integer, got {item_id!r}")
                try:
                    code = collection.code_of(item_id)[None, :]
                    if collection.reranks:
                        desc = collection.descriptor_of(item_id)[None, :]
                except KeyError as exc:
                    raise ApiError(404, "not_found", str(exc.args[0])) from None
            else:
                code = parse_code(body["code"])
        else:
            form = await read_form(request)
            files = await images_of(form)
            if len(files) != 1:
                raise ApiError(
                    400, "bad_request", f"{len(files)} images sent; use /search/batch for several"
                )
            code, desc, _ = await encode_uploads(files)
        hits = await run_search(code, k, radius, t0, desc, candidates)
        return {
            "query_ms": round((time.perf_counter() - t0) * 1000.0, 3),
            "results": [hit_json(h) for h in hits[0]],
        }

    def parse_code(value: Any) -> np.ndarray:
        nbytes = collection.nbytes
        if not isinstance(value, str):
            raise ApiError(400, "bad_code", f"code must be a hex string, got {value!r}")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise ApiError(400, "bad_code", f"code {value!r} is not hexadecimal") from None
        if len(raw) != nbytes:
            raise ApiError(
                400,
                "bad_code",
                f"code has {len(raw)} bytes ({len(value)} hex digits) but this collection's "
                f"{collection.bits}-bit codes have {nbytes} bytes ({2 * nbytes} hex digits)",
            )
        code = np.frombuffer(raw, dtype=np.uint8)[None, :].copy()
        try:
            check_padding_bits(code, collection.bits, "the code")
        except ValueError as exc:
            raise ApiError(400, "bad_code", str(exc)) from None
        return code

    @app.post(
        "/search/batch",
        summary="Search by several uploaded images",
        openapi_extra=_multipart_images(),
    )
    async def search_batch(request: Request) -> dict[str, Any]:
        """Multipart with several ``image`` parts; returns ``{"query_ms", "results": [[hit, ...],
        ...]}``, one result list per image, in the order sent."""
        require_reader(request)
        t0 = time.perf_counter()
        k = parse_k(request.query_params.get("k", "10"))
        radius = parse_radius(request.query_params.get("radius"))
        candidates = parse_candidates(request.query_params.get("candidates"))
        files = await images_of(await read_form(request))
        codes, desc, _ = await encode_uploads(files)
        hits = await run_search(codes, k, radius, t0, desc, candidates)
        return {
            "query_ms": round((time.perf_counter() - t0) * 1000.0, 3),
            "results": [[hit_json(h) for h in row] for row in hits],
        }

    async def write(change: Callable[..., Any], *args: Any) -> Any:
        """Run a change on the writer thread; a storage failure is answered as JSON."""
        try:
            return await asyncio.wrap_future(writer.submit(change, *args))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise ApiError(
                    507,
                    "insufficient_storage",
                    "the collection's disk is full: nothing was changed (every change "
                    "acknowledged before is kept, searches keep working); free space and retry",
                ) from None
            raise ApiError(
                503,
                "storage_error",
                f"the collection could not write its log ({exc.strerror or exc}); nothing "
                "was changed",
            ) from None

    def require_writer(request: Request) -> None:
        if write_token is not None and not token_matches(
            request.headers.get("authorization"), write_token
        ):
            raise ApiError(
                401,
                "unauthorized",
                "adding and removing items needs the server's write token: send the header "
                "'Authorization: Bearer <token>'",
            )

    def require_reader(request: Request) -> None:
        if read_token is None:
            return
        header = request.headers.get("authorization")
        if token_matches(header, read_token) or (
            write_token is not None and token_matches(header, write_token)
        ):
            return
        raise ApiError(
            401,
            "unauthorized",
            "searches, items and images need the server's read token: send the header "
            "'Authorization: Bearer <token>'",
        )

    # ------------------------------------------------------------------ items
    @app.post(
        "/items",
        status_code=201,
        summary="Add images",
        openapi_extra=_multipart_images(label={"type": "array", "items": {"type": "string"}}),
    )
    async def add_items(request: Request) -> dict[str, Any]:
        """Multipart: one or more ``image`` parts and optional ``label`` fields (none, one for
        all, or one per image). Answers ``{"ids": [...]}`` once the items are on disk."""
        require_writer(request)
        form = await read_form(request)
        files = await images_of(form)
        labels = [str(v) for v in form.getlist("label")]
        if len(labels) == 1:
            labels = labels * len(files)
        elif not labels:
            labels = [""] * len(files)
        elif len(labels) != len(files):
            raise ApiError(
                400,
                "bad_request",
                f"{len(files)} images but {len(labels)} labels; send none, one, or one per image",
            )
        codes, desc, decoded = await encode_uploads(files)
        new = [
            NewItem(
                codes[i],
                files[i][0],
                decoded[i].suffix,
                labels[i] or None,
                files[i][1],
                None if desc is None else desc[i],
            )
            for i in range(len(files))
        ]
        ids = await write(collection.add, new)
        return {"ids": ids}

    @app.get("/items/random", summary="A random item")
    async def random_item(request: Request) -> dict[str, Any]:
        require_reader(request)
        try:
            item_id = collection.random_id()
        except KeyError:
            raise ApiError(404, "not_found", "the collection is empty; add images first") from None
        return item_json(item_id)

    @app.get("/items/{item_id}", summary="An item's metadata")
    async def get_item(item_id: int, request: Request) -> dict[str, Any]:
        require_reader(request)
        return item_json(item_id)

    @app.get("/items/{item_id}/image", summary="An item's stored image", response_model=None)
    async def get_image(item_id: int, request: Request) -> Response:
        require_reader(request)
        try:
            path = collection.image_file(item_id)
        except KeyError as exc:
            raise ApiError(404, "not_found", str(exc.args[0])) from None
        if path is None or not path.is_file():
            raise ApiError(404, "not_found", f"item {item_id} has no stored image")
        return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})

    @app.delete("/items/{item_id}", summary="Remove an item")
    async def delete_item(item_id: int, request: Request) -> dict[str, Any]:
        require_writer(request)
        try:
            await write(collection.remove, [item_id])
        except KeyError as exc:
            raise ApiError(404, "not_found", str(exc.args[0])) from None
        return {"id": item_id, "removed": True}

    # ------------------------------------------------------------------ status
    @app.get("/health", summary="Liveness")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "count": collection.count}

    @app.get("/stats", summary="Collection size, model and query latency")
    async def stats() -> dict[str, Any]:
        return {
            "count": collection.count,
            "bits": collection.bits,
            "backend": collection.backend,
            "run": str(collection.run_dir),
            "rerank": (
                {
                    "descriptor": collection.descriptor,
                    "dim": collection.descriptor_dim,
                    "candidates": collection.candidates,
                }
                if collection.reranks
                else None
            ),
            "engine_pending": collection.engine_pending,  # milvus: changes it may not show yet
            "uptime_s": round(time.time() - started, 3),
            "query_latency_ms": latency.percentiles(),
            "encoder": {"batches": batcher.batches, "mean_batch": round(batcher.mean_batch, 3)},
        }

    return app
