"""``/items``: add images, read an item's metadata or stored image, pick one at random, remove
one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from deephash.collection.items import new_items
from deephash.serve.dependencies import (
    ReadableItemId,
    RemovableItemId,
    ServiceDep,
    require_reader,
    require_writer,
)
from deephash.serve.errors import ApiError
from deephash.serve.openapi import multipart_images
from deephash.serve.parsing import images_of, labels_of, read_form
from deephash.serve.service import Service

__all__ = ["item_json", "router"]

router = APIRouter()


def item_json(service: Service, item_id: int) -> dict[str, Any]:
    """An item's metadata as JSON, with its packed code in hex and its image URL (404 if
    unknown)."""
    try:
        item = service.collection.get(item_id)
        code = service.collection.code_of(item_id)
    except KeyError as exc:
        raise ApiError(404, "not_found", str(exc.args[0])) from None
    return {**item.to_json(), "code": code.tobytes().hex(), "image_url": f"/items/{item_id}/image"}


@router.post(
    "/items",
    status_code=201,
    summary="Add images",
    openapi_extra=multipart_images(label={"type": "array", "items": {"type": "string"}}),
    dependencies=[Depends(require_writer)],
)
async def add_items(request: Request, service: ServiceDep) -> dict[str, Any]:
    """Multipart: one or more ``image`` parts and optional ``label`` fields (none, one for
    all, or one per image). Answers ``{"ids": [...]}`` once the items are on disk."""
    form = await read_form(request)
    files = await images_of(form)
    labels = labels_of(form, len(files))
    codes, desc, decoded = await service.encode_uploads(files)
    new = new_items(
        codes,
        desc,
        [f[0] for f in files],
        [d.suffix for d in decoded],
        labels,
        [f[1] for f in files],
    )
    ids = await service.write(service.collection.add, new)
    return {"ids": ids}


@router.get("/items/random", summary="A random item", dependencies=[Depends(require_reader)])
async def random_item(service: ServiceDep) -> dict[str, Any]:
    try:
        item_id = service.collection.random_id()
    except KeyError:
        raise ApiError(404, "not_found", "the collection is empty; add images first") from None
    return item_json(service, item_id)


@router.get("/items/{item_id}", summary="An item's metadata")
async def get_item(item_id: ReadableItemId, service: ServiceDep) -> dict[str, Any]:
    return item_json(service, item_id)


@router.get("/items/{item_id}/image", summary="An item's stored image", response_model=None)
async def get_image(item_id: ReadableItemId, service: ServiceDep) -> Response:
    try:
        path = service.collection.image_file(item_id)
    except KeyError as exc:
        raise ApiError(404, "not_found", str(exc.args[0])) from None
    if path is None or not path.is_file():
        raise ApiError(404, "not_found", f"item {item_id} has no stored image")
    return FileResponse(path, headers={"Cache-Control": "public, max-age=86400"})


@router.delete("/items/{item_id}", summary="Remove an item")
async def delete_item(item_id: RemovableItemId, service: ServiceDep) -> dict[str, Any]:
    try:
        await service.write(service.collection.remove, [item_id])
    except KeyError as exc:
        raise ApiError(404, "not_found", str(exc.args[0])) from None
    return {"id": item_id, "removed": True}
