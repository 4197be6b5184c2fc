from pathlib import Path

import numpy as np
import pytest

from deephash.cli.main import main
from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection, NewItem
from deephash.collection.duplicates import default_max_distance, find_duplicates, group_pairs
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


def reference_groups(col: Collection, max_distance: int, neighbours: int, radius: int | None):  # type: ignore[no-untyped-def]
    """Brute force on instance bits: each item with its ``neighbours`` nearest other items by
    (descriptor Hamming distance, id) at most ``max_distance`` bits away (and codes within
    ``radius`` when given); groups = the connected components of those pairs (by search)."""
    ids, bits = col.ids, np.unpackbits(col.descriptors, axis=1).astype(np.int64)  # type: ignore[arg-type]
    dd = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    dc = hamming_distance_matrix(col.codes, col.codes)
    pairs = set()
    for p in range(len(ids)):
        others = sorted((int(dd[p, q]), int(ids[q]), q) for q in range(len(ids)) if q != p)
        for d, j, q in others[:neighbours]:
            if d <= max_distance and (radius is None or dc[p, q] <= radius):
                pairs.add((min(int(ids[p]), j), max(int(ids[p]), j)))
    links: dict[int, set[int]] = {}
    for i, j in pairs:
        links.setdefault(i, set()).add(j)
        links.setdefault(j, set()).add(i)
    groups, seen = [], set()
    for start in sorted(links):
        if start in seen:
            continue
        group, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i not in group:
                group.add(i)
                todo.extend(links[i] - group)
        seen |= group
        groups.append(sorted(group))
    return sorted(pairs), groups


@pytest.fixture()
def instance_collection(tiny_instance_run: Path, tmp_path: Path) -> Path:
    """120 items of 64 instance bits in clusters (0 to 12 bits from a centre: many ties, groups
    that chain) whose class codes are random (a copy's code may differ from its source's), some
    exact copies, then 7 items removed."""
    rng = np.random.default_rng(3)
    centres = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    desc = centres[rng.integers(0, 8, 120)]
    for row in desc:
        for b in rng.integers(0, 64, rng.integers(0, 13)):
            row[b // 8] ^= np.uint8(1 << (b % 8))
    desc[100:110] = desc[:10]  # exact copies
    codes = rng.integers(0, 256, (120, 2), dtype=np.uint8)
    folder = tmp_path / "inst"
    with Collection.create(folder, tiny_instance_run, rerank="instance") as col:
        col.add(
            [NewItem(c, descriptor=d, label=f"x{i}") for i, (c, d) in enumerate(zip(codes, desc))]
        )
        col.remove([5, 17, 40, 41, 63, 100, 119])
    return folder


def test_instance_groups_equal_brute_force(instance_collection: Path) -> None:
    with Collection.open(instance_collection, read_only=True, load_model=False) as col:
        assert col.binary_descriptor and col.descriptor_dim == 64
        checked = 0
        for t, nb, radius in ((0, 1, None), (2, 1, None), (4, 1, None), (5, 3, None),
                              (8, 200, None), (12, 2, None), (6, 2, 7)):  # fmt: skip
            pairs, groups = reference_groups(col, t, nb, radius)
            found = find_duplicates(col, max_distance=t, neighbours=nb, radius=radius, batch=37)
            assert found.pairs == pairs, (t, nb, radius)
            assert found.groups == groups, (t, nb, radius)
            checked += bool(groups)
        assert checked >= 5  # the settings do find groups
        # the default: 3 of 64 bits; a min-score stands for the distance it allows (1 - 2 d / 64)
        pairs, groups = reference_groups(col, 3, 1, None)
        assert default_max_distance(64) == 3 and default_max_distance(128) == 6
        assert find_duplicates(col).groups == groups
        assert (
            find_duplicates(col, min_score=1 - 2 * 3 / 64).pairs
            == reference_groups(col, 3, 1, None)[0]
        )
        # codes play no part by default: pairs of exact copies whose codes differ are found
        assert any({2, 102} <= set(g) for g in find_duplicates(col, max_distance=0).groups)
        assert col.code_of(2).tolist() != col.code_of(102).tolist()


def test_instance_errors_and_cli(
    instance_collection: Path, planted: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in instance_collection.rglob("*"))
    with Collection.open(instance_collection, read_only=True, load_model=False) as col:
        for bad, match in ((-1, "max_distance must be >= 0"), (2.5, "whole number"),
                           (True, "whole number"), (65, "at most 64")):  # fmt: skip
            with pytest.raises(ValueError, match=match):
                find_duplicates(col, max_distance=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="not both"):
            find_duplicates(col, max_distance=2, min_score=0.9)
        with pytest.raises(ValueError, match="radius must be >= 0"):
            find_duplicates(col, radius=-1)
        with pytest.raises(ValueError, match="neighbours must be >= 1"):
            find_duplicates(col, neighbours=0)
        groups = reference_groups(col, 3, 1, None)[1]
    with Collection.open(planted, load_model=False) as col:
        with pytest.raises(ValueError, match="stores no instance bits"):
            find_duplicates(col, max_distance=2)
    capsys.readouterr()
    assert main(["collection", "duplicates", str(instance_collection), "--max-distance", "3",
                 "--json"]) == 0  # fmt: skip
    assert f'"groups": {groups}' in capsys.readouterr().out
    assert main(["collection", "duplicates", str(instance_collection), "--max-distance", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{len(groups)} groups of near duplicates" in out and "[x2]" in out
    for argv, message in ((["--max-distance", "-2"], "max_distance must be >= 0"),
                          (["--max-distance", "99"], "at most 64"),
                          (["--max-distance", "2", "--min-score", "0.9"], "not both")):  # fmt: skip
        assert main(["collection", "duplicates", str(instance_collection), *argv]) == 1
        assert message in capsys.readouterr().err
    assert main(["collection", "duplicates", str(planted), "--max-distance", "2"]) == 1
    assert "stores no instance bits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["collection", "duplicates", str(instance_collection), "--max-distance", "2.5"])
    assert "invalid int value" in capsys.readouterr().err
    after = sorted((p.name, p.stat().st_mtime_ns) for p in instance_collection.rglob("*"))
    assert after == before  # read only: nothing written, on error or not
