"""Building indexes by name through the index registry, and loading them from files."""

import numpy as np
import pytest

from deephash.index import (
    FaissBinaryIndex,
    HammingIndex,
    MilvusBinaryIndex,
    MultiIndexHashing,
    create_index,
    list_indexes,
    load_index,
)
from deephash.index.registry import INDEXES, index_class


def test_every_backend_is_registered_under_the_name_it_saves() -> None:
    expected = {
        "faiss": FaissBinaryIndex,
        "flat": HammingIndex,
        "mih": MultiIndexHashing,
        "milvus": MilvusBinaryIndex,
    }
    assert INDEXES.names() == sorted(expected)
    for name, cls in expected.items():
        assert index_class(name) is cls and cls.backend == name
    assert list_indexes() == ["faiss:<factory>", "flat", "mih", "milvus:<uri>"]


@pytest.mark.parametrize("name", ["ivf", "flat:", "flat:x", "mih:3", "faiss", "milvus", ":flat"])
def test_unknown_names_list_the_known_ones(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown index .* choose one of .*'milvus:<uri>'"):
        create_index(name, 16)


def test_a_missing_argument_after_the_colon_says_what_to_give() -> None:
    with pytest.raises(ValueError, match="give a faiss factory string after 'faiss:'"):
        create_index("faiss:", 16)
    with pytest.raises(ValueError, match="give a Milvus URI after 'milvus:'"):
        create_index("milvus:", 16)


@pytest.mark.parametrize("name", ["flat", "mih", "faiss:BFlat"])
def test_create_and_load_every_in_memory_backend(refs, name: str, tmp_path) -> None:
    if name.startswith("faiss"):
        pytest.importorskip("faiss")
    with pytest.raises(ValueError, match=f"bad options for index '{name.partition(':')[0]}'"):
        create_index(name, 16, no_such_option=1)
    rng = np.random.default_rng(2)
    x = refs["clustered"](rng, 50, 16)
    index = create_index(name, 16)
    assert type(index) is index_class(name.partition(":")[0])
    index.add(x)
    index.save(tmp_path / "i.dhi")
    back = load_index(tmp_path / "i.dhi")
    assert type(back) is type(index) and back.ntotal == 50
    for got, want in zip(back.search(x[:5], 4), refs["knn"](x[:5], x, np.arange(50), 4)):
        np.testing.assert_array_equal(got, want)
