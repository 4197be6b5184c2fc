"""A router used alone: mounted in a bare FastAPI app with its own service and tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from deephash.collection import Collection
from deephash.serve.dependencies import Tokens
from deephash.serve.errors import add_error_handlers
from deephash.serve.service import Service

BareApp = Callable[..., AbstractContextManager[tuple[TestClient, Collection]]]


@contextmanager
def _bare_app(
    router: APIRouter, directory: Path, tokens: Tokens | None = None, max_k: int = 20
) -> Iterator[tuple[TestClient, Collection]]:
    col = Collection.open(directory)
    service = Service(col, max_k=max_k, max_batch=8)
    app = FastAPI()
    app.state.service, app.state.tokens = service, tokens or Tokens()
    add_error_handlers(app)
    app.include_router(router)
    try:
        with TestClient(app) as client:
            yield client, col
    finally:
        service.close()
        col.close()


@pytest.fixture()
def bare_app() -> BareApp:
    """``bare_app(router, directory, tokens=None, max_k=20)``: a context giving (client,
    collection) of a FastAPI app that holds only ``router`` (and the JSON errors) over the
    collection in ``directory``, with no ``create_app`` involved."""
    return _bare_app
