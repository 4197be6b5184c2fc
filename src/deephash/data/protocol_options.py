"""A protocol's options: its spec's defaults merged with overrides, checked; split amounts.

An amount is one of ``<split>_size`` (images), ``<split>_per_class`` or ``<split>_fraction``.
"""

from __future__ import annotations

from typing import Any

from deephash.data.protocol_catalogue import (
    COMMON_OPTIONS,
    RETRIEVAL_SHAPES,
    TRAIN_IMAGES,
    ProtocolSpec,
)

__all__ = ["AMOUNT_KEYS", "amount", "merge_options"]

AMOUNT_KEYS = ("size", "per_class", "fraction")


def merge_options(spec: ProtocolSpec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The options protocol ``spec`` is built with: the common defaults, the spec's, then
    ``overrides`` (an override of one amount form replaces the default form); ValueError naming
    an unknown option, a value outside its choices or an unseen-class option without
    ``class_disjoint``."""
    opts = {**COMMON_OPTIONS, **spec.defaults}
    valid = set(opts) | {f"{p}_{k}" for p in ("query", "train", "validation") for k in AMOUNT_KEYS}
    if spec.kind == "official":
        valid -= {f"{p}_{k}" for p in ("query", "train") for k in AMOUNT_KEYS}
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
        ("query", AMOUNT_KEYS),
        ("train", AMOUNT_KEYS),
        ("validation", (*AMOUNT_KEYS, "folds")),
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


def amount(opts: dict[str, Any], prefix: str) -> tuple[str, float] | None:
    """The amount given for split ``prefix`` as ``(form, value)`` (form: one of
    :data:`AMOUNT_KEYS`), ``None`` when none is; ValueError when more than one form is given."""
    given = [
        (k, opts[f"{prefix}_{k}"]) for k in AMOUNT_KEYS if opts.get(f"{prefix}_{k}") is not None
    ]
    if len(given) > 1:
        raise ValueError(
            f"give only one of {[f'{prefix}_{k}' for k in AMOUNT_KEYS]}, got {dict(given)}"
        )
    return given[0] if given else None
