"""A searchable image collection on disk: the model's codes in an index, item metadata, the stored
images, an append-only log, and a lock.

Folder layout::

    collection.json   settings: the run (model), bits, backend, backend settings, limits
    index.dhx         snapshot of every item (deephash index format: ids, codes, metadata),
                      written atomically; with index.dhx.run.json, `deephash search` reads it too
    log.bin           additions and removals since the snapshot (see :mod:`.log`), fsynced
    images/           a copy of every stored image, named ``<id><suffix>``
    lock              the OS file lock (see :mod:`.lock`); holds the holder's pid

Durability. An addition appends one log record holding the items' ids, codes, metadata and image
bytes, and fsyncs it (one fsync per addition, whatever its size); only then does ``add`` return
the ids. The image files are written after that without an fsync of their own: ``compact`` fsyncs
them before it drops the log, and opening after a crash rewrites them from the log. A removal is
logged (fsynced) before it is applied. ``compact`` writes a new snapshot (temp + rename), then
replaces the log by one holding only a ``begin`` record (temp + rename). Replaying a log is
idempotent by id (an ``add`` of an id already present is skipped, a ``remove`` of a missing id
ignored) and ids are never reused, so a crash between the two renames, which replays the old log
over the new snapshot, gives the same items. On open, a torn last record is cut off and image
files that no live item references are deleted.

Concurrency. Writers (add, remove, compact) are serialised by a mutex. A writer builds a new
immutable :class:`_View` (ids, codes, the index structures) and publishes it with one reference
assignment; a search takes the current view once and works on it, so it sees the state before or
after a change, never a half-applied one, and never waits for a writer. To keep a change O(its
size), a view searches a main index plus a small flat index of the additions since it was built,
minus the ids removed since; main is rebuilt once those changes exceed 1/16 of the collection. The
index kernels are numba-parallel, and numba's workqueue threading layer aborts the process if two
threads launch kernels at once, so the kernel calls are serialised by a second mutex (a search
takes about 0.1 ms for 60,000 codes and uses every core); decoding, encoding and building responses
run in parallel. An external engine (``milvus``) is one shared, mutable object: there, writers
change it and swap the view under the write side of a readers-writer lock, and searches hold the
read side.

Failures. The log is the source of truth; neither failure below loses an acknowledged change.
A disk that fills up fails the log append of an addition or removal (``OSError`` ENOSPC): the
record is cut off, nothing changes and the caller gets the error (``deephash serve`` answers 507);
an image file or an automatic compaction that fails after the record is durable does not fail the
change (the image bytes stay in memory and in the log until a compaction writes them; compaction
is retried 30 s later). An external engine that cannot be reached
(:class:`~deephash.index.EngineUnavailableError`) fails searches (503) but not writes: they go to
the log and the view, the engine is marked stale, and the next search first re-syncs it from the
collection (removing what it holds that the collection does not, adding what it lacks).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deephash.atomic_io import atomic_write_json
from deephash.codes import code_bytes, pack_bits, sign
from deephash.collection._durable import fsync_dir, fsync_files
from deephash.collection._rwlock import ReadWriteLock
from deephash.collection.images import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image_bytes,
    to_model_input,
)
from deephash.collection.lock import FolderLock
from deephash.collection.log import AppendLog, read_log, write_new_log
from deephash.index import BinaryIndex, EngineUnavailableError, create_index, load_index
from deephash.index.milvus import INDEX_TYPES as MILVUS_INDEX_TYPES
from deephash.index.milvus import is_server_uri

__all__ = ["BACKENDS", "Collection", "Hit", "Item", "NewItem"]

FORMAT = "deephash-collection"
VERSION = 1
COLLECTION_FILE = "collection.json"
SNAPSHOT_FILE = "index.dhx"
LOG_FILE = "log.bin"
IMAGES_DIR = "images"
LOCK_FILE = "lock"
BACKENDS = ("mih", "flat", "milvus")
_META_KEYS = ("label", "path", "image", "added")
_COMPACT_RETRY_S = 30.0  # after a failed automatic compaction (e.g. disk full), wait this long
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One item's metadata. ``image`` is the stored file's name under ``images/`` (None if the
    item has no stored image); ``path`` the original file path or upload name; ``added`` Unix
    seconds."""

    id: int
    label: str | None
    path: str | None
    image: str | None
    added: float

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.label is not None:
            out["label"] = self.label
        if self.path is not None:
            out["path"] = self.path
        out["added"] = self.added
        return out


