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
retries; a server that cannot be reached is tried once more with a fresh client, then the request
raises :class:`~deephash.index.errors.EngineUnavailableError` within about 2 s (see
:mod:`.client`).

Writes go straight to Milvus (``persistent = True``); ``insert``, ``delete`` and ``stored`` are
the unchecked writes and the visibility read of a writer that keeps the set of ids itself (a
collection): ``save(path)`` writes a small deephash index
file holding the URI, collection name and settings (never a token), which ``load_index`` turns back
into a connection to the same collection. Milvus has no transactions: an ``add`` larger than one
insert request (4,096 rows) that fails midway leaves the earlier rows stored, and two clients adding
the same new id at the same moment can both succeed (the duplicate check is a read before the
write). Milvus Lite serves one ``.db`` file to one process at a time (a lock file next to it); its
server stops when that process exits.

The package: :mod:`.client` (connection, retries, consistency of reads, which errors mean "down"),
:mod:`.schema` (the collection's fields and index), :mod:`.rows` (row reads and writes),
:mod:`.bands` (searches sorted by (distance, id), tie and band reads) and :mod:`.index`
(:class:`MilvusBinaryIndex`).
"""

from deephash.index.milvus.client import (
    CONSISTENCY_LEVELS,
    import_pymilvus,
    is_server_uri,
    is_unavailable,
)
from deephash.index.milvus.index import MilvusBinaryIndex
from deephash.index.milvus.schema import INDEX_TYPES

__all__ = [
    "CONSISTENCY_LEVELS",
    "INDEX_TYPES",
    "MilvusBinaryIndex",
    "import_pymilvus",
    "is_server_uri",
    "is_unavailable",
]
