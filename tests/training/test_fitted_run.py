"""The ITQ / LSH rows of a study save a servable model: encoding an image through the saved run
gives the codes the row reported for it, and a collection built on it finds an item's own image."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from deephash.cli.main import main
from deephash.codes import pack_bits, sign
from deephash.collection import Collection
from deephash.training import recipe
from deephash.training.baselines import run_baseline
from deephash.training.runs import load_run


def _itq_row(tiny_fmnist: Path, tiny_hash_run: Path, **extra: object) -> dict[str, object]:
    """An ITQ row on the L2-normalised backbone features of a trained run, unseen classes."""
    return {
        "method": "itq",
        "bits": 16,
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "protocol": "fashion-mnist-unseen",
        "backbone": "small-cnn",
        "weights": str(tiny_hash_run),
        "normalize": True,
        "device": "cpu",
        **extra,
    }


@pytest.fixture(scope="module")
def itq_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_fmnist: Path, tiny_hash_run: Path
) -> Path:
    out = tmp_path_factory.mktemp("itq") / "seed0"
    run_baseline(_itq_row(tiny_fmnist, tiny_hash_run), out)
    return out


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def test_the_saved_itq_run_encodes_images_to_the_codes_the_row_reported(itq_run: Path) -> None:
    cfg = yaml.safe_load((itq_run / "config.yaml").read_text())
    assert cfg["head"] == "projection" and cfg["bits"] == 16
    run = load_run(itq_run, device="cpu")
    data = recipe.load_data(run.config)
    reported = np.load(itq_run / "codes.npz")
    assert len(data.query.images) == len(reported["query"]) > 0
    # query images were not among the images ITQ was fitted on: new images to the model
    np.testing.assert_array_equal(pack_bits(sign(run.encode(data.query.images))), reported["query"])
    np.testing.assert_array_equal(
        pack_bits(sign(run.encode(data.database.images))), reported["database"]
    )
    np.testing.assert_array_equal(data.query.labels, reported["query_labels"])


def test_a_saved_lsh_run_of_raw_pixels_reproduces_its_codes(
    tmp_path: Path, tiny_fmnist: Path
) -> None:
    row = {
        "method": "lsh",
        "bits": 24,
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "backbone": "pixels",
        "backbone_options": {"image_size": 28},
        "device": "cpu",
        "protocol_options": {"validation_size": 50},
    }
    run_baseline(row, tmp_path / "lsh")
    run = load_run(tmp_path / "lsh", device="cpu")
    data = recipe.load_data(run.config)
    reported = np.load(tmp_path / "lsh" / "codes.npz")
    np.testing.assert_array_equal(pack_bits(sign(run.encode(data.query.images))), reported["query"])


def test_random_weights_save_no_model(tmp_path: Path, tiny_fmnist: Path) -> None:
    row = {
        "method": "itq",
        "bits": 16,
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "protocol": "fashion-mnist-unseen",
        "backbone": "small-cnn",
        "device": "cpu",
    }
    run_baseline(row, tmp_path / "itq")
    assert (tmp_path / "itq" / "codes.npz").is_file()
    assert not (tmp_path / "itq" / "config.yaml").exists()


def test_evaluate_on_the_saved_run_gives_the_rows_map(
    itq_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reported = json.loads((itq_run / "metrics.json").read_text())
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("config.yaml", "best.pt"):
        (copy / name).write_bytes((itq_run / name).read_bytes())
    assert main(["evaluate", str(copy), "--no-plots", "--device", "cpu"]) == 0
    again = json.loads((copy / "metrics.json").read_text())
    assert again["map"] == pytest.approx(reported["map"], abs=1e-9)


def test_a_collection_of_the_itq_run_finds_an_items_own_image_first(
    itq_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    col = tmp_path / "col"
    assert main(["collection", "create", str(col), "--run", str(itq_run)]) == 0
    run = load_run(itq_run, device="cpu")
    query = recipe.load_data(run.config).query
    reported = np.load(itq_run / "codes.npz")["query"]
    blobs = [_png(im) for im in query.images[:40]]
    with Collection.open(col, device="cpu") as c:
        ids = c.add_images(blobs)
        # an image added through the collection's own decode path gets the row's code
        np.testing.assert_array_equal(c.codes, reported[:40])
        found = 0
        for item_id, blob in zip(ids, blobs):
            codes, desc = c.encode_with_descriptors(c.decode(blob).rgb[None])
            hits = c.search(codes, 1, descriptors=desc)[0]
            found += hits[0].id == item_id
        assert found == 40


def test_an_itq_row_on_a_runs_own_embeddings_saves_a_model_with_its_preprocessing(
    tmp_path: Path, tiny_fmnist: Path, tiny_config_values: dict
) -> None:
    """The unseen-class recipe's shape: ITQ reusing the embeddings of a run that retrieves with
    its backbone (no second pass over the images); the model takes that run's preprocessing."""
    from deephash.training.config import TrainConfig
    from deephash.training.trainer import train

    cfg = {**tiny_config_values, "protocol": "fashion-mnist-unseen", "retrieve_from": "backbone"}
    cfg.pop("protocol_options")
    train(TrainConfig.from_dict({**cfg, "p": 3}), tmp_path / "run")
    row = _itq_row(tiny_fmnist, tmp_path / "run")
    metrics = run_baseline(row, tmp_path / "itq")
    run = load_run(tmp_path / "itq", device="cpu")
    trained = load_run(tmp_path / "run", device="cpu")
    assert run.data_info == trained.data_info
    reported = np.load(tmp_path / "itq" / "codes.npz")
    data = recipe.load_data(run.config)
    codes = pack_bits(sign(run.encode(data.query.images)))
    # the run's embeddings and a fresh forward pass agree to float rounding; a bit whose
    # projection is that close to 0 may flip (none does here)
    assert (codes != reported["query"]).sum() == 0
    assert metrics["map"] > 0
