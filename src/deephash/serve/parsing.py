"""Reading a request: integer parameters within limits, a search's JSON body, a packed code, the
multipart form of images and labels. Every failure is an :class:`ApiError` (400, or 415 for a body
that is not multipart)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Request
from starlette.datastructures import FormData, UploadFile

from deephash.codes import check_padding_bits, code_bytes
from deephash.serve.errors import ApiError

__all__ = [
    "MAX_CANDIDATES",
    "SearchLimits",
    "SearchOptions",
    "body_options",
    "images_of",
    "int_param",
    "is_json",
    "labels_of",
    "parse_code",
    "parse_item_id",
    "parse_search_json",
    "query_options",
    "read_form",
]

MAX_CANDIDATES = 100_000  # most Hamming candidates a search may ask to re-rank
_MAX_PARTS = 1000  # most parts (files and fields) in one multipart form


def int_param(value: Any, name: str, low: int, high: int) -> int:
    """``value`` (an int, or a string of one) as an int in ``[low, high]``."""
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ApiError(
                400, "bad_parameter", f"{name} must be an integer, got {value!r}"
            ) from None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "bad_parameter", f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ApiError(
            400, "bad_parameter", f"{name} must be between {low} and {high}, got {value}"
        )
    return value


@dataclass(frozen=True)
class SearchLimits:
    """The largest k, radius (the code width) and candidates a search may ask for."""

    max_k: int
    bits: int
    max_candidates: int = MAX_CANDIDATES

    def k(self, value: Any) -> int:
        return int_param(value, "k", 1, self.max_k)

    def radius(self, value: Any) -> int | None:
        return None if value is None else int_param(value, "radius", 0, self.bits)

    def candidates(self, value: Any, name: str = "candidates") -> int | None:
        return None if value is None else int_param(value, name, 1, self.max_candidates)


@dataclass(frozen=True)
class SearchOptions:
    """How many results (k), within which Hamming radius (None: any), re-ranking how many
    candidates (None: the collection's default) and, for binary descriptors, how many nearest
    descriptors besides (None: the collection's default)."""

    k: int
    radius: int | None
    candidates: int | None
    descriptor_candidates: int | None = None


def query_options(params: Mapping[str, str], limits: SearchLimits) -> SearchOptions:
    """The options in a query string (k defaults to 10)."""
    return SearchOptions(
        limits.k(params.get("k", "10")),
        limits.radius(params.get("radius")),
        limits.candidates(params.get("candidates")),
        limits.candidates(params.get("descriptor_candidates"), "descriptor_candidates"),
    )


def body_options(
    body: Mapping[str, Any], limits: SearchLimits, base: SearchOptions
) -> SearchOptions:
    """``base`` with the options a JSON body gives in its place."""
    return SearchOptions(
        limits.k(body["k"]) if "k" in body else base.k,
        limits.radius(body["radius"]) if "radius" in body else base.radius,
        limits.candidates(body["candidates"]) if "candidates" in body else base.candidates,
        (
            limits.candidates(body["descriptor_candidates"], "descriptor_candidates")
            if "descriptor_candidates" in body
            else base.descriptor_candidates
        ),
    )


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON (``application/json`` or any ``...+json``)."""
    return content_type.startswith("application/json") or "+json" in content_type.split(";")[0]


def parse_search_json(raw: bytes) -> dict[str, Any]:
    """A search's JSON body: an object with either ``"id"`` or ``"code"``."""
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ApiError(400, "malformed_json", f"the JSON body cannot be parsed: {exc}") from None
    if not isinstance(body, dict) or ("id" in body) == ("code" in body):
        raise ApiError(
            400,
            "bad_request",
            'send a JSON object with either "id" or "code" (and optional "k", "radius")',
        )
    return body


def parse_item_id(value: Any) -> int:
    """An item id given in a JSON body (an integer, not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, "bad_parameter", f"id must be an integer, got {value!r}")
    return value


def parse_code(value: Any, bits: int) -> np.ndarray:
    """A packed ``bits``-bit code given as hex: uint8 (1, ceil(bits / 8)), padding bits zero."""
    nbytes = code_bytes(bits)
    if not isinstance(value, str):
        raise ApiError(400, "bad_code", f"code must be a hex string, got {value!r}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ApiError(400, "bad_code", f"code {value!r} is not hexadecimal") from None
    if len(raw) != nbytes:
        raise ApiError(
            400,
            "bad_code",
            f"code has {len(raw)} bytes ({len(value)} hex digits) but this collection's "
            f"{bits}-bit codes have {nbytes} bytes ({2 * nbytes} hex digits)",
        )
    code = np.frombuffer(raw, dtype=np.uint8)[None, :].copy()
    try:
        check_padding_bits(code, bits, "the code")
    except ValueError as exc:
        raise ApiError(400, "bad_code", str(exc)) from None
    return code


async def read_form(request: Request) -> FormData:
    """The request's multipart form (415 for any other body)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise ApiError(
            415,
            "unsupported_media_type",
            "send multipart/form-data with one or more 'image' file parts, "
            f"not {ctype or 'no content type'}",
        )
    return await request.form(max_files=_MAX_PARTS, max_fields=_MAX_PARTS)


async def images_of(form: FormData) -> list[tuple[bytes, str]]:
    """(content, file name) of each ``image`` file part, in the order sent (at least one)."""
    parts = form.getlist("image")
    if not parts:
        raise ApiError(
            400, "bad_request", "no 'image' part in the form; send the file as field 'image'"
        )
    out = []
    for i, part in enumerate(parts):
        if not isinstance(part, UploadFile):
            raise ApiError(400, "bad_request", f"form field 'image' #{i} is text, not a file")
        out.append((await part.read(), part.filename or f"upload {i}"))
    return out


def labels_of(form: FormData, n: int) -> list[str]:
    """One label per image from the form's ``label`` fields: none (all ``""``), one for all, or
    one per image."""
    labels = [str(v) for v in form.getlist("label")]
    if len(labels) == 1:
        return labels * n
    if not labels:
        return [""] * n
    if len(labels) != n:
        raise ApiError(
            400,
            "bad_request",
            f"{n} images but {len(labels)} labels; send none, one, or one per image",
        )
    return labels
