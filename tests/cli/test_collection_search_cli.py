"""``deephash collection create`` with instance descriptors by default, and ``deephash
collection search`` by image, id and code: the same answers as the library."""

import json
from pathlib import Path

import pytest

from deephash.cli.main import main
from deephash.collection import Collection


@pytest.fixture(autouse=True)
def torch_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPHASH_ENCODER", "torch")


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def triples(hits: list) -> list[list]:  # type: ignore[type-arg]
    return [[h.id, h.distance, h.score] for h in hits]


def test_instance_by_default_and_search_as_the_library(
    tiny_instance_run: Path,
    tiny_png_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    col = tmp_path / "col"
    assert main(["collection", "create", str(col), "--run", str(tiny_instance_run)]) == 0
    out = capsys.readouterr().out
    assert "32 nearest codes and 32 nearest instance descriptors" in out
    assert "(64 bits, 8 bytes per item)" in out
    assert main(["collection", "add", str(col), str(tiny_png_folder)]) == 0
    info = run_json(["collection", "info", str(col)], capsys)
    assert isinstance(info, dict)
    rerank = info["rerank"]
    assert (rerank["descriptor"], rerank["dtype"], rerank["bytes_per_item"]) == (
        "instance",
        "bits",
        8,
    )
    assert rerank["memory_bytes_per_item"] == 8 and rerank["descriptor_candidates"] == 32
    image = sorted(tiny_png_folder.glob("c4/*.png"))[2]
    base = ["collection", "search", str(col), "-k", "6", "--json"]
    by_image = run_json(
        ["collection", "search", str(col), str(image), "-k", "6", "--json", "--candidates", "4"],
        capsys,
    )
    by_id = run_json([*base, "--id", "17", "--descriptor-candidates", "5"], capsys)
    with Collection.open(col, read_only=True) as c:
        code = c.code_of(17).tobytes().hex()
        by_code = run_json([*base, "--code", code], capsys)
        codes, bits = c.encode_with_descriptors(c.decode(image.read_bytes()).rgb[None])
        want_image = c.search(codes, 6, descriptors=bits, candidates=4)[0]
        want_id = c.search_by_id(17, 6, descriptor_candidates=5)
        want_code = c.search(c.code_of(17)[None], 6)[0]
    assert isinstance(by_image, list) and isinstance(by_id, list) and isinstance(by_code, list)
    got = [
        [[h["id"], h["distance"], h["score"]] for h in r["results"]]
        for r in (by_image[0], by_id[0], by_code[0])
    ]
    assert got == [triples(want_image), triples(want_id), triples(want_code)]
    assert by_id[0]["results"][0]["score"] == 1.0 and by_code[0]["results"][0]["score"] is None
    assert all(len(g) == 6 for g in got)
    capsys.readouterr()
    assert main(["collection", "search", str(col), "--id", "17", "-k", "2"]) == 0
    assert "score 1.0000 distance 0" in capsys.readouterr().out


def test_bad_requests_are_one_clear_line(
    tiny_instance_run: Path, tiny_hash_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["collection", "create", str(tmp_path / "a"), "--run", str(tiny_hash_run)]
    assert main([*argv, "--rerank", "instance"]) == 1
    assert "needs a network trained with instance outputs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())
    assert main([*argv, "--descriptor-candidates", "8"]) == 1
    assert "--descriptor-candidates is for --rerank instance" in capsys.readouterr().err
    col = tmp_path / "col"
    argv = ["collection", "create", str(col), "--run", str(tiny_instance_run)]
    assert main([*argv, "--rerank", "early-stages"]) == 0  # float16 stays available
    with Collection.open(col, load_model=False) as c:
        assert c.descriptor == "early-stages" and not c.binary_descriptor
        dim = c.descriptor_dim
        c.add([])
    assert main(["collection", "search", str(col), "--id", "0"]) == 1
    assert "no item with id 0" in capsys.readouterr().err
    assert main(["collection", "search", str(col)]) == 1
    assert "give image files, --id ID or --code HEX" in capsys.readouterr().err
    assert main(["collection", "search", str(col), "--code", "zz"]) == 1
    assert "not hexadecimal" in capsys.readouterr().err
    search = ["collection", "search", str(col), "--code"]
    assert main([*search, "00"]) == 1
    assert "shape (n, 2) for 16-bit codes" in capsys.readouterr().err
    assert main([*search, "0000", "--descriptor-candidates", "3"]) == 1
    err = capsys.readouterr().err
    assert "descriptor_candidates is for a collection of binary descriptors" in err
    assert dim == 9 * (32 + 64)  # the float kind's width is as before
