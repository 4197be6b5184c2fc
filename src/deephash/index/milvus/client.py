"""The connection to one Milvus collection: requests with deadlines and retries, reconnection
after a failure, the consistency level of each read, and which errors mean "the server is down".

Every request has a deadline (``timeout``) and at most a few quick retries. When a server cannot be
reached the client is dropped and one fresh client (a new gRPC channel) is tried at once: a channel
that has seen a refused connection backs off for up to minutes before it tries again, so reusing it
after a server restart would keep failing long after the server is back. If the fresh client cannot
connect either, the request raises :class:`~deephash.index.errors.EngineUnavailableError` within
about 2 s, and further requests raise it at once until a second has passed, when the next one tries
again. A server that restarted and has not loaded the collection yet gets a ``load_collection`` and
the request is repeated.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from deephash.index.errors import EngineUnavailableError

__all__ = [
    "CONSISTENCY_LEVELS",
    "RETRIES",
    "Connection",
    "import_pymilvus",
    "is_server_uri",
    "is_unavailable",
]

CONSISTENCY_LEVELS = ("Strong", "Session", "Bounded", "Eventually")
RETRIES = 3  # pymilvus retries per request (its default, 75 with back-off, is 3.5 minutes)
_NO_WAIT = ("Bounded", "Eventually")  # levels that never wait for the server's time tick
_SERVER_SCHEMES = ("http", "https", "tcp", "grpc", "unix")
_RECONNECT_TIMEOUT = 2.0  # seconds a fresh client may take to connect after a failure
_RECONNECT_PAUSE = 1.0  # seconds between reconnection attempts while the server stays down
_ALIASES = itertools.count()  # one pymilvus connection alias per client: never shared
_DOWN_WORDS = (
    "failed to connect",
    "connection refused",
    "unavailable",
    "not ready",
    "not healthy",
    "deadline",
    "retry timeout",
    "retry run out",
    "closed channel",
    "create connection first",
    "stopping",
)
_T = TypeVar("_T")
# Per (uri, collection), process-wide like pymilvus's Session timestamps: events the Session
# timestamp does not cover (a delete, a new connection), and the last of them that a Strong read
# has come back after (see Connection.read).
_UNTIMED: dict[tuple[str, str], int] = {}
_STRONG_SEEN: dict[tuple[str, str], int] = {}


def import_pymilvus() -> Any:
    """Import pymilvus or raise a ``RuntimeError`` saying how to install it."""
    try:
        import pymilvus
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the milvus backend needs pymilvus (and milvus-lite for a local .db file): "
            "pip install 'deephash[milvus]'"
        ) from exc
    return pymilvus


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (from pymilvus or gRPC) says the server cannot be reached or is not ready,
    as opposed to a request the server refused."""
    code = getattr(exc, "code", None)
    if callable(code):  # a gRPC error, or pymilvus wrapping one after its retries
        try:
            name = str(getattr(code(), "name", ""))
        except Exception:  # pymilvus stores the gRPC method itself: a transport failure
            name = "UNAVAILABLE"
        if name in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", ""):
            return True
    if code == 2:  # pymilvus Status.CONNECT_FAILED
        return True
    message = str(exc).lower()
    return any(word in message for word in _DOWN_WORDS)


def _not_loaded(exc: BaseException) -> bool:
    """A server that restarted answers searches with 'collection not loaded' until it is loaded."""
    return getattr(exc, "code", None) == 101 or "not loaded" in str(exc).lower()


def is_server_uri(uri: str) -> bool:
    """True for a Milvus server address (``http://``, ``https://``, ``tcp://``, ``grpc://``,
    ``unix:``), False for a local Milvus Lite file."""
    return urlparse(uri).scheme.lower() in _SERVER_SCHEMES


