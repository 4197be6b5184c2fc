"""Errors an index raises that callers handle by kind, not by message."""

from __future__ import annotations

__all__ = ["EngineUnavailableError"]


class EngineUnavailableError(RuntimeError):
    """An external engine (a Milvus server) cannot be reached or is not ready: the request was not
    carried out and may be retried later. A service answers it with 503; the index reconnects with
    a fresh client on the next request (at most once per second while the engine stays down)."""
