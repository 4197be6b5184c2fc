"""The collection's encoder (the path `collection add` and `serve` take) against the plain network:
the same weights rebuilt from the run's checkpoint, NCHW float32, no_grad, one image at a time."""

from pathlib import Path

import numpy as np
import pytest
import torch

from deephash.atomic_io import load_checkpoint
from deephash.codes import pack_bits
from deephash.collection import Collection
from deephash.collection.photo_files import list_photo_files, read_photo
from deephash.collection.photo_model import fit_photo_model
from deephash.models.descriptors import compute_descriptors
from deephash.training import recipe
from deephash.training.config import TrainConfig

PHOTOS = Path(__file__).parents[1] / "models" / "data"


@pytest.fixture(scope="module")
def photo_col(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("enc")
    files, _ = list_photo_files(PHOTOS)
    fit_photo_model(files, root / "model", bits=8, image_size=96, max_pixels=10**8, progress=False)
    col = root / "col"
    Collection.create(col, root / "model", rerank="early-stages").close()
    return col


def _plain_network(run_dir: Path) -> torch.nn.Module:
    state = load_checkpoint(run_dir / "best.pt")
    cfg = TrainConfig.from_dict({**state["config"], "weights": None})
    net = recipe.build_network(cfg, 3)
    net.load_state_dict(state["model"])
    return net.eval()


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_codes_and_descriptors_equal_the_plain_networks(
    photo_col: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if engine == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    monkeypatch.setenv("DEEPHASH_ENCODER", engine)
    files, _ = list_photo_files(PHOTOS)
    with Collection.open(photo_col, device="cpu") as col:
        rgb = np.stack([read_photo(f, 96, max_pixels=10**8).image.rgb for f in files])  # type: ignore[union-attr]
        codes, desc = col.encode_with_descriptors(rgb)
        only_codes = col.encode(rgb)
        run = col.model
        x = run.preprocess(rgb)
        assert (run.engine("early-stages") is None) == (engine == "torch")
    net = _plain_network(photo_col.parent / "model")
    checked = 0
    for i in range(len(rgb)):
        with torch.no_grad():
            out = net(x[i : i + 1].contiguous())
            want_desc, _ = compute_descriptors(net, x[i : i + 1].contiguous(), "early-stages")
        assert np.abs(out.numpy()).min() > 1e-4  # no bit on the edge: signs must agree
        np.testing.assert_array_equal(codes[i], pack_bits(out.numpy() >= 0)[0])
        np.testing.assert_array_equal(only_codes[i], codes[i])
        np.testing.assert_allclose(desc[i], want_desc[0].numpy(), atol=2e-3)  # float16 storage
        checked += 1
    assert checked == 2


def test_an_unknown_engine_is_refused(photo_col: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPHASH_ENCODER", "tensorrt")
    with Collection.open(photo_col, device="cpu") as col:
        with pytest.raises(ValueError, match="DEEPHASH_ENCODER must be one of"):
            col.encode(np.zeros((1, 96, 96, 3), np.uint8))
