import numpy as np
import pytest

from deephash.index import create_index, load_index

BACKENDS = ["flat", "mih", "faiss:BFlat"]


def _built(refs, name: str):
    rng = np.random.default_rng(5)
    x = refs["clustered"](rng, 300, 48)
    index = create_index(name, 48)
    ids = np.arange(300) * 3 + 1
    meta = {"path": [f"img/{j}.jpg" for j in range(300)], "label": np.arange(300) % 7}
    index.add(x, ids=ids, metadata=meta)
    return index, x


@pytest.mark.parametrize("name", BACKENDS)
def test_round_trip_gives_identical_results(refs, tmp_path, name: str) -> None:
    if name.startswith("faiss"):
        pytest.importorskip("faiss")
    index, x = _built(refs, name)
    path = tmp_path / "sub" / "index.dhi"
    index.save(path)
    loaded = load_index(path)
    assert type(loaded) is type(index) and loaded.ntotal == 300 and loaded.bits == 48
    for a, b in zip(index.search(x[:30], 9), loaded.search(x[:30], 9)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(index.range_search(x[:30], 6), loaded.range_search(x[:30], 6)):
        np.testing.assert_array_equal(a, b)
    meta = loaded.metadata_for([4, 301])
    assert meta["path"].tolist() == ["img/1.jpg", "img/100.jpg"]
    assert meta["label"].tolist() == [1, 100 % 7]
    assert not list(tmp_path.glob("sub/*.tmp"))  # the temporary file was moved into place


def test_truncated_flipped_and_foreign_files_are_clear_errors(refs, tmp_path) -> None:
    index, _ = _built(refs, "flat")
    path = tmp_path / "index.dhi"
    index.save(path)
    raw = path.read_bytes()
    bad = tmp_path / "bad.dhi"
    for cut in (0, 5, 20, 27, len(raw) // 3, len(raw) - 1):
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"bad\.dhi"):
            load_index(bad)
    for pos in (2, 10, 40, len(raw) // 2, len(raw) - 1):
        flipped = bytearray(raw)
        flipped[pos] ^= 0x10
        bad.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match=r"bad\.dhi"):
            load_index(bad)
    bad.write_bytes(raw + b"extra")
    with pytest.raises(ValueError, match="trailing"):
        load_index(bad)
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="magic"):
        load_index(bad)
    with pytest.raises(FileNotFoundError):
        load_index(tmp_path / "missing.dhi")