@dataclass(frozen=True)
class Hit:
    """A search result: the item and its Hamming distance to the query."""

    id: int
    distance: int
    item: Item


@dataclass
class NewItem:
    """An item to add: its packed code uint8 (ceil(bits / 8),), optionally the image file's bytes
    (stored as ``images/<id><suffix>``), a label and the original path or name."""

    code: np.ndarray
    image_bytes: bytes | None = None
    suffix: str = ".png"
    label: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class _View:
    """An immutable state of the collection.

    ids (ascending) and codes are the live items. ``items`` maps ids to metadata; it is shared
    between views and only grows between compactions (an id's entry is written before a view
    holding the id is published), so membership is ``ids``, never ``items``. Search runs over
    ``main`` (an index built once) plus ``delta`` (a flat index of the additions since), skipping
    ``removed`` (ids of ``main`` removed since): an addition or removal costs O(its size), and
    ``main`` is rebuilt when the changes outgrow a share of the collection. For an external engine
    ``main`` is the engine itself and there is no delta.
    """

    ids: np.ndarray
    codes: np.ndarray
    items: dict[int, Item]
    next_id: int
    main: BinaryIndex | None = None
    delta: BinaryIndex | None = None
    removed: frozenset[int] = frozenset()

    def contains(self, item_id: int) -> bool:
        pos = int(np.searchsorted(self.ids, item_id))
        return pos < len(self.ids) and int(self.ids[pos]) == item_id


@dataclass
class _Replay:
    """Items keyed by id while a snapshot and a log are read."""

    codes: dict[int, bytes] = field(default_factory=dict)
    items: dict[int, Item] = field(default_factory=dict)
    images: dict[int, bytes] = field(default_factory=dict)  # image bytes carried by the log
    next_id: int = 0


def _item_from(d: dict[str, Any]) -> Item:
    return Item(
        id=int(d["id"]),
        label=d.get("label") or None,
        path=d.get("path") or None,
        image=d.get("image") or None,
        added=float(d.get("added", 0.0)),
    )


def _milvus_index_settings(
    backend: str, uri: str | None, index_type: str | None, nlist: int | None, nprobe: int | None
) -> dict[str, Any]:
    """The Milvus index settings of a new collection, checked before anything is written."""
    if backend != "milvus":
        if index_type is not None or nlist is not None or nprobe is not None:
            raise ValueError("--milvus-index, --nlist and --nprobe are only for the milvus backend")
        return {}
    index_type = index_type or "BIN_FLAT"
    if index_type not in MILVUS_INDEX_TYPES:
        raise ValueError(f"milvus index must be one of {MILVUS_INDEX_TYPES}, got {index_type!r}")
    if index_type == "BIN_FLAT" and (nlist is not None or nprobe is not None):
        raise ValueError("--nlist and --nprobe are for --milvus-index BIN_IVF_FLAT")
    if index_type == "BIN_IVF_FLAT" and not (uri and is_server_uri(uri)):
        raise ValueError(
            "BIN_IVF_FLAT needs a Milvus server (--uri http://host:19530); Milvus Lite builds "
            "only BIN_FLAT"
        )
    out: dict[str, Any] = {"index_type": index_type}
    for name, value, default in (("nlist", nlist, 1024), ("nprobe", nprobe, 16)):
        if index_type != "BIN_IVF_FLAT":
            continue
        value = default if value is None else value
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        out[name] = value
    return out


