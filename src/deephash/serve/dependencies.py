"""FastAPI dependencies of the routes: the app's :class:`Service`, a search's query options, and
the token checks (see :mod:`deephash.serve.auth`), which answer 401 before the body is read.

Each is a coroutine, so FastAPI runs it on the event loop rather than hopping to a worker thread.
The app keeps its tokens on ``app.state.tokens`` and its service on ``app.state.service``
(:func:`deephash.serve.app.create_app` puts them there; a bare app that includes one router
needs only those two).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from deephash.serve.auth import token_matches
from deephash.serve.errors import ApiError
from deephash.serve.parsing import SearchOptions, query_options
from deephash.serve.service import Service

__all__ = [
    "ReadableItemId",
    "RemovableItemId",
    "SearchOptionsDep",
    "ServiceDep",
    "Tokens",
    "get_service",
    "item_id_to_read",
    "item_id_to_remove",
    "require_reader",
    "require_writer",
    "search_options",
]


@dataclass(frozen=True)
class Tokens:
    """write: adding and removing items needs it (None: open to anyone). read: searches, items
    and images need it or the write token (None: open to anyone)."""

    write: str | None = None
    read: str | None = None


async def get_service(request: Request) -> Service:
    """The service of the app that received ``request``."""
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def search_options(request: Request) -> SearchOptions:
    """k, radius and candidates from the query string, within the service's limits."""
    # the service read directly, not declared: a nested dependency costs FastAPI another 20-35 us
    # per request (measured in process)
    service: Service = request.app.state.service
    return query_options(request.query_params, service.limits)


SearchOptionsDep = Annotated[SearchOptions, Depends(search_options)]


def _tokens(request: Request) -> Tokens:
    # read directly rather than through a dependency of its own: FastAPI spends 20-35 us per
    # dependency and request (measured in process)
    tokens: Tokens = request.app.state.tokens
    return tokens


async def require_writer(request: Request) -> None:
    """401 unless the request carries the write token (when the server has one)."""
    tokens = _tokens(request)
    if tokens.write is not None and not token_matches(
        request.headers.get("authorization"), tokens.write
    ):
        raise ApiError(
            401,
            "unauthorized",
            "adding and removing items needs the server's write token: send the header "
            "'Authorization: Bearer <token>'",
        )


async def require_reader(request: Request) -> None:
    """401 unless the request carries the read or the write token (when the server has a read
    token)."""
    tokens = _tokens(request)
    if tokens.read is None:
        return
    header = request.headers.get("authorization")
    if token_matches(header, tokens.read) or (
        tokens.write is not None and token_matches(header, tokens.write)
    ):
        return
    raise ApiError(
        401,
        "unauthorized",
        "searches, items and images need the server's read token: send the header "
        "'Authorization: Bearer <token>'",
    )


# FastAPI runs a route's dependencies before it checks the path parameters. These two take the
# item id from the path themselves, so a malformed id stays a 400 (not a 401) without a token.
async def item_id_to_read(item_id: int, request: Request) -> int:
    """The path's item id, once :func:`require_reader` lets the request through."""
    await require_reader(request)
    return item_id


async def item_id_to_remove(item_id: int, request: Request) -> int:
    """The path's item id, once :func:`require_writer` lets the request through."""
    await require_writer(request)
    return item_id


ReadableItemId = Annotated[int, Depends(item_id_to_read)]
RemovableItemId = Annotated[int, Depends(item_id_to_remove)]
