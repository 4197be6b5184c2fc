"""A searchable image collection on disk: the model's codes in an index, item metadata, the stored
images, an append-only log, and a lock.

Folder layout::

    collection.json   settings: the run (model), bits, backend, backend settings, limits
    index.dhx         snapshot of every item (deephash index format: ids, codes, metadata),
                      written atomically; with index.dhx.run.json, `deephash search` reads it too
    descriptors.npz   re-ranking collections only: each item's descriptor (float16, or packed bits
                      for a binary kind) by id, written atomically before index.dhx (see
                      :mod:`.descriptor_file`)
    log.bin           additions and removals since the snapshot (see :mod:`.log`), fsynced
    images/           a copy of every stored image, named ``<id><suffix>``
    lock              the OS file lock (see :mod:`.lock`); holds the holder's pid

:class:`Collection` composes the parts, each in its own module: the file names in :mod:`.layout`;
the settings in :mod:`.settings`; the model that decodes and encodes images in :mod:`.encoder`;
reading the folder back (snapshot, then log) in :mod:`.replay` and :mod:`.snapshot`; the image
files in :mod:`.image_store`; the log and its compaction in :mod:`.compaction`; and the backing
that searches the codes (:mod:`.backing`): a local index (:mod:`.local_backing`) or an external
engine (:mod:`.engine_backing`).

Re-ranking. A collection created with a descriptor kind (``rerank=``, see
:mod:`deephash.models.descriptors`) stores one descriptor per item besides its code and searches
in two stages: the k' nearest codes (``candidates``), re-ranked by descriptor (score, then Hamming
distance, then id; :mod:`deephash.index.rerank`). A binary kind (``instance``: the signs of the
network's instance outputs, 8 bytes for 64 bits, see :mod:`.descriptor_layout`) is also indexed
in this process (:mod:`.descriptor_index`): a search takes the ``candidates`` nearest codes and the
``descriptor_candidates`` nearest descriptors and ranks their union by (descriptor Hamming
distance, code distance, id) (:mod:`deephash.index.binary_rerank`), so it finds an item and its
copies without reading its class's tie band. Collections without descriptors search by Hamming
distance alone.

Durability. An addition appends one log record holding the items' ids, codes, descriptors,
metadata and image bytes, and fsyncs it (one fsync per addition, whatever its size); only then does ``add`` return
the ids. The image files are written after that without an fsync of their own: ``compact`` fsyncs
them before it drops the log, and opening after a crash rewrites them from the log. A removal is
logged (fsynced) before it is applied. Replaying a log is idempotent by id (an ``add`` of an id
already present is skipped, a ``remove`` of a missing id ignored) and ids are never reused, so a
crash inside a compaction gives the same items (see :mod:`.compaction`). On open, a torn last
record is cut off and image files that no live item references are deleted.

Concurrency. Writers (add, remove, compact) are serialised by a mutex. A writer builds a new
immutable :class:`View` (ids, codes, the backing's index structures) and publishes it with one
reference assignment; a search takes the current view once and works on it, so it sees the state
before or after a change, never a half-applied one, and never waits for a writer. Decoding,
encoding and building responses run in parallel.

Failures. The log is the source of truth; neither failure below loses an acknowledged change.
A disk that fills up fails the log append of an addition or removal (``OSError`` ENOSPC): the
record is cut off, nothing changes and the caller gets the error (``deephash serve`` answers 507);
an image file or an automatic compaction that fails after the record is durable does not fail the
change (the image bytes stay in memory and in the log until a compaction writes them; compaction
is retried 30 s later). An external engine that cannot be reached fails searches but not writes
(see :mod:`.engine_backing`).
"""

from __future__ import annotations

