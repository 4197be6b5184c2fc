import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from deephash.cli.main import main
from deephash.codes import hamming_distance_matrix, pack_bits, sign
from deephash.index import load_index


@pytest.fixture(scope="module")
def hash_run(tmp_path_factory: pytest.TempPathFactory, tiny_config_values: dict) -> Path:
    root = tmp_path_factory.mktemp("hrun")
    cfg = root / "c.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config_values, "loss": "dtsh", "bits": 16, "epochs": 2}))
    assert main(["train", "--config", str(cfg), "--out", str(root / "run")]) == 0
    return root / "run"


def test_build_from_dataset_then_search_images(
    hash_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    index_file = tmp_path / "db.index"
    assert (
        main(
            [
                "index",
                "build",
                str(hash_run),
                "--dataset",
                "fashion-mnist",
                "--out",
                str(index_file),
            ]
        )
        == 0
    )
    index = load_index(index_file)
    emb = np.load(hash_run / "embeddings.npz")
    db_codes = pack_bits(sign(emb["database"]))
    assert index.ntotal == len(db_codes) and index.bits == 16
    np.testing.assert_array_equal(index.metadata["label"], emb["database_labels"])

    # query images written as PNG files go through the same model
    q_images = _query_images(hash_run)
    files = []
    for i in range(3):
        f = tmp_path / f"q{i}.png"
        Image.fromarray(q_images[i]).save(f)
        files.append(str(f))
    capsys.readouterr()
    assert main(["search", str(index_file), *files, "-k", "5", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3
    q_codes = pack_bits(sign(emb["query"][:3]))
    d = hamming_distance_matrix(q_codes, db_codes)
    for qi, r in enumerate(results):
        ids = [h["id"] for h in r["results"]]
        dists = [h["distance"] for h in r["results"]]
        # brute force: stable sort by (distance, id)
        order = np.lexsort((np.arange(d.shape[1]), d[qi]))[:5]
        assert ids == order.tolist() and dists == d[qi, order].tolist()
        assert all("label" in h and "class" in h for h in r["results"])

    # radius search is inclusive of r and matches brute force
    assert main(["search", str(index_file), files[0], "--radius", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)[0]["results"]
    assert sorted(h["id"] for h in hits) == np.flatnonzero(d[0] <= 2).tolist()

    assert main(["search", str(index_file), files[0], "-k", "2"]) == 0
    text = capsys.readouterr().out
    assert "distance" in text and "label=" in text


def _query_images(run: Path) -> np.ndarray:
    from deephash.training import recipe
    from deephash.training.runs import load_run

    return recipe.load_data(load_run(run).config).query.images


def test_build_from_image_folder(hash_run: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs" / "a"
    folder.mkdir(parents=True)
    imgs = _query_images(hash_run)[:4]
    for i, im in enumerate(imgs):
        Image.fromarray(im).convert("RGB").save(
            folder / f"{i}.jpg" if i % 2 else folder / f"{i}.png"
        )
    out = tmp_path / "f.index"
    assert (
        main(
            [
                "index",
                "build",
                str(hash_run),
                "--images",
                str(tmp_path / "imgs"),
                "--out",
                str(out),
                "--backend",
                "mih",
            ]
        )
        == 0
    )
    index = load_index(out)
    assert index.ntotal == 4
    assert [Path(p).name for p in index.metadata["path"]] == ["0.png", "1.jpg", "2.png", "3.jpg"]


def test_errors(hash_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "index",
                "build",
                str(hash_run),
                "--images",
                str(tmp_path / "none"),
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 1
    )
    assert "does not exist" in capsys.readouterr().err
    index_file = tmp_path / "db.index"
    main(["index", "build", str(hash_run), "--dataset", "fashion-mnist", "--out", str(index_file)])
    assert main(["search", str(index_file), str(tmp_path / "missing.png")]) == 1
    assert "does not exist" in capsys.readouterr().err
    index_file.write_bytes(index_file.read_bytes()[:100])
    assert main(["search", str(index_file), str(tmp_path / "missing.png")]) == 1
    assert "truncated" in capsys.readouterr().err
