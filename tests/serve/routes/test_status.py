"""The status router alone, in a bare app: open to all, counts what the collection holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deephash.serve.dependencies import Tokens
from deephash.serve.routes import status


def test_the_status_router_alone(bare_app: Any, collection_dir: Path, tiny_hash_run: Path) -> None:
    with bare_app(status.router, collection_dir, Tokens(read="r", write="w")) as (client, _):
        assert client.get("/health").json() == {"status": "ok", "count": 60}  # no token needed
        stats = client.get("/stats").json()
        assert (stats["count"], stats["bits"], stats["backend"]) == (60, 16, "mih")
        assert stats["run"] == str(tiny_hash_run.resolve()) and stats["rerank"] is None
        assert stats["query_latency_ms"] == {"count": 0, "p50": None, "p95": None, "p99": None}
        assert stats["encoder"] == {"batches": 0, "mean_batch": 0.0}
        assert stats["uptime_s"] >= 0
        assert client.get("/").status_code == 404  # the page is another router