import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from deephash.atomic_io import atomic_write_json
from deephash.checks import check_positive_int
from deephash.codes import as_packed_rows, check_padding_bits, code_bytes
from deephash.collection._durable import fsync_dir
from deephash.collection.backing import ENGINES, Backing, snapshot_kind
from deephash.collection.compaction import Journal
from deephash.collection.descriptor_file import DESCRIPTOR_FILE, write_descriptors
from deephash.collection.descriptor_index import DescriptorIndex
from deephash.collection.descriptor_layout import DescriptorLayout
from deephash.collection.encoder import Encoder, no_descriptors_message
from deephash.collection.engine_backing import EngineBacking
from deephash.collection.engine_writer import EngineWriter
from deephash.collection.image_store import ImageStore
from deephash.collection.images import DEFAULT_MAX_PIXELS, DecodedImage
from deephash.collection.items import Hit, Item, NewItem, new_items
from deephash.collection.layout import (
    COLLECTION_FILE,
    IMAGES_DIR,
    LOCK_FILE,
    LOG_FILE,
    SNAPSHOT_FILE,
)
from deephash.collection.local_backing import LocalBacking
from deephash.collection.lock import FolderLock
from deephash.collection.log import AppendLog, write_new_log
from deephash.collection.replay import add_record, replay_folder
from deephash.collection.settings import (
    BACKENDS,
    DEFAULT_CANDIDATES,
    new_settings,
    read_settings,
)
from deephash.collection.settings import (
    recommended_descriptor as recommended_descriptor,  # imported from here by the CLI
)
from deephash.collection.view import Candidates, Query, View
from deephash.index import create_index

__all__ = ["BACKENDS", "DEFAULT_CANDIDATES", "Collection", "Hit", "Item", "NewItem"]


