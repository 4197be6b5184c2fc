"""A searchable image collection on disk: the model's codes in an index, item metadata, the stored
images, an append-only log, and a lock.

Folder layout::

    collection.json   settings: the run (model), bits, backend, backend settings, limits
    index.dhx         snapshot of every item (deephash index format: ids, codes, metadata),
                      written atomically; with index.dhx.run.json, `deephash search` reads it too
    descriptors.npz   re-ranking collections only: each item's descriptor (float16) by id, written
                      atomically before index.dhx (see :mod:`.descriptor_file`)
    log.bin           additions and removals since the snapshot (see :mod:`.log`), fsynced
    images/           a copy of every stored image, named ``<id><suffix>``
    lock              the OS file lock (see :mod:`.lock`); holds the holder's pid

The file names are in :mod:`.layout`; checking and reading the settings in :mod:`.settings`;
reading and writing the snapshot in :mod:`.snapshot`; keeping an external engine in step in
:mod:`.external_engine`. This module holds :class:`Collection`, which ties them together.

Re-ranking. A collection created with a descriptor kind (``rerank=``, see
:mod:`deephash.models.descriptors`) stores one descriptor per item besides its code and searches
in two stages: the k' nearest codes (``candidates``), re-ranked by descriptor (score, then Hamming
distance, then id; :mod:`deephash.index.rerank`). Collections without one (all made before this
existed) search by Hamming distance alone.

Durability. An addition appends one log record holding the items' ids, codes, descriptors,
metadata and image bytes, and fsyncs it (one fsync per addition, whatever its size); only then does ``add`` return
the ids. The image files are written after that without an fsync of their own: ``compact`` fsyncs
them before it drops the log, and opening after a crash rewrites them from the log. A removal is
logged (fsynced) before it is applied. ``compact`` writes a new snapshot (temp + rename), then
replaces the log by one holding only a ``begin`` record (temp + rename). Replaying a log is
idempotent by id (an ``add`` of an id already present is skipped, a ``remove`` of a missing id
ignored) and ids are never reused, so a crash between the two renames, which replays the old log
over the new snapshot, gives the same items. On open, a torn last record is cut off and image
files that no live item references are deleted.

Concurrency. Writers (add, remove, compact) are serialised by a mutex. A writer builds a new
immutable :class:`View` (ids, codes, the index structures) and publishes it with one reference
assignment; a search takes the current view once and works on it, so it sees the state before or
after a change, never a half-applied one, and never waits for a writer. To keep a change O(its
size), a view searches a main index plus a small flat index of the additions since it was built,
minus the ids removed since; main is rebuilt once those changes exceed 1/16 of the collection. The
index kernels are numba-parallel, and numba's workqueue threading layer aborts the process if two
threads launch kernels at once, so the kernel calls are serialised by a second mutex (a search
takes about 0.1 ms for 60,000 codes and uses every core); decoding, encoding and building responses
run in parallel. An external engine (``milvus``) is never called under the write mutex: a change
is acknowledged once it is in the log and in the view's pending delta (:mod:`.freshness`), and
:class:`~deephash.collection.engine_writer.EngineWriter` applies it to the engine from its own
thread (group commit), draining the delta once the engine shows it; a search asks the engine at
Bounded consistency (no wait for the server's clock) and merges the delta in. The count is the
collection's own (``len(ids)``, no engine request): it is the only writer of its engine, a second
``deephash`` process on the folder is refused by the OS lock, and another process writing the
same Milvus collection is detected by the writer's idle audit (counts differ) and undone by a
re-sync.

Failures. The log is the source of truth; neither failure below loses an acknowledged change.
A disk that fills up fails the log append of an addition or removal (``OSError`` ENOSPC): the
record is cut off, nothing changes and the caller gets the error (``deephash serve`` answers 507);
an image file or an automatic compaction that fails after the record is durable does not fail the
change (the image bytes stay in memory and in the log until a compaction writes them; compaction
is retried 30 s later). An external engine that cannot be reached
(:class:`~deephash.index.EngineUnavailableError`) fails searches (503) but not writes: they go to
the log and the view's pending delta and stay queued; once the engine answers, the engine writer
re-syncs it from the collection (removing what it holds that the collection does not, adding what
it lacks) and applies the queue, while searches are already answered from engine plus delta.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from deephash.atomic_io import atomic_write_json
from deephash.codes import check_padding_bits, code_bytes, pack_bits, sign
from deephash.collection._durable import fsync_dir, fsync_files
from deephash.collection.descriptor_file import (
    DESCRIPTOR_FILE,
    encode_descriptor,
    write_descriptors,
)
from deephash.collection.engine_writer import EngineWriter
from deephash.collection.external_engine import engine_spec, resync_engine
from deephash.collection.freshness import drained, pending_counts, with_additions, with_removals
from deephash.collection.images import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image_bytes,
    to_model_input,
)
from deephash.collection.items import Hit, Item, NewItem
from deephash.collection.layout import (
    COLLECTION_FILE,
    IMAGES_DIR,
    LOCK_FILE,
    LOG_FILE,
    SNAPSHOT_FILE,
)
from deephash.collection.lock import FolderLock
from deephash.collection.log import AppendLog, read_log, write_new_log
from deephash.collection.replay import ReplayState, replay_record
from deephash.collection.settings import (
    BACKENDS,
    DEFAULT_CANDIDATES,
    new_settings,
    read_settings,
)
from deephash.collection.settings import (
    recommended_descriptor as recommended_descriptor,  # imported from here by the CLI
)
from deephash.collection.snapshot import (
    read_snapshot,
    read_snapshot_descriptors,
    save_snapshot,
    snapshot_index,
)
from deephash.collection.view import View, search_view
from deephash.index import EngineUnavailableError, create_index
from deephash.index.rerank import as_descriptors

__all__ = ["BACKENDS", "Collection", "Hit", "Item", "NewItem"]

_COMPACT_RETRY_S = 30.0  # after a failed automatic compaction (e.g. disk full), wait this long
_log = logging.getLogger(__name__)


class Collection:
    """A collection folder, opened (and locked) by :meth:`create` or :meth:`open`.

    Use as a context manager, or call :meth:`close` (which compacts the log and drops the lock).
    """

    rebuild_min = 1024  # changes the delta may hold before the main index is rebuilt
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
        self._lock = lock
        self._write_lock = threading.Lock()
        self._kernel_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._model: Any = None
        self._log: AppendLog | None = None
        self._log_records = 0
        self._unsynced_images: list[str] = []
        self._pending_images: dict[str, bytes] = {}  # image files a full disk refused
        self._compact_retry_at = 0.0
        self._engine_writer: EngineWriter | None = None  # applies changes to an external engine
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
        candidates: int = DEFAULT_CANDIDATES,
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
        the ``candidates`` nearest codes of each search by, or None (Hamming ranking only)."""
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
        )
        bits, run, rerank_settings = int(settings["bits"]), settings["run"], settings.get("rerank")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / IMAGES_DIR).mkdir(exist_ok=True)
        with FolderLock(directory / LOCK_FILE):
            snapshot = create_index("flat" if backend == "milvus" else backend, bits)
            snapshot.save(directory / SNAPSHOT_FILE)
            if rerank_settings:
                write_descriptors(
                    directory / DESCRIPTOR_FILE,
                    np.zeros(0, np.int64),
                    np.zeros((0, int(rerank_settings["dim"])), np.float16),
                )
            atomic_write_json(
                directory / (SNAPSHOT_FILE + ".run.json"),
                {"run_dir": run, "bits": bits, "source": "collection", "backend": backend},
            )
            write_new_log(directory / LOG_FILE, {"op": "begin", "next_id": 0})
            # collection.json last: a folder without it is not (yet) a collection
            atomic_write_json(directory / COLLECTION_FILE, settings)
            fsync_dir(directory)
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
        state = read_snapshot(self.directory, self.bits)
        log = read_log(self.directory / LOG_FILE)
        for record in log.records:
            replay_record(
                state, record, self.nbytes, self.directory / LOG_FILE, self.descriptor_dim
            )
        if log.torn_bytes and not self.read_only:
            warnings.warn(
                f"{self.directory / LOG_FILE}: dropped {log.torn_bytes} bytes of a record that "
                "was being written when the last process stopped (never acknowledged)",
                stacklevel=3,
            )
        if not self.read_only:
            self._log = AppendLog(self.directory / LOG_FILE, log.valid_end)
            self._log_records = len(log.records)
            (self.directory / IMAGES_DIR).mkdir(exist_ok=True)
            for item_id, data in state.images.items():  # whatever a crash kept from the disk
                self._write_image(str(state.items[item_id].image), data)
            self._remove_orphans(state)
        ids = np.array(sorted(state.codes), dtype=np.int64)
        codes = np.frombuffer(b"".join(state.codes[i] for i in ids.tolist()), dtype=np.uint8)
        codes = codes.reshape(len(ids), self.nbytes).copy()
        descriptors = (
            read_snapshot_descriptors(self.directory, ids, state, self.descriptor_dim)
            if self.reranks
            else None
        )
        view = View(ids, codes, state.items, state.next_id, descriptors=descriptors)
        self._view = self._sync_external(view) if self.external else self._rebuilt(view)

    def _write_image(self, name: str, data: bytes) -> None:
        """Write an image file (not fsynced: its bytes are in the log until the next compaction,
        which fsyncs it before the log is dropped)."""
        with open(self.directory / IMAGES_DIR / name, "wb") as f:
            f.write(data)
        self._unsynced_images.append(name)

    def _store_image(self, name: str, data: bytes) -> None:
        """Write an image file of an addition whose log record is already durable: a failure (a
        full disk) must not fail the addition, so the bytes wait in memory for the next
        compaction, which writes them before it drops the log that also holds them."""
        try:
            self._write_image(name, data)
        except OSError as exc:
            (self.directory / IMAGES_DIR / name).unlink(missing_ok=True)
            self._pending_images[name] = data
            _log.warning("%s: image %s kept in memory: %s", self.directory, name, exc)

    def _remove_orphans(self, state: ReplayState) -> None:
        folder = self.directory / IMAGES_DIR
        folder.mkdir(exist_ok=True)
        known = {item.image for item in state.items.values() if item.image}
        for f in folder.iterdir():
            if f.name not in known:
                f.unlink()

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
        return self.backend == "milvus"

    @property
    def reranks(self) -> bool:
        """True when the collection stores descriptors and re-ranks Hamming candidates by them."""
        return bool(self.settings.get("rerank"))

    @property
    def descriptor(self) -> str | None:
        """The stored descriptor kind (see :mod:`deephash.models.descriptors`), or None."""
        return str(self.settings["rerank"]["descriptor"]) if self.reranks else None

    @property
    def descriptor_dim(self) -> int:
        """Width D of the stored descriptors (0 without re-ranking)."""
        return int(self.settings["rerank"]["dim"]) if self.reranks else 0

    @property
    def candidates(self) -> int:
        """Hamming candidates re-ranked per search by default (k'; 0 without re-ranking)."""
        return int(self.settings["rerank"]["candidates"]) if self.reranks else 0

    @property
    def descriptors(self) -> np.ndarray | None:
        """float32 (count, D): the stored descriptors (float16 values), aligned with
        :attr:`ids`; None without re-ranking."""
        return self._view.descriptors

    def descriptor_of(self, item_id: int) -> np.ndarray:
        """float32 (D,): an item's stored descriptor; ``KeyError`` for an unknown id,
        ``ValueError`` when the collection stores none."""
        view = self._view
        if view.descriptors is None:
            raise ValueError(self._no_descriptors())
        pos = int(np.searchsorted(view.ids, int(item_id)))
        if pos >= len(view.ids) or view.ids[pos] != int(item_id):
            raise KeyError(f"no item with id {item_id} in the collection")
        return view.descriptors[pos]

    def _no_descriptors(self) -> str:
        return (
            f"collection {self.directory} stores no descriptors, so it cannot re-rank; create "
            "one with `deephash collection create DIR --run RUN --rerank KIND` and add the "
            "images again"
        )

    @property
    def run_dir(self) -> Path:
        return Path(self.settings["run"])

    @property
    def max_pixels(self) -> int:
        return int(self.settings.get("max_pixels", DEFAULT_MAX_PIXELS))

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
        pos = int(np.searchsorted(view.ids, int(item_id)))
        if pos >= len(view.ids) or view.ids[pos] != int(item_id):
            raise KeyError(f"no item with id {item_id} in the collection")
        return view.codes[pos]

    def random_id(self, rng: random.Random | None = None) -> int:
        """A uniformly drawn id; ``KeyError`` when the collection is empty."""
        ids = self._view.ids
        if not len(ids):
            raise KeyError("the collection is empty")
        return int(ids[(rng or random).randrange(len(ids))])

    # ------------------------------------------------------------------ model
    @property
    def model(self) -> Any:
        """The run's network (a :class:`~deephash.training.runs.LoadedRun`), loaded once; its
        code width must be the collection's."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    from deephash.training.runs import load_run

                    if not (self.run_dir / "config.yaml").is_file():
                        raise FileNotFoundError(
                            f"the collection's run folder {self.run_dir} is missing; restore it or "
                            f'set "run" in {self.directory / COLLECTION_FILE}'
                        )
                    run = load_run(self.run_dir, device=self.device)
                    if run.config.bits != self.bits:
                        raise ValueError(
                            f"the model of {self.run_dir} makes {run.config.bits}-bit codes but "
                            f"collection {self.directory} holds {self.bits}-bit codes; point "
                            f'"run" in {COLLECTION_FILE} at the run that built it, or create '
                            "a new collection for this model"
                        )
                    self._model = run
        return self._model

    @property
    def image_size(self) -> int:
        """Side of the square images the model takes."""
        return int(self.model.data_info["image_shape"][0])

    def decode(self, data: bytes, name: str = "image") -> DecodedImage:
        """Decode untrusted image bytes (see :func:`~deephash.collection.images.decode_image_bytes`)
        at the model's image size, within the collection's pixel limit."""
        return decode_image_bytes(data, self.image_size, max_pixels=self.max_pixels, name=name)

    def encode(self, rgb: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """RGB uint8 (N, S, S, 3) -> packed codes uint8 (N, ceil(bits / 8)) (model, sign, pack)."""
        if rgb.shape[0] == 0:
            return np.zeros((0, self.nbytes), dtype=np.uint8)
        model = self.model
        x = to_model_input(rgb, int(model.data_info["in_channels"]))
        out, _ = model.encode_for_search(x, None, batch_size)
        return pack_bits(sign(out))

    def encode_with_descriptors(
        self, rgb: np.ndarray, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB uint8 (N, S, S, 3) -> (packed codes uint8 (N, ceil(bits / 8)), descriptors float32
        (N, D) rounded as stored, or None for a collection without descriptors); one forward
        pass gives both (the codes equal :meth:`encode`'s)."""
        if not self.reranks:
            return self.encode(rgb, batch_size), None
        if rgb.shape[0] == 0:
            return np.zeros((0, self.nbytes), np.uint8), np.zeros(
                (0, self.descriptor_dim), np.float32
            )
        model = self.model
        x = to_model_input(rgb, int(model.data_info["in_channels"]))
        out, desc = model.encode_for_search(x, str(self.descriptor), batch_size)
        assert desc is not None  # asked for
        return pack_bits(sign(out)), as_descriptors(desc, self.descriptor_dim)

    def encode_records(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (N, S, S, 3) -> one structured row per image: ``code`` uint8 (nbytes,) and,
        when the collection re-ranks, ``descriptor`` float32 (D,) (the micro-batcher's function:
        it slices rows)."""
        codes, desc = self.encode_with_descriptors(rgb)
        fields: list[tuple[str, Any, tuple[int, ...]]] = [("code", np.uint8, (self.nbytes,))]
        if desc is not None:
            fields.append(("descriptor", np.float32, (self.descriptor_dim,)))
        out = np.zeros(len(codes), dtype=np.dtype(fields))
        out["code"] = codes
        if desc is not None:
            out["descriptor"] = desc
        return out

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
        return self.add(
            [
                NewItem(
                    codes[i],
                    images[i],
                    decoded[i].suffix,
                    labels[i],
                    paths[i],
                    None if desc is None else desc[i],
                )
                for i in range(n)
            ]
        )

    # ------------------------------------------------------------------ writers
    def _check_writable(self) -> None:
        if self._closed:
            raise RuntimeError(f"collection {self.directory} is closed")
        if self.read_only or self._log is None:
            raise RuntimeError(f"collection {self.directory} was opened read-only")

    def add(self, new: Sequence[NewItem]) -> list[int]:
        """Add items; returns their ids once they are durable (images and log record fsynced)."""
        codes = (
            np.stack([np.asarray(n.code, dtype=np.uint8).reshape(-1) for n in new]) if new else None
        )
        if codes is not None:
            if codes.shape[1] != self.nbytes:
                raise ValueError(
                    f"codes must have {self.nbytes} bytes ({self.bits} bits), got {codes.shape[1]}"
                )
            check_padding_bits(codes, self.bits)
        descriptors = self._new_descriptors(new) if new else None
        with self._write_lock:
            self._check_writable()
            assert self._log is not None
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
                record = {k: v for k, v in vars(items[item_id]).items() if v is not None}
                record["code"] = codes[j].tobytes().hex()
                if descriptors is not None:
                    record["desc"] = encode_descriptor(descriptors[j])
                if n.image_bytes is not None:
                    record["image_data"] = base64.b64encode(n.image_bytes).decode("ascii")
                records.append(record)
            # One fsync makes the whole addition durable, images included (they are in the
            # record); the image files are written after it and fsynced at the next compaction.
            self._log.append({"op": "add", "items": records})
            self._log_records += 1
            for item_id, n in zip(ids, new):
                if n.image_bytes is not None:
                    self._store_image(str(items[item_id].image), n.image_bytes)
            view.items.update(items)  # not yet reachable: no published view holds these ids
            new_ids = np.asarray(ids, dtype=np.int64)
            all_ids = np.concatenate([view.ids, new_ids])
            all_codes = np.concatenate([view.codes, codes])
            all_desc = (
                None
                if view.descriptors is None or descriptors is None
                else np.concatenate([view.descriptors, descriptors])
            )
            if self.external:  # pending in the delta; the engine writer applies it later
                self._view = with_additions(
                    replace(
                        view,
                        ids=all_ids,
                        codes=all_codes,
                        next_id=ids[-1] + 1,
                        descriptors=all_desc,
                    ),
                    new_ids,
                    codes,
                    self.bits,
                )
                if self._engine_writer is not None:
                    self._engine_writer.add(new_ids, codes)
            else:
                old = view.delta
                self._publish_local(
                    View(
                        all_ids,
                        all_codes,
                        view.items,
                        ids[-1] + 1,
                        view.main,
                        None,
                        view.removed,
                        all_desc,
                    ),
                    new_ids if old is None else np.concatenate([old.ids, new_ids]),
                    codes if old is None else np.concatenate([old.codes, codes]),
                )
            self._maybe_compact()
        return ids

    def _new_descriptors(self, new: Sequence[NewItem]) -> np.ndarray | None:
        """float32 (n, D) of the items to add (stored precision), checked; None without
        re-ranking (then no item may carry one)."""
        given = [n.descriptor is not None for n in new]
        if not self.reranks:
            if any(given):
                raise ValueError(self._no_descriptors().replace("so it cannot re-rank", "to add"))
            return None
        if not all(given):
            raise ValueError(
                f"collection {self.directory} re-ranks by {self.descriptor} descriptors: every "
                f"item to add needs one ({given.count(False)} of {len(new)} have none)"
            )
        rows = []
        for n in new:
            d = np.asarray(n.descriptor)
            if d.ndim != 1 or d.shape[0] != self.descriptor_dim:
                raise ValueError(
                    f"a descriptor of shape {d.shape}; this collection stores "
                    f"{self.descriptor} descriptors of {self.descriptor_dim} values"
                )
            rows.append(d)
        return as_descriptors(np.stack(rows), self.descriptor_dim)

    def remove(self, ids: Sequence[int]) -> int:
        """Remove items by id (all or none: an unknown id is a ``KeyError`` and removes nothing).
        Returns the number removed, once the removal is durable."""
        wanted = sorted({int(i) for i in ids})
        with self._write_lock:
            self._check_writable()
            assert self._log is not None
            view = self._view
            missing = [i for i in wanted if not view.contains(i)]
            if missing:
                raise KeyError(f"no item with id {missing[0]} in the collection")
            if not wanted:
                return 0
            self._log.append({"op": "remove", "ids": wanted})
            self._log_records += 1
            gone = np.asarray(wanted, dtype=np.int64)
            keep = ~np.isin(view.ids, gone)
            live_ids, live_codes = view.ids[keep], view.codes[keep]
            live_desc = None if view.descriptors is None else view.descriptors[keep]
            if self.external:  # tombstoned; the engine writer applies it later
                self._view = with_removals(
                    replace(view, ids=live_ids, codes=live_codes, descriptors=live_desc),
                    gone,
                    self.bits,
                )
                if self._engine_writer is not None:
                    self._engine_writer.remove(gone)
            else:
                delta_ids = np.zeros(0, np.int64) if view.delta is None else view.delta.ids
                delta_codes = (
                    np.zeros((0, self.nbytes), np.uint8) if view.delta is None else view.delta.codes
                )
                in_delta = np.isin(delta_ids, gone)
                from_main = set(wanted) - set(delta_ids[in_delta].tolist())
                self._publish_local(
                    View(
                        live_ids,
                        live_codes,
                        view.items,
                        view.next_id,
                        view.main,
                        None,
                        view.removed | from_main,
                        live_desc,
                    ),
                    delta_ids[~in_delta],
                    delta_codes[~in_delta],
                )
            # after publishing: a crash before this leaves orphans, removed on open
            for i in wanted:
                image = view.items[i].image
                if image is not None:
                    self._pending_images.pop(image, None)
                    (self.directory / IMAGES_DIR / image).unlink(missing_ok=True)
            self._maybe_compact()
        return len(wanted)

    def _publish_local(self, view: View, delta_ids: np.ndarray, delta_codes: np.ndarray) -> None:
        """Publish ``view`` with a delta index over ``delta_ids``; rebuild ``main`` instead when
        the changes since it was built exceed 1/16 of the collection (at least ``rebuild_min``)."""
        changes = len(delta_ids) + len(view.removed)
        if view.main is None or changes > max(self.rebuild_min, len(view.ids) // 16):
            self._view = self._rebuilt(view)
            return
        delta = None
        if len(delta_ids):
            delta = create_index("flat", self.bits)
            delta.add(delta_codes, delta_ids)
        # one reference assignment publishes the whole change
        self._view = replace(view, delta=delta)

    def _rebuilt(self, view: View) -> View:
        """The view with a fresh local ``main`` index over every item, ready to search."""
        if not len(view.ids):
            return replace(view, main=None, delta=None, removed=frozenset())
        index = create_index(self.backend, self.bits)
        index.add(view.codes, view.ids)
        with self._kernel_lock:
            index.search(view.codes[:1], 1)  # builds lazy structures (MIH tables) now
        return replace(view, main=index, delta=None, removed=frozenset())

    def _sync_external(self, view: View) -> View:
        """Connect to the external engine, make it hold exactly the collection's items (see
        :func:`~deephash.collection.external_engine.resync_engine`) and start the thread that
        applies later changes to it (:class:`~deephash.collection.engine_writer.EngineWriter`)."""
        if self.read_only:  # a reader (``collection info``) does not touch the engine
            return view
        name, options = engine_spec(self.settings)
        index = create_index(name, self.bits, **options)
        resync_engine(index, view)
        self._engine_writer = EngineWriter(
            index,
            self.directory,
            view=lambda: self._view,
            drain=self._drain_pending,
            settle_s=self.engine_settle_s,
        )
        return replace(view, main=index)

    @property
    def engine_pending(self) -> dict[str, int] | None:
        """How many acknowledged additions and removals an external engine may not show yet (the
        pending delta; see :mod:`.freshness`); None for a local backend."""
        return pending_counts(self._view) if self.external else None

    def wait_for_engine(self, timeout: float = 30.0, *, seen: bool = False) -> bool:
        """Wait until the external engine has applied every acknowledged change (``seen``: and
        was read back showing them, so the pending delta is empty). True at once for a local
        backend; False when ``timeout`` s passed first. Searches never need this: they see every
        acknowledged change anyway (tests, benchmarks and a clean hand-over do)."""
        writer = self._engine_writer
        if writer is None:
            return True
        return writer.wait_drained(timeout) if seen else writer.wait_applied(timeout)

    def _drain_pending(self, seen_added: np.ndarray, seen_removed: np.ndarray) -> None:
        """Drop from the pending delta what the engine was seen to show (no engine call here)."""
        with self._write_lock:
            self._view = drained(self._view, seen_added, seen_removed, self.bits)

    def _maybe_compact(self) -> None:
        """Compact when the log is long; a failure (disk full) is logged, not raised: the change
        that triggered it is already durable, and the log keeps growing until a retry succeeds."""
        assert self._log is not None
        if self._log_records <= self.compact_every and self._log.size <= self.compact_bytes:
            return
        if time.monotonic() < self._compact_retry_at:
            return
        try:
            self._compact_locked()
        except OSError as exc:
            self._compact_retry_at = time.monotonic() + _COMPACT_RETRY_S
            _log.warning(
                "%s: compaction failed (%s); the log keeps every change, retrying in %.0f s",
                self.directory,
                exc,
                _COMPACT_RETRY_S,
            )

    def compact(self) -> None:
        """Fold the log into a new snapshot (atomically), then start an empty log."""
        with self._write_lock:
            self._check_writable()
            self._compact_locked()

    def _compact_locked(self) -> None:
        assert self._log is not None
        view = self._view
        snapshot = snapshot_index(view, "flat" if self.external else self.backend, self.bits)
        # the image files whose bytes only the log holds go to disk before the log is dropped
        for name, data in list(self._pending_images.items()):
            self._write_image(name, data)
            del self._pending_images[name]
        fsync_files(self.directory / IMAGES_DIR, self._unsynced_images)
        self._unsynced_images = []
        save_snapshot(self.directory, snapshot, view)
        # A crash here replays the old log over the new snapshot: idempotent by id. The new log
        # replaces the old one by rename before the old one is closed, so a failure to write it
        # (disk full) leaves the old log open and in use.
        write_new_log(self.directory / LOG_FILE, {"op": "begin", "next_id": view.next_id})
        self._log.close()
        self._log = AppendLog(self.directory / LOG_FILE, (self.directory / LOG_FILE).stat().st_size)
        self._log_records = 0
        # drop the metadata of removed items (readers of older views keep the old mapping)
        live = {i: view.items[i] for i in view.ids.tolist()}
        self._view = replace(view, items=live)

    # ------------------------------------------------------------------ search
    def search(
        self,
        queries: np.ndarray,
        k: int,
        radius: int | None = None,
        *,
        descriptors: np.ndarray | None = None,
        candidates: int | None = None,
    ) -> list[list[Hit]]:
        """Search by code, or in two stages by code and descriptor.

        queries: uint8 (nq, ceil(bits / 8)). Without ``descriptors``: the k nearest items by
        Hamming distance, ties by the smaller id. With ``descriptors`` float (nq, D) (a
        re-ranking collection only): the ``candidates`` (default :attr:`candidates`, at least k)
        nearest codes re-ranked by descriptor: (score, Hamming distance, id). With ``radius``,
        only items at Hamming distance <= radius (still at most k). Returns one list of hits per
        query, best first.
        """
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.dtype != np.uint8 or q.ndim != 2 or q.shape[1] != self.nbytes:
            raise ValueError(
                f"queries must be packed uint8 codes of shape (n, {self.nbytes}) for "
                f"{self.bits}-bit codes, got {q.dtype} {q.shape}"
            )
        check_padding_bits(q, self.bits, "query codes")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if radius is not None and radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        q_desc = None
        if descriptors is not None:
            if not self.reranks:
                raise ValueError(self._no_descriptors())
            q_desc = as_descriptors(descriptors, self.descriptor_dim, name="query descriptors")
            if len(q_desc) != len(q):
                raise ValueError(f"{len(q)} query codes but {len(q_desc)} query descriptors")
        if candidates is not None and (
            not isinstance(candidates, int) or isinstance(candidates, bool) or candidates < 1
        ):
            raise ValueError(f"candidates must be a positive integer, got {candidates!r}")
        kp = self.candidates if candidates is None else candidates
        if self.external:
            try:
                return self._search_view(self._view, q, k, radius, q_desc, kp)
            except EngineUnavailableError:
                # it may have lost or missed writes while down: re-sync it once it answers
                if self._engine_writer is not None:
                    self._engine_writer.mark_stale()
                raise
        return self._search_view(self._view, q, k, radius, q_desc, kp)

    def _search_view(
        self,
        view: View,
        q: np.ndarray,
        k: int,
        radius: int | None,
        q_desc: np.ndarray | None = None,
        candidates: int = 0,
    ) -> list[list[Hit]]:
        return search_view(
            view,
            q,
            k,
            radius,
            external=self.external,
            kernel_lock=self._kernel_lock,
            query_descriptors=q_desc,
            candidates=candidates,
        )

    def search_by_id(
        self, item_id: int, k: int, radius: int | None = None, *, candidates: int | None = None
    ) -> list[Hit]:
        """Search with a stored item's code (and descriptor, when the collection re-ranks);
        ``KeyError`` for an unknown id."""
        code = self.code_of(item_id)[None, :]
        desc = self.descriptor_of(item_id)[None, :] if self.reranks else None
        return self.search(code, k, radius, descriptors=desc, candidates=candidates)[0]

    def search_images(
        self,
        rgb: np.ndarray,
        k: int,
        radius: int | None = None,
        *,
        candidates: int | None = None,
    ) -> list[list[Hit]]:
        """Encode RGB uint8 (N, S, S, 3) images (see :meth:`decode`) and search with them: two
        stages when the collection re-ranks, else by Hamming distance."""
        codes, desc = self.encode_with_descriptors(rgb)
        return self.search(codes, k, radius, descriptors=desc, candidates=candidates)

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
            "rerank": (
                {
                    **self.settings["rerank"],
                    # stored (disk, log) / held in memory for the re-ranking kernel
                    "bytes_per_item": 2 * self.descriptor_dim,
                    "memory_bytes_per_item": 4 * self.descriptor_dim,
                }
                if self.reranks
                else None
            ),
            **({"uri": self.settings["uri"], **pending_counts(view)} if self.external else {}),
        }

    def close(self) -> None:
        """Apply the changes queued for an external engine (for a few seconds at most; the next
        open re-syncs what is left), compact the log (a faster next start), close it and release
        the lock."""
        if self._engine_writer is not None:
            self._engine_writer.close()
        with self._write_lock:
            if self._closed:
                return
            try:
                if self._log is not None and self._log_records:
                    self._compact_locked()
            finally:
                if self._log is not None:
                    self._log.close()
                    self._log = None
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
