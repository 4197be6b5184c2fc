import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deephash.cli.main import main
from deephash.codes import pack_bits, sign
from deephash.collection import Collection
from deephash.training import recipe
from deephash.training.runs import load_run


def info(folder: Path, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    assert main(["collection", "info", str(folder)]) == 0
    return json.loads(capsys.readouterr().out)


def test_create_add_remove_info(
    tiny_hash_run: Path, tiny_png_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    col = tmp_path / "col"
    assert main(["collection", "create", str(col), "--run", str(tiny_hash_run)]) == 0
    assert info(col, capsys)["count"] == 0
    loose = tmp_path / "loose.png"
    loose.write_bytes(next(tiny_png_folder.glob("c3/*.png")).read_bytes())
    capsys.readouterr()
    argv = ["collection", "add", str(col), str(tiny_png_folder), str(loose), "--label", "mine"]
    assert main([*argv, "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["ids"] == list(range(101)) and added["count"] == 101
    summary = info(col, capsys)
    assert summary["bits"] == 16 and summary["backend"] == "mih" and summary["next_id"] == 101
    folder_labels = {p.parent.name for p in tiny_png_folder.glob("*/*.png")}
    assert set(summary["labels"]) == folder_labels | {"mine"} and summary["labels"]["mine"] == 1
    with Collection.open(col, read_only=True, load_model=False) as c:
        first = sorted(tiny_png_folder.glob("c0/*.png"))[0]
        assert c.get(0).label == "c0" and c.get(0).path == str(first.resolve())
        assert c.get(100).path == str(loose.resolve())
    assert main(["collection", "remove", str(col), "3", "7"]) == 0
    assert "holds 99 items" in capsys.readouterr().out
    assert main(["collection", "remove", str(col), "4", "7"]) == 1
    assert "no item with id 7 in the collection; nothing was removed" in capsys.readouterr().err
    summary = info(col, capsys)
    assert summary["count"] == 99
    # code usage of the stored codes: buckets counted by hand from the codes themselves
    with Collection.open(col, read_only=True, load_model=False) as c:
        buckets: dict[bytes, int] = {}
        for row in c.codes:
            buckets[row.tobytes()] = buckets.get(row.tobytes(), 0) + 1
    usage = summary["code_usage"]
    assert (usage["num_codes"], usage["bits"]) == (99, 16)
    assert usage["distinct_codes"] == len(buckets)
    assert usage["largest_bucket"] == max(buckets.values())
    assert usage["mean_query_bucket"] == round(sum(n * (n - 1) for n in buckets.values()) / 99, 6)


def test_add_a_dataset_split(
    tiny_hash_run: Path, tiny_fmnist: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    col = tmp_path / "col"
    main(["collection", "create", str(col), "--run", str(tiny_hash_run), "--backend", "flat"])
    argv = ["collection", "add", str(col), "--dataset", "fashion-mnist", "--split", "query"]
    assert main([*argv, "--data-dir", str(tiny_fmnist), "--limit", "20"]) == 0
    run = load_run(tiny_hash_run)
    query = recipe.load_data(run.config).query
    with Collection.open(col, load_model=False) as c:
        np.testing.assert_array_equal(c.codes, pack_bits(sign(run.encode(query.images[:20]))))
        names = query.class_names
        assert [c.get(i).label for i in range(20)] == [names[int(y)] for y in query.labels[:20]]
        assert c.get(5).path == "fashion-mnist:query:5"
        assert (col / "images" / "5.png").is_file()


def test_snapshot_is_searchable_with_deephash_search(
    tiny_hash_run: Path, tiny_png_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    col = tmp_path / "col"
    main(["collection", "create", str(col), "--run", str(tiny_hash_run)])
    main(["collection", "add", str(col), str(tiny_png_folder)])
    query = sorted(tiny_png_folder.glob("c1/*.png"))[0]
    capsys.readouterr()
    assert main(["search", str(col / "index.dhx"), str(query), "-k", "5", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["results"]
    with Collection.open(col) as c:
        ref = c.search(c.encode(c.decode(query.read_bytes()).rgb[None]), 5)[0]
    assert [(h["id"], h["distance"]) for h in hits] == [(h.id, h.distance) for h in ref]


def test_errors_are_one_clear_line(
    tiny_hash_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    col = tmp_path / "col"
    assert main(["collection", "create", str(col), "--run", str(tiny_hash_run)]) == 0
    assert main(["collection", "create", str(col), "--run", str(tiny_hash_run)]) == 1
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["collection", "add", str(col), str(tmp_path / "missing.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main(["collection", "add", str(col), str(bad)]) == 1
    assert "not a readable image" in capsys.readouterr().err
    with Collection.open(col, load_model=False):  # a server or another writer holds it
        assert main(["collection", "remove", str(col), "0"]) == 1
        assert "in use by process" in capsys.readouterr().err
        assert main(["serve", str(col), "--port", "1"]) == 1
        assert "in use by process" in capsys.readouterr().err
        assert main(["collection", "info", str(col)]) == 0  # readers need no lock
    assert main(["collection", "info", str(tmp_path)]) == 1
    assert "not a deephash collection" in capsys.readouterr().err


def test_create_rerank_choices(
    tiny_hash_run: Path, tiny_png_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the default stores the recommended descriptor; info reports it with its bytes per item
    assert main(["collection", "create", str(tmp_path / "a"), "--run", str(tiny_hash_run)]) == 0
    assert "re-ranking 4096 Hamming candidates by early-stages" in capsys.readouterr().out
    rerank = info(tmp_path / "a", capsys)["rerank"]
    assert rerank["descriptor"] == "early-stages" and rerank["candidates"] == 4096
    assert rerank["bytes_per_item"] == 2 * rerank["dim"] == 2 * 9 * (32 + 64)
    argv = ["collection", "create", str(tmp_path / "b"), "--run", str(tiny_hash_run)]
    assert main([*argv, "--rerank", "backbone", "--candidates", "100"]) == 0
    assert info(tmp_path / "b", capsys)["rerank"]["candidates"] == 100
    argv = ["collection", "create", str(tmp_path / "c"), "--run", str(tiny_hash_run)]
    assert main([*argv, "--rerank", "none"]) == 0
    assert info(tmp_path / "c", capsys)["rerank"] is None
    argv = ["collection", "create", str(tmp_path / "d"), "--run", str(tiny_hash_run)]
    assert main([*argv, "--rerank", "sift"]) == 1
    assert "unknown re-rank descriptor 'sift'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_create_on_a_milvus_server_with_ivf(
    tiny_hash_run: Path, tmp_path: Path, milvus_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    col = tmp_path / "ivf"
    argv = ["collection", "create", str(col), "--run", str(tiny_hash_run), "--backend", "milvus"]
    uri = str(milvus_server.uri)
    assert main([*argv, "--uri", uri, "--milvus-collection", "cli_ivf",
                 "--milvus-index", "BIN_IVF_FLAT", "--nlist", "4", "--nprobe", "2"]) == 0  # fmt: skip
    settings = json.loads((col / "collection.json").read_text())
    assert settings["milvus_collection"] == "cli_ivf"
    assert settings["milvus_index"] == {"index_type": "BIN_IVF_FLAT", "nlist": 4, "nprobe": 2}
    assert info(col, capsys)["uri"] == uri
