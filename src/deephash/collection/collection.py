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
immutable :class:`View` (ids, codes, the index structures) and publishes it with one reference
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
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
import warnings
from collections.abc import Sequence
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
from deephash.collection.items import Hit, Item, NewItem, item_from_json
from deephash.collection.lock import FolderLock
from deephash.collection.log import AppendLog, read_log, write_new_log
from deephash.collection.replay import ReplayState, replay_record
from deephash.collection.view import View, search_view
from deephash.index import create_index, load_index

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
        max_pixels: int = DEFAULT_MAX_PIXELS,
        device: str = "auto",
        load_model: bool = False,
    ) -> Collection:
        """Make a new, empty collection in ``directory`` for the hashing model of ``run_dir`` and
        open it. ``backend``: ``mih`` (multi-index hashing), ``flat`` (exhaustive scan) or
        ``milvus`` (``uri``: a Milvus Lite file, default ``DIR/milvus.db``, or
        ``http://host:19530``)."""
        from deephash.training.config import TrainConfig

        directory = Path(directory)
        if backend not in BACKENDS:
            raise ValueError(f"unknown collection backend {backend!r}; choose one of {BACKENDS}")
        if uri is not None and backend != "milvus":
            raise ValueError("--uri is only for the milvus backend")
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
        state = ReplayState()
        meta = snapshot.metadata
        for row, item_id in enumerate(snapshot.ids.tolist()):
            state.codes[item_id] = snapshot.codes[row].tobytes()
            state.items[item_id] = item_from_json(
                {"id": item_id, **{k: meta[k][row].item() for k in _META_KEYS if k in meta}}
            )
        if snapshot.ntotal:
            state.next_id = int(snapshot.ids[-1]) + 1
        log = read_log(self.directory / LOG_FILE)
        for record in log.records:
            replay_record(state, record, self.nbytes, self.directory / LOG_FILE)
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
        view = View(ids, codes, state.items, state.next_id)
        self._view = self._sync_external(view) if self.external else self._rebuilt(view)

    def _write_image(self, name: str, data: bytes) -> None:
        """Write an image file (not fsynced: its bytes are in the log until the next compaction,
        which fsyncs it before the log is dropped)."""
        with open(self.directory / IMAGES_DIR / name, "wb") as f:
            f.write(data)
        self._unsynced_images.append(name)

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
                    self._write_image(str(items[item_id].image), n.image_bytes)
            view.items.update(items)  # not yet reachable: no published view holds these ids
            new_ids = np.asarray(ids, dtype=np.int64)
            all_ids = np.concatenate([view.ids, new_ids])
            all_codes = np.concatenate([view.codes, codes])
            if self.external:
                with self._rw.write():
                    if view.main is not None:
                        view.main.add(codes, new_ids)
                    self._view = View(all_ids, all_codes, view.items, ids[-1] + 1, view.main)
            else:
                old = view.delta
                self._publish_local(
                    View(
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
                        view.main.remove_ids(gone)
                    self._view = View(live_ids, live_codes, view.items, view.next_id, view.main)
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
                    ),
                    delta_ids[~in_delta],
                    delta_codes[~in_delta],
                )
            # after publishing: a crash before this leaves orphans, removed on open
            for i in wanted:
                image = view.items[i].image
                if image is not None:
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
        self._view = View(
            view.ids, view.codes, view.items, view.next_id, view.main, delta, view.removed
        )

    def _rebuilt(self, view: View) -> View:
        """The view with a fresh local ``main`` index over every item, ready to search."""
        if not len(view.ids):
            return View(view.ids, view.codes, view.items, view.next_id)
        index = create_index(self.backend, self.bits)
        index.add(view.codes, view.ids)
        with self._kernel_lock:
            index.search(view.codes[:1], 1)  # builds lazy structures (MIH tables) now
        return View(view.ids, view.codes, view.items, view.next_id, index)

    def _sync_external(self, view: View) -> View:
        """Connect to the external engine and make it hold exactly the collection's items.

        The engine may differ from the folder after a crash (an insert logged but not yet sent, a
        removal not yet applied there). Ids are never reused, so an id means one code: the sync
        removes the engine's ids the collection lacks and adds the missing ones. An engine that
        cannot list its ids is cleared of every id below ``next_id`` and refilled.
        """
        if self.read_only:  # a reader (``collection info``) does not touch the engine
            return view
        name = f"milvus:{self.settings['uri']}"
        index = create_index(name, self.bits, collection=self.settings["milvus_collection"])
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
        return View(view.ids, view.codes, view.items, view.next_id, index)

    def _maybe_compact(self) -> None:
        assert self._log is not None
        if self._log_records > self.compact_every or self._log.size > self.compact_bytes:
            self._compact_locked()

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
        fsync_files(self.directory / IMAGES_DIR, self._unsynced_images)
        self._unsynced_images = []
        snapshot.save(self.directory / SNAPSHOT_FILE)
        fsync_dir(self.directory)
        # A crash here replays the old log over the new snapshot: idempotent by id.
        self._log.close()
        write_new_log(self.directory / LOG_FILE, {"op": "begin", "next_id": view.next_id})
        self._log = AppendLog(self.directory / LOG_FILE, (self.directory / LOG_FILE).stat().st_size)
        self._log_records = 0
        # drop the metadata of removed items (readers of older views keep the old mapping)
        live = {i: view.items[i] for i in view.ids.tolist()}
        self._view = View(
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
            with self._rw.read():
                view = self._view
                return self._search_view(view, q, k, radius)
        return self._search_view(self._view, q, k, radius)

    def _search_view(
        self, view: View, q: np.ndarray, k: int, radius: int | None
    ) -> list[list[Hit]]:
        return search_view(
            view, q, k, radius, external=self.external, kernel_lock=self._kernel_lock
        )

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
