"""The OpenAPI pieces FastAPI cannot infer: the routes read their bodies themselves (a multipart
form of images, or JSON), so their request bodies are described here for ``/docs``."""

from __future__ import annotations

from typing import Any

__all__ = ["DESCRIPTION", "TITLE", "multipart_images", "search_body"]

TITLE = "deephash image search"
DESCRIPTION = (
    "Search a deephash collection by image, by item or by code; add and remove "
    'items. Errors are JSON {"error", "detail"}.'
)


def multipart_images(**fields: dict[str, Any]) -> dict[str, Any]:
    """OpenAPI request body: multipart with one or more ``image`` files, plus ``fields``."""
    image = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "properties": {"image": image, **fields}}
                }
            },
        }
    }


def search_body() -> dict[str, Any]:
    """OpenAPI request body of ``/search``: one uploaded image, or JSON naming an item or a code."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {"image": {"type": "string", "format": "binary"}},
                        "required": ["image"],
                    }
                },
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer", "description": "search by a stored item"},
                            "code": {"type": "string", "description": "packed code, hex"},
                            "k": {"type": "integer"},
                            "radius": {"type": "integer"},
                            "candidates": {
                                "type": "integer",
                                "description": "Hamming candidates to re-rank (k')",
                            },
                            "descriptor_candidates": {
                                "type": "integer",
                                "description": "instance descriptors: nearest descriptors "
                                "ranked with the nearest codes",
                            },
                        },
                    }
                },
            },
        }
    }
