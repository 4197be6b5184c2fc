"""The catalogue of named protocols: each one's dataset, shape and default options.

``official`` protocols query the official test images against the training images; ``sampled``
ones draw query (and train) from the whole pool; the ``*-unseen`` ones train on fixed classes and
test on the others (see :mod:`deephash.data.protocols` for the shapes and their options).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deephash._registry import Catalog

__all__ = [
    "COMMON_OPTIONS",
    "PROTOCOLS",
    "RETRIEVAL_SHAPES",
    "TRAIN_IMAGES",
    "ProtocolSpec",
    "default_protocol",
    "list_protocols",
    "protocol_spec",
]


@dataclass(frozen=True)
class ProtocolSpec:
    """A named protocol: its dataset, shape (``official`` or ``sampled``) and default options."""

    name: str
    dataset: str
    kind: str
    defaults: dict[str, Any]
    description: str


COMMON_OPTIONS: dict[str, Any] = {
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


PROTOCOLS: Catalog[ProtocolSpec] = Catalog("protocol")
"""Every named protocol (:func:`list_protocols`, :func:`protocol_spec`)."""
for _spec in (
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
):
    PROTOCOLS.add(_spec.name, _spec)


def list_protocols() -> list[str]:
    """Registered protocol names, sorted."""
    return PROTOCOLS.names()


_ALIASES = {"cifar10": "cifar10-s1", "cifar-10": "cifar10-s1", "fmnist": "fashion-mnist"}


def default_protocol(name: str) -> str:
    """A dataset name stands for its standard protocol (``cifar10`` -> ``cifar10-s1``); protocol
    names and frozen-split files (``.json``) pass through."""
    if name in PROTOCOLS or name.endswith(".json"):
        return name
    return _ALIASES.get(name, name)


def protocol_spec(name: str) -> ProtocolSpec:
    """The spec of protocol ``name``; ValueError listing the known names otherwise."""
    if name not in PROTOCOLS:
        raise ValueError(
            f"unknown protocol {name!r}; known protocols: {', '.join(list_protocols())}"
        )
    return PROTOCOLS.get(name)
