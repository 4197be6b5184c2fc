"""``deephash serve COLLECTION_DIR``: the HTTP API and web page over a collection."""

from __future__ import annotations

import argparse
from typing import Any

from deephash.cli._common import add_device_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a collection over HTTP (API + web page)",
        description="Load the collection's model and index once and answer searches, additions "
        "and removals over HTTP (FastAPI + uvicorn; pip install 'deephash[serve]'). The page is "
        "at /, the API schema at /docs. One server per collection folder.",
    )
    p.add_argument(
        "collection", metavar="COLLECTION_DIR", help="folder made by `deephash collection create`"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=20.0,
        help="largest request body in MiB; larger requests get 413 (default 20)",
    )
    p.add_argument(
        "--max-k", type=int, default=1000, help="largest k a search may ask (default 1000)"
    )
    p.add_argument(
        "--token-file",
        help="file whose first line is the write token: POST /items and DELETE /items/{id} then "
        "need 'Authorization: Bearer <token>' (default: $DEEPHASH_TOKEN, else no token)",
    )
    p.add_argument(
        "--read-token-file",
        help="file whose first line is the read token: searches, items and images then need it "
        "(or the write token); the page, /health and /stats stay open",
    )
    p.add_argument(
        "--allow-anonymous-writes",
        action="store_true",
        help="serve a non-loopback --host without a write token (anyone reaching it may add and "
        "remove items)",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from deephash.serve import serve
    except ImportError as exc:
        raise RuntimeError(
            f"deephash serve needs FastAPI and uvicorn ({exc}); pip install 'deephash[serve]'"
        ) from None
    from deephash.serve.auth import is_loopback, load_token

    if args.max_upload_mb <= 0 or args.max_k < 1:
        raise ValueError("--max-upload-mb must be > 0 and --max-k >= 1")
    token = load_token(args.token_file)
    read_token = load_token(args.read_token_file) if args.read_token_file else None
    if token is None and not is_loopback(args.host) and not args.allow_anonymous_writes:
        raise ValueError(
            f"--host {args.host} is reachable from other machines and no write token is set, so "
            "anyone could add and remove items; pass --token-file FILE (or set DEEPHASH_TOKEN), "
            "or --allow-anonymous-writes"
        )
    try:
        serve(
            args.collection,
            host=args.host,
            port=args.port,
            max_upload_mb=args.max_upload_mb,
            max_k=args.max_k,
            device=args.device,
            log_level=args.log_level,
            write_token=token,
            read_token=read_token,
        )
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down cleanly and re-raised it
        pass
    return 0
