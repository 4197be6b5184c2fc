"""A collection's settings (``collection.json``): checking the arguments of a new collection and
building its settings before anything is written, and reading them back."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from deephash.checks import check_positive_int
from deephash.collection.layout import MODEL_DIR
from deephash.index.milvus import INDEX_TYPES as MILVUS_INDEX_TYPES
from deephash.index.milvus import is_server_uri
from deephash.run_folder import RunFolder

__all__ = [
    "BACKENDS",
    "COPY_RADIUS_SHARE",
    "DEFAULT_BINARY_CANDIDATES",
    "DEFAULT_CANDIDATES",
    "FORMAT",
    "VERSION",
    "default_copy_radius",
    "milvus_index_settings",
    "new_settings",
    "read_settings",
    "recommended_descriptor",
]

FORMAT = "deephash-collection"
# 2: may store float16 re-rank descriptors; 3: binary ones (packed bits). A collection is written
# with the lowest version that holds what it stores (1 without descriptors), so an older
# deephash still opens what it can read.
VERSION = 3
BACKENDS = ("mih", "flat", "milvus")
DEFAULT_CANDIDATES = (
    4096  # Hamming candidates re-ranked per query (k'), see benchmarks/bench_rerank.py
)
# a binary descriptor finds the item itself: a few candidates from each index suffice
DEFAULT_BINARY_CANDIDATES = 32
# candidates within this share of an instance descriptor's bits of the query's count as copies and
# rank first; the others rank by code distance. Chosen on validation (docs/RESULTS.md, "copy
# radius"; the best sum of class mAP and copy R@1): 20 of 128 bits; for 64 bits it gives 10, within
# 0.001 of the best of that scan (8)
COPY_RADIUS_SHARE = 5 / 32


def default_copy_radius(bits: int) -> int:
    """The default copy radius, in differing bits, of a ``bits``-bit instance descriptor."""
    return round(bits * COPY_RADIUS_SHARE)


def recommended_descriptor(run_dir: str | os.PathLike[str]) -> str:
    """The re-rank descriptor recommended for a run's network: ``instance`` where it has
    instance outputs, else ``RECOMMENDED_DESCRIPTOR`` where the backbone has convolution
    stages, else ``backbone``."""
    from deephash.models.descriptors import RECOMMENDED_DESCRIPTOR, supports
    from deephash.training.runs import load_run

    loaded = load_run(Path(run_dir), device="cpu")
    if supports(loaded.net, "instance"):
        return "instance"
    return RECOMMENDED_DESCRIPTOR if supports(loaded.net, RECOMMENDED_DESCRIPTOR) else "backbone"


def rerank_settings(
    run: Path,
    rerank: str,
    candidates: int | None,
    descriptor_candidates: int | None,
    copy_radius: int | None = None,
) -> dict[str, Any]:
    """The ``rerank`` settings of a new collection that stores descriptor ``rerank`` of run
    folder ``run``'s network, checked (a kind the network cannot give is a ``ValueError``)."""
    from deephash.models.descriptors import BINARY_DESCRIPTORS, list_descriptors

    if rerank not in list_descriptors():
        raise ValueError(
            f"unknown re-rank descriptor {rerank!r}; choose one of {list_descriptors()} (or none)"
        )
    binary = rerank in BINARY_DESCRIPTORS
    if (descriptor_candidates is not None or copy_radius is not None) and not binary:
        raise ValueError(
            f"descriptor candidates and a copy radius are for a binary descriptor ({', '.join(BINARY_DESCRIPTORS)}),"
            f" not {rerank!r}"
        )
    default = DEFAULT_BINARY_CANDIDATES if binary else DEFAULT_CANDIDATES
    out: dict[str, Any] = {
        "descriptor": rerank,
        "dim": _descriptor_width(run, rerank),
        "dtype": "bits" if binary else "float16",
        "candidates": check_positive_int(
            default if candidates is None else candidates, "candidates"
        ),
    }
    if binary:
        from deephash.codes import code_bytes
        from deephash.collection.descriptor_index import DESCRIPTOR_INDEX

        out["bytes"] = code_bytes(out["dim"])
        out["descriptor_candidates"] = check_positive_int(
            DEFAULT_BINARY_CANDIDATES if descriptor_candidates is None else descriptor_candidates,
            "descriptor_candidates",
        )
        out["descriptor_index"] = DESCRIPTOR_INDEX
        radius = default_copy_radius(out["dim"]) if copy_radius is None else copy_radius
        if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
            raise ValueError(f"copy_radius is a number of differing bits >= 0, got {radius!r}")
        out["copy_radius"] = radius
    return out


