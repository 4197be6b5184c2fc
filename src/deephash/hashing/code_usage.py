"""How a set of binary codes uses its code space: buckets, the largest bucket, per-bit entropy.

A *bucket* is the set of database items that share one code exactly (Hamming distance 0). Class
mAP alone rewards codes that collapse a class onto one bucket; a search engine that must tell
items apart wants many small buckets. These numbers say which of the two a model produced.

Codes may be given packed (uint8 (n, ceil(bits / 8)), faiss layout; pass ``bits``) or unpacked
(any (n, bits) array: an entry > 0 is a one-bit), as in :mod:`deephash.hashing.bit_stats`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from deephash.codes import pack_bits
from deephash.hashing.bit_stats import as_signed_codes

__all__ = ["CodeUsage", "bit_entropy", "code_usage"]


@dataclass(frozen=True)
class CodeUsage:
    """Code-space usage of a database (and, optionally, of queries against it).

    num_codes: database items. distinct_codes: buckets (distinct codes) among them;
    distinct_fraction = distinct_codes / num_codes. largest_bucket: items in the fullest bucket;
    largest_bucket_share = largest_bucket / num_codes. mean_query_bucket: mean number of database
    items whose code equals a query's code (the tie band at distance 0 a search must read), over
    the queries; without queries, over the database items themselves (itself not counted).
    code_entropy: Shannon entropy of the bucket distribution in bits (log2(num_codes) when every
    code is distinct, 0 when all share one). mean_bit_entropy, min_bit_entropy: binary entropy of
    each bit's share of ones, in bits (1 is a balanced bit, 0 a constant one).
    """

    bits: int
    num_codes: int
    distinct_codes: int
    distinct_fraction: float
    largest_bucket: int
    largest_bucket_share: float
    mean_query_bucket: float
    code_entropy: float
    mean_bit_entropy: float
    min_bit_entropy: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping of every field (floats rounded to 6 places)."""
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def bit_entropy(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Binary entropy of each bit's share of ones: float64 (bits,), in bits, within [0, 1]."""
    p = (as_signed_codes(codes, bits) > 0).mean(axis=0, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    out: np.ndarray = np.nan_to_num(h, nan=0.0)
    return out


def code_usage(
    database: np.ndarray,
    query: np.ndarray | None = None,
    *,
    bits: int | None = None,
    leave_one_out: bool = False,
) -> CodeUsage:
    """Buckets, largest bucket, per-query tie band and entropies of ``database`` (see CodeUsage).

    database: codes (n, ...), query: codes (nq, ...) in the same form, or None. leave_one_out:
    query i is database item i (an unseen-class protocol), so it is not counted in its own bucket.
    """
    signed = as_signed_codes(database, bits)  # unpacked once: buckets and bit entropies
    db, nbits = pack_bits(signed), signed.shape[1]
    n = db.shape[0]
    q = None if query is None else pack_bits(as_signed_codes(query, bits))
    if leave_one_out and (q is None or q.shape[0] != n):
        raise ValueError("leave_one_out needs one query per database item")
    stacked = db if q is None else np.concatenate([db, q])
    uniques, inverse = np.unique(stacked, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    db_counts = np.bincount(inverse[:n], minlength=len(uniques))
    counts = db_counts[db_counts > 0]
    if q is None:
        shared = db_counts[inverse[:n]] - 1
    else:
        shared = db_counts[inverse[n:]] - (1 if leave_one_out else 0)
    share = counts / n
    h_bits = bit_entropy(signed)
    return CodeUsage(
        bits=nbits,
        num_codes=n,
        distinct_codes=int(counts.size),
        distinct_fraction=float(counts.size / n),
        largest_bucket=int(counts.max()),
        largest_bucket_share=float(counts.max() / n),
        mean_query_bucket=float(shared.mean()) if shared.size else 0.0,
        code_entropy=float(-(share * np.log2(share)).sum()),
        mean_bit_entropy=float(h_bits.mean()),
        min_bit_entropy=float(h_bits.min()),
    )
