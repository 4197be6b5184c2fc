"""The service the routes share: storage failures as 507 / 503, latency recorded, encodings equal
the run's own."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from deephash.codes import hamming_distance_matrix, pack_bits, sign
from deephash.collection import Collection
from deephash.serve.errors import ApiError
from deephash.serve.parsing import SearchOptions
from deephash.serve.service import Service
from deephash.training.runs import load_run


@pytest.fixture()
def service(collection_dir: Path) -> Iterator[Service]:
    col = Collection.open(collection_dir)
    s = Service(col, max_k=30, max_batch=4)
    try:
        yield s
    finally:
        s.close()
        col.close()


def fail(code: int) -> None:
    raise OSError(code, "injected")


def test_write_turns_storage_failures_into_api_errors(service: Service) -> None:
    assert asyncio.run(service.write(lambda a, b: a + b, 2, 3)) == 5
    for code, status, name in (
        (errno.ENOSPC, 507, "insufficient_storage"),
        (errno.EDQUOT, 507, "insufficient_storage"),
        (errno.EIO, 503, "storage_error"),
    ):
        with pytest.raises(ApiError) as err:
            asyncio.run(service.write(fail, code))
        assert (err.value.status, err.value.code) == (status, name)
    with pytest.raises(KeyError):  # not a storage failure: for the route to answer
        asyncio.run(service.write(lambda: {}[1]))


def test_encode_and_search(
    service: Service, tiny_hash_run: Path, png_files: list[tuple[Path, str]]
) -> None:
    paths = [p for p, _ in png_files[60:66]]
    model = load_run(tiny_hash_run)
    want = pack_bits(sign(model.encode(model.load_images(paths))))
    files = [(p.read_bytes(), p.name) for p in paths]
    codes, desc, decoded = asyncio.run(service.encode_uploads(files))
    assert desc is None and len(decoded) == 6
    np.testing.assert_array_equal(codes, want)
    assert service.limits.max_k == 30 and service.limits.bits == 16
    hits = asyncio.run(service.search(codes, SearchOptions(5, None, None), time.perf_counter()))
    col = service.collection
    d = hamming_distance_matrix(codes, col.codes)
    for row, dist in zip(hits, d, strict=True):
        order = np.lexsort((col.ids, dist))[:5]
        assert [(h.id, h.distance) for h in row] == [(int(col.ids[i]), int(dist[i])) for i in order]
    assert service.latency.total == 1
    with pytest.raises(ApiError) as err:
        asyncio.run(service.encode_uploads([(b"not an image", "x.png")]))
    assert (err.value.status, err.value.code) == (400, "invalid_image")
