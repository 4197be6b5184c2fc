"""The index contract: every backend refuses bad input with the same words, and a backend must
implement the whole contract before it can be built."""

import numpy as np
import pytest

from deephash.index import BinaryIndex, InMemoryIndex, create_index, list_indexes


def test_errors_are_clear(refs) -> None:
    index = create_index("flat", 64)
    x = refs["random"](np.random.default_rng(0), 5, 64)
    with pytest.raises(ValueError, match="empty"):
        index.search(x, 1)
    with pytest.raises(ValueError, match="uint8"):
        index.add(x.astype(np.int64))
    with pytest.raises(ValueError, match=r"shape \(n, 8\)"):
        index.add(x[:, :4])
    index.add(x)
    with pytest.raises(ValueError, match="more than once"):
        index.add(x[:2], ids=[1, 1])
    with pytest.raises(ValueError, match="more than once"):
        index.add(x[:1], ids=[3])
    with pytest.raises(ValueError, match=">= 0"):
        index.add(x[:1], ids=[-5])
    with pytest.raises(ValueError, match="k must be"):
        index.search(x, 0)
    with pytest.raises(ValueError, match="beyond bit"):
        create_index("flat", 12).add(np.full((1, 2), 255, np.uint8))
    with pytest.raises(ValueError, match="unknown index"):
        create_index("ivf", 64)
    with pytest.raises(ValueError, match="bad options"):
        create_index("flat", 64, num_tables=3)
    assert "mih" in list_indexes()


def test_the_contract_is_abstract_and_a_backend_implements_all_of_it() -> None:
    with pytest.raises(TypeError, match="abstract"):
        BinaryIndex(8)  # type: ignore[abstract]

    class Partial(BinaryIndex):  # storage-less: no state, no search, no save
        def add(self, codes, ids=None, metadata=None) -> None:
            pass

    with pytest.raises(TypeError, match="search"):
        Partial(8)  # type: ignore[abstract]
    assert not InMemoryIndex.__abstractmethods__  # the in-memory storage implements every member


@pytest.mark.parametrize("bits", [0, -8, 8.0, True, "8"])
def test_bits_must_be_a_positive_integer(bits) -> None:
    with pytest.raises(ValueError, match="bits must be a positive integer"):
        create_index("flat", bits)
