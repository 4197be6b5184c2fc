"""The deephash collection in Milvus: three fields, ``id`` (INT64 primary key, given by deephash,
never automatic), ``code`` (``BINARY_VECTOR`` with ``dim = bits``: the packed bytes of the faiss
layout) and ``meta`` (JSON: the item's metadata, ``{}`` when there is none), with one ``HAMMING``
index on ``code``. Opening checks an existing collection against it; a missing one is created."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from deephash.index.milvus.client import Connection

__all__ = ["INDEX_TYPES", "check_collection_name", "metadata_columns", "open_or_create"]

INDEX_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def check_collection_name(collection: object) -> None:
    """Raise a ValueError unless ``collection`` is a valid Milvus collection name."""
    if not isinstance(collection, str) or not _NAME.match(collection):
        raise ValueError(
            f"collection name {collection!r} is not valid for Milvus: use letters, digits and "
            "'_', starting with a letter or '_'"
        )


def open_or_create(conn: Connection, bits: int, index_type: str | None, nlist: int) -> str:
    """Open the connection's collection of ``bits``-bit codes, or create it with an ``index_type``
    index (default ``BIN_FLAT``; ``nlist`` cells for ``BIN_IVF_FLAT``), and load it. Returns the
    collection's index type; a collection of another shape or index type is a ValueError."""
    return conn.request(lambda c: _open_or_create(c, conn, bits, index_type, nlist))


def _open_or_create(c: Any, conn: Connection, bits: int, index_type: str | None, nlist: int) -> str:
    if c.has_collection(conn.collection, timeout=conn.timeout):
        existing = _check_existing(c, conn, bits, index_type)
        c.load_collection(conn.collection, timeout=conn.timeout)
        return existing
    index_type = index_type or "BIN_FLAT"
    _create(c, conn, bits, index_type, nlist)
    c.load_collection(conn.collection, timeout=conn.timeout)
    return index_type


def _check_existing(c: Any, conn: Connection, bits: int, index_type: str | None) -> str:
    """The index type of an existing collection, after checking that it is a deephash one of
    ``bits``-bit codes (and of ``index_type`` when one is asked for)."""
    name = conn.collection
    where = f"Milvus collection {name!r} at {conn.uri}"
    fields = {f["name"]: f for f in c.describe_collection(name, timeout=conn.timeout)["fields"]}
    dt = conn.pymilvus.DataType
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
    if dim != bits:
        raise ValueError(
            f"{where} holds {dim}-bit codes, not {bits}-bit ones; open it with "
            f"bits={dim}, or use another collection= name for {bits}-bit codes"
        )
    existing = c.describe_index(name, "code", timeout=conn.timeout).get("index_type")
    if index_type is not None and existing != index_type:
        raise ValueError(
            f"{where} has a {existing} index, not {index_type}; open it with "
            f"index_type={existing!r} (or None), or use another collection= name"
        )
    return str(existing)


def _create(c: Any, conn: Connection, bits: int, index_type: str, nlist: int) -> None:
    """Create the collection and its index; a server that cannot build the index leaves no
    collection behind."""
    name, timeout = conn.collection, conn.timeout
    dt = conn.pymilvus.DataType
    schema = c.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", dt.INT64, is_primary=True)
    schema.add_field("code", dt.BINARY_VECTOR, dim=bits)
    schema.add_field("meta", dt.JSON)
    params = c.prepare_index_params()
    params.add_index(
        field_name="code",
        index_type=index_type,
        metric_type="HAMMING",
        params={"nlist": nlist} if index_type == "BIN_IVF_FLAT" else {},
    )
    c.create_collection(name, schema=schema, consistency_level=conn.consistency, timeout=timeout)
    try:
        c.create_index(name, params, timeout=timeout)
    except conn.pymilvus.exceptions.MilvusException as exc:
        c.drop_collection(name, timeout=timeout)
        lite = "" if conn.server else " (Milvus Lite builds only BIN_FLAT)"
        raise ValueError(
            f"Milvus at {conn.uri} cannot build a {index_type} index{lite}: {exc}"
        ) from exc


def metadata_columns(schema: dict[str, bool], metas: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The ``meta`` JSON values of some rows as columns: name -> array (len(metas),), strings where
    ``schema`` says so (numbers come back as int64/float64, as JSON stores them)."""
    return {
        k: np.asarray([m[k] for m in metas], dtype=str if is_str else None)
        if metas
        else np.zeros(0, dtype=str if is_str else np.int64)
        for k, is_str in schema.items()
    }
