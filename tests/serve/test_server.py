"""`serve`'s warm-up: the first request pays neither for the model's first pass nor for compiling
the search kernels."""

from pathlib import Path
from typing import Any

import pytest

from deephash.collection import Collection
from deephash.index.errors import EngineUnavailableError
from deephash.serve.server import warm_up


def _spy(col: Collection, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {"encode": [], "search_by_id": []}
    for name in calls:
        real = getattr(col, name)

        def record(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            calls[_name].append(args)
            return _real(*args, **kwargs)

        monkeypatch.setattr(col, name, record)
    return calls


def test_warm_up_encodes_once_and_searches_by_the_first_stored_item(
    collection_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Collection.open(collection_dir) as col:
        col.remove([0, 1])
        calls = _spy(col, monkeypatch)
        warm_up(col)
        assert len(calls["encode"]) == 1 and calls["encode"][0][0].shape[0] == 1
        assert calls["search_by_id"] == [(2, 1)]  # the smallest id still stored


def test_warm_up_of_an_empty_collection_only_encodes(
    tmp_path: Path, tiny_hash_run: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Collection.create(tmp_path / "empty", tiny_hash_run) as col:
        calls = _spy(col, monkeypatch)
        warm_up(col)
        assert len(calls["encode"]) == 1 and calls["search_by_id"] == []


def test_an_engine_down_at_start_does_not_stop_the_warm_up(
    collection_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*args: Any, **kwargs: Any) -> Any:
        raise EngineUnavailableError("engine down")

    with Collection.open(collection_dir) as col:
        monkeypatch.setattr(col, "search_by_id", down)
        warm_up(col)  # no error: searches answer 503 until the engine is back
        monkeypatch.setattr(col, "search_by_id", lambda *a, **k: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            warm_up(col)  # any other failure is not hidden