class Collection:
    """A collection folder, opened (and locked) by :meth:`create` or :meth:`open`.

    Use as a context manager, or call :meth:`close` (which compacts the log and drops the lock).
    """

    compact_bytes = 256 * 1024 * 1024  # log size that triggers a compaction
    engine_settle_s = 5.0  # an external engine's staleness bound (see :mod:`.engine_writer`)

    def __init__(
        self,
        directory: Path,
        settings: dict[str, Any],
        *,
        read_only: bool,
        lock: FolderLock | None,
        device: str,
        compact_every: int,
    ) -> None:
        self.directory = directory
        self.settings = settings
        self.read_only = read_only
        self.device = device
        self.compact_every = compact_every
        self.encoder = Encoder(directory, settings, device)
        self._lock = lock
        self._write_lock = threading.Lock()
        self._images = ImageStore(directory / IMAGES_DIR)
        self._backing = self._create_backing()
        layout = self.encoder.layout
        self._descriptor_index = (
            DescriptorIndex(layout.dim, self._backing.kernel_lock)
            if layout is not None and layout.binary
            else None
        )
        self._journal: Journal | None = None  # the open log (a writer only)
        self._view: View
        self._closed = False

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        run_dir: str | os.PathLike[str],
        backend: str = "mih",
        uri: str | None = None,
        *,
        milvus_collection: str | None = None,
        milvus_index: str | None = None,
        nlist: int | None = None,
        nprobe: int | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        device: str = "auto",
        load_model: bool = False,
        rerank: str | None = None,
        candidates: int | None = None,
        descriptor_candidates: int | None = None,
        copy_radius: int | None = None,
    ) -> Collection:
        """Make a new, empty collection in ``directory`` for the hashing model of ``run_dir`` and
        open it. ``backend``: ``mih`` (multi-index hashing), ``flat`` (exhaustive scan) or
        ``milvus`` (``uri``: a Milvus Lite file, default ``DIR/milvus.db``, or
        ``http://host:19530``). For ``milvus``: ``milvus_collection`` names the Milvus collection
        (default ``deephash_<folder name>``); ``milvus_index`` is ``BIN_FLAT`` (exact, the
        default) or ``BIN_IVF_FLAT`` (approximate, a server only) with ``nlist`` cells (default
        1024), ``nprobe`` of them searched per query (default 16; ``milvus_index.nprobe`` in
        ``collection.json`` may be changed between runs). ``rerank``: a descriptor kind (see
        :func:`deephash.models.descriptors.list_descriptors`) to store with every item and re-rank
        the ``candidates`` nearest codes of each search by (default 4096), or None (Hamming
        ranking only). The binary kind ``instance`` (a network with instance outputs) stores
        their packed signs and ranks the union of the ``candidates`` nearest codes and the
        ``descriptor_candidates`` nearest descriptors (default 32 each): those within
        ``copy_radius`` differing bits of the query's descriptor (default 5/32 of its bits: 20 of
        128) first, by descriptor
        distance, then the others by code distance."""
        directory = Path(directory)
        settings = new_settings(
            directory,
            run_dir,
            backend,
            uri,
            milvus_collection=milvus_collection,
            milvus_index=milvus_index,
            nlist=nlist,
            nprobe=nprobe,
            max_pixels=max_pixels,
            rerank=rerank,
            candidates=candidates,
            descriptor_candidates=descriptor_candidates,
            copy_radius=copy_radius,
        )
        _write_empty_folder(directory, settings)
        return cls.open(directory, device=device, load_model=load_model)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        read_only: bool = False,
        load_model: bool = True,
        device: str = "auto",
        compact_every: int = 2000,
    ) -> Collection:
        """Open a collection. A writer (``read_only=False``, the default) takes the folder's lock:
        a second writer or server gets :class:`~deephash.collection.lock.CollectionLockedError`.
        ``read_only`` opens a consistent copy of the state without the lock (for ``info``).
        ``load_model`` loads the run's network now and checks its code width."""
        directory = Path(directory)
        settings_file = directory / COLLECTION_FILE
        if not settings_file.is_file():
            raise FileNotFoundError(
                f"{directory} is not a deephash collection (no {COLLECTION_FILE}); create one with "
                f"`deephash collection create {directory} --run RUN_DIR`"
            )
        lock = None
        if not read_only:
            lock = FolderLock(directory / LOCK_FILE)
            lock.acquire()
        try:
            settings = read_settings(settings_file)
            self = cls(
                directory,
                settings,
                read_only=read_only,
                lock=lock,
                device=device,
                compact_every=compact_every,
            )
            self._load()
            if load_model:
                self.model  # noqa: B018  (loads it, checks the bit width)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return self

    def _load(self) -> None:
        """Replay the folder (snapshot, then log), restore the image files a crash left behind,
        open the log for appending and start the backing."""
        replayed = replay_folder(self.directory, self.bits, self.encoder.layout)
        log = replayed.log
        if log.torn_bytes and not self.read_only:
            warnings.warn(
                f"{self.directory / LOG_FILE}: dropped {log.torn_bytes} bytes of a record that "
                "was being written when the last process stopped (never acknowledged)",
                stacklevel=3,
            )
        if not self.read_only:
            self._journal = Journal(
                self.directory,
                AppendLog(self.directory / LOG_FILE, log.valid_end),
                len(log.records),
                self._images,
                self._backing.snapshot_kind,
                self.bits,
            )
            self._images.restore(replayed.state.items, replayed.state.images)
        view = replayed.view
        if self._descriptor_index is not None:
            view = self._descriptor_index.built(view)
        self._view = self._backing.start(view, lambda: self._view, self._update)

    def _create_backing(self) -> Backing:
        """The backing the settings name: an external engine (a reader never connects to it) or
        a local index."""
        if self.backend in ENGINES:
            return EngineBacking(
                self.directory,
                self.settings,
                read_only=self.read_only,
                settle_s=self.engine_settle_s,
            )
        return LocalBacking(self.backend, self.bits)

    def _update(self, change: Callable[[View], View]) -> None:
        """Publish ``change`` of the current view (for the backing's work off the request path)."""
        with self._write_lock:
            self._view = change(self._view)

    # ------------------------------------------------------------------ properties
    @property
    def bits(self) -> int:
        return int(self.settings["bits"])

    @property
    def nbytes(self) -> int:
        """Bytes per packed code, ``ceil(bits / 8)``."""
        return code_bytes(self.bits)

    @property
    def backend(self) -> str:
        return str(self.settings["backend"])

    @property
    def external(self) -> bool:
        """True when the index lives in an external engine (Milvus), changed in place."""
        return self.backend in ENGINES

    @property
    def rebuild_min(self) -> int:
        """Changes a local index's delta may hold before its main index is rebuilt (see
        :class:`~deephash.collection.local_backing.LocalBacking`)."""
        backing = self._backing
        return backing.rebuild_min if isinstance(backing, LocalBacking) else 0

    @rebuild_min.setter
    def rebuild_min(self, value: int) -> None:
        if isinstance(self._backing, LocalBacking):
            self._backing.rebuild_min = value

    @property
    def _engine_writer(self) -> EngineWriter | None:
        """The external engine's writer, or None (read by tests and the Milvus benchmark)."""
        return self._backing.writer if isinstance(self._backing, EngineBacking) else None

    @property
    def reranks(self) -> bool:
        """True when the collection stores descriptors and re-ranks Hamming candidates by them."""
        return self.descriptor is not None

    @property
    def descriptor(self) -> str | None:
        """The stored descriptor kind (see :mod:`deephash.models.descriptors`), or None."""
        return self.encoder.descriptor

    @property
    def descriptor_dim(self) -> int:
        """Width D of the stored descriptors (0 without re-ranking)."""
        return self.encoder.descriptor_dim

    @property
    def binary_descriptor(self) -> bool:
        """True when the stored descriptors are packed bits (a binary kind such as
        ``instance``), compared by Hamming distance."""
        return self._descriptor_index is not None

    @property
    def candidates(self) -> int:
        """Hamming candidates (nearest codes) re-ranked per search by default (k'; 0 without
        re-ranking)."""
        return int(self.settings["rerank"]["candidates"]) if self.reranks else 0

    @property
    def copy_radius(self) -> int | None:
        """Descriptor distance within which a candidate counts as a copy and ranks first (a
        binary kind; None: every candidate by descriptor distance, or no binary descriptor)."""
        if not self.binary_descriptor:
            return None
        value = self.settings["rerank"].get("copy_radius")
        return None if value is None else int(value)

    @property
    def descriptor_candidates(self) -> int:
        """Nearest descriptors added to the candidates per search by default (a binary kind;
        else 0)."""
        return (
            int(self.settings["rerank"]["descriptor_candidates"]) if self.binary_descriptor else 0
        )

    @property
    def descriptors(self) -> np.ndarray | None:
        """The stored descriptors, aligned with :attr:`ids`: float32 (count, D) (float16
        values), or packed bits uint8 (count, ceil(D / 8)) for a binary kind; None without
        re-ranking."""
        return self._view.descriptors

    def descriptor_of(self, item_id: int) -> np.ndarray:
        """An item's stored descriptor (float32 (D,), or packed bits uint8 (ceil(D / 8),));
        ``KeyError`` for an unknown id, ``ValueError`` when the collection stores none."""
        view = self._view
        if view.descriptors is None:
            raise ValueError(no_descriptors_message(self.directory))
        return view.descriptors[self._position(view, item_id)]

    @property
    def run_dir(self) -> Path:
        return self.encoder.run_dir

    @property
    def max_pixels(self) -> int:
        return self.encoder.max_pixels

    @property
    def count(self) -> int:
        """Number of items."""
        return int(self._view.ids.shape[0])

    @property
    def ids(self) -> np.ndarray:
        """int64 (count,): the item ids, ascending."""
        return self._view.ids

    @property
    def codes(self) -> np.ndarray:
        """uint8 (count, ceil(bits / 8)): the codes, aligned with :attr:`ids`."""
        return self._view.codes

    @property
    def next_id(self) -> int:
        return self._view.next_id

    def image_file(self, item_id: int) -> Path | None:
        """The stored image of an item (None if it has none); KeyError for an unknown id."""
        item = self.get(item_id)
        return None if item.image is None else self.directory / IMAGES_DIR / item.image

    def get(self, item_id: int) -> Item:
        """An item's metadata; ``KeyError`` for an unknown id."""
        view = self._view
        if not view.contains(int(item_id)):
            raise KeyError(f"no item with id {item_id} in the collection")
        return view.items[int(item_id)]

    def code_of(self, item_id: int) -> np.ndarray:
        """uint8 (ceil(bits / 8),): the stored code of an item; ``KeyError`` for an unknown id."""
        view = self._view
        return view.codes[self._position(view, item_id)]

    @staticmethod
    def _position(view: View, item_id: int) -> int:
        """The row of ``item_id`` in ``view``; ``KeyError`` for an unknown id."""
        pos = int(np.searchsorted(view.ids, int(item_id)))
        if pos >= len(view.ids) or view.ids[pos] != int(item_id):
            raise KeyError(f"no item with id {item_id} in the collection")
        return pos

    def random_id(self, rng: random.Random | None = None) -> int:
        """A uniformly drawn id; ``KeyError`` when the collection is empty."""
        ids = self._view.ids
        if not len(ids):
            raise KeyError("the collection is empty")
        return int(ids[(rng or random).randrange(len(ids))])

    # ------------------------------------------------------------------ model (see .encoder)
    @property
    def model(self) -> Any:
        """The run's network (a :class:`~deephash.training.runs.LoadedRun`), loaded once; its
        code width must be the collection's."""
        return self.encoder.model

    @property
    def image_size(self) -> int:
        """Side of the square images the model takes."""
        return self.encoder.image_size

    def decode(self, data: bytes, name: str = "image") -> DecodedImage:
        """Decode untrusted image bytes (see :func:`~deephash.collection.images.decode_image_bytes`)
        at the model's image size, within the collection's pixel limit."""
        return self.encoder.decode(data, name)

    def encode(self, rgb: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """RGB uint8 (N, S, S, 3) -> packed codes uint8 (N, ceil(bits / 8)) (model, sign, pack)."""
        return self.encoder.encode(rgb, batch_size)

    def encode_with_descriptors(
        self, rgb: np.ndarray, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB uint8 (N, S, S, 3) -> (packed codes uint8 (N, ceil(bits / 8)), descriptors float32
        (N, D) rounded as stored, or None for a collection without descriptors); one forward
        pass gives both (the codes equal :meth:`encode`'s)."""
        return self.encoder.encode_with_descriptors(rgb, batch_size)

    def encode_records(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (N, S, S, 3) -> one structured row per image: ``code`` uint8 (nbytes,) and,
        when the collection re-ranks, ``descriptor`` float32 (D,) (the micro-batcher's function:
        it slices rows)."""
        return self.encoder.encode_records(rgb)

    def add_images(
        self,
        images: Sequence[bytes],
        labels: Sequence[str | None] | None = None,
        paths: Sequence[str | None] | None = None,
    ) -> list[int]:
        """Decode, encode and add image files' bytes (all or none: a bad image adds nothing).
        Returns the new ids."""
        n = len(images)
        labels = list(labels) if labels is not None else [None] * n
        paths = list(paths) if paths is not None else [None] * n
        if len(labels) != n or len(paths) != n:
            raise ValueError(f"{n} images but {len(labels)} labels and {len(paths)} paths")
        decoded = [
            self.decode(b, name=p or f"image {i}") for i, (b, p) in enumerate(zip(images, paths))
        ]
        rgb = np.stack([d.rgb for d in decoded]) if decoded else np.zeros((0, 1, 1, 3), np.uint8)
        codes, desc = self.encode_with_descriptors(rgb)
        suffixes = [d.suffix for d in decoded]
        return self.add(new_items(codes, desc, images, suffixes, labels, paths))

    # ------------------------------------------------------------------ writers
    def _writable_journal(self) -> Journal:
        """The open log; ``RuntimeError`` when the collection is closed or read-only."""
        if self._closed:
            raise RuntimeError(f"collection {self.directory} is closed")
        if self.read_only or self._journal is None:
            raise RuntimeError(f"collection {self.directory} was opened read-only")
        return self._journal

    def _new_codes(self, new: Sequence[NewItem]) -> np.ndarray | None:
        """uint8 (n, nbytes): the codes of the items to add, checked; None for no items."""
        if not new:
            return None
        codes = np.stack([np.asarray(n.code, dtype=np.uint8).reshape(-1) for n in new])
        if codes.shape[1] != self.nbytes:
            raise ValueError(
                f"codes must have {self.nbytes} bytes ({self.bits} bits), got {codes.shape[1]}"
            )
        check_padding_bits(codes, self.bits)
        return codes

    def add(self, new: Sequence[NewItem]) -> list[int]:
        """Add items; returns their ids once they are durable (images and log record fsynced)."""
        codes = self._new_codes(new)
        descriptors = self.encoder.new_descriptors(new) if new else None
        with self._write_lock:
            journal = self._writable_journal()
            if codes is None:
                return []
            view = self._view
            ids = list(range(view.next_id, view.next_id + len(new)))
            now = time.time()
            items: dict[int, Item] = {}
            records = []
            for j, (item_id, n) in enumerate(zip(ids, new)):
                image = None if n.image_bytes is None else f"{item_id}{n.suffix}"
                items[item_id] = Item(item_id, n.label or None, n.path or None, image, now)
                desc = None if descriptors is None else descriptors[j]
                records.append(add_record(items[item_id], codes[j], desc, n.image_bytes))
            # One fsync makes the whole addition durable, images included (they are in the
            # record); the image files are written after it and fsynced at the next compaction.
            journal.append({"op": "add", "items": records})
            for item_id, n in zip(ids, new):
                if n.image_bytes is not None:
                    self._images.store(str(items[item_id].image), n.image_bytes)
            view.items.update(items)  # not yet reachable: no published view holds these ids
            new_ids = np.asarray(ids, dtype=np.int64)
            grown = replace(
                view,
                ids=np.concatenate([view.ids, new_ids]),
                codes=np.concatenate([view.codes, codes]),
                next_id=ids[-1] + 1,
                descriptors=(
                    None
                    if view.descriptors is None or descriptors is None
                    else np.concatenate([view.descriptors, descriptors])
                ),
            )
            published = self._backing.with_additions(grown, new_ids, codes)
            if self._descriptor_index is not None and descriptors is not None:
                published = self._descriptor_index.with_additions(published, new_ids, descriptors)
            # one reference assignment publishes the whole change
            self._view = published
            self._view = journal.maybe_compact(self._view, self.compact_every, self.compact_bytes)
        return ids

    def remove(self, ids: Sequence[int]) -> int:
        """Remove items by id (all or none: an unknown id is a ``KeyError`` and removes nothing).
        Returns the number removed, once the removal is durable."""
        wanted = sorted({int(i) for i in ids})
        with self._write_lock:
            journal = self._writable_journal()
            view = self._view
            missing = [i for i in wanted if not view.contains(i)]
            if missing:
                raise KeyError(f"no item with id {missing[0]} in the collection")
            if not wanted:
                return 0
            journal.append({"op": "remove", "ids": wanted})
            gone = np.asarray(wanted, dtype=np.int64)
            keep = ~np.isin(view.ids, gone)
            live_desc = None if view.descriptors is None else view.descriptors[keep]
            shrunk = replace(
                view, ids=view.ids[keep], codes=view.codes[keep], descriptors=live_desc
            )
            published = self._backing.with_removals(shrunk, gone)
            if self._descriptor_index is not None:
                published = self._descriptor_index.with_removals(published, gone)
            self._view = published
            # after publishing: a crash before this leaves orphans, removed on open
            for i in wanted:
                image = view.items[i].image
                if image is not None:
                    self._images.delete(image)
            self._view = journal.maybe_compact(self._view, self.compact_every, self.compact_bytes)
        return len(wanted)

    @property
    def engine_pending(self) -> dict[str, int] | None:
        """How many acknowledged additions and removals an external engine may not show yet (the
        pending delta; see :mod:`.freshness`); None for a local backend."""
        return self._backing.pending(self._view)

    @property
    def engine_requests(self) -> dict[str, float] | None:
        """How concurrent searches shared an external engine's requests (``requests`` sent,
        ``searches`` answered, ``mean`` searches per request); None for a local backend."""
        return self._backing.requests()

    def wait_for_engine(self, timeout: float = 30.0, *, seen: bool = False) -> bool:
        """Wait until the external engine has applied every acknowledged change (``seen``: and
        was read back showing them, so the pending delta is empty). True at once for a local
        backend; False when ``timeout`` s passed first. Searches never need this: they see every
        acknowledged change anyway (tests, benchmarks and a clean hand-over do)."""
        return self._backing.wait(timeout, seen)

    def compact(self) -> None:
        """Fold the log into a new snapshot (atomically), then start an empty log."""
        with self._write_lock:
            journal = self._writable_journal()
            self._view = journal.compact(self._view)

    # ------------------------------------------------------------------ search
    def search(
        self,
        queries: np.ndarray,
        k: int,
        radius: int | None = None,
        *,
        descriptors: np.ndarray | None = None,
        candidates: int | None = None,
        descriptor_candidates: int | None = None,
    ) -> list[list[Hit]]:
        """Search by code, or in two stages by code and descriptor.

        queries: uint8 (nq, ceil(bits / 8)). Without ``descriptors``: the k nearest items by
        Hamming distance, ties by the smaller id. With ``descriptors`` float (nq, D) (a
        re-ranking collection only): the ``candidates`` (default :attr:`candidates`, at least k)
        nearest codes re-ranked by descriptor: (score, Hamming distance, id). With packed bits
        uint8 (nq, ceil(D / 8)) (a collection of a binary kind): the union of the
        ``candidates`` nearest codes and the ``descriptor_candidates`` (default
        :attr:`descriptor_candidates`, at least k) nearest descriptors, ranked by (descriptor
        Hamming distance, code distance, id), ``score = 1 - 2 d / D``. With ``radius``, only
        items at Hamming distance <= radius (still at most k). Returns one list of hits per
        query, best first.
        """
        q = self._query_codes(queries)
        check_positive_int(k, "k")
        if radius is not None and radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        q_desc = None
        layout = self.encoder.layout
        if descriptors is not None:
            if layout is None:
                raise ValueError(no_descriptors_message(self.directory))
            q_desc = layout.check(descriptors, name="query descriptors")
            if len(q_desc) != len(q):
                raise ValueError(f"{len(q)} query codes but {len(q_desc)} query descriptors")
        for name, value in (
            ("candidates", candidates),
            ("descriptor_candidates", descriptor_candidates),
        ):
            if value is not None:
                check_positive_int(value, name)
        if descriptor_candidates is not None and not self.binary_descriptor:
            raise ValueError(
                "descriptor_candidates is for a collection of binary descriptors (instance); "
                f"{self.directory} stores {self.descriptor or 'none'}"
            )
        kp = self.candidates if candidates is None else candidates
        kd = self.descriptor_candidates if descriptor_candidates is None else descriptor_candidates
        query = Query(q, k, radius, q_desc, kp, kd, self.descriptor_dim, self.copy_radius)
        return self._backing.search(self._view, query, self._descriptor_candidates_fn())

    def _descriptor_candidates_fn(self) -> Candidates | None:
        """The ranking of a view's binary descriptors (None without them)."""
        index = self._descriptor_index
        return None if index is None else index.candidates

    def nearest_descriptors(
        self, descriptors: np.ndarray, k: int, max_distance: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest stored binary descriptors (a binary kind only) of each packed query row
        of ``descriptors`` uint8 (nq, ceil(D / 8)) by (Hamming distance, id), only those within
        ``max_distance`` differing bits when given: (distances int32 (nq, k), ids int64 (nq, k)),
        each row sorted, -1 where a row has fewer. Codes play no part."""
        index = self._descriptor_index
        layout = self.encoder.layout
        if index is None or layout is None:
            raise ValueError(
                f"collection {self.directory} stores no binary descriptors (instance); it "
                f"stores {self.descriptor or 'none'}"
            )
        check_positive_int(k, "k")
        q = layout.check(descriptors, name="query descriptors")
        view = self._view
        assert view.descriptor_view is not None  # built with every view of a binary kind
        return index.candidates(view.descriptor_view, q, k, max_distance)

    def _query_codes(self, queries: np.ndarray) -> np.ndarray:
        """Query codes as uint8 (nq, nbytes), checked."""
        return as_packed_rows(queries, self.bits, "query codes")

    def search_by_id(
        self,
        item_id: int,
        k: int,
        radius: int | None = None,
        *,
        candidates: int | None = None,
        descriptor_candidates: int | None = None,
    ) -> list[Hit]:
        """Search with a stored item's code (and descriptor, when the collection re-ranks);
        ``KeyError`` for an unknown id."""
        code = self.code_of(item_id)[None, :]
        desc = self.descriptor_of(item_id)[None, :] if self.reranks else None
        return self.search(
            code,
            k,
            radius,
            descriptors=desc,
            candidates=candidates,
            descriptor_candidates=descriptor_candidates,
        )[0]

    # ------------------------------------------------------------------ close
    def info(self) -> dict[str, Any]:
        """Settings and counts, for ``deephash collection info`` and ``/stats``."""
        view = self._view
        labels: dict[str, int] = {}
        for item_id in view.ids.tolist():
            item = view.items[item_id]
            key = item.label if item.label is not None else ""
            labels[key] = labels.get(key, 0) + 1
        log = self.directory / LOG_FILE
        return {
            "directory": str(self.directory),
            "count": len(view.ids),
            "bits": self.bits,
            "backend": self.backend,
            "run": str(self.run_dir),
            "next_id": view.next_id,
            "labels": dict(sorted(labels.items())),
            "log_bytes": log.stat().st_size if log.exists() else 0,
            "rerank": self._rerank_info(),
            **self._backing.info(view),
        }

    def _rerank_info(self) -> dict[str, Any] | None:
        """The re-rank settings with the bytes per item a descriptor takes stored (disk, log)
        and resident (held for the re-ranking kernel; a binary kind's index holds its own copy
        besides); None without re-ranking."""
        layout = self.encoder.layout
        if layout is None:
            return None
        return {
            **self.settings["rerank"],
            "bytes_per_item": layout.bytes_per_item,
            "memory_bytes_per_item": layout.resident_bytes_per_item,
        }

    def close(self) -> None:
        """Apply the changes queued for an external engine (for a few seconds at most; the next
        open re-syncs what is left), compact the log (a faster next start), close it and release
        the lock."""
        self._backing.close()
        with self._write_lock:
            if self._closed:
                return
            try:
                if self._journal is not None and self._journal.records:
                    self._view = self._journal.compact(self._view)
            finally:
                if self._journal is not None:
                    self._journal.close()
                    self._journal = None
                if self._lock is not None:
                    self._lock.release()
                self._closed = True

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Collection({str(self.directory)!r}, count={self.count}, bits={self.bits}, "
            f"backend={self.backend!r})"
        )


def _write_empty_folder(directory: Path, settings: dict[str, Any]) -> None:
    """Write a new, empty collection with ``settings`` to ``directory`` (under its lock):
    ``collection.json`` last, since a folder without it is not (yet) a collection."""
    bits, backend = int(settings["bits"]), settings["backend"]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / IMAGES_DIR).mkdir(exist_ok=True)
    with FolderLock(directory / LOCK_FILE):
        create_index(snapshot_kind(backend), bits).save(directory / SNAPSHOT_FILE)
        layout = DescriptorLayout.of_settings(settings)
        if layout is not None:
            write_descriptors(directory / DESCRIPTOR_FILE, np.zeros(0, np.int64), layout.empty())
        atomic_write_json(
            directory / (SNAPSHOT_FILE + ".run.json"),
            {"run_dir": settings["run"], "bits": bits, "source": "collection", "backend": backend},
        )
        write_new_log(directory / LOG_FILE, {"op": "begin", "next_id": 0})
        atomic_write_json(directory / COLLECTION_FILE, settings)
        fsync_dir(directory)
