"""The index file container: a checked header, then raw array sections.

Layout (all integers little-endian)::

    magic        8 bytes   b"DHINDEX\\x1a"
    version      uint32    FORMAT_VERSION
    header_len   uint64    length of the JSON header in bytes
    header_crc   uint32    zlib.crc32 of the JSON header
    header       JSON      {"backend", "bits", "ntotal", "options", "metadata_keys",
                            "payload_len", "payload_sha256", "sections": [{"name", "kind",
                            "dtype", "shape", "offset", "nbytes"}, ...]}
    payload      bytes     the sections back to back, offsets relative to the payload start

A section of kind ``"array"`` is a raw C-ordered numpy array; kind ``"json"`` is UTF-8 JSON (used
for string metadata, so no pickle is ever loaded). The header checksum catches a flipped byte in the
header; the SHA-256 of the payload catches one in the data; the lengths catch truncation and
trailing garbage. Files are written to a temporary file in the target directory and moved into
place with ``os.replace``, so a crash never leaves a half-written index under the final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from deephash.atomic_io import atomic_write

MAGIC = b"DHINDEX\x1a"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sIQI")  # magic, version, header_len, header_crc
_MAX_HEADER = 64 * 1024 * 1024


@dataclass
class Container:
    """The decoded content of an index file."""

    backend: str
    bits: int
    ntotal: int
    options: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    json_sections: dict[str, Any] = field(default_factory=dict)
    metadata_keys: list[str] = field(default_factory=list)


def write_container(path: str | os.PathLike[str], c: Container) -> None:
    """Write ``c`` to ``path`` atomically (temporary file in the same directory + ``os.replace``)."""
    path = Path(path)
    blobs: list[bytes] = []
    sections: list[dict[str, Any]] = []
    offset = 0
    for name, arr in c.arrays.items():
        arr = np.ascontiguousarray(arr)
        if arr.dtype.hasobject:
            raise ValueError(f"section {name!r}: object arrays cannot be saved")
        raw = arr.tobytes()
        sections.append(
            {
                "name": name,
                "kind": "array",
                "dtype": arr.dtype.str,
                "shape": list(arr.shape),
                "offset": offset,
                "nbytes": len(raw),
            }
        )
        blobs.append(raw)
        offset += len(raw)
    for name, obj in c.json_sections.items():
        raw = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        sections.append({"name": name, "kind": "json", "offset": offset, "nbytes": len(raw)})
        blobs.append(raw)
        offset += len(raw)
    sha = hashlib.sha256()
    for b in blobs:
        sha.update(b)
    header = {
        "format": "deephash-index",
        "backend": c.backend,
        "bits": c.bits,
        "ntotal": c.ntotal,
        "options": c.options,
        "metadata_keys": c.metadata_keys,
        "payload_len": offset,
        "payload_sha256": sha.hexdigest(),
        "sections": sections,
    }
    hraw = json.dumps(header, sort_keys=True).encode("utf-8")
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(hraw), zlib.crc32(hraw))

    def write(f: BinaryIO) -> None:
        f.write(prefix)
        f.write(hraw)
        for b in blobs:
            f.write(b)

    atomic_write(path, write)


def read_container(path: str | os.PathLike[str]) -> Container:
    """Read and fully verify an index file; any damage is a ``ValueError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file {str(path)!r} does not exist")
    data = path.read_bytes()

    def bad(what: str) -> ValueError:
        return ValueError(f"{str(path)!r} is not a valid deephash index file: {what}")

    if len(data) < _PREFIX.size:
        raise bad(f"only {len(data)} bytes, shorter than the {_PREFIX.size}-byte file prefix")
    magic, version, hlen, hcrc = _PREFIX.unpack_from(data, 0)
    if magic != MAGIC:
        raise bad(f"wrong magic bytes {magic!r} (expected {MAGIC!r}); is it a deephash index?")
    if version != FORMAT_VERSION:
        raise bad(
            f"format version {version} is not supported by this deephash "
            f"(reads version {FORMAT_VERSION})"
        )
    if hlen > _MAX_HEADER or _PREFIX.size + hlen > len(data):
        raise bad(f"truncated: header of {hlen} bytes does not fit in the {len(data)}-byte file")
    hraw = data[_PREFIX.size : _PREFIX.size + hlen]
    if zlib.crc32(hraw) != hcrc:
        raise bad("header checksum mismatch (the file is corrupted)")
    try:
        header = json.loads(hraw.decode("utf-8"))
        payload_len = int(header["payload_len"])
        sections = header["sections"]
        backend = str(header["backend"])
        bits = int(header["bits"])
        ntotal = int(header["ntotal"])
        options = dict(header["options"])
        metadata_keys = [str(k) for k in header["metadata_keys"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise bad(f"unreadable header ({exc})") from None
    start = _PREFIX.size + hlen
    if len(data) - start < payload_len:
        raise bad(f"truncated: payload has {len(data) - start} of {payload_len} bytes")
    if len(data) - start > payload_len:
        raise bad(f"{len(data) - start - payload_len} unexpected trailing bytes after the payload")
    payload = memoryview(data)[start:]
    if hashlib.sha256(payload).hexdigest() != header.get("payload_sha256"):
        raise bad("payload checksum (SHA-256) mismatch (the file is corrupted)")
    out = Container(backend, bits, ntotal, options, metadata_keys=metadata_keys)
    for s in sections:
        off, nbytes, name = int(s["offset"]), int(s["nbytes"]), str(s["name"])
        if off < 0 or nbytes < 0 or off + nbytes > payload_len:
            raise bad(f"section {name!r} lies outside the payload")
        raw = payload[off : off + nbytes]
        if s["kind"] == "array":
            dtype = np.dtype(s["dtype"])
            shape = tuple(int(v) for v in s["shape"])
            if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize != nbytes:
                raise bad(
                    f"section {name!r}: shape {shape} and dtype {dtype} do not match its size"
                )
            out.arrays[name] = np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
        elif s["kind"] == "json":
            out.json_sections[name] = json.loads(bytes(raw).decode("utf-8"))
        else:
            raise bad(f"section {name!r} has unknown kind {s['kind']!r}")
    return out
