"""Two-source search over codes and compact binary descriptors: find the item, whatever its class.

A class-level code puts every item of a class in one tie band, so Hamming candidates of the code
alone must cover the whole band to contain one particular item, and that cost grows with the
class. Here every item also has a *binary descriptor* (an instance code: a few bytes that tell the
items of a class apart and survive copies), indexed on its own. A search takes candidates from
both indexes — the ``candidates`` nearest codes and the ``descriptor_candidates`` nearest
descriptors — and ranks their union by

1. descriptor Hamming distance, smallest first (reported as ``score = 1 - 2 d / bits``, the
   cosine similarity of the ±1 vectors, 1 for the same descriptor);
2. then code Hamming distance, smallest first;
3. then id, smallest first,

so results are deterministic and equal brute force over the union. A copy of a stored item is
found by its descriptor in a search that does not read its class's tie band; a query unlike any
stored item still gets its class neighbours from the code index. Memory per item: the code and
the descriptor (as 64-bit words), plus what the two indexes hold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from deephash.checks import check_positive_int
from deephash.codes import to_words
from deephash.index._union_kernel import rank_union_kernel
from deephash.index.base import BinaryIndex
from deephash.index.rerank import RerankResult, check_new_ids, hamming_candidates, merge_by_id

__all__ = [
    "BinaryRerankIndex",
    "rank_union",
]


class BinaryRerankIndex:
    """Codes in ``index`` and binary descriptors in ``descriptor_index`` (both empty; this class
    adds to them), searched together.

    candidates / descriptor_candidates: default number of candidates taken from each index.
    copy_radius: None (rank every candidate by descriptor distance first) or the descriptor
    distance within which a candidate counts as a copy: copies first, then the other candidates
    by code distance (see :func:`rank_union`).
    """

    def __init__(
        self,
        index: BinaryIndex,
        descriptor_index: BinaryIndex,
        *,
        candidates: int = 32,
        descriptor_candidates: int = 32,
        copy_radius: int | None = None,
    ) -> None:
        if copy_radius is not None and (isinstance(copy_radius, bool) or copy_radius < 0):
            raise ValueError(f"copy_radius must be None or >= 0, got {copy_radius!r}")
        self.copy_radius = copy_radius
        if index.ntotal or descriptor_index.ntotal:
            raise ValueError("BinaryRerankIndex needs two empty indexes (it fills them)")
        check_positive_int(candidates, "candidates")
        check_positive_int(descriptor_candidates, "descriptor_candidates")
        self.index, self.descriptor_index = index, descriptor_index
        self.bits, self.descriptor_bits = index.bits, descriptor_index.bits
        self.candidates, self.descriptor_candidates = candidates, descriptor_candidates
        self.ids_ = np.zeros(0, dtype=np.int64)  # ascending
        self.code_words_ = to_words(np.zeros((0, index.nbytes), dtype=np.uint8))
        self.descriptor_words_ = to_words(np.zeros((0, descriptor_index.nbytes), dtype=np.uint8))
        self.next_id_ = 0  # ids are never reused, even after a removal

    @property
    def ntotal(self) -> int:
        return len(self.ids_)

    def add(
        self,
        codes: np.ndarray,
        descriptors: np.ndarray,
        ids: np.ndarray | Sequence[int] | None = None,
    ) -> None:
        """Add codes uint8 (n, ceil(bits / 8)) with their binary descriptors uint8 (n,
        ceil(descriptor_bits / 8)) under ``ids`` int64 (n,) (default: after the largest id ever
        added). Both are checked before either index changes."""
        codes = self.index._check_codes(codes, "codes")
        desc = self.descriptor_index._check_codes(descriptors, "descriptors")
        if len(desc) != len(codes):
            raise ValueError(f"{len(codes)} codes but {len(desc)} descriptors")
        new_ids = BinaryIndex._check_ids(ids, len(codes), self.next_id_)
        check_new_ids(self.ids_, new_ids)
        self.index.add(codes, new_ids)
        self.descriptor_index.add(desc, new_ids)
        if len(new_ids):
            self.next_id_ = max(self.next_id_, int(new_ids.max()) + 1)
        self.ids_, self.code_words_, self.descriptor_words_ = merge_by_id(
            self.ids_,
            new_ids,
            (self.code_words_, to_words(codes)),
            (self.descriptor_words_, to_words(desc)),
        )

    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        """Remove items (codes and descriptors) by id; unknown ids are ignored. Returns the count."""
        keep = ~np.isin(self.ids_, BinaryIndex._check_remove_ids(ids))
        gone = self.ids_[~keep]
        if len(gone):
            self.index.remove_ids(gone)
            self.descriptor_index.remove_ids(gone)
            self.ids_ = self.ids_[keep]
            self.code_words_ = self.code_words_[keep]
            self.descriptor_words_ = self.descriptor_words_[keep]
        return len(gone)

    def search(
        self,
        queries: np.ndarray,
        query_descriptors: np.ndarray,
        k: int,
        *,
        candidates: int | None = None,
        descriptor_candidates: int | None = None,
        radius: int | None = None,
    ) -> RerankResult:
        """The k best of each query's candidates from both indexes, by (descriptor distance, code
        distance, id); only items within code distance ``radius`` when given.

        queries: uint8 (nq, ceil(bits / 8)); query_descriptors: uint8 (nq, ceil(descriptor_bits /
        8)). Returns a :class:`~deephash.index.rerank.RerankResult` (scores ``1 - 2 d / bits`` of
        the descriptors, code distances, ids), -1 / NaN where a row has fewer than k.
        """
        q = self.index._check_queries(queries, self.ntotal)
        qd = self.descriptor_index._check_codes(query_descriptors, "query descriptors")
        if len(qd) != len(q):
            raise ValueError(f"{len(q)} queries but {len(qd)} descriptors")
        k = BinaryIndex._check_k(k)
        kc = max(k, candidates if candidates is not None else self.candidates)
        kd = max(
            k,
            descriptor_candidates
            if descriptor_candidates is not None
            else self.descriptor_candidates,
        )
        _, code_ids = hamming_candidates(self.index, q, kc)
        _, desc_ids = hamming_candidates(self.descriptor_index, qd, kd)
        stored = (self.ids_, self.code_words_, self.descriptor_words_)
        return rank_union(
            (to_words(q), to_words(qd)),
            stored,
            code_ids,
            desc_ids,
            k,
            self.descriptor_bits,
            radius,
            self.copy_radius,
        )


def rank_union(
    queries: tuple[np.ndarray, np.ndarray],
    stored: tuple[np.ndarray, np.ndarray, np.ndarray],
    code_ids: np.ndarray,
    desc_ids: np.ndarray,
    k: int,
    descriptor_bits: int,
    radius: int | None = None,
    copy_radius: int | None = None,
) -> RerankResult:
    """The k best of the union of each query's code and descriptor candidates, only those within
    code distance ``radius`` when given: by (descriptor distance, code distance, id); or, with
    ``copy_radius``, copies first (candidates within that descriptor distance, by (descriptor
    distance, code distance, id)), then the others by (code distance, descriptor distance, id), so
    a search finds an item's copies first and otherwise ranks by class as the codes do. One
    compiled pass (no (nq, w) temporaries, no sort of the stored rows); scores are
    ``1 - 2 d / descriptor_bits`` of the descriptors.

    queries: (codes (nq, W), descriptors (nq, Wd)) packed, as bytes (uint8) or 64-bit words;
    stored: (ids int64 (n,) ascending, codes (n, W), descriptors (n, Wd)) of the same type;
    code_ids int64 (nq, kc) and desc_ids int64 (nq, kd): the candidates, -1 for none. Returns a
    :class:`~deephash.index.rerank.RerankResult` of width k, -1 / NaN past the last."""
    q, qd = queries
    ids, codes, descs = stored
    if q.dtype != codes.dtype or qd.dtype != descs.dtype:
        raise ValueError(f"queries ({q.dtype}, {qd.dtype}) and stored rows ({codes.dtype}, "
                         f"{descs.dtype}) must be packed the same way")  # fmt: skip
    scores, dist, out_ids = rank_union_kernel(
        q,
        qd,
        ids,
        codes,
        descs,
        np.ascontiguousarray(code_ids, dtype=np.int64),
        np.ascontiguousarray(desc_ids, dtype=np.int64),
        k,
        descriptor_bits,
        -1 if radius is None else radius,
        descriptor_bits if copy_radius is None else copy_radius,
    )
    return RerankResult(scores, dist, out_ids)
