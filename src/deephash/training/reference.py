"""Published numbers to print beside a study's own (``compare``'s "report" columns).

A reference is a mapping, inline in a study file under ``reference:`` or in its own YAML file::

    source: where the numbers come from (one line)
    note: what is and is not known about them (optional)
    quoted: {map: [0.4795, 0.8680], knn: [0.5726, 0.8506]}   # optional: numbers quoted without rows
    rows:
      recipe-name: {map: 0.81, knn: null}   # null: not given; printed as such, never guessed

Only ``map`` (mAP@all) and ``knn`` (kNN accuracy) are compared, the two columns of every
``compare`` table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = ["METRICS", "Reference", "load_reference"]

METRICS = ("map", "knn")
_KEYS = {"source", "note", "quoted", "rows"}


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"reference {where} must be a number or null, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Reference:
    """Reference numbers: per recipe name, ``rows[name][metric]`` (None = not given), and numbers
    ``quoted`` without the rows they belong to (metric -> values in the order quoted)."""

    source: str
    note: str = ""
    quoted: dict[str, list[float]] = field(default_factory=dict)
    rows: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def value(self, name: str, metric: str) -> float | None:
        """The reference ``metric`` of recipe ``name``; None when not given."""
        return self.rows.get(name, {}).get(metric)

    def footnote(self) -> str:
        """One paragraph for the bottom of a table: source, quoted numbers, note."""
        parts = [f"Report: {self.source}."]
        if self.quoted:
            names = {"map": "mAP", "knn": "kNN"}
            quoted = ", ".join(
                f"{names[m]} " + " … ".join(f"{v:.4f}" for v in values)
                for m, values in self.quoted.items()
            )
            parts.append(f"Quoted without their rows: {quoted}.")
        if self.note:
            parts.append(self.note.strip())
        parts.append("'not given': no number for that row in the reference.")
        return " ".join(parts)


def _parse(d: Any, source: str) -> Reference:
    if not isinstance(d, Mapping):
        raise ValueError(f"{source}: a reference must be a mapping with source and rows")
    unknown = sorted(set(d) - _KEYS)
    if unknown:
        raise ValueError(f"{source}: unknown reference keys {unknown}; valid: {sorted(_KEYS)}")
    if not isinstance(d.get("source"), str) or not d["source"].strip():
        raise ValueError(f"{source}: a reference needs `source:`, where its numbers come from")
    rows: dict[str, dict[str, float | None]] = {}
    for name, values in (d.get("rows") or {}).items():
        values = values or {}
        if not isinstance(values, Mapping) or set(values) - set(METRICS):
            raise ValueError(
                f"{source}: row {name!r} must map {list(METRICS)} to numbers or null, got {values!r}"
            )
        rows[str(name)] = {m: _number(values.get(m), f"rows.{name}.{m}") for m in METRICS}
    quoted: dict[str, list[float]] = {}
    for metric, values in (d.get("quoted") or {}).items():
        if metric not in METRICS or not isinstance(values, list):
            raise ValueError(
                f"{source}: quoted must map {list(METRICS)} to lists of numbers, got {metric!r}"
            )
        numbers = [_number(v, f"quoted.{metric}") for v in values]
        quoted[metric] = [v for v in numbers if v is not None]
    return Reference(
        source=d["source"].strip(), note=str(d.get("note") or ""), quoted=quoted, rows=rows
    )


def load_reference(spec: str | Path | Mapping[str, Any], base: Path | None = None) -> Reference:
    """A :class:`Reference` from a mapping, or from a YAML file (a path relative to ``base``)."""
    if not isinstance(spec, str | Path):
        return _parse(spec, "reference")
    path = Path(spec)
    if base is not None and not path.is_absolute():
        path = base / path
    if not path.is_file():
        raise FileNotFoundError(f"reference file {path} does not exist")
    return _parse(yaml.safe_load(path.read_text()), str(path))
