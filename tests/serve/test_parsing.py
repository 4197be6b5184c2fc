"""Request parsing: limits at their edges, codes against hand-packed bits, the form's labels."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from starlette.datastructures import FormData, Headers, UploadFile

from deephash.serve.errors import ApiError
from deephash.serve.parsing import (
    SearchLimits,
    SearchOptions,
    body_options,
    images_of,
    int_param,
    is_json,
    labels_of,
    parse_code,
    parse_item_id,
    parse_search_json,
    query_options,
)


def refused(call: object, *args: object) -> tuple[int, str, str]:
    with pytest.raises(ApiError) as err:
        call(*args)  # type: ignore[operator]
    return err.value.status, err.value.code, err.value.detail


def test_int_param_edges() -> None:
    assert [int_param(v, "k", 1, 5) for v in (1, 5, "3", " 4")] == [1, 5, 3, 4]
    for value in (0, 6, "6", -1):
        assert refused(int_param, value, "k", 1, 5)[:2] == (400, "bad_parameter")
    assert refused(int_param, "ten", "k", 1, 5)[2] == "k must be an integer, got 'ten'"
    for value in (True, 1.5, None, [1]):
        assert refused(int_param, value, "k", 1, 5)[2] == f"k must be an integer, got {value!r}"
    assert refused(int_param, 9, "radius", 0, 8)[2] == "radius must be between 0 and 8, got 9"


def test_search_options_from_the_query_and_the_body() -> None:
    limits = SearchLimits(max_k=50, bits=16, max_candidates=100)
    assert query_options({}, limits) == SearchOptions(10, None, None)
    got = query_options({"k": "7", "radius": "16", "candidates": "100"}, limits)
    assert got == SearchOptions(7, 16, 100)
    assert refused(query_options, {"radius": "17"}, limits)[:2] == (400, "bad_parameter")
    assert refused(query_options, {"candidates": "0"}, limits)[:2] == (400, "bad_parameter")
    # the default k is checked too: a server whose max_k is below 10 needs an explicit k
    assert refused(query_options, {}, SearchLimits(max_k=5, bits=16))[2].endswith("got 10")
    base = SearchOptions(7, 3, 20)
    assert body_options({}, limits, base) == base
    assert body_options({"k": 2, "radius": None}, limits, base) == SearchOptions(2, None, 20)
    assert refused(body_options, {"k": 51}, limits, base)[:2] == (400, "bad_parameter")
    # binary descriptors: how many nearest descriptors, from the query or the body
    got = query_options({"descriptor_candidates": "9"}, limits)
    assert got == SearchOptions(10, None, None, 9)
    assert body_options({"descriptor_candidates": 4}, limits, got) == SearchOptions(
        10, None, None, 4
    )
    assert body_options({"k": 3}, limits, got) == SearchOptions(3, None, None, 9)
    status, _, detail = refused(query_options, {"descriptor_candidates": "0"}, limits)
    assert status == 400 and detail.startswith("descriptor_candidates must be")


def test_parse_code_round_trips_hand_packed_bits() -> None:
    rng = np.random.default_rng(0)
    for bits in (8, 12, 16, 20):
        signs = rng.integers(0, 2, bits)
        packed = bytearray((bits + 7) // 8)
        for i, bit in enumerate(signs):  # faiss layout: bit i is bit i % 8 of byte i // 8
            packed[i // 8] |= int(bit) << (i % 8)
        code = parse_code(bytes(packed).hex(), bits)
        assert code.dtype == np.uint8 and code.shape == (1, len(packed))
        assert code.tobytes() == bytes(packed)
    assert refused(parse_code, "abcdef", 16)[2] == (
        "code has 3 bytes (6 hex digits) but this collection's 16-bit codes have 2 bytes "
        "(4 hex digits)"
    )
    assert refused(parse_code, "zz00", 16)[:2] == (400, "bad_code")
    assert refused(parse_code, 12, 16)[2] == "code must be a hex string, got 12"
    assert refused(parse_code, "ff1f", 12)[:2] == (400, "bad_code")  # a padding bit set
    assert parse_code("ff0f", 12).tobytes() == b"\xff\x0f"


def test_a_search_json_body() -> None:
    assert parse_search_json(b'{"id": 3, "k": 2}') == {"id": 3, "k": 2}
    assert parse_search_json(json.dumps({"code": "00"}).encode()) == {"code": "00"}
    assert refused(parse_search_json, b'{"id": 1')[:2] == (400, "malformed_json")
    assert refused(parse_search_json, b"\xff")[:2] == (400, "malformed_json")
    for body in (b"[1]", b"{}", b'{"id": 1, "code": "00"}', b'{"k": 3}'):
        assert refused(parse_search_json, body)[:2] == (400, "bad_request")
    assert parse_item_id(4) == 4
    for value in ("4", True, 4.0, None):
        assert refused(parse_item_id, value)[2] == f"id must be an integer, got {value!r}"


def test_is_json() -> None:
    yes = ["application/json", "application/json; charset=utf-8", "application/vnd.x+json"]
    no = ["", "text/plain", "multipart/form-data; boundary=x", "text/plain; note=+json"]
    assert [is_json(c) for c in yes] == [True] * 3
    assert [is_json(c) for c in no] == [False] * 4


def upload(data: bytes, name: str | None) -> UploadFile:
    import io

    return UploadFile(io.BytesIO(data), filename=name, headers=Headers({}))


def test_the_form_images_and_labels() -> None:
    form = FormData([("image", upload(b"a", "a.png")), ("image", upload(b"bb", None))])
    assert asyncio.run(images_of(form)) == [(b"a", "a.png"), (b"bb", "upload 1")]
    with pytest.raises(ApiError, match="no 'image' part"):
        asyncio.run(images_of(FormData([("label", "x")])))
    with pytest.raises(ApiError, match="#1 is text"):
        asyncio.run(images_of(FormData([("image", upload(b"a", "a")), ("image", "text")])))
    assert labels_of(FormData([]), 3) == ["", "", ""]
    assert labels_of(FormData([("label", "x")]), 3) == ["x", "x", "x"]
    assert labels_of(FormData([("label", "x"), ("label", "y")]), 2) == ["x", "y"]
    with pytest.raises(ApiError, match="3 images but 2 labels"):
        labels_of(FormData([("label", "x"), ("label", "y")]), 3)
