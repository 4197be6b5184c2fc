"""Building a named protocol: options, the pool's labels, class split, then the four index sets.

:func:`create_protocol` reads as its steps: merge the options, read the pool's labels, choose the
training classes (unseen-class protocols) and the held-out validation classes, draw the splits of
an ``official`` or a ``sampled`` protocol, and check the result (the :class:`Protocol` constructor
does). The seeded generator is drawn from in that order, so the same inputs give the same indices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deephash.data.protocol import Protocol, labels_digest
from deephash.data.protocol_catalogue import ProtocolSpec, protocol_spec
from deephash.data.protocol_options import amount, merge_options
from deephash.data.protocol_sampling import choose_train_classes, stratified, validation_fold

__all__ = ["create_protocol"]


@dataclass
class _Pool:
    """A dataset pool's int64 (N,) labels and bool (N,) official-test mask, and which images
    belong to the training classes (all of them unless the protocol is class-disjoint)."""

    labels: np.ndarray
    is_test: np.ndarray
    in_train_classes: np.ndarray
    train_classes: list[int] | None = None
    validation_classes: list[int] | None = None

    @property
    def everything(self) -> np.ndarray:
        return np.arange(self.labels.size)


@dataclass
class _Splits:
    train: np.ndarray
    validation: np.ndarray
    query: np.ndarray
    database: np.ndarray


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
        ``retrieval``, ``validation_folds`` / ``validation_fold`` and ``train_images`` (see
        :mod:`deephash.data.protocols`); ``root`` for folder.
    """
    spec = protocol_spec(name)
    opts = merge_options(spec, options)
    _resolve_root(spec, opts, data_dir)
    labels, mask = _pool_labels(spec, opts, labels, is_test, data_dir, download)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    pool = _split_classes(opts, labels, mask, classes, rng)
    pool.validation_classes = _validation_classes(name, opts, pool.train_classes, rng)
    if spec.kind == "official":
        splits = _official_splits(name, opts, pool, rng)
    else:
        splits = _sampled_splits(name, opts, pool, rng)
    if opts["retrieval"] == "leave-one-out":
        splits.query = splits.database = np.union1d(splits.query, splits.database)
    return Protocol(
        name=name,
        dataset=spec.dataset,
        seed=int(seed),
        pool_size=int(labels.size),
        num_classes=int(classes.max()) + 1 if classes.size else 0,
        train=splits.train,
        validation=splits.validation,
        query=splits.query,
        database=splits.database,
        labels_digest=labels_digest(labels),
        options=opts,
        train_classes=pool.train_classes,
        test_classes=_test_classes(classes, pool.train_classes),
        validation_classes=pool.validation_classes,
    )


def _resolve_root(spec: ProtocolSpec, opts: dict[str, Any], data_dir: str | Path | None) -> None:
    """The folder protocol's image root, absolute, in its options (``data_dir`` by default)."""
    if spec.name != "folder":
        return
    if opts.get("root") is None and data_dir is not None:
        opts["root"] = str(data_dir)
    if opts.get("root") is not None:
        opts["root"] = str(Path(opts["root"]).expanduser().resolve())