class Connection:
    """A pymilvus client for the collection ``collection`` at ``uri``, replaced by a fresh one after
    a connection failure.

    pymilvus: the imported module. uri: a server address or an absolute Milvus Lite path. token:
    server credentials. timeout: seconds a request may take. consistency: the level of reads (see
    :meth:`read`). Connects at once: a server that cannot be reached is an
    :class:`EngineUnavailableError`, a Milvus Lite file that cannot be opened a ``RuntimeError``.
    """

    def __init__(
        self,
        pymilvus: Any,
        uri: str,
        collection: str,
        *,
        token: str,
        timeout: float,
        consistency: str,
    ) -> None:
        self.pymilvus = pymilvus
        self.uri, self.collection = uri, collection
        self.timeout, self.consistency = timeout, consistency
        self.server = is_server_uri(uri)
        self._token = token
        self._lock = threading.Lock()
        self._retry_at = 0.0  # monotonic time before which no reconnection is tried
        self._last_error = ""
        try:
            self._client: Any = self._new_client(self.timeout)
        except Exception as exc:
            if self.server:
                raise EngineUnavailableError(
                    f"cannot connect to Milvus at {self.uri}: {exc}"
                ) from exc
            raise RuntimeError(
                f"cannot open the Milvus Lite file {self.uri}: {exc}. Milvus Lite serves a file to "
                "one process at a time: is another process (e.g. a running 'deephash serve') "
                "holding it?"
            ) from exc

    def _new_client(self, connect_timeout: float) -> Any:
        alias = f"deephash-{os.getpid()}-{next(_ALIASES)}"
        client = self.pymilvus.MilvusClient(
            uri=self.uri, token=self._token, alias=alias, timeout=connect_timeout
        )
        self.untimed()  # the server may have restarted since the last read: Strong first
        return client

    def _connected(self) -> Any:
        """The current client, or a fresh one after a failure (at most one try per second)."""
        with self._lock:
            if self._client is None:
                if time.monotonic() < self._retry_at:
                    raise EngineUnavailableError(self._down_message())
                try:
                    self._client = self._new_client(min(self.timeout, _RECONNECT_TIMEOUT))
                except Exception as exc:
                    self._retry_at = time.monotonic() + _RECONNECT_PAUSE
                    self._last_error = f"{type(exc).__name__}: {exc}"
                    raise EngineUnavailableError(self._down_message()) from exc
            return self._client

    def _disconnect(self, client: Any, exc: BaseException) -> None:
        with self._lock:
            self._last_error = f"{type(exc).__name__}: {exc}"
            if self._client is client:
                self._client = None
        try:
            client.close()
        except Exception:  # the channel is already broken: nothing to release cleanly
            pass

    def _down_message(self) -> str:
        return (
            f"the Milvus server at {self.uri} cannot be reached or is not ready "
            f"({self._last_error[:300]}); retry shortly"
        )

    def request(self, fn: Callable[[Any], _T], retry: bool = True) -> _T:
        """``fn(client)``; after a connection failure once more with a fresh client (unless
        ``retry`` is False: an insert whose answer was lost may have been applied, and Milvus does
        not refuse a second row with the same id), after 'not loaded' once more after loading the
        collection; :class:`EngineUnavailableError` when the server stays unreachable."""
        for attempt in range(3):
            client = self._connected()
            try:
                return fn(client)
            except Exception as exc:
                if isinstance(exc, ValueError) and "closed channel" not in str(exc).lower():
                    raise  # bad input, or a deephash check inside fn
                if _not_loaded(exc) and attempt < 2:
                    self._load(client)
                    continue
                if not is_unavailable(exc):
                    raise
                self._disconnect(client, exc)
                if attempt or not retry:
                    raise EngineUnavailableError(self._down_message()) from exc
        raise EngineUnavailableError(self._down_message())

    def _load(self, client: Any) -> None:
        """Load the collection on a server that answered 'not loaded' (it restarted)."""
        try:
            client.load_collection(self.collection, timeout=self.timeout)
        except Exception as load_exc:
            if not is_unavailable(load_exc):
                raise
            self._disconnect(client, load_exc)
            raise EngineUnavailableError(self._down_message()) from load_exc

    def read(self, fn: Callable[[Any, str], _T]) -> _T:
        """``fn(client, consistency level)``: the connection's level, except Strong after a delete
        or a new connection until one Strong read issued after it has come back.

        Session alone would miss both: a Milvus 2.3 server returns no timestamp for deletes, so
        pymilvus's last-write timestamp does not move; and a process that has not written yet has
        no timestamp at all, so its reads are Eventually ones, which right after a server restart
        run on a query node that has not replayed its log yet. Once a Strong read has come back,
        the node has caught up, and later reads see everything before it."""
        if self.consistency in _NO_WAIT:  # the caller keeps read-your-writes itself
            return self.request(lambda c: fn(c, self.consistency))
        key = (self.uri, self.collection)
        untimed = _UNTIMED.get(key, 0)
        level = "Strong" if untimed > _STRONG_SEEN.get(key, 0) else self.consistency
        out = self.request(lambda c: fn(c, level))
        if level == "Strong":
            _STRONG_SEEN[key] = max(_STRONG_SEEN.get(key, 0), untimed)
        return out

    def untimed(self) -> None:
        """Record a write the Session timestamp does not cover (a delete, a new connection): the
        next read is a Strong one."""
        key = (self.uri, self.collection)
        _UNTIMED[key] = _UNTIMED.get(key, 0) + 1

    def close(self) -> None:
        """Close the client (a Milvus Lite server keeps running until the process exits)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
