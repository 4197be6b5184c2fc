"""``POST /search`` (one image, an item or a code) and ``POST /search/batch`` (several images)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request

from deephash.collection import Hit
from deephash.serve.dependencies import SearchOptionsDep, ServiceDep, require_reader
from deephash.serve.errors import ApiError
from deephash.serve.openapi import multipart_images, search_body
from deephash.serve.parsing import (
    body_options,
    images_of,
    is_json,
    parse_code,
    parse_item_id,
    parse_search_json,
    read_form,
)
from deephash.serve.service import Service

__all__ = ["hit_json", "router"]

router = APIRouter(dependencies=[Depends(require_reader)])


def hit_json(hit: Hit) -> dict[str, Any]:
    """A hit as JSON: id, Hamming distance, score (the re-rank score: cosine of the descriptors;
    null when the search ranked by Hamming distance alone), label and path when known, image URL."""
    out: dict[str, Any] = {"id": hit.id, "distance": hit.distance, "score": hit.score}
    if hit.item.label is not None:
        out["label"] = hit.item.label
    if hit.item.path is not None:
        out["path"] = hit.item.path
    out["image_url"] = f"/items/{hit.id}/image"
    return out


def _query_of_json(body: dict[str, Any], service: Service) -> tuple[np.ndarray, np.ndarray | None]:
    """The query of a JSON search: the code uint8 (1, nbytes) of a stored item or of the body's
    hex, and the item's descriptor float32 (1, dim) when the collection re-ranks (else None)."""
    collection = service.collection
    if "code" in body:
        return parse_code(body["code"], collection.bits), None
    item_id = parse_item_id(body["id"])
    try:
        code = collection.code_of(item_id)[None, :]
        desc = collection.descriptor_of(item_id)[None, :] if collection.reranks else None
    except KeyError as exc:
        raise ApiError(404, "not_found", str(exc.args[0])) from None
    return code, desc


@router.post(
    "/search", openapi_extra=search_body(), summary="Search by an uploaded image, an id or a code"
)
async def search(
    request: Request,
    options: SearchOptionsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    """Multipart with one ``image`` part, or JSON ``{"id": ..., "k": ...}`` /
    ``{"code": "<hex>", "k": ...}``. Returns ``{"query_ms", "results": [{"id", "distance",
    "score", "label"?, "path"?, "image_url"}]}``, best first. A collection with descriptors
    re-ranks the ``candidates`` (k') nearest codes of an image or id search by descriptor
    (``score``: cosine similarity, 1 for the same image; then Hamming ``distance``, then
    id); a collection of binary ``instance`` descriptors ranks the union of the ``candidates``
    nearest codes and the ``descriptor_candidates`` nearest descriptors: copies (descriptor
    Hamming distance within the collection's copy radius) first, by that distance (``score = 1 -
    2 d / bits``), code distance and id, then the others by code distance, descriptor distance
    and id; otherwise (and for a search by code) results are by Hamming distance, ties by the
    smaller id, and ``score`` is null. With ``radius``, only items at Hamming distance <=
    radius."""
    t0 = time.perf_counter()
    if is_json(request.headers.get("content-type", "")):
        body = parse_search_json(await request.body())
        options = body_options(body, service.limits, options)
        code, desc = _query_of_json(body, service)
    else:
        files = await images_of(await read_form(request))
        if len(files) != 1:
            raise ApiError(
                400, "bad_request", f"{len(files)} images sent; use /search/batch for several"
            )
        code, desc, _ = await service.encode_uploads(files)
    hits = await service.search(code, options, t0, desc)
    return {
        "query_ms": round((time.perf_counter() - t0) * 1000.0, 3),
        "results": [hit_json(h) for h in hits[0]],
    }


@router.post(
    "/search/batch",
    summary="Search by several uploaded images",
    openapi_extra=multipart_images(),
)
async def search_batch(
    request: Request,
    options: SearchOptionsDep,
    service: ServiceDep,
) -> dict[str, Any]:
    """Multipart with several ``image`` parts; returns ``{"query_ms", "results": [[hit, ...],
    ...]}``, one result list per image, in the order sent."""
    t0 = time.perf_counter()
    files = await images_of(await read_form(request))
    codes, desc, _ = await service.encode_uploads(files)
    hits = await service.search(codes, options, t0, desc)
    return {
        "query_ms": round((time.perf_counter() - t0) * 1000.0, 3),
        "results": [[hit_json(h) for h in row] for row in hits],
    }