def _pool_labels(
    spec: ProtocolSpec,
    opts: dict[str, Any],
    labels: np.ndarray | None,
    is_test: np.ndarray | None,
    data_dir: str | Path | None,
    download: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The pool's int64 (N,) labels and bool (N,) official-test mask, read from the dataset when
    not given (no test mask: all False)."""
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
    return labels, mask


def _split_classes(
    opts: dict[str, Any],
    labels: np.ndarray,
    mask: np.ndarray,
    classes: np.ndarray,
    rng: np.random.Generator,
) -> _Pool:
    """Class-disjoint protocols: draw the training classes (recorded in ``opts``); else every
    class trains."""
    if not opts["class_disjoint"]:
        return _Pool(labels, mask, np.ones(labels.size, bool))
    train_cls = choose_train_classes(opts, classes, rng)
    opts["train_classes"] = train_cls
    return _Pool(labels, mask, np.isin(labels, train_cls), train_classes=train_cls)


def _test_classes(classes: np.ndarray, train_cls: list[int] | None) -> list[int] | None:
    return None if train_cls is None else sorted(set(classes.tolist()) - set(train_cls))


def _validation_classes(
    name: str, opts: dict[str, Any], train_cls: list[int] | None, rng: np.random.Generator
) -> list[int] | None:
    """The training classes held out for class-disjoint validation (``validation_folds``), or
    ``None`` for a validation slice of the training images."""
    folds = opts.get("validation_folds")
    if folds is None:
        return None
    assert train_cls is not None  # merge_options requires class_disjoint
    if amount(opts, "validation") is not None:
        raise ValueError(
            f"protocol {name!r}: give either validation_folds (class-disjoint validation) or "
            "validation_size / _per_class / _fraction (a slice of the training classes' "
            "images), not both"
        )
    return validation_fold(train_cls, folds, opts.get("validation_fold", 0), rng)


def _official_splits(
    name: str, opts: dict[str, Any], pool: _Pool, rng: np.random.Generator
) -> _Splits:
    """Query = the official test images, database = the official training images (of the test
    classes when class-disjoint); train and validation from the training classes' images."""
    mask, labels, in_train = pool.is_test, pool.labels, pool.in_train_classes
    if not mask.any() or mask.all():
        raise ValueError(f"protocol {name!r} needs a dataset with an official train/test split")
    everything = pool.everything
    train_side, test_side = everything[~mask], everything[mask]
    query = test_side[~in_train[test_side]] if pool.train_classes else test_side
    database = train_side[~in_train[train_side]] if pool.train_classes else train_side
    source = everything if opts.get("train_images") == "all" else train_side
    train_all = source[in_train[source]]
    if pool.validation_classes is not None:
        validation = train_all[np.isin(labels[train_all], pool.validation_classes)]
    else:
        validation = stratified(train_all, labels, amount(opts, "validation"), rng, "validation")
    return _Splits(np.setdiff1d(train_all, validation), validation, query, database)


def _sampled_splits(
    name: str, opts: dict[str, Any], pool: _Pool, rng: np.random.Generator
) -> _Splits:
    """Query = a stratified sample of the pool (of the test classes when class-disjoint), train =
    a sample of the rest or all of it, database = every non-query image (or the leftovers)."""
    labels, in_train, everything = pool.labels, pool.in_train_classes, pool.everything
    query_side = everything[~in_train] if pool.train_classes else everything
    query = stratified(query_side, labels, amount(opts, "query"), rng, "query")
    if query.size == 0:
        raise ValueError(
            f"protocol {name!r}: the query split is empty; set query_size/_per_class/_fraction"
        )
    train_side = everything[in_train] if pool.train_classes else np.setdiff1d(everything, query)
    train_amount = amount(opts, "train")
    train_all = (
        train_side
        if train_amount is None
        else stratified(train_side, labels, train_amount, rng, "train")
    )
    leftovers = np.setdiff1d(train_side, train_all)
    if pool.train_classes:
        database = np.setdiff1d(query_side, query)
    else:
        database = train_side if opts.get("database_includes_train", True) else leftovers
    val_amount = amount(opts, "validation")
    if pool.validation_classes is not None:
        validation = train_all[np.isin(labels[train_all], pool.validation_classes)]
        train = np.setdiff1d(train_all, validation)
    elif train_amount is not None:  # keep the conventional train size; validate on unused images
        validation = stratified(leftovers, labels, val_amount, rng, "validation")
        train = train_all
    else:
        validation = stratified(train_all, labels, val_amount, rng, "validation")
        train = np.setdiff1d(train_all, validation)
    return _Splits(train, validation, query, database)
