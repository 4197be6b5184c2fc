"""Adapter that serves faiss binary indexes through the deephash index API.

faiss is an optional dependency (``pip install deephash[faiss]``). The factory string is faiss's
own (``faiss.index_binary_factory``): ``"BFlat"`` (exact scan), ``"BIVF<nlist>"`` (inverted file,
trained on the first ``add`` unless ``train`` was called), ``"BHNSW<M>"`` (graph) and
``"BHash<nhash>x<b>"`` (``IndexBinaryMultiHash``). faiss positions are our storage positions, which
are sorted by id, so an exact faiss index scanning in position order returns the smaller id first
among equal distances; each row is re-sorted by (distance, id) in any case. Approximate backends
(IVF, HNSW, hashing) return approximate results, as in faiss.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash.index.in_memory import InMemoryIndex
from deephash.index.registry import INDEXES

__all__ = ["FaissBinaryIndex", "import_faiss"]


def import_faiss() -> Any:
    """Import faiss or raise a ``RuntimeError`` saying how to install it."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the faiss backend needs faiss: pip install faiss-cpu (or deephash[faiss])"
        ) from exc
    return faiss


@INDEXES.register("faiss")
class FaissBinaryIndex(InMemoryIndex):
    """A faiss binary index behind the deephash API (ids, tie order, padding, files).

    bits: code length (faiss works on whole bytes; the zero padding bits change no distance).
    factory: faiss binary factory string, e.g. ``"BFlat"``, ``"BIVF1024"``, ``"BHNSW32"``,
    ``"BHash2x16"``. nprobe: IVF/multi-hash probing depth; ef_search: HNSW search breadth.
    Memory: faiss's structure plus a copy of the codes (kept to rebuild faiss's index when ids
    arrive out of order, so that positions stay sorted by id).
    """

    backend = "faiss"
    name_argument = "factory"
    name_argument_help = "give a faiss factory string after 'faiss:', e.g. 'faiss:BFlat'"

    def __init__(
        self,
        bits: int,
        factory: str = "BFlat",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> None:
        super().__init__(bits)
        self.factory = factory
        self.nprobe = nprobe
        self.ef_search = ef_search
        self._faiss = import_faiss()
        self.index_ = self._new_index()

    def _new_index(self) -> Any:
        try:
            index = self._faiss.index_binary_factory(8 * self.nbytes, self.factory)
        except RuntimeError as exc:
            raise ValueError(
                f"faiss cannot build a binary index from {self.factory!r} "
                "(try 'BFlat', 'BIVF<nlist>', 'BHNSW<M>' or 'BHash<nhash>x<bits>')"
            ) from exc
        if self.nprobe is not None:
            if hasattr(index, "nprobe"):
                index.nprobe = int(self.nprobe)
            elif hasattr(index, "nflip"):
                index.nflip = int(self.nprobe)
        if self.ef_search is not None and hasattr(index, "hnsw"):
            index.hnsw.efSearch = int(self.ef_search)
        return index

    def _options(self) -> dict[str, Any]:
        return {"factory": self.factory, "nprobe": self.nprobe, "ef_search": self.ef_search}

    def train(self, codes: np.ndarray) -> None:
        """Train the faiss index (IVF needs it; others ignore it). codes: uint8 (n, bytes)."""
        codes = self._check_codes(codes, "training codes")
        if not self.index_.is_trained:
            self.index_.train(codes)

    def _on_change(self, appended_from: int | None) -> None:
        if appended_from is None:  # storage was reordered: rebuild, keeping any training
            if self.index_.is_trained and self.index_.ntotal:
                self.index_.reset()
            elif not self.index_.is_trained or self.ntotal == 0:
                self.index_ = self._new_index()
            appended_from = 0
        new = self.codes_[appended_from:]
        if new.shape[0]:
            if not self.index_.is_trained:
                self.index_.train(self.codes_)
            self.index_.add(new)

    def _extra_sections(self) -> dict[str, np.ndarray]:
        return {"faiss": np.asarray(self._faiss.serialize_index_binary(self.index_))}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        blob = arrays.get("faiss")
        if blob is None:
            self._on_change(appended_from=None)
            return
        self.index_ = self._faiss.deserialize_index_binary(blob)
        if self.index_.ntotal != self.ntotal:
            raise ValueError(
                f"the stored faiss index holds {self.index_.ntotal} codes, expected {self.ntotal}"
            )
        if self.nprobe is not None and hasattr(self.index_, "nprobe"):
            self.index_.nprobe = int(self.nprobe)
        if self.ef_search is not None and hasattr(self.index_, "hnsw"):
            self.index_.hnsw.efSearch = int(self.ef_search)

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        d, p = self.index_.search(queries, k)
        d = np.where(p >= 0, d, np.iinfo(np.int32).max).astype(np.int64)
        order = np.lexsort((np.where(p >= 0, p, np.iinfo(np.int64).max), d), axis=1)
        d = np.take_along_axis(d, order, axis=1)
        p = np.take_along_axis(p, order, axis=1)
        return np.where(p >= 0, d, -1).astype(np.int32), p.astype(np.int64)

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lims, d, p = self.index_.range_search(queries, int(radius))
        lims = np.asarray(lims).astype(np.int64)
        d = np.asarray(d).astype(np.int64)
        p = np.asarray(p).astype(np.int64)
        qid = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
        order = np.lexsort((p, d, qid))
        return lims, d[order].astype(np.int32), p[order]
