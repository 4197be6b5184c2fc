"""What the routes share: the collection, its micro-batched encoder, the writer thread, the
search limits and the latency record (one per app, on ``app.state.service``)."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from deephash.collection import Collection, Hit, ImageBombError, ImageDecodeError
from deephash.serve.batcher import MicroBatcher
from deephash.serve.errors import ApiError
from deephash.serve.latency import LatencyRecorder
from deephash.serve.parsing import SearchLimits, SearchOptions

__all__ = ["Service"]

_INLINE_DECODE_BYTES = 64 * 1024  # smaller uploads are decoded on the event loop


class Service:
    """The collection behind the routes (opened and closed by the caller), with an encoder that
    batches concurrent requests (``max_batch`` images per model pass) and one writer thread."""

    def __init__(self, collection: Collection, *, max_k: int, max_batch: int) -> None:
        self.collection = collection
        self.limits = SearchLimits(max_k=max_k, bits=collection.bits)
        self.started = time.time()
        self.latency = LatencyRecorder()
        # rows of (code, descriptor when the collection re-ranks): one model pass gives both
        self.batcher = MicroBatcher(collection.encode_records, max_batch=max_batch)
        # Writes wait for an fsync and for each other: one thread of their own, so a burst of
        # additions never takes the worker threads that decoding needs.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collection-writer")

    def close(self) -> None:
        """Stop the encoder and wait for the writes under way (the collection stays open)."""
        self.batcher.close()
        self._writer.shutdown(wait=True)

    def _decode(self, data: bytes, name: str) -> Any:
        try:
            return self.collection.decode(data, name=name)
        except ImageBombError as exc:
            raise ApiError(400, "image_too_large", str(exc)) from None
        except ImageDecodeError as exc:
            raise ApiError(400, "invalid_image", str(exc)) from None

    async def encode_uploads(
        self, files: list[tuple[bytes, str]]
    ) -> tuple[np.ndarray, np.ndarray | None, list[Any]]:
        """Decode (in worker threads) and encode (one micro-batched pass) uploaded (content,
        name) images: codes uint8 (n, nbytes), descriptors float32 (n, dim) or None when the
        collection does not re-rank, and the decoded images."""
        if sum(len(d) for d, _ in files) <= _INLINE_DECODE_BYTES:
            decoded = [self._decode(d, n) for d, n in files]  # cheaper than a worker thread
        else:
            decoded = await asyncio.gather(
                *(run_in_threadpool(self._decode, d, n) for d, n in files)
            )
        rgb = np.stack([d.rgb for d in decoded])
        rows = await asyncio.wrap_future(self.batcher.submit(rgb))
        desc = rows["descriptor"] if self.collection.reranks else None
        return np.ascontiguousarray(rows["code"]), desc, decoded

    async def search(
        self,
        codes: np.ndarray,
        options: SearchOptions,
        t0: float,
        descriptors: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """The hits of each query code uint8 (n, nbytes) (re-ranked by ``descriptors`` float32
        (n, dim) when given); records the latency since ``t0`` (``time.perf_counter``)."""

        if options.descriptor_candidates is not None and not self.collection.binary_descriptor:
            raise ApiError(
                400,
                "bad_request",
                "descriptor_candidates is for a collection of binary (instance) descriptors",
            )

        def go() -> list[list[Hit]]:
            return self.collection.search(
                codes, options.k, options.radius, descriptors=descriptors,
                candidates=options.candidates,
                descriptor_candidates=options.descriptor_candidates,
            )  # fmt: skip

        if self.collection.external or descriptors is not None:
            # a network round trip to the engine, or re-ranking (about 2.6 ms for 4,096
            # candidates of 60,000 items, in a kernel that releases the GIL): off the event loop
            hits = await run_in_threadpool(go)
        else:
            # Inline: the kernel holds the GIL and takes ~0.1 ms for 60,000 codes, less than a
            # hop to a worker thread would cost.
            hits = go()
        self.latency.record((time.perf_counter() - t0) * 1000.0)
        return hits

    async def write(self, change: Callable[..., Any], *args: Any) -> Any:
        """Run a change of the collection on the writer thread; a storage failure is answered as
        507 (disk full) or 503 (any other), and the change was not made."""
        try:
            return await asyncio.wrap_future(self._writer.submit(change, *args))
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