class Collection:
    """A collection folder, opened (and locked) by :meth:`create` or :meth:`open`.

    Use as a context manager, or call :meth:`close` (which compacts the log and drops the lock).
    """

    rebuild_min = 1024  # changes the delta may hold before the main index is rebuilt
    compact_bytes = 256 * 1024 * 1024  # log size that triggers a compaction

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
        self._rw = ReadWriteLock()
        self._model: Any = None
        self._log: AppendLog | None = None
        self._log_records = 0
        self._unsynced_images: list[str] = []
        self._pending_images: dict[str, bytes] = {}  # image files a full disk refused
        self._compact_retry_at = 0.0
        self._engine_stale = False  # the external engine missed writes or was unreachable
        self._view: _View
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
    ) -> Collection:
        """Make a new, empty collection in ``directory`` for the hashing model of ``run_dir`` and
        open it. ``backend``: ``mih`` (multi-index hashing), ``flat`` (exhaustive scan) or
        ``milvus`` (``uri``: a Milvus Lite file, default ``DIR/milvus.db``, or
        ``http://host:19530``). For ``milvus``: ``milvus_collection`` names the Milvus collection
        (default ``deephash_<folder name>``); ``milvus_index`` is ``BIN_FLAT`` (exact, the
        default) or ``BIN_IVF_FLAT`` (approximate, a server only) with ``nlist`` cells (default
        1024), ``nprobe`` of them searched per query (default 16; ``milvus_index.nprobe`` in
        ``collection.json`` may be changed between runs)."""
        from deephash.training.config import TrainConfig

        directory = Path(directory)
        if backend not in BACKENDS:
            raise ValueError(f"unknown collection backend {backend!r}; choose one of {BACKENDS}")
        if uri is not None and backend != "milvus":
            raise ValueError("--uri is only for the milvus backend")
        index_settings = _milvus_index_settings(backend, uri, milvus_index, nlist, nprobe)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise FileExistsError(
                f"{directory} exists and is not an empty folder; pick a new folder for the "
                "collection (or open this one)"
            )
        run = Path(run_dir).resolve()
        if not (run / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir} is not a deephash run folder (no config.yaml)")
        import yaml

        cfg = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()))
        if cfg.bits is None:
            raise ValueError(
                f"{run_dir} is a metric-learning run; a collection needs a hashing run (--bits)"
            )
        bits = int(cfg.bits)
        settings: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "run": str(run),
            "bits": bits,
            "backend": backend,
            "max_pixels": int(max_pixels),
            "created": time.time(),
        }
        if backend == "milvus":
            settings["uri"] = uri or str((directory / "milvus.db").resolve())
            name = milvus_collection or "deephash_" + "".join(
                c if c.isalnum() else "_" for c in directory.resolve().name
            )
            settings["milvus_collection"] = name
            settings["milvus_index"] = index_settings
        directory.mkdir(parents=True, exist_ok=True)
        (directory / IMAGES_DIR).mkdir(exist_ok=True)
        with FolderLock(directory / LOCK_FILE):
            snapshot = create_index("flat" if backend == "milvus" else backend, bits)
            snapshot.save(directory / SNAPSHOT_FILE)
            atomic_write_json(
                directory / (SNAPSHOT_FILE + ".run.json"),
                {"run_dir": str(run), "bits": bits, "source": "collection", "backend": backend},
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
            settings = json.loads(settings_file.read_text())
            if settings.get("format") != FORMAT or int(settings.get("version", 0)) > VERSION:
                raise ValueError(
                    f"{settings_file} is not a deephash collection file this version can read"
                )
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
        snapshot = load_index(self.directory / SNAPSHOT_FILE)
        if snapshot.bits != self.bits:
            raise ValueError(
                f"{self.directory / SNAPSHOT_FILE} holds {snapshot.bits}-bit codes but "
                f"{COLLECTION_FILE} says {self.bits}; the collection folder is inconsistent"
            )
        state = _Replay()
        meta = snapshot.metadata
        for row, item_id in enumerate(snapshot.ids.tolist()):
            state.codes[item_id] = snapshot.codes[row].tobytes()
            state.items[item_id] = _item_from(
                {"id": item_id, **{k: meta[k][row].item() for k in _META_KEYS if k in meta}}
            )
        if snapshot.ntotal:
            state.next_id = int(snapshot.ids[-1]) + 1
        log = read_log(self.directory / LOG_FILE)
        for record in log.records:
            self._replay(state, record)
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
        view = _View(ids, codes, state.items, state.next_id)
        self._view = self._sync_external(view) if self.external else self._rebuilt(view)

    def _replay(self, state: _Replay, record: dict[str, Any]) -> None:
        op = record["op"]
        if op == "begin":
            state.next_id = max(state.next_id, int(record["next_id"]))
        elif op == "add":
            for d in record["items"]:
                item_id = int(d["id"])
                state.next_id = max(state.next_id, item_id + 1)
                if item_id in state.codes:
                    continue  # already folded into the snapshot (crash inside compact)
                code = bytes.fromhex(d["code"])
                if len(code) != self.nbytes:
                    raise ValueError(f"{self.directory / LOG_FILE}: item {item_id} has a bad code")
                state.codes[item_id] = code
                state.items[item_id] = _item_from(d)
                if "image_data" in d:
                    state.images[item_id] = base64.b64decode(d["image_data"])
        elif op == "remove":
            for item_id in record["ids"]:
                state.codes.pop(int(item_id), None)
                state.items.pop(int(item_id), None)
                state.images.pop(int(item_id), None)
        else:
            raise ValueError(f"{self.directory / LOG_FILE}: unknown operation {op!r}")

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

    def _remove_orphans(self, state: _Replay) -> None:
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
        return pack_bits(sign(model.encode(x, batch_size=batch_size)))

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
        codes = self.encode(rgb)
        return self.add(
            [NewItem(codes[i], images[i], decoded[i].suffix, labels[i], paths[i]) for i in range(n)]
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
            if self.bits % 8 and np.any(codes[:, -1] >> (self.bits % 8)):
                raise ValueError(f"codes set bits beyond bit {self.bits - 1}")
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
            if self.external:
                with self._rw.write():
                    if view.main is not None:
                        main = view.main
                        self._engine_write(lambda: main.add(codes, new_ids))
                    self._view = _View(all_ids, all_codes, view.items, ids[-1] + 1, view.main)
            else:
                old = view.delta
                self._publish_local(
                    _View(
                        all_ids, all_codes, view.items, ids[-1] + 1, view.main, None, view.removed
                    ),
                    new_ids if old is None else np.concatenate([old.ids, new_ids]),
                    codes if old is None else np.concatenate([old.codes, codes]),
                )
            self._maybe_compact()
        return ids

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
            if self.external:
                with self._rw.write():
                    if view.main is not None:
                        main = view.main
                        self._engine_write(lambda: main.remove_ids(gone))
                    self._view = _View(live_ids, live_codes, view.items, view.next_id, view.main)
            else:
                delta_ids = np.zeros(0, np.int64) if view.delta is None else view.delta.ids
                delta_codes = (
                    np.zeros((0, self.nbytes), np.uint8) if view.delta is None else view.delta.codes
                )
                in_delta = np.isin(delta_ids, gone)
                from_main = set(wanted) - set(delta_ids[in_delta].tolist())
                self._publish_local(
                    _View(
                        live_ids,
                        live_codes,
                        view.items,
                        view.next_id,
                        view.main,
                        None,
                        view.removed | from_main,
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

    def _publish_local(self, view: _View, delta_ids: np.ndarray, delta_codes: np.ndarray) -> None:
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
        self._view = _View(
            view.ids, view.codes, view.items, view.next_id, view.main, delta, view.removed
        )

    def _rebuilt(self, view: _View) -> _View:
        """The view with a fresh local ``main`` index over every item, ready to search."""
        if not len(view.ids):
            return _View(view.ids, view.codes, view.items, view.next_id)
        index = create_index(self.backend, self.bits)
        index.add(view.codes, view.ids)
        with self._kernel_lock:
            index.search(view.codes[:1], 1)  # builds lazy structures (MIH tables) now
        return _View(view.ids, view.codes, view.items, view.next_id, index)

    def _sync_external(self, view: _View) -> _View:
        """Connect to the external engine and make it hold exactly the collection's items.

        The engine may differ from the folder after a crash (an insert logged but not yet sent, a
        removal not yet applied there). Ids are never reused, so an id means one code: the sync
        removes the engine's ids the collection lacks and adds the missing ones. An engine that
        cannot list its ids is cleared of every id below ``next_id`` and refilled.
        """
        if self.read_only:  # a reader (``collection info``) does not touch the engine
            return view
        name = f"milvus:{self.settings['uri']}"
        index = create_index(
            name,
            self.bits,
            collection=self.settings["milvus_collection"],
            **self.settings.get("milvus_index", {}),
        )
        self._resync_engine(index, view)
        return _View(view.ids, view.codes, view.items, view.next_id, index)

    def _resync_engine(self, index: BinaryIndex, view: _View) -> None:
        """Make the engine hold exactly the items of ``view`` (see :meth:`_sync_external`)."""
        try:
            held = np.asarray(index.ids, dtype=np.int64) if index.ntotal else np.zeros(0, np.int64)
            listed = held.ndim == 1 and len(held) == index.ntotal
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            listed = False
        if listed:
            stale = np.setdiff1d(held, view.ids)
            if len(stale):
                index.remove_ids(stale)
            missing = ~np.isin(view.ids, held)
        else:
            if index.ntotal:
                index.remove_ids(np.arange(view.next_id, dtype=np.int64))
            missing = np.ones(len(view.ids), dtype=bool)
        ids, codes = view.ids[missing], view.codes[missing]
        for start in range(0, len(ids), 10_000):
            index.add(codes[start : start + 10_000], ids[start : start + 10_000])

    def _recover_engine(self) -> None:
        """Re-sync a stale external engine with the collection (writes made while it was
        unreachable went to the log only); :class:`EngineUnavailableError` while it is still
        down."""
        with self._write_lock:
            if not self._engine_stale:
                return
            view = self._view
            if view.main is not None:
                with self._rw.write():
                    self._resync_engine(view.main, view)
            self._engine_stale = False
            _log.warning("%s: the search engine is back and re-synced", self.directory)

    def _engine_write(self, write: Callable[[], object]) -> None:
        """Apply a change (already durable in the log) to the external engine; if that fails the
        engine is marked stale and re-synced before the next search, and the change stands."""
        if self._engine_stale:
            return
        try:
            write()
        except Exception as exc:  # any failure: the log has it, the re-sync will apply it
            self._engine_stale = True
            _log.warning(
                "%s: the search engine missed a change (%s: %s); it is re-synced from the "
                "collection before the next search",
                self.directory,
                type(exc).__name__,
                exc,
            )

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
        snapshot = create_index("flat" if self.external else self.backend, self.bits)
        if len(view.ids):
            items = [view.items[i] for i in view.ids.tolist()]
            snapshot.add(
                view.codes,
                view.ids,
                metadata={
                    "label": [it.label or "" for it in items],
                    "path": [it.path or "" for it in items],
                    "image": [it.image or "" for it in items],
                    "added": np.array([it.added for it in items], dtype=np.float64),
                },
            )
        # the image files whose bytes only the log holds go to disk before the log is dropped
        for name, data in list(self._pending_images.items()):
            self._write_image(name, data)
            del self._pending_images[name]
        fsync_files(self.directory / IMAGES_DIR, self._unsynced_images)
        self._unsynced_images = []
        snapshot.save(self.directory / SNAPSHOT_FILE)
        fsync_dir(self.directory)
        # A crash here replays the old log over the new snapshot: idempotent by id. The new log
        # replaces the old one by rename before the old one is closed, so a failure to write it
        # (disk full) leaves the old log open and in use.
        write_new_log(self.directory / LOG_FILE, {"op": "begin", "next_id": view.next_id})
        self._log.close()
        self._log = AppendLog(self.directory / LOG_FILE, (self.directory / LOG_FILE).stat().st_size)
        self._log_records = 0
        # drop the metadata of removed items (readers of older views keep the old mapping)
        live = {i: view.items[i] for i in view.ids.tolist()}
        self._view = _View(
            view.ids, view.codes, live, view.next_id, view.main, view.delta, view.removed
        )

    # ------------------------------------------------------------------ search
    def search(self, queries: np.ndarray, k: int, radius: int | None = None) -> list[list[Hit]]:
        """The k nearest items of each query by Hamming distance, ties by the smaller id.

        queries: uint8 (nq, ceil(bits / 8)). With ``radius``, only items at distance <= radius
        (still at most k). Returns one list of hits per query, nearest first.
        """
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.dtype != np.uint8 or q.ndim != 2 or q.shape[1] != self.nbytes:
            raise ValueError(
                f"queries must be packed uint8 codes of shape (n, {self.nbytes}) for "
                f"{self.bits}-bit codes, got {q.dtype} {q.shape}"
            )
        if self.bits % 8 and np.any(q[:, -1] >> (self.bits % 8)):
            raise ValueError(f"query codes set bits beyond bit {self.bits - 1}")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if radius is not None and radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        if self.external:
            if self._engine_stale:
                self._recover_engine()
            try:
                with self._rw.read():
                    view = self._view
                    return self._search_view(view, q, k, radius)
            except EngineUnavailableError:
                # it may have lost or missed writes while down: re-sync before trusting it again
                self._engine_stale = True
                raise
        return self._search_view(self._view, q, k, radius)

    def _search_view(
        self, view: _View, q: np.ndarray, k: int, radius: int | None
    ) -> list[list[Hit]]:
        if not len(view.ids) or not len(q):
            return [[] for _ in range(len(q))]
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        if self.external:
            if view.main is not None:
                parts.append(view.main.search(q, min(k, len(view.ids))))
        else:
            with self._kernel_lock:
                if view.main is not None and view.main.ntotal:
                    # removed ids may take places in main's answer: ask for that many more
                    parts.append(view.main.search(q, min(k + len(view.removed), view.main.ntotal)))
                if view.delta is not None:
                    parts.append(view.delta.search(q, min(k, view.delta.ntotal)))
        if not parts:
            return [[] for _ in range(len(q))]
        dist = np.concatenate([d for d, _ in parts], axis=1)
        ids = np.concatenate([i for _, i in parts], axis=1)
        removed = np.fromiter(view.removed, np.int64, len(view.removed))
        out = []
        for d_row, i_row in zip(dist, ids):
            ok = i_row >= 0
            if radius is not None:
                ok &= d_row <= radius
            if len(removed):
                ok &= ~np.isin(i_row, removed)
            d_row, i_row = d_row[ok], i_row[ok]
            order = np.lexsort((i_row, d_row))[:k]  # by distance, ties by the smaller id
            out.append(
                [
                    Hit(int(i), int(d), view.items[int(i)])
                    for d, i in zip(d_row[order], i_row[order])
                ]
            )
        return out

    def search_by_id(self, item_id: int, k: int, radius: int | None = None) -> list[Hit]:
        """Search with a stored item's code; ``KeyError`` for an unknown id."""
        return self.search(self.code_of(item_id)[None, :], k, radius)[0]

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
            **({"uri": self.settings["uri"]} if self.external else {}),
        }

    def close(self) -> None:
        """Compact the log (a faster next start), close it and release the lock."""
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
