"""Milvus backend: the codes live in a Milvus collection, searched by Milvus with ``HAMMING``.

For collections that outgrow one machine. ``uri`` is either a local file ending in ``.db`` (Milvus
Lite: an embedded single-process server, started on first use) or a server/cluster address such as
``http://host:19530``. pymilvus (and milvus-lite for a local file) is an optional dependency:
``pip install 'deephash[milvus]'``.

The collection has three fields: ``id`` (INT64 primary key, given by deephash, never automatic),
``code`` (``BINARY_VECTOR`` with ``dim = bits``: the packed bytes of the faiss layout, so ``bits``
must be a multiple of 8) and ``meta`` (JSON: the item's metadata, ``{}`` when there is none). Requests ask
for ``consistency`` (default ``Session``): a search sees every write this process made before it
(pymilvus tracks the last write's timestamp per collection, process-wide), without waiting for the
server's next time tick as ``Strong`` does (up to 200 ms a request on a Milvus server; Milvus Lite
does not wait); after a delete or a new connection the next read is a Strong one (neither moves
that timestamp). ``Bounded`` and ``Eventually`` never wait: a read may miss the last writes (on
the local 2.3.5 server a Bounded search showed an insert after about 200 ms, one time tick). A
deephash collection searches at ``Bounded`` and keeps read-your-writes itself (its pending delta,
:mod:`deephash.collection.freshness`); pass ``Strong`` when several processes write one Milvus
collection and must see each other's writes at once. Counts (``ntotal``) are always Strong reads.

Index types: ``BIN_FLAT`` (exhaustive, exact in distances; the only one Milvus Lite builds) and
``BIN_IVF_FLAT`` (inverted file with ``nlist`` cells, ``nprobe`` of them searched: approximate, for
a Milvus server). Results follow the deephash contract:

- ``search``: rows sorted by (distance, id), padded with -1. Milvus orders equal distances as it
  likes and cuts the top k anywhere inside the last tied distance, so with ``exact_ties`` (the
  default for ``BIN_FLAT``) it asks for k + 1 rows, and only where the k-th and (k+1)-th are at
  the same distance is that distance re-read in full with a range search and its smallest ids
  kept: the result then equals the ``flat`` index's exactly, at the price of one more request for
  the queries cut inside a tie. Without it the distances are still exact (``BIN_FLAT``) but which
  ids fill the last tied distance is Milvus's choice. A search makes no count request.
- ``range_search``: deephash keeps faiss's ``distance < radius``; Milvus's range search keeps
  ``range_filter <= distance < radius`` for ``HAMMING``, the same convention. Milvus returns at most
  16,384 results per query and request, so a query that fills that limit is split into narrower
  distance bands and, within one distance, into id ranges, until every part comes back unsaturated:
  the result is complete for ``BIN_FLAT`` whatever its size. ``search`` with k > 16,384 uses the same
  bands.

Connection failures. Every request has a deadline (``timeout``, 10 s) and at most a few quick
retries. When a server cannot be reached the client is dropped and one fresh client (a new gRPC
channel) is tried at once: a channel that has seen a refused connection backs off for up to minutes
before it tries again, so reusing it after a server restart would keep failing long after the
server is back. If the fresh client cannot connect either, the request raises
:class:`~deephash.index.errors.EngineUnavailableError` within about 2 s, and further requests raise
it at once until a second has passed, when the next one tries again. A server that restarted and
has not loaded the collection yet gets a ``load_collection`` and the request is repeated.

Writes go straight to Milvus (``persistent = True``); ``insert``, ``delete`` and ``stored`` are
the unchecked writes and the visibility read of a writer that keeps the set of ids itself (a
collection): ``save(path)`` writes a small deephash index
file holding the URI, collection name and settings (never a token), which ``load_index`` turns back
into a connection to the same collection. Milvus has no transactions: an ``add`` larger than one
insert request (4,096 rows) that fails midway leaves the earlier rows stored, and two clients adding
the same new id at the same moment can both succeed (the duplicate check is a read before the
write). Milvus Lite serves one ``.db`` file to one process at a time (a lock file next to it); its
server stops when that process exits.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np

from deephash.index._format import Container, write_container
from deephash.index.base import BinaryIndex, MetadataInput
from deephash.index.errors import EngineUnavailableError

__all__ = ["INDEX_TYPES", "MilvusBinaryIndex", "import_pymilvus", "is_unavailable"]

INDEX_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT")
CONSISTENCY_LEVELS = ("Strong", "Session", "Bounded", "Eventually")
_NO_WAIT = ("Bounded", "Eventually")  # levels that never wait for the server's time tick
_MAX_LIMIT = 16384  # Milvus's cap on results per query (topk) and on queries per request (nq)
_RESULT_BUDGET = 1 << 20  # nq * limit per search request: keeps each gRPC answer a few MB
_CHUNK = 4096  # rows per insert request and ids per `id in [...]` expression
_SERVER_SCHEMES = ("http", "https", "tcp", "grpc", "unix")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_RETRIES = 3  # pymilvus retries per request (its default, 75 with back-off, is 3.5 minutes)
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
# has come back after (see MilvusBinaryIndex._read).
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


class MilvusBinaryIndex(BinaryIndex):
    """A Milvus collection of binary codes behind the deephash index API.

    bits: code length, a multiple of 8 (Milvus stores whole bytes). uri: a Milvus Lite file
    (``path/to/file.db``; its folder is created) or a server address (``http://host:19530``).
    collection: collection name (letters, digits, ``_``); an existing one is opened, a missing one
    created. index_type: ``"BIN_FLAT"`` (exact) or ``"BIN_IVF_FLAT"`` (approximate, server only);
    default: the existing collection's, else ``BIN_FLAT``. nlist: IVF cells (at creation). nprobe:
    IVF cells searched per query. timeout: seconds a request may take (deadline and retries).
    consistency: what a request waits for (``"Session"``: this process's own writes; ``"Strong"``:
    every write; see the module docstring).
    exact_ties: break ties at the k-th distance by the smaller id as
    the other backends do (one extra range request per distinct cut distance); default True for
    ``BIN_FLAT``, False for ``BIN_IVF_FLAT``. token: server credentials (``"user:password"`` or an
    API key); default ``$MILVUS_TOKEN``; never written to a saved file.
    """

    backend = "milvus"
    persistent = True

    def __init__(
        self,
        bits: int,
        uri: str,
        collection: str = "deephash",
        *,
        index_type: str | None = None,
        nlist: int = 1024,
        nprobe: int = 16,
        exact_ties: bool | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        consistency: str = "Session",
    ) -> None:
        super().__init__(bits)
        if self.bits % 8:
            raise ValueError(
                f"Milvus stores binary vectors in whole bytes: bits must be a multiple of 8, got "
                f"{self.bits}; use codes of {8 * self.nbytes} bits, or the flat/mih backend"
            )
        if not isinstance(uri, str) or not uri:
            raise ValueError(
                "give a Milvus URI: a local file 'path/milvus.db' (Milvus Lite) or a server "
                "address 'http://host:19530'"
            )
        if not isinstance(collection, str) or not _NAME.match(collection):
            raise ValueError(
                f"collection name {collection!r} is not valid for Milvus: use letters, digits and "
                "'_', starting with a letter or '_'"
            )
        if index_type is not None and index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {INDEX_TYPES}, got {index_type!r}")
        for name, value in (("nlist", nlist), ("nprobe", nprobe)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if consistency not in CONSISTENCY_LEVELS:
            raise ValueError(
                f"consistency must be one of {CONSISTENCY_LEVELS}, got {consistency!r}"
            )
        self.consistency = consistency
        self.server = is_server_uri(uri)
        if self.server:
            self.uri = uri
        else:
            path = Path(uri).expanduser().resolve()
            if path.suffix != ".db":
                raise ValueError(
                    f"a local Milvus Lite URI must be a file ending in '.db', got {uri!r} "
                    "(for a server, give 'http://host:19530')"
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            self.uri = str(path)
        self.collection = collection
        self.nlist = int(nlist)
        self.nprobe = int(nprobe)
        self._schema: dict[str, bool] | None = None
        self.timeout = float(timeout)
        self._pymilvus = import_pymilvus()
        self._token = os.environ.get("MILVUS_TOKEN", "") if token is None else token
        self._conn_lock = threading.Lock()
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
        self.index_type = self._request(lambda c: self._open_or_create(c, index_type))
        self.exact_ties = self.index_type == "BIN_FLAT" if exact_ties is None else bool(exact_ties)
        self._exact_ties_option = exact_ties

    # ------------------------------------------------------------------ connection
    def _new_client(self, connect_timeout: float) -> Any:
        alias = f"deephash-{os.getpid()}-{next(_ALIASES)}"
        client = self._pymilvus.MilvusClient(
            uri=self.uri, token=self._token, alias=alias, timeout=connect_timeout
        )
        self._untimed()  # the server may have restarted since the last read: Strong first
        return client

    def _connected(self) -> Any:
        """The current client, or a fresh one after a failure (at most one try per second)."""
        with self._conn_lock:
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
        with self._conn_lock:
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

    def _request(self, fn: Callable[[Any], _T], retry: bool = True) -> _T:
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
                    try:
                        client.load_collection(self.collection, timeout=self.timeout)
                    except Exception as load_exc:
                        if not is_unavailable(load_exc):
                            raise
                        self._disconnect(client, load_exc)
                        raise EngineUnavailableError(self._down_message()) from load_exc
                    continue
                if not is_unavailable(exc):
                    raise
                self._disconnect(client, exc)
                if attempt or not retry:
                    raise EngineUnavailableError(self._down_message()) from exc
        raise EngineUnavailableError(self._down_message())

    # ------------------------------------------------------------------ collection
    def _open_or_create(self, c: Any, index_type: str | None) -> str:
        name = self.collection
        where = f"Milvus collection {name!r} at {self.uri}"
        if c.has_collection(name, timeout=self.timeout):
            fields = {
                f["name"]: f for f in c.describe_collection(name, timeout=self.timeout)["fields"]
            }
            dt = self._pymilvus.DataType
            if (
                set(fields) != {"id", "code", "meta"}
                or fields["id"].get("type") != dt.INT64
                or not fields["id"].get("is_primary")
                or fields["code"].get("type") != dt.BINARY_VECTOR
            ):
                raise ValueError(
                    f"{where} exists but is not a deephash collection (fields {sorted(fields)}); "
                    "choose another collection= name"
                )
            dim = int(fields["code"].get("params", {}).get("dim", -1))
            if dim != self.bits:
                raise ValueError(
                    f"{where} holds {dim}-bit codes, not {self.bits}-bit ones; open it with "
                    f"bits={dim}, or use another collection= name for {self.bits}-bit codes"
                )
            existing = c.describe_index(name, "code", timeout=self.timeout).get("index_type")
            if index_type is not None and existing != index_type:
                raise ValueError(
                    f"{where} has a {existing} index, not {index_type}; open it with "
                    f"index_type={existing!r} (or None), or use another collection= name"
                )
            c.load_collection(name, timeout=self.timeout)
            return str(existing)
        index_type = index_type or "BIN_FLAT"
        schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", self._pymilvus.DataType.INT64, is_primary=True)
        schema.add_field("code", self._pymilvus.DataType.BINARY_VECTOR, dim=self.bits)
        schema.add_field("meta", self._pymilvus.DataType.JSON)
        params = c.prepare_index_params()
        params.add_index(
            field_name="code",
            index_type=index_type,
            metric_type="HAMMING",
            params={"nlist": self.nlist} if index_type == "BIN_IVF_FLAT" else {},
        )
        c.create_collection(
            name, schema=schema, consistency_level=self.consistency, timeout=self.timeout
        )
        try:
            c.create_index(name, params, timeout=self.timeout)
        except self._pymilvus.exceptions.MilvusException as exc:
            c.drop_collection(name, timeout=self.timeout)
            lite = "" if self.server else " (Milvus Lite builds only BIN_FLAT)"
            raise ValueError(
                f"Milvus at {self.uri} cannot build a {index_type} index{lite}: {exc}"
            ) from exc
        c.load_collection(name, timeout=self.timeout)
        return index_type

    def close(self) -> None:
        """Close the connection (a Milvus Lite server keeps running until the process exits)."""
        with self._conn_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _options(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "collection": self.collection,
            "index_type": self.index_type,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "exact_ties": self._exact_ties_option,
            "timeout": self.timeout,
            "consistency": self.consistency,
        }

    # ------------------------------------------------------------------ requests
    def _read(self, fn: Callable[[Any, str], _T]) -> _T:
        """``fn(client, consistency level)``: the index's level, except Strong after a delete or a
        new connection until one Strong read issued after it has come back.

        Session alone would miss both: a Milvus 2.3 server returns no timestamp for deletes, so
        pymilvus's last-write timestamp does not move; and a process that has not written yet has
        no timestamp at all, so its reads are Eventually ones, which right after a server restart
        run on a query node that has not replayed its log yet. Once a Strong read has come back,
        the node has caught up, and later reads see everything before it."""
        if self.consistency in _NO_WAIT:  # the caller keeps read-your-writes itself
            return self._request(lambda c: fn(c, self.consistency))
        key = (self.uri, self.collection)
        untimed = _UNTIMED.get(key, 0)
        level = "Strong" if untimed > _STRONG_SEEN.get(key, 0) else self.consistency
        out = self._request(lambda c: fn(c, level))
        if level == "Strong":
            _STRONG_SEEN[key] = max(_STRONG_SEEN.get(key, 0), untimed)
        return out

    def _untimed(self) -> None:
        key = (self.uri, self.collection)
        _UNTIMED[key] = _UNTIMED.get(key, 0) + 1

    def _query(
        self, expr: str, fields: list[str], limit: int | None = None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {} if limit is None else {"limit": limit}
        return self._read(
            lambda c, level: list(
                c.query(
                    self.collection,
                    filter=expr,
                    output_fields=fields,
                    consistency_level=level,
                    timeout=self.timeout,
                    retry_times=_RETRIES,
                    **kwargs,
                )
            )
        )

    def _count(self, expr: str = "") -> int:
        """A count at Strong consistency (it waits for the server's time tick, up to 200 ms): it
        is never on the search path, and a count that missed recent writes would mislead."""
        rows = self._request(
            lambda c: list(
                c.query(
                    self.collection,
                    filter=expr,
                    output_fields=["count(*)"],
                    consistency_level="Strong",
                    timeout=self.timeout,
                    retry_times=_RETRIES,
                )
            )
        )
        return int(rows[0]["count(*)"])

    def _rows(self, ids: np.ndarray, fields: list[str]) -> list[dict[str, Any]]:
        """The stored rows with these ids (unknown ids are absent), in no particular order."""
        out: list[dict[str, Any]] = []
        for lo in range(0, ids.shape[0], _CHUNK):
            out += self._query(f"id in {ids[lo : lo + _CHUNK].tolist()}", ["id", *fields])
        return out

    def _scan(self, fields: list[str]) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Every row, sorted by id: ids int64 (ntotal,) and the rows."""

        def read_all(c: Any) -> list[dict[str, Any]]:
            it = c.query_iterator(
                self.collection,
                batch_size=10_000,
                filter="",
                output_fields=["id", *fields],
                timeout=self.timeout,
                # a full read: worth waiting for the server's time tick (its Session timestamp is
                # not honoured by the iterator's first request)
                consistency_level="Strong",
            )
            rows: list[dict[str, Any]] = []
            try:
                while batch := it.next():
                    rows += batch
            finally:
                it.close()
            return rows

        rows = self._request(read_all)
        ids = np.fromiter((r["id"] for r in rows), dtype=np.int64, count=len(rows))
        order = np.argsort(ids, kind="stable")
        return ids[order], [rows[i] for i in order]

    def _max_id(self) -> int:
        """Largest stored id (-1 if empty) in O(log id) requests: doubling, then bisection."""

        def witness(lo: int) -> int | None:  # any stored id >= lo
            rows = self._query(f"id >= {lo}", ["id"], limit=1)
            return int(rows[0]["id"]) if rows else None

        best = witness(0)
        if best is None:
            return -1
        step = 1
        while (w := witness(best + step)) is not None:
            best, step = w, 2 * step
        hi = best + step  # no id >= hi
        while hi - best > 1:
            mid = (best + hi) // 2
            w = witness(mid)
            best, hi = (w, hi) if w is not None else (best, mid)
        return best

    def _hits(
        self, queries: list[bytes], limit: int, params: dict[str, Any], expr: str = ""
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Milvus search, batched; per query: distances int64 and ids int64, sorted by (d, id)."""
        if self.index_type == "BIN_IVF_FLAT":
            params = {**params, "nprobe": self.nprobe}
        search_params = {"metric_type": "HAMMING", "params": params}
        step = max(1, min(_MAX_LIMIT, _RESULT_BUDGET // limit))
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for lo in range(0, len(queries), step):
            data = queries[lo : lo + step]
            res = self._read(
                lambda c, level, data=data: c.search(  # type: ignore[misc]
                    self.collection,
                    data=data,
                    limit=limit,
                    anns_field="code",
                    search_params=search_params,
                    filter=expr,
                    output_fields=[],
                    consistency_level=level,
                    timeout=self.timeout,
                    retry_times=_RETRIES,
                )
            )
            for hits in res:
                if hasattr(hits, "ids"):
                    ids = np.asarray(hits.ids, dtype=np.int64)
                    dist = np.asarray(hits.distances, dtype=np.float64)
                else:  # pragma: no cover - older pymilvus result objects
                    ids = np.asarray([h["id"] for h in hits], dtype=np.int64)
                    dist = np.asarray([h["distance"] for h in hits], dtype=np.float64)
                d = np.rint(dist).astype(np.int64)
                order = np.lexsort((ids, d))
                out.append((d[order], ids[order]))
        return out

    def _band(
        self, queries: list[bytes], lo: int, hi: int, id_lo: int = 0, id_hi: int | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every stored code with ``lo <= distance < hi`` and ``id_lo <= id < id_hi``, per query
        sorted by (distance, id); complete for BIN_FLAT however many there are."""
        expr = "" if id_lo == 0 and id_hi is None else f"id >= {id_lo}"
        if id_hi is not None:
            expr += f" and id < {id_hi}"
        out = self._hits(queries, _MAX_LIMIT, {"radius": hi, "range_filter": lo}, expr)
        full = [j for j, (d, _) in enumerate(out) if d.shape[0] >= _MAX_LIMIT]
        if full and hi - lo > 1:  # saturated: split the distance range
            mid = (lo + hi) // 2
            sub = [queries[j] for j in full]
            near = self._band(sub, lo, mid, id_lo, id_hi)
            far = self._band(sub, mid, hi, id_lo, id_hi)
            for j, a, b in zip(full, near, far):
                out[j] = (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
        else:  # saturated at one distance: split the id range at the median returned id
            for j in full:
                m = int(out[j][1][_MAX_LIMIT // 2])
                (a,) = self._band([queries[j]], lo, hi, id_lo, m)
                (b,) = self._band([queries[j]], lo, hi, m, id_hi)
                out[j] = (np.concatenate([a[0], b[0]]), np.concatenate([a[1], b[1]]))
        return out

    # ------------------------------------------------------------------ state
    @property
    def ntotal(self) -> int:
        """Number of codes in the collection (a count request)."""
        return self._count()

    @property
    def ids(self) -> np.ndarray:
        """int64 (ntotal,): the stored ids, ascending (reads every id from Milvus)."""
        return self._scan([])[0]

    @property
    def codes(self) -> np.ndarray:
        """uint8 (ntotal, bits / 8): the stored codes in the order of :attr:`ids` (reads them all)."""
        _, rows = self._scan(["code"])
        out = np.zeros((len(rows), self.nbytes), dtype=np.uint8)
        for i, r in enumerate(rows):
            v = r["code"]
            out[i] = np.frombuffer(v[0] if isinstance(v, list) else v, dtype=np.uint8)
        return out

    @property
    def metadata(self) -> dict[str, np.ndarray]:
        """Per-item metadata arrays aligned with :attr:`ids` (reads them all); empty if none."""
        schema = self._metadata_schema()
        if schema is None:
            return {}
        _, rows = self._scan(["meta"])
        return self._columns(schema, [r["meta"] for r in rows])

    def _metadata_schema(self) -> dict[str, bool] | None:
        if self._schema is None:  # the names are fixed by the first add that stored any
            rows = self._query("", ["meta"], limit=1)
            meta = rows[0]["meta"] if rows else None
            if meta:
                self._schema = {k: isinstance(v, str) for k, v in meta.items()}
        return self._schema

    @staticmethod
    def _columns(schema: dict[str, bool], metas: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        return {
            k: np.asarray([m[k] for m in metas], dtype=str if is_str else None)
            if metas
            else np.zeros(0, dtype=str if is_str else np.int64)
            for k, is_str in schema.items()
        }

    def metadata_for(self, ids: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        """Metadata of the given ids (any shape); unknown ids (and -1) are a ``ValueError``.

        Returns name -> array of the same shape as ``ids``; numbers come back as int64/float64,
        as JSON stores them.
        """
        schema = self._metadata_schema()
        if schema is None:
            raise ValueError("this index has no metadata (pass metadata= to add)")
        q = np.asarray(ids, dtype=np.int64)
        flat = q.ravel()
        found = {int(r["id"]): r["meta"] for r in self._rows(np.unique(flat), ["meta"])}
        missing = [int(i) for i in flat if int(i) not in found]
        if missing:
            raise ValueError(f"id {missing[0]} is not in the index")
        cols = self._columns(schema, [found[int(i)] for i in flat])
        return {k: v.reshape(q.shape) for k, v in cols.items()}

    # ------------------------------------------------------------------ add / remove
    def add(
        self,
        codes: np.ndarray,
        ids: np.ndarray | Sequence[int] | None = None,
        metadata: MetadataInput | None = None,
    ) -> None:
        """Insert codes into the collection (durable once it returns).

        codes: uint8 (n, bits / 8). ids: int64 (n,) distinct non-negative ids not already stored;
        default: continuing after the largest stored id. metadata: optional mapping name ->
        sequence of length n (numbers, bools or strings), stored in the JSON field ``meta``;
        every ``add`` must give the same names.
        """
        codes = self._check_codes(codes, "codes")
        n = codes.shape[0]
        new_ids = self._check_ids(ids, n, 0 if ids is not None else self._max_id() + 1)
        new_meta = self._check_metadata(metadata, n)
        if n == 0:
            return
        uniq, counts = np.unique(new_ids, return_counts=True)
        if np.any(counts > 1):
            raise ValueError(
                f"id {int(uniq[counts > 1][0])} is given more than once; ids must be distinct"
            )
        stored = self._rows(new_ids, [])
        if stored:
            raise ValueError(
                f"id {int(stored[0]['id'])} is given more than once: it is already in {self!r}; "
                "ids must be distinct (remove_ids it first to replace it)"
            )
        cols = {k: v.tolist() for k, v in (new_meta or {}).items()}
        rows = [
            {
                "id": int(new_ids[i]),
                "code": codes[i].tobytes(),
                "meta": {k: v[i] for k, v in cols.items()},
            }
            for i in range(n)
        ]
        for lo in range(0, n, _CHUNK):
            chunk = rows[lo : lo + _CHUNK]
            self._request(
                lambda c, chunk=chunk: c.insert(  # type: ignore[misc]
                    self.collection, chunk, timeout=self.timeout, retry_times=_RETRIES
                ),
                retry=False,
            )
        if new_meta is not None and self._schema is None:
            self._schema = {k: v.dtype.kind == "U" for k, v in new_meta.items()}

    def insert(self, codes: np.ndarray, ids: np.ndarray, *, replace: bool = False) -> None:
        """Write rows whose ids the caller knows to be new, without reading first (no duplicate
        check, no metadata): for a writer that keeps the set of ids itself, as a collection does.

        codes: uint8 (n, bits / 8). ids: int64 (n,), distinct. ``replace``: upsert instead of
        insert, for a retry after a failure (an insert whose answer was lost may have been
        applied, and Milvus would store a second row with the same id; an upsert replaces it).
        """
        codes = self._check_codes(codes, "codes")
        new_ids = self._check_ids(ids, codes.shape[0], 0)
        rows = [
            {"id": int(i), "code": c.tobytes(), "meta": {}} for i, c in zip(new_ids.tolist(), codes)
        ]
        for lo in range(0, len(rows), _CHUNK):
            chunk = rows[lo : lo + _CHUNK]
            self._request(
                lambda c, chunk=chunk: (c.upsert if replace else c.insert)(  # type: ignore[misc]
                    self.collection, chunk, timeout=self.timeout, retry_times=_RETRIES
                ),
                retry=replace,
            )

    def delete(self, ids: np.ndarray | Sequence[int]) -> None:
        """Delete these ids without reading first (ids not stored are ignored); idempotent."""
        wanted = np.unique(self._check_remove_ids(ids))
        for lo in range(0, wanted.shape[0], _CHUNK):
            part = wanted[lo : lo + _CHUNK].tolist()
            self._request(
                lambda c, part=part: c.delete(  # type: ignore[misc]
                    self.collection, ids=part, timeout=self.timeout, retry_times=_RETRIES
                )
            )
            self._untimed()

    def stored(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """int64: those of ``ids`` that a read at this index's consistency level sees stored."""
        q = np.unique(np.asarray(ids, dtype=np.int64))
        return np.sort(np.asarray([r["id"] for r in self._rows(q, [])], dtype=np.int64))

    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        """Delete the rows with these ids; ids not stored are ignored, as in faiss.

        ids: int (m,). Returns the number of rows removed (counted before the delete: Milvus's own
        delete count is the number of ids asked for).
        """
        stored = np.asarray(
            [r["id"] for r in self._rows(np.unique(self._check_remove_ids(ids)), [])],
            dtype=np.int64,
        )
        for lo in range(0, stored.shape[0], _CHUNK):
            part = stored[lo : lo + _CHUNK].tolist()
            self._request(
                lambda c, part=part: c.delete(  # type: ignore[misc]
                    self.collection, ids=part, timeout=self.timeout, retry_times=_RETRIES
                )
            )
            self._untimed()
        return int(stored.shape[0])

    def reset(self) -> None:
        """Delete every row of the collection (it and its settings stay)."""
        self._request(
            lambda c: c.delete(
                self.collection, filter="id >= 0", timeout=self.timeout, retry_times=_RETRIES
            )
        )
        self._untimed()
        self._schema = None

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest codes by Hamming distance (exact for BIN_FLAT, ties by the smaller id when
        ``exact_ties``; see the module docstring).

        queries: uint8 (nq, bits / 8). Returns distances int32 (nq, k) and ids int64 (nq, k), each
        row sorted by (distance, id), padded with -1 when the collection holds fewer than k codes.
        One search request (k + 1 rows with ``exact_ties``); a second one, for the tied distance
        only, when the k-th and (k+1)-th rows are at the same distance. No count request: an
        empty answer to every query is checked with one.
        """
        q = self._check_codes(queries, "queries")
        k = self._check_k(k)
        dist = np.full((q.shape[0], k), -1, dtype=np.int32)
        ids = np.full((q.shape[0], k), -1, dtype=np.int64)
        if q.shape[0] == 0:
            return dist, ids
        qb = [row.tobytes() for row in q]
        limit = min(k + 1 if self.exact_ties else k, _MAX_LIMIT)
        hits = self._hits(qb, limit, {})
        if all(d.shape[0] == 0 for d, _ in hits) and self._count() == 0:
            self._check_queries(q, 0)  # raises: the index is empty
        band = self._cut(hits, k, limit)
        while band:  # complete rows from distance `band[r]` on, smallest ids first
            b = min(band.values())
            rows = [r for r, v in band.items() if v == b]
            for r, (bd, bi) in zip(rows, self._band([qb[r] for r in rows], b, b + 1)):
                need = k - hits[r][0].shape[0]
                hits[r] = (
                    np.concatenate([hits[r][0], bd[:need]]),
                    np.concatenate([hits[r][1], bi[:need]]),
                )
                if hits[r][0].shape[0] == k or b >= self.bits:
                    del band[r]
                else:
                    band[r] = b + 1
        for r, (d, i) in enumerate(hits):
            dist[r, : d.shape[0]] = d[:k]
            ids[r, : i.shape[0]] = i[:k]
        return dist, ids

    def _cut(self, hits: list[tuple[np.ndarray, np.ndarray]], k: int, limit: int) -> dict[int, int]:
        """Trim each row of ``hits`` (sorted by (distance, id), at most ``limit`` rows) to what is
        certain, in place; returns {row: distance from which it must be completed by range reads}.

        A row is complete when Milvus returned fewer than ``limit`` rows (it holds no more;
        BIN_FLAT), or when its k-th and (k+1)-th distances differ. It is completed from the k-th
        distance when those two are equal (``exact_ties``: which ids Milvus kept inside that tie is
        its choice), from its last distance when k > 16,384 (the cap) filled it, and, for
        BIN_IVF_FLAT, when fewer than k came back."""
        band: dict[int, int] = {}
        for r, (d, i) in enumerate(hits):
            got = d.shape[0]
            if got == limit and got > k:  # asked for k + 1
                if d[k - 1] != d[k]:
                    hits[r] = (d[:k], i[:k])
                    continue
                b = int(d[k - 1])
            elif got == limit and (limit < k or (self.exact_ties and limit == k)):
                # Milvus's cap (16,384), not the collection, ended the row
                b = int(d[-1])
            elif got < k and self.index_type != "BIN_FLAT":
                b = int(d[-1]) if got else 0
            else:
                continue
            keep = d < b
            hits[r] = (d[keep], i[keep])
            band[r] = b
        return band

    def range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes at Hamming distance strictly below ``radius`` (faiss's convention), complete
        for BIN_FLAT however many there are.

        queries: uint8 (nq, bits / 8). Returns ``lims`` int64 (nq + 1,), ``distances`` int32
        (lims[-1],) and ``ids`` int64 (lims[-1],); query i owns ``[lims[i], lims[i + 1])``, sorted
        by (distance, id).
        """
        q = self._check_queries(queries)
        r = min(self._check_radius(radius), self.bits + 1)
        lims = np.zeros(q.shape[0] + 1, dtype=np.int64)
        if q.shape[0] == 0 or r == 0:
            return lims, np.zeros(0, np.int32), np.zeros(0, np.int64)
        hits = self._band([row.tobytes() for row in q], 0, r)
        np.cumsum([d.shape[0] for d, _ in hits], out=lims[1:])
        return (
            lims,
            np.concatenate([d for d, _ in hits]).astype(np.int32),
            np.concatenate([i for _, i in hits]).astype(np.int64),
        )

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write a small deephash index file pointing at this collection (URI, name, settings and
        the count at save time; no codes and no token): ``load_index(path)`` reconnects to it. A
        Milvus Lite file inside the folder of ``path`` is recorded relative to it, so the folder can
        be moved as a whole.
        """
        options = self._options()
        if not self.server:
            folder = Path(path).resolve().parent
            db = Path(self.uri)
            if db.is_relative_to(folder):
                options["uri"] = db.relative_to(folder).as_posix()
        write_container(
            path,
            Container(backend=self.backend, bits=self.bits, ntotal=self.ntotal, options=options),
        )

    @classmethod
    def _options_from_file(cls, options: dict[str, Any], path: str) -> dict[str, Any]:
        """A relative Milvus Lite URI in the file at ``path`` is relative to its folder."""
        uri = str(options.get("uri", ""))
        if uri and not is_server_uri(uri) and not Path(uri).is_absolute():
            options = {**options, "uri": str(Path(path).resolve().parent / uri)}
        return options

    def _restore(self, c: Container, path: str) -> None:
        """Nothing to read: the constructor has already connected to the collection."""

    def __repr__(self) -> str:
        return (
            f"MilvusBinaryIndex(bits={self.bits}, uri={self.uri!r}, "
            f"collection={self.collection!r}, index_type={self.index_type!r})"
        )
