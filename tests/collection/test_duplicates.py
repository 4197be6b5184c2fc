from pathlib import Path

import numpy as np
import pytest

from deephash.cli.main import main
from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection
from deephash.collection.duplicates import find_duplicates, group_pairs
from deephash.data.copies import apply_copy_transform
from deephash.data.image_folder import list_image_folder


def brute_force_pairs(col: Collection, radius: int, min_score: float) -> list[tuple[int, int]]:
    ham = hamming_distance_matrix(col.codes, col.codes)
    d = col.descriptors.astype(np.float64)  # type: ignore[union-attr]
    sq = ((d[:, None, :] - d[None, :, :]) ** 2).sum(-1)
    ok = (ham <= radius) & (1 - sq / 2 >= min_score)
    ids = col.ids
    return sorted((int(ids[i]), int(ids[j])) for i, j in zip(*np.nonzero(np.triu(ok, 1))))


@pytest.fixture()
def planted(tiny_hash_run: Path, tiny_png_folder: Path, tmp_path: Path) -> Path:
    """40 test images, then an exact copy of item 3 and a brightened copy of item 9."""
    from PIL import Image

    paths, _, _ = list_image_folder(tiny_png_folder)
    folder = tmp_path / "col"
    images = [np.asarray(Image.open(p).convert("L")) for p in paths[:40]]
    with Collection.create(folder, tiny_hash_run, rerank="early-stages") as col:
        col.add_images([p.read_bytes() for p in paths[:40]])
        bright = apply_copy_transform("brightness-1.15", images[9][None])[0]
        extra = tmp_path / "bright.png"
        Image.fromarray(bright).save(extra)
        col.add_images([paths[3].read_bytes(), extra.read_bytes()], paths=["copy3", "bright9"])
    return folder


def test_groups_equal_brute_force_pairs(planted: Path) -> None:
    with Collection.open(planted, load_model=False) as col:
        for radius, min_score in ((16, 0.999), (4, 0.98), (16, 0.9)):
            found = find_duplicates(col, radius=radius, min_score=min_score, neighbours=100)
            assert found.pairs == brute_force_pairs(col, radius, min_score)
            assert group_pairs(found.groups) >= set(found.pairs)
        strict = find_duplicates(col, radius=16, min_score=0.999)
        assert [3, 40] in strict.groups  # the exact copy
        loose = find_duplicates(col, radius=16, min_score=0.98)
        assert any({9, 41} <= set(g) for g in loose.groups)  # the brightened copy


def test_cli_and_errors(
    planted: Path, tiny_hash_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["collection", "duplicates", str(planted), "--min-score", "0.999"]) == 0
    out = capsys.readouterr().out
    assert "group 1 (2 items):" in out and "copy3" in out
    assert main(["collection", "duplicates", str(planted), "--json", "--min-score", "0.999"]) == 0
    assert '"groups": [[3, 40]]' in capsys.readouterr().out
    with Collection.create(tmp_path / "plain", tiny_hash_run, rerank=None) as col:
        col.add_images([(planted / "images" / "3.png").read_bytes()] * 2)
        assert find_duplicates(col, radius=0).groups == [[0, 1]]
        with pytest.raises(ValueError, match="stores no descriptors"):
            find_duplicates(col, min_score=0.9)
        with pytest.raises(ValueError, match="radius"):
            find_duplicates(col, radius=-1)
