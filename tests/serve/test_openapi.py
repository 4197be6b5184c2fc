"""The request bodies described for /docs, and where the app's schema shows them."""

from __future__ import annotations

from fastapi.testclient import TestClient

from deephash.serve.openapi import multipart_images, search_body


def test_multipart_images_lists_the_extra_fields() -> None:
    body = multipart_images(label={"type": "string"})["requestBody"]
    assert body["required"] is True
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"] == {
        "image": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "label": {"type": "string"},
    }


def test_the_app_schema_shows_the_bodies(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    content = paths["/search"]["post"]["requestBody"]["content"]
    want = search_body()["requestBody"]["content"]
    assert set(content) == {"multipart/form-data", "application/json"}
    assert (
        content["application/json"]["schema"]["properties"]
        == (want["application/json"]["schema"]["properties"])
    )
    items = paths["/items"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(items["properties"]) == {"image", "label"}
    assert set(paths["/search/batch"]["post"]["requestBody"]["content"]) == {"multipart/form-data"}
