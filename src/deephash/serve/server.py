"""Run the service: open (and lock) a collection, load the model once, serve with uvicorn."""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from deephash.collection import Collection
from deephash.index.errors import EngineUnavailableError
from deephash.serve.app import DEFAULT_MAX_K, DEFAULT_MAX_UPLOAD_MB, create_app

__all__ = ["serve", "warm_up"]


def warm_up(collection: Collection) -> None:
    """One pass through the model and, when the collection holds items, one search by a stored
    item, so the first request pays for neither (the model's first pass; on a fresh install,
    compiling the search kernels, seconds). An engine that is down now is not an error here:
    searches answer 503 until it is back."""
    size = collection.image_size
    collection.encode(np.zeros((1, size, size, 3), dtype=np.uint8))
    if collection.count:
        try:
            collection.search_by_id(int(collection.ids[0]), 1)
        except EngineUnavailableError:
            pass


def serve(
    directory: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_k: int = DEFAULT_MAX_K,
    device: str = "auto",
    log_level: str = "warning",
    write_token: str | None = None,
    read_token: str | None = None,
) -> None:
    """Serve the collection in ``directory`` until interrupted (SIGINT / SIGTERM), then close it
    (compacting its log). A second server on the same folder fails at once with the holder's pid.

    write_token: adding and removing items needs ``Authorization: Bearer <token>`` (None: anyone
    who reaches the server may write; the CLI refuses that for a non-loopback host unless told).
    read_token: searches, items and images need it (or the write token)."""
    import uvicorn

    t0 = time.perf_counter()
    # One intra-op thread for the model: a request encodes one or a few small images, and idle
    # OpenMP workers spin after each pass, taking a core from the event loop (measured: search by
    # id at 8 clients during 100 additions/s went from 822 to 1,040 queries/s, p50 7.5 -> 5.4 ms).
    import torch

    torch.set_num_threads(1)
    collection = Collection.open(directory, device=device)
    try:
        warm_up(collection)
        loaded = time.perf_counter() - t0

        def announce() -> None:
            print(
                f"deephash serve: {collection.count} items ({collection.bits} bits, "
                f"{collection.backend}) ready in {loaded:.2f} s on http://{host}:{port}/ "
                f"(API docs at /docs)",
                file=sys.stderr,
                flush=True,
            )

        app = create_app(
            collection,
            max_upload_mb=max_upload_mb,
            max_k=max_k,
            on_startup=announce,
            on_shutdown=collection.close,  # compacts the log; runs before uvicorn re-raises SIGTERM
            write_token=write_token,
            read_token=read_token,
        )
        config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
        uvicorn.Server(config).run()
    finally:
        collection.close()
