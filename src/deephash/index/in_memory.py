"""The in-memory storage that the flat, mih and faiss backends build on: codes, ids and metadata in
this process, sorted by id, written whole by ``save``.

Keeping the database sorted by id lets every backend break distance ties by scan position and still
return the smaller id first. A backend writes ``_search`` and ``_range_search`` over positions; this
class maps positions to ids.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from deephash.index._format import Container, write_container
from deephash.index.base import BinaryIndex, IdsInput, MetadataInput

__all__ = ["InMemoryIndex"]


class InMemoryIndex(BinaryIndex):
    """A :class:`~deephash.index.base.BinaryIndex` whose codes, ids and metadata are arrays here.

    Subclasses implement ``_search(queries, k)`` and ``_range_search(queries, radius)`` on positions
    of the id-sorted storage; they may override ``_on_change`` to drop derived structures.
    """

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self.codes_ = np.zeros((0, self.nbytes), dtype=np.uint8)
        # ids: an explicit int64 array, or (the common case of consecutive ids) just the first id
        # (``_ids is None``), so that an index of n codes with ids start..start+n-1 stores no ids.
        self._ids: np.ndarray | None = None
        self._id_start = 0
        self.metadata_: dict[str, np.ndarray] | None = None

    # ------------------------------------------------------------------ state
    @property
    def ntotal(self) -> int:
        return int(self.codes_.shape[0])

    @property
    def ids_(self) -> np.ndarray:
        """int64 (ntotal,): the stored ids, ascending (built on the fly when they are consecutive)."""
        if self._ids is None:
            return np.arange(self._id_start, self._id_start + self.ntotal, dtype=np.int64)
        return self._ids

    @ids_.setter
    def ids_(self, ids: np.ndarray) -> None:
        # ids are ascending and distinct, so they are consecutive iff last - first == n - 1
        ids = np.asarray(ids, dtype=np.int64)
        if ids.shape[0] == 0 or int(ids[-1]) - int(ids[0]) == ids.shape[0] - 1:
            self._ids, self._id_start = None, int(ids[0]) if ids.shape[0] else 0
        else:
            self._ids = ids

    def _ids_at(self, positions: np.ndarray) -> np.ndarray:
        """int64, the shape of ``positions``: the ids stored at these positions."""
        if self._ids is None:
            return np.asarray(positions, dtype=np.int64) + self._id_start
        return self._ids[positions]

    def _positions_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For int64 ids (k,): their positions (k,) and whether each is stored (k,) bool."""
        n = self.ntotal
        if self._ids is None:
            pos = ids - self._id_start
            ok = (pos >= 0) & (pos < n)
            return np.where(ok, pos, 0), ok
        # explicit ids are never empty (an empty index keeps _ids None), so n >= 1 here
        pos = np.minimum(np.searchsorted(self._ids, ids), n - 1)
        return pos, self._ids[pos] == ids

    @property
    def ids(self) -> np.ndarray:
        return self.ids_

    @property
    def codes(self) -> np.ndarray:
        return self.codes_

    @property
    def metadata(self) -> dict[str, np.ndarray]:
        return dict(self.metadata_) if self.metadata_ is not None else {}

    def _metadata_schema(self) -> dict[str, bool] | None:
        if self.metadata_ is None:
            return None
        return {k: v.dtype.kind == "U" for k, v in self.metadata_.items()}

    def metadata_for(self, ids: np.ndarray | Sequence[int]) -> dict[str, np.ndarray]:
        if self.metadata_ is None:
            raise ValueError("this index has no metadata (pass metadata= to add)")
        q = np.asarray(ids, dtype=np.int64)
        pos, ok = self._positions_of(q.ravel())
        if not np.all(ok):
            raise ValueError(f"id {int(q.ravel()[~ok][0])} is not in the index")
        return {k: v[pos].reshape(q.shape) for k, v in self.metadata_.items()}

    def reset(self) -> None:
        self.codes_ = np.zeros((0, self.nbytes), dtype=np.uint8)
        self._ids, self._id_start = None, 0
        self.metadata_ = None
        self._on_change(appended_from=None)

    # ------------------------------------------------------------------ add / remove
    def add(
        self, codes: np.ndarray, ids: IdsInput | None = None, metadata: MetadataInput | None = None
    ) -> None:
        codes = self._check_codes(codes, "codes")
        n = codes.shape[0]
        start = int(self._ids_at(np.array([self.ntotal - 1]))[0]) + 1 if self.ntotal else 0
        # default ids after consecutive ones stay consecutive: no array is built or stored
        lazy = ids is None and self._ids is None
        new_ids = None if lazy else self._check_ids(ids, n, start)
        new_meta = self._check_metadata(metadata, n)
        if n == 0:
            return
        in_order = new_ids is None or (
            bool(np.all(np.diff(new_ids) > 0)) and (self.ntotal == 0 or new_ids[0] >= start)
        )
        consecutive = new_ids is None or (
            in_order
            and int(new_ids[-1]) - int(new_ids[0]) == n - 1
            and (self.ntotal == 0 or int(new_ids[0]) == start)
        )
        first_id = self._id_start
        if self.ntotal == 0:
            first_id = start if new_ids is None else int(new_ids[0])
        ids_all: np.ndarray | None = None  # None: still consecutive, nothing to store
        if self._ids is not None or not consecutive:
            assert new_ids is not None
            ids_all = np.concatenate([self.ids_, new_ids])
        self._append(codes, ids_all, first_id, new_meta, in_order)

    def _append(
        self,
        codes: np.ndarray,
        ids_all: np.ndarray | None,
        first_id: int,
        new_meta: dict[str, np.ndarray] | None,
        in_order: bool,
    ) -> None:
        """Store checked codes (n, nbytes) after the current ones; ``ids_all`` int64 (ntotal + n,)
        every id in storage order, or None when they stay consecutive from ``first_id``; the rows
        are sorted by id unless ``in_order``."""
        appended_from: int | None = self.ntotal
        codes_all = np.concatenate([self.codes_, codes])
        meta_all = (
            None
            if new_meta is None
            else {
                k: np.concatenate([self.metadata_[k], v]) if self.metadata_ else v
                for k, v in new_meta.items()
            }
        )
        if not in_order:
            assert ids_all is not None
            order = np.argsort(ids_all, kind="stable")
            ids_all = ids_all[order]
            dup = ids_all[1:] == ids_all[:-1]
            if np.any(dup):
                raise ValueError(
                    f"id {int(ids_all[1:][dup][0])} is given more than once; ids must be distinct"
                )
            codes_all = codes_all[order]
            if meta_all is not None:
                meta_all = {k: v[order] for k, v in meta_all.items()}
            appended_from = None
        self.codes_, self.metadata_ = codes_all, meta_all
        if ids_all is None:
            self._ids, self._id_start = None, first_id
        else:
            self.ids_ = ids_all
        self._on_change(appended_from=appended_from)

    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        pos, ok = self._positions_of(self._check_remove_ids(ids))
        gone = np.zeros(self.ntotal, dtype=bool)
        gone[pos[ok]] = True
        removed = int(gone.sum())
        if removed:
            keep = ~gone
            ids_kept = self.ids_[keep]
            self.codes_ = self.codes_[keep]
            self.ids_ = ids_kept
            if self.metadata_ is not None:
                self.metadata_ = {k: v[keep] for k, v in self.metadata_.items()}
            self._on_change(appended_from=None)
        return removed

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = self._check_queries(queries)
        k = self._check_k(k)
        kk = min(k, self.ntotal)
        dist, ids = self._padded(q.shape[0], k)
        if q.shape[0]:
            d, p = self._search(q, kk)
            valid = p >= 0
            dist[:, :kk] = np.where(valid, d, -1)
            ids[:, :kk] = np.where(valid, self._ids_at(np.where(valid, p, 0)), -1)
        return dist, ids

    def range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        q = self._check_queries(queries)
        r = min(self._check_radius(radius), self.bits + 1)
        if q.shape[0] == 0 or r == 0:
            return self._no_range_results(q.shape[0])
        lims, d, p = self._range_search(q, r)
        return lims.astype(np.int64), d.astype(np.int32), self._ids_at(p)

    # ------------------------------------------------------------------ backend hooks
    def _on_change(self, appended_from: int | None) -> None:
        """Storage changed: rows ``appended_from:`` were appended, or (None) everything moved."""

    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest per query over storage positions: distances (nq, k), positions (nq, k), -1
        where fewer were found; rows sorted by (distance, position)."""
        raise NotImplementedError

    def _range_search(
        self, queries: np.ndarray, radius: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions within ``radius`` per query: lims (nq + 1,), distances and positions."""
        raise NotImplementedError

    def _extra_sections(self) -> dict[str, np.ndarray]:
        return {}

    def _load_extra(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore backend state from the saved sections (default: rebuild from the codes)."""
        self._on_change(appended_from=None)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike[str]) -> None:
        arrays: dict[str, np.ndarray] = {"ids": self.ids_, "codes": self.codes_}
        json_sections: dict[str, Any] = {}
        keys: list[str] = []
        for key, arr in (self.metadata_ or {}).items():
            keys.append(key)
            if arr.dtype.kind == "U":
                json_sections[f"meta/{key}"] = arr.tolist()
            else:
                arrays[f"meta/{key}"] = arr
        arrays.update({f"backend/{k}": v for k, v in self._extra_sections().items()})
        write_container(
            path,
            Container(
                backend=self.backend,
                bits=self.bits,
                ntotal=self.ntotal,
                options=self._options(),
                arrays=arrays,
                json_sections=json_sections,
                metadata_keys=keys,
            ),
        )

    def _restore(self, c: Container, path: str) -> None:
        """Fill a freshly constructed index from a verified container."""
        ids, codes = c.arrays.get("ids"), c.arrays.get("codes")
        if ids is None or codes is None:
            raise ValueError(f"{path!r} is not a valid deephash index file: ids or codes missing")
        if ids.shape != (c.ntotal,) or codes.shape != (c.ntotal, self.nbytes):
            raise ValueError(
                f"{path!r} is not a valid deephash index file: ids {ids.shape} / codes "
                f"{codes.shape} do not match {c.ntotal} codes of {c.bits} bits"
            )
        if ids.dtype != np.int64 or codes.dtype != np.uint8 or np.any(np.diff(ids) <= 0):
            raise ValueError(f"{path!r} is not a valid deephash index file: bad ids or codes")
        self.codes_ = codes
        self.ids_ = ids
        if c.metadata_keys:
            self.metadata_ = _restored_metadata(c, path)
        extra = {k[len("backend/") :]: v for k, v in c.arrays.items() if k.startswith("backend/")}
        self._load_extra(extra)


def _restored_metadata(c: Container, path: str) -> dict[str, np.ndarray]:
    """The metadata columns of a verified container (numbers as arrays, strings as JSON)."""
    meta: dict[str, np.ndarray] = {}
    for key in c.metadata_keys:
        if f"meta/{key}" in c.arrays:
            meta[key] = c.arrays[f"meta/{key}"]
        else:
            meta[key] = np.asarray(c.json_sections.get(f"meta/{key}", []), dtype=str)
        if meta[key].shape != (c.ntotal,):
            raise ValueError(
                f"{path!r} is not a valid deephash index file: metadata {key!r} has "
                f"shape {meta[key].shape}, expected ({c.ntotal},)"
            )
    return meta