def _descriptor_width(run: Path, kind: str) -> int:
    """The width of descriptor ``kind`` for the network of run folder ``run``."""
    from deephash.models.descriptors import descriptor_dim
    from deephash.training.runs import load_run

    loaded = load_run(run, device="cpu")
    info = loaded.data_info
    shape = (int(info["in_channels"]), int(info["image_shape"][0]), int(info["image_shape"][1]))
    return descriptor_dim(loaded.net, kind, shape)


def milvus_index_settings(
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
        out[name] = check_positive_int(default if value is None else value, name)
    return out


def new_settings(
    directory: Path,
    run_dir: str | os.PathLike[str],
    backend: str,
    uri: str | None,
    *,
    milvus_collection: str | None,
    milvus_index: str | None,
    nlist: int | None,
    nprobe: int | None,
    max_pixels: int,
    rerank: str | None,
    candidates: int | None,
    descriptor_candidates: int | None = None,
    copy_radius: int | None = None,
) -> dict[str, Any]:
    """The settings of a new collection in ``directory`` (see
    :meth:`~deephash.collection.Collection.create` for the arguments), every argument checked
    before anything is written: ``directory`` must be missing or an empty folder, ``run_dir`` a
    hashing run folder."""
    from deephash.training.config import TrainConfig

    if backend not in BACKENDS:
        raise ValueError(f"unknown collection backend {backend!r}; choose one of {BACKENDS}")
    if uri is not None and backend != "milvus":
        raise ValueError("--uri is only for the milvus backend")
    index_settings = milvus_index_settings(backend, uri, milvus_index, nlist, nprobe)
    # the one thing the folder may already hold: the model fitted for it (create --images)
    if directory.exists() and (
        not directory.is_dir() or any(p.name != MODEL_DIR for p in directory.iterdir())
    ):
        raise FileExistsError(
            f"{directory} exists and is not an empty folder; pick a new folder for the "
            "collection (or open this one)"
        )
    run = Path(run_dir).resolve()
    config = RunFolder(run).config
    if not config.is_file():
        raise FileNotFoundError(f"{run_dir} is not a deephash run folder (no {config.name})")
    import yaml

    cfg = TrainConfig.from_dict(yaml.safe_load(config.read_text()))
    if cfg.bits is None:
        raise ValueError(
            f"{run_dir} is a metric-learning run; a collection needs a hashing run (--bits)"
        )
    bits = int(cfg.bits)
    rerank_part = (
        None
        if rerank is None
        else rerank_settings(run, rerank, candidates, descriptor_candidates, copy_radius)
    )
    version = 1 if rerank_part is None else 3 if rerank_part["dtype"] == "bits" else 2
    settings: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "run": str(run),
        "bits": bits,
        "backend": backend,
        "max_pixels": int(max_pixels),
        "created": time.time(),
    }
    if rerank_part:
        settings["rerank"] = rerank_part
    if backend == "milvus":
        settings["uri"] = uri or str((directory / "milvus.db").resolve())
        name = milvus_collection or "deephash_" + "".join(
            c if c.isalnum() else "_" for c in directory.resolve().name
        )
        settings["milvus_collection"] = name
        settings["milvus_index"] = index_settings
    return settings


def read_settings(settings_file: Path) -> dict[str, Any]:
    """The settings in a collection's ``collection.json``; ``ValueError`` when it is not one this
    version can read."""
    settings: dict[str, Any] = json.loads(settings_file.read_text())
    if settings.get("format") != FORMAT or int(settings.get("version", 0)) > VERSION:
        raise ValueError(f"{settings_file} is not a deephash collection file this version can read")
    return settings
