"""Named, seeded retrieval protocols: fixed train / validation / query / database index sets.

Indices point into a dataset's pool (official train images first, then test; see
:func:`deephash.data.datasets.load_dataset`). Rules every protocol obeys (checked on load):
query is disjoint from train, validation and database; train and validation are disjoint. The
validation split is for model selection only: validation queries retrieve against the train split
(``val_database``), never against the test query set.

Two shapes:

* ``official`` (mnist, fashion-mnist, kmnist, cifar10-s2, cifar100, cub200, dogs): query = the
  official test images, database = the official training images, validation = a stratified slice
  of the training images, train = the training images minus validation. For cub200 and dogs this is
  the usual fine-grained hashing setup (training set as database, test set as queries).
* ``sampled`` (cifar10-s1, folder): query = a stratified sample of the whole pool; train = a
  stratified sample of the rest (or all of it); database = every non-query image (including train,
  the usual CIFAR-10 "setting 1": 1,000 / 5,000 / 59,000; ``database_includes_train=False`` gives the
  54,000-image variant). When train is a sample, validation comes from the non-train rest, so train
  keeps its conventional size.

``class_disjoint=True`` trains (and validates) on ``train_classes`` (a count drawn with the seed, a
list of class ids; default 75% of the classes, as in Sablayrolles et al., "How should we evaluate
supervised hashing?", ICASSP 2017) and puts query and database on the other classes only. With it:

* ``retrieval="leave-one-out"``: the metric-learning shape, every image of the test classes queries
  all the others (query = database = the query and database images of the split shape; the
  evaluation leaves each query out of its own ranking).
* ``validation_folds=k`` (``validation_fold=i``): class-disjoint validation, as in Musgrave,
  Belongie & Lim, "A Metric Learning Reality Check" (ECCV 2020): the training classes are split
  into k seeded folds of consecutive sizes (smaller folds first) and fold i is held out of the
  gradient steps; its images are the validation set, which validates leave-one-out (validation
  queries retrieve the other held-out images, ``val_database`` = validation). This measures what the
  test measures: retrieval among classes the model did not train on.
* ``train_images``: which official split's images of the training classes are trained on,
  ``train`` (the standard protocols' training images) or ``all`` (both splits, the metric-learning
  convention for CUB-200-2011 and Stanford Dogs).

The named unseen-class protocols (``fashion-mnist-unseen``, ``cifar10-unseen``,
``cifar100-unseen``, ``cub200-unseen``, ``dogs-unseen``) are these options with fixed training
classes (the first half), so their test classes never depend on the seed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Protocol",
    "ProtocolSpec",
    "create_protocol",
    "default_protocol",
    "labels_digest",
    "list_protocols",
    "protocol_spec",
]

FORMAT = "deephash-protocol"
VERSION = 1
SPLITS = ("train", "validation", "query", "database")


@dataclass(frozen=True)
class ProtocolSpec:
    """A named protocol: its dataset, shape (``official`` or ``sampled``) and default options."""

    name: str
    dataset: str
    kind: str
    defaults: dict[str, Any]
    description: str


_COMMON = {
    "class_disjoint": False,
    "train_classes": None,
    "retrieval": "split",
    "validation_folds": None,
    "validation_fold": 0,
    "train_images": "train",
}
RETRIEVAL_SHAPES = ("split", "leave-one-out")
TRAIN_IMAGES = ("train", "all")


def _unseen(
    name: str, dataset: str, train_classes: int, folds: int, train_images: str, what: str
) -> ProtocolSpec:
    return ProtocolSpec(
        name,
        dataset,
        "official",
        {
            "class_disjoint": True,
            "train_classes": list(range(train_classes)),
            "validation_folds": folds,
            "train_images": train_images,
        },
        what,
    )


_SPECS: dict[str, ProtocolSpec] = {
    s.name: s
    for s in (
        ProtocolSpec(
            "mnist",
            "mnist",
            "official",
            {"validation_size": 5000},
            "query 10k test, database 60k train, 5k stratified validation",
        ),
        ProtocolSpec(
            "fashion-mnist",
            "fashion-mnist",
            "official",
            {"validation_size": 5000},
            "query 10k test, database 60k train, 5k stratified validation",
        ),
        ProtocolSpec(
            "kmnist",
            "kmnist",
            "official",
            {"validation_size": 5000},
            "query 10k test, database 60k train, 5k stratified validation",
        ),
        ProtocolSpec(
            "cifar10-s1",
            "cifar10",
            "sampled",
            {
                "query_per_class": 100,
                "train_per_class": 500,
                "validation_per_class": 100,
                "database_includes_train": True,
            },
            "pool 60k: query 1k (100/class), train 5k (500/class), database the other 59k",
        ),
        ProtocolSpec(
            "cifar10-s2",
            "cifar10",
            "official",
            {"validation_size": 5000},
            "query 10k test, database = train 50k, 5k validation",
        ),
        ProtocolSpec(
            "cifar100",
            "cifar100",
            "official",
            {"validation_size": 5000},
            "query 10k test, database = train 50k, 5k validation",
        ),
        ProtocolSpec(
            "cub200",
            "cub200",
            "official",
            {"validation_fraction": 0.1},
            "query 5,794 test, database 5,994 train, 10% validation",
        ),
        ProtocolSpec(
            "dogs",
            "dogs",
            "official",
            {"validation_fraction": 0.1},
            "query 8,580 test, database 12,000 train, 10% validation",
        ),
        ProtocolSpec(
            "folder",
            "folder",
            "sampled",
            {
                "root": None,
                "query_fraction": 0.1,
                "validation_fraction": 0.1,
                "database_includes_train": True,
            },
            "image folder: 10% query per class, 10% of the rest validation, database = all non-query",
        ),
        _unseen(
            "fashion-mnist-unseen",
            "fashion-mnist",
            5,
            2,
            "train",
            "train on classes 0-4 (train images); query = test images of 5-9, database = train "
            "images of 5-9; validation: 2 held-out training classes",
        ),
        _unseen(
            "cifar10-unseen",
            "cifar10",
            5,
            2,
            "train",
            "train on classes 0-4 (train images); query = test images of 5-9, database = train "
            "images of 5-9; validation: 2 held-out training classes",
        ),
        _unseen(
            "cifar100-unseen",
            "cifar100",
            50,
            4,
            "train",
            "train on classes 0-49 (train images); query = test images of 50-99, database = "
            "train images of 50-99; validation: a fold of 12 held-out training classes",
        ),
        _unseen(
            "cub200-unseen",
            "cub200",
            100,
            4,
            "all",
            "train on all images of classes 1-100; query = official test images of 101-200, "
            "database = official train images of 101-200; validation: 25 held-out classes",
        ),
        _unseen(
            "dogs-unseen",
            "dogs",
            60,
            4,
            "all",
            "train on all images of the first 60 breeds; query = official test images of the "
            "other 60, database = their official train images; validation: 15 held-out breeds",
        ),
    )
}

_AMOUNT_KEYS = ("size", "per_class", "fraction")


def list_protocols() -> list[str]:
    """Registered protocol names, sorted."""
    return sorted(_SPECS)


_ALIASES = {"cifar10": "cifar10-s1", "cifar-10": "cifar10-s1", "fmnist": "fashion-mnist"}


def default_protocol(name: str) -> str:
    """A dataset name stands for its standard protocol (``cifar10`` -> ``cifar10-s1``); protocol
    names and frozen-split files (``.json``) pass through."""
    if name in _SPECS or name.endswith(".json"):
        return name
    return _ALIASES.get(name, name)


def protocol_spec(name: str) -> ProtocolSpec:
    """The spec of protocol ``name``; ValueError listing the known names otherwise."""
    if name not in _SPECS:
        raise ValueError(
            f"unknown protocol {name!r}; known protocols: {', '.join(list_protocols())}"
        )
    return _SPECS[name]


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


def _merge_options(spec: ProtocolSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    opts = {**_COMMON, **spec.defaults}
    valid = set(opts) | {f"{p}_{k}" for p in ("query", "train", "validation") for k in _AMOUNT_KEYS}
    if spec.kind == "official":
        valid -= {f"{p}_{k}" for p in ("query", "train") for k in _AMOUNT_KEYS}
    else:
        valid.add("database_includes_train")
        valid.discard("train_images")
        opts.pop("train_images", None)
    unknown = sorted(set(overrides) - valid)
    if unknown:
        raise ValueError(
            f"protocol {spec.name!r}: unknown options {unknown}; valid options: {sorted(valid)}"
        )
    for prefix, forms in (
        ("query", _AMOUNT_KEYS),
        ("train", _AMOUNT_KEYS),
        ("validation", (*_AMOUNT_KEYS, "folds")),
    ):  # an override of one amount form (class folds for validation) replaces the default form
        if any(overrides.get(f"{prefix}_{k}") is not None for k in forms):
            for k in forms:
                opts.pop(f"{prefix}_{k}", None)
    opts.update(overrides)
    for key, allowed in (("retrieval", RETRIEVAL_SHAPES), ("train_images", TRAIN_IMAGES)):
        if key in opts and opts[key] not in allowed:
            raise ValueError(
                f"protocol {spec.name!r}: {key} must be one of {list(allowed)}, got {opts[key]!r}"
            )
    if not opts["class_disjoint"]:
        needs = [
            k
            for k, default in (("retrieval", "split"), ("validation_folds", None))
            if opts.get(k) != default
        ]
        if opts.get("train_images", "train") != "train":
            needs.append("train_images")
        if needs:
            raise ValueError(
                f"protocol {spec.name!r}: {', '.join(needs)} only apply to an unseen-class "
                "protocol; set class_disjoint=true (or use one of the *-unseen protocols)"
            )
    return opts


def _amount(opts: dict[str, Any], prefix: str) -> tuple[str, float] | None:
    given = [
        (k, opts[f"{prefix}_{k}"]) for k in _AMOUNT_KEYS if opts.get(f"{prefix}_{k}") is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"give only one of {[f'{prefix}_{k}' for k in _AMOUNT_KEYS]}, got {dict(given)}"
        )
    return given[0] if given else None


def _stratified(
    cands: np.ndarray,
    labels: np.ndarray,
    amount: tuple[str, float] | None,
    rng: np.random.Generator,
    what: str,
) -> np.ndarray:
    """A class-stratified random subset of ``cands`` (sorted int64)."""
    if amount is None:
        return np.empty(0, np.int64)
    kind, value = amount
    cl = labels[cands]
    classes, counts = np.unique(cl, return_counts=True)
    if kind == "per_class":
        k = int(value)
        if k < 0:
            raise ValueError(f"{what}_per_class must be >= 0, got {value}")
        short = classes[counts < k]
        if short.size:
            raise ValueError(
                f"{what}_per_class={k}, but class {short[0]} has only {counts[classes == short[0]][0]} candidate images"
            )
        take = np.full(classes.size, k)
    else:
        if kind == "fraction":
            if not 0 <= float(value) < 1:
                raise ValueError(f"{what}_fraction must be in [0, 1), got {value}")
            total = round(float(value) * cands.size)
        else:
            total = int(value)
        if not 0 <= total <= cands.size:
            raise ValueError(f"{what}_size must be in [0, {cands.size}] here, got {value}")
        # Largest-remainder (Hamilton) allocation, proportional to class sizes; ties by class id.
        quota = total * counts / cands.size
        take = np.floor(quota).astype(np.int64)
        order = np.argsort(-(quota - take), kind="stable")
        take[order[: total - int(take.sum())]] += 1
    picked = [
        rng.choice(cands[cl == c], size=int(n), replace=False) for c, n in zip(classes, take) if n
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.empty(0, np.int64)


def _train_classes(
    opts: dict[str, Any], classes: np.ndarray, rng: np.random.Generator
) -> list[int]:
    tc = opts.get("train_classes")
    if tc is None:
        tc = round(0.75 * classes.size)
    if isinstance(tc, int):
        if not 1 <= tc < classes.size:
            raise ValueError(
                f"train_classes must be in [1, {classes.size - 1}] to leave test classes, got {tc}"
            )
        return sorted(int(c) for c in rng.choice(classes, size=tc, replace=False))
    chosen = sorted({int(c) for c in tc})
    bad = sorted(set(chosen) - set(classes.tolist()))
    if bad or not 1 <= len(chosen) < classes.size:
        raise ValueError(
            f"train_classes must be a proper non-empty subset of the classes {classes.min()}..{classes.max()}; got {tc}"
        )
    return chosen


def _validation_fold(
    train_classes: list[int], folds: Any, fold: Any, rng: np.random.Generator
) -> list[int]:
    """The training classes of fold ``fold`` of ``folds`` (seeded, class-disjoint, sizes as equal
    as possible with the smaller folds first), sorted."""
    n = len(train_classes)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"validation_folds must be an integer >= 2, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(f"validation_fold must be in 0..{folds - 1}, got {fold!r}")
    sizes = [n // folds + (1 if i >= folds - n % folds else 0) for i in range(folds)]
    start = sum(sizes[:fold])
    if sizes[fold] < 2 or n - sizes[fold] < 2:
        raise ValueError(
            f"validation fold {fold} of {folds} would hold {sizes[fold]} of the {n} training "
            "classes; class-disjoint validation needs at least 2 held-out classes (retrieval "
            "within one class is trivial) and at least 2 left to train on: change "
            "validation_folds or train_classes"
        )
    order = rng.permutation(np.asarray(train_classes, dtype=np.int64))
    return sorted(int(c) for c in order[start : start + sizes[fold]])


def create_protocol(
    name: str,
    seed: int = 0,
    *,
    labels: np.ndarray | None = None,
    is_test: np.ndarray | None = None,
    data_dir: str | Path | None = None,
    download: bool = False,
    **options: Any,
) -> Protocol:
    """Build protocol ``name`` with ``seed`` (same inputs -> same indices).

    labels, is_test: int (N,) labels and bool (N,) official-test mask of the dataset pool; when
        omitted they are read from the dataset (found via ``data_dir``, fetched if ``download``).
    options: override the spec's defaults: ``validation_size`` / ``validation_per_class`` /
        ``validation_fraction``, for sampled protocols also ``query_*``, ``train_*`` and
        ``database_includes_train``; ``class_disjoint`` and ``train_classes``, and with them
        ``retrieval``, ``validation_folds`` / ``validation_fold`` and ``train_images`` (see the
        module docstring); ``root`` for folder.
    """
    spec = protocol_spec(name)
    opts = _merge_options(spec, options)
    if spec.name == "folder":
        if opts.get("root") is None and data_dir is not None:
            opts["root"] = str(data_dir)
        if opts.get("root") is not None:
            opts["root"] = str(Path(opts["root"]).expanduser().resolve())
    if labels is None:
        from deephash.data.datasets import load_dataset_labels

        got = load_dataset_labels(
            spec.dataset, data_dir=data_dir, download=download, root=opts.get("root")
        )
        labels, is_test = got.labels, got.is_test
    labels = np.asarray(labels, dtype=np.int64)
    mask = np.zeros(labels.size, bool) if is_test is None else np.asarray(is_test, dtype=bool)
    if labels.ndim != 1 or mask.shape != labels.shape:
        raise ValueError(
            f"labels and is_test must both have shape (N,), got {labels.shape} and {mask.shape}"
        )
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    everything = np.arange(labels.size)
    train_cls = test_cls = None
    in_train_cls = np.ones(labels.size, bool)
    if opts["class_disjoint"]:
        train_cls = _train_classes(opts, classes, rng)
        test_cls = sorted(set(classes.tolist()) - set(train_cls))
        in_train_cls = np.isin(labels, train_cls)
        opts["train_classes"] = train_cls

    folds = opts.get("validation_folds")
    val_cls = None
    if folds is not None:
        assert train_cls is not None  # _merge_options requires class_disjoint
        if _amount(opts, "validation") is not None:
            raise ValueError(
                f"protocol {name!r}: give either validation_folds (class-disjoint validation) or "
                "validation_size / _per_class / _fraction (a slice of the training classes' "
                "images), not both"
            )
        val_cls = _validation_fold(train_cls, folds, opts.get("validation_fold", 0), rng)

    if spec.kind == "official":
        if not mask.any() or mask.all():
            raise ValueError(f"protocol {name!r} needs a dataset with an official train/test split")
        train_side, test_side = everything[~mask], everything[mask]
        query = test_side[~in_train_cls[test_side]] if train_cls else test_side
        database = train_side[~in_train_cls[train_side]] if train_cls else train_side
        source = everything if opts.get("train_images") == "all" else train_side
        train_all = source[in_train_cls[source]]
        if val_cls is not None:
            validation = train_all[np.isin(labels[train_all], val_cls)]
        else:
            validation = _stratified(
                train_all, labels, _amount(opts, "validation"), rng, "validation"
            )
        train = np.setdiff1d(train_all, validation)
    else:
        query_side = everything[~in_train_cls] if train_cls else everything
        query = _stratified(query_side, labels, _amount(opts, "query"), rng, "query")
        if query.size == 0:
            raise ValueError(
                f"protocol {name!r}: the query split is empty; set query_size/_per_class/_fraction"
            )
        train_side = everything[in_train_cls] if train_cls else np.setdiff1d(everything, query)
        train_amount = _amount(opts, "train")
        train_all = (
            train_side
            if train_amount is None
            else _stratified(train_side, labels, train_amount, rng, "train")
        )
        leftovers = np.setdiff1d(train_side, train_all)
        if train_cls:
            database = np.setdiff1d(query_side, query)
        else:
            database = train_side if opts.get("database_includes_train", True) else leftovers
        val_amount = _amount(opts, "validation")
        if val_cls is not None:
            validation = train_all[np.isin(labels[train_all], val_cls)]
            train = np.setdiff1d(train_all, validation)
        elif (
            train_amount is not None
        ):  # keep the conventional train size; validate on unused images
            validation = _stratified(leftovers, labels, val_amount, rng, "validation")
            train = train_all
        else:
            validation = _stratified(train_all, labels, val_amount, rng, "validation")
            train = np.setdiff1d(train_all, validation)
    if opts["retrieval"] == "leave-one-out":
        query = database = np.union1d(query, database)
    return Protocol(
        name=name,
        dataset=spec.dataset,
        seed=int(seed),
        pool_size=int(labels.size),
        num_classes=int(classes.max()) + 1 if classes.size else 0,
        train=train,
        validation=validation,
        query=query,
        database=database,
        labels_digest=labels_digest(labels),
        options=opts,
        train_classes=train_cls,
        test_classes=test_cls,
        validation_classes=val_cls,
    )
