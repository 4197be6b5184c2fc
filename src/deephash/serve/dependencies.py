"""FastAPI dependencies of the routes: the app's :class:`Service`, a search's query options, and
the token checks (see :mod:`deephash.serve.auth`), which answer 401 before the body is read.

Each is a coroutine, so FastAPI runs it on the event loop rather than hopping to a worker thread.
The app keeps its tokens on ``app.state.tokens`` and its service on ``app.state.service``
(:func:`deephash.serve.app.create_app` puts them there); a test may put its own in their place
with ``app.dependency_overrides[get_service]`` / ``[get_tokens]``.
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
    "TokensDep",
    "get_service",
    "get_tokens",
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


async def search_options(request: Request, service: ServiceDep) -> SearchOptions:
    """k, radius and candidates from the query string, within the service's limits."""
    return query_options(request.query_params, service.limits)


SearchOptionsDep = Annotated[SearchOptions, Depends(search_options)]


async def get_tokens(request: Request) -> Tokens:
    """The tokens of the app that received ``request``."""
    tokens: Tokens = request.app.state.tokens
    return tokens


TokensDep = Annotated[Tokens, Depends(get_tokens)]


async def require_writer(request: Request, tokens: TokensDep) -> None:
    """401 unless the request carries the write token (when the server has one)."""
    if tokens.write is not None and not token_matches(
        request.headers.get("authorization"), tokens.write
    ):
        raise ApiError(
            401,
            "unauthorized",
            "adding and removing items needs the server's write token: send the header "
            "'Authorization: Bearer <token>'",
        )


async def require_reader(request: Request, tokens: TokensDep) -> None:
    """401 unless the request carries the read or the write token (when the server has a read
    token)."""
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
async def item_id_to_read(item_id: int, request: Request, tokens: TokensDep) -> int:
    """The path's item id, once :func:`require_reader` lets the request through."""
    await require_reader(request, tokens)
    return item_id


async def item_id_to_remove(item_id: int, request: Request, tokens: TokensDep) -> int:
    """The path's item id, once :func:`require_writer` lets the request through."""
    await require_writer(request, tokens)
    return item_id


ReadableItemId = Annotated[int, Depends(item_id_to_read)]
RemovableItemId = Annotated[int, Depends(item_id_to_remove)]
