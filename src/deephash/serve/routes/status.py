"""``GET /health`` (liveness) and ``GET /stats`` (the collection, the model and query latency):
open to everyone, whatever the tokens."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from deephash.serve.dependencies import ServiceDep

__all__ = ["router"]

router = APIRouter()


@router.get("/health", summary="Liveness")
async def health(service: ServiceDep) -> dict[str, Any]:
    return {"status": "ok", "count": service.collection.count}


@router.get("/stats", summary="Collection size, model and query latency")
async def stats(service: ServiceDep) -> dict[str, Any]:
    collection = service.collection
    rerank = None
    if collection.reranks:
        rerank = {
            "descriptor": collection.descriptor,
            "dim": collection.descriptor_dim,
            "candidates": collection.candidates,
        }
        if collection.binary_descriptor:
            rerank["dtype"] = "bits"
            rerank["descriptor_candidates"] = collection.descriptor_candidates
            rerank["bytes_per_item"] = int(collection.settings["rerank"]["bytes"])
    return {
        "count": collection.count,
        "bits": collection.bits,
        "backend": collection.backend,
        "run": str(collection.run_dir),
        "rerank": rerank,
        "engine_pending": collection.engine_pending,  # milvus: changes it may not show yet
        "engine_requests": collection.engine_requests,  # milvus: searches per shared request
        "uptime_s": round(time.time() - service.started, 3),
        "query_latency_ms": service.latency.percentiles(),
        "encoder": {
            "batches": service.batcher.batches,
            "mean_batch": round(service.batcher.mean_batch, 3),
        },
    }
