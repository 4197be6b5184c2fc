"""The Protocol type: fixed train / validation / query / database index sets into a dataset's
pool, checked on creation and on load, saved as JSON.

Rules every protocol obeys (:meth:`Protocol.validate`): query is disjoint from train, validation
and database (leave-one-out protocols: query is the database); train and validation are
disjoint. :func:`deephash.data.protocol_builder.create_protocol` builds one from a named spec.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMAT", "SPLITS", "VERSION", "Protocol", "labels_digest"]

FORMAT = "deephash-protocol"
VERSION = 1
SPLITS = ("train", "validation", "query", "database")


def labels_digest(labels: np.ndarray) -> str:
    """Short SHA-256 of a pool's labels, to tell whether a saved protocol fits a dataset copy."""
    return hashlib.sha256(np.ascontiguousarray(labels, dtype="<i8").tobytes()).hexdigest()[:16]


@dataclass
class Protocol:
    """Fixed index sets (int64, sorted) into a dataset pool of ``pool_size`` images."""

    name: str
    dataset: str
    seed: int
    pool_size: int
    num_classes: int
    train: np.ndarray
    validation: np.ndarray
    query: np.ndarray
    database: np.ndarray
    labels_digest: str
    options: dict[str, Any] = field(default_factory=dict)
    train_classes: list[int] | None = None
    test_classes: list[int] | None = None
    validation_classes: list[int] | None = None

    def __post_init__(self) -> None:
        for split in SPLITS:
            setattr(self, split, np.asarray(getattr(self, split), dtype=np.int64))
        self.validate()

    @property
    def leave_one_out(self) -> bool:
        """Query and database are the same images; each query is left out of its own ranking."""
        return self.options.get("retrieval", "split") == "leave-one-out"

    @property
    def class_disjoint_validation(self) -> bool:
        """Validation holds training classes out of the gradient steps (``validation_classes``)
        and validates leave-one-out among their images."""
        return self.validation_classes is not None

    @property
    def val_database(self) -> np.ndarray:
        """What validation queries retrieve against: the train split, or, for class-disjoint
        validation, the validation images themselves (leave-one-out)."""
        return self.validation if self.class_disjoint_validation else self.train

    @property
    def sizes(self) -> dict[str, int]:
        """Number of images in each split."""
        return {s: int(getattr(self, s).size) for s in SPLITS}

    def validate(self) -> None:
        """Check ranges, uniqueness and the disjointness rules; ValueError naming the problem."""
        for split in SPLITS:
            idx = getattr(self, split)
            if idx.ndim != 1:
                raise ValueError(f"protocol {self.name!r}: {split} indices must be 1-D")
            if idx.size and (idx.min() < 0 or idx.max() >= self.pool_size):
                raise ValueError(
                    f"protocol {self.name!r}: {split} indices outside [0, {self.pool_size})"
                )
            if np.unique(idx).size != idx.size:
                raise ValueError(f"protocol {self.name!r}: {split} indices repeat")
        for split in ("train", "query", "database"):
            if getattr(self, split).size == 0:
                raise ValueError(f"protocol {self.name!r}: the {split} split is empty")
        pairs = [("query", "train"), ("query", "validation"), ("train", "validation")]
        if self.leave_one_out:
            if not np.array_equal(self.query, self.database):
                raise ValueError(
                    f"protocol {self.name!r}: leave-one-out retrieval needs query and database to "
                    "be the same images"
                )
        else:
            pairs.append(("query", "database"))
        for a, b in pairs:
            common = np.intersect1d(getattr(self, a), getattr(self, b))
            if common.size:
                raise ValueError(
                    f"protocol {self.name!r}: {a} and {b} share {common.size} images (e.g. {common[0]})"
                )
        if (self.train_classes is None) != (self.test_classes is None):
            raise ValueError(
                f"protocol {self.name!r}: give both train_classes and test_classes or neither"
            )
        if self.train_classes is not None and set(self.train_classes) & set(
            self.test_classes or []
        ):
            raise ValueError(f"protocol {self.name!r}: train_classes and test_classes overlap")
        if self.validation_classes is not None and (
            self.train_classes is None
            or not set(self.validation_classes) <= set(self.train_classes)
        ):
            raise ValueError(
                f"protocol {self.name!r}: validation_classes must be a subset of train_classes"
            )

    def check_labels(self, labels: np.ndarray) -> None:
        """Check that this protocol was made for a pool with exactly these labels (int (pool_size,))."""
        labels = np.asarray(labels)
        if labels.shape != (self.pool_size,):
            raise ValueError(
                f"protocol {self.name!r} is for a pool of {self.pool_size} images, but the dataset has {labels.shape[0]}"
            )
        if labels_digest(labels) != self.labels_digest:
            raise ValueError(
                f"protocol {self.name!r} was made for a different copy or ordering of {self.dataset!r} (labels differ)"
            )
        if self.train_classes is not None:
            for split, allowed in (
                ("train", self.train_classes),
                ("validation", self.train_classes),
                ("query", self.test_classes),
                ("database", self.test_classes),
            ):
                bad = np.setdiff1d(labels[getattr(self, split)], np.asarray(allowed))
                if bad.size:
                    raise ValueError(
                        f"protocol {self.name!r}: {split} holds classes {bad.tolist()} outside its class set"
                    )
        if self.validation_classes is not None:
            held_out = np.asarray(self.validation_classes)
            outside = np.setdiff1d(labels[self.validation], held_out)
            inside = np.intersect1d(labels[self.train], held_out)
            if outside.size or inside.size:
                raise ValueError(
                    f"protocol {self.name!r}: class-disjoint validation is broken (validation "
                    f"holds classes {outside.tolist()} outside validation_classes, train holds "
                    f"held-out classes {inside.tolist()})"
                )

    def check_model_selection(self, labels: np.ndarray) -> None:
        """Refuse (ValueError saying why and what to do) a protocol on which choosing a model by
        its validation score would leak the test classes or select for the wrong retrieval task.

        labels: int (pool_size,) the pool's labels. With S the classes of train + validation and T
        those of query + database, the rule is:

        * T within S (the standard protocols): the test classes are the training classes, and
          validation images are held out of training; nothing to refuse.
        * T and S disjoint, or test classes declared (``class_disjoint``, the ``*-unseen``
          protocols): an unseen-class protocol. No test class may appear in train or validation;
          validation must hold out whole training classes (at least 2) from the gradient steps
          and retrieve among them (``validation_folds``), so that it measures retrieval of classes
          the model did not train on, as the test does.
        * Otherwise (some test classes seen in training, some not): refused, neither protocol.
        """
        labels = np.asarray(labels)
        self.check_labels(labels)
        seen = set(labels[np.concatenate([self.train, self.validation])].tolist())
        tested = set(labels[np.concatenate([self.query, self.database])].tolist())
        declared = set(self.test_classes) if self.test_classes is not None else None
        if declared is None and tested <= seen:
            return
        leaked = sorted(seen & (declared if declared is not None else tested))
        if leaked:
            raise ValueError(
                f"protocol {self.name!r}: test classes {leaked} appear in the training or "
                "validation images, so validation scores would select with test classes in view; "
                "use an unseen-class protocol (e.g. fashion-mnist-unseen) or class_disjoint=true "
                "with train_classes, whose test classes are never trained or validated on"
            )
        val_classes = set(labels[self.validation].tolist())
        trained = set(labels[self.train].tolist())
        if not self.class_disjoint_validation or val_classes & trained or len(val_classes) < 2:
            raise ValueError(
                f"protocol {self.name!r} tests on classes never seen in training, but its "
                f"validation classes {sorted(val_classes)} are not held out of training (trained "
                f"on {sorted(trained)}), so tuning would select for seen-class retrieval; set "
                "protocol_options.validation_folds (e.g. 4, or 2 for 5 training classes) instead "
                "of validation_size / _per_class / _fraction"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (format tag, version, metadata, sizes and index lists)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "dataset": self.dataset,
            "seed": self.seed,
            "pool_size": self.pool_size,
            "num_classes": self.num_classes,
            "labels_digest": self.labels_digest,
            "options": self.options,
            "train_classes": self.train_classes,
            "test_classes": self.test_classes,
            "validation_classes": self.validation_classes,
            "sizes": self.sizes,
            "splits": {s: getattr(self, s).tolist() for s in SPLITS},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "protocol") -> Protocol:
        """Inverse of :meth:`to_dict`, with validation of the format, sizes and indices."""
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{source}: not a deephash protocol file (missing format {FORMAT!r})")
        if d.get("version") != VERSION:
            raise ValueError(
                f"{source}: unsupported protocol version {d.get('version')!r} (expected {VERSION})"
            )
        keys = (
            "name",
            "dataset",
            "seed",
            "pool_size",
            "num_classes",
            "labels_digest",
            "splits",
            "sizes",
        )
        missing = [k for k in keys if k not in d]
        if missing:
            raise ValueError(f"{source}: missing fields {missing}")
        splits = d["splits"]
        for s in SPLITS:
            if s not in splits:
                raise ValueError(f"{source}: missing split {s!r}")
            if len(splits[s]) != d["sizes"].get(s):
                raise ValueError(
                    f"{source}: split {s!r} has {len(splits[s])} indices but sizes says {d['sizes'].get(s)}"
                )
            if not all(isinstance(i, int) and not isinstance(i, bool) for i in splits[s]):
                raise ValueError(f"{source}: split {s!r} must hold integers")
        try:
            return cls(
                name=str(d["name"]),
                dataset=str(d["dataset"]),
                seed=int(d["seed"]),
                pool_size=int(d["pool_size"]),
                num_classes=int(d["num_classes"]),
                labels_digest=str(d["labels_digest"]),
                options=dict(d.get("options") or {}),
                train_classes=d.get("train_classes"),
                test_classes=d.get("test_classes"),
                validation_classes=d.get("validation_classes"),
                **{s: np.asarray(splits[s], dtype=np.int64).reshape(-1) for s in SPLITS},
            )
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from exc

    def save(self, path: str | Path) -> Path:
        """Write the protocol as JSON (parent folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), separators=(",", ":")) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Protocol:
        """Read and validate a protocol JSON file written by :meth:`save`."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from exc
        return cls.from_dict(d, str(path))
