"""A folder of photos becomes a searchable collection in one command, without labels: real photos
(the CC0 test photos) and transformed copies of them, nested folders, every colour mode, and files
that cannot be read, each named with its reason."""

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from deephash.cli.main import main
from deephash.collection import Collection
from deephash.training.runs import load_run

PHOTOS = Path(__file__).parents[1] / "models" / "data"
NAMES = ("coffee", "chelsea")


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two photos, brighter and half-size copies in a sub-folder, other colour modes
    (grey, RGBA, palette, CMYK), and five files that cannot be added."""
    root = tmp_path_factory.mktemp("photos") / "album"
    (root / "edits" / "deeper").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in NAMES:
        shutil.copy(PHOTOS / f"{name}.jpg", root / f"{name}.jpg")
        im = Image.open(PHOTOS / f"{name}.jpg")
        ImageEnhance.Brightness(im).enhance(1.3).save(root / "edits" / f"{name}-bright.jpg")
        im.resize((im.width // 2, im.height // 2)).save(root / "edits" / "deeper" / f"{name}.png")
    # other colour modes and sizes: smooth random pictures, not copies of the photos
    for i, mode in enumerate(("L", "RGBA", "P", "CMYK")):
        rgb = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
        big = Image.fromarray(rgb).resize((300 + 40 * i, 200), Image.Resampling.BICUBIC)
        big.convert(mode).save(root / f"mode-{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("not a photo")
    cut = (PHOTOS / "coffee.jpg").read_bytes()
    (root / "edits" / "cut.jpg").write_bytes(cut[: len(cut) // 2])
    Image.new("1", (9000, 5000)).save(root / "huge.png")  # 45 megapixels, a few kB
    (root / "fake.png").write_bytes(b"this is not a PNG")
    return root


@pytest.fixture(scope="module")
def photo_collection(
    photo_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str, str]:
    col = tmp_path_factory.mktemp("cols") / "album"
    argv = ["collection", "create", str(col), "--images", str(photo_folder), "--bits", "8"]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main([*argv, "--device", "cpu"]) == 0
    return col, out.getvalue(), err.getvalue()


def test_every_readable_image_is_added_and_every_other_file_named(
    photo_folder: Path, photo_collection: tuple[Path, str, str]
) -> None:
    col, out, err = photo_collection
    readable = (
        {p.resolve() for p in photo_folder.rglob("*")}
        - {
            (photo_folder / n).resolve()
            for n in ("empty.jpg", "notes.txt", "edits/cut.jpg", "huge.png", "fake.png", "edits")
        }
        - {(photo_folder / "edits" / "deeper").resolve()}
    )
    assert len(readable) == 10
    with Collection.open(col, read_only=True, load_model=False) as c:
        paths = {Path(c.get(int(i)).path) for i in c.ids}
    assert paths == readable
    reasons = {
        "empty.jpg": "empty (0 bytes)",
        "notes.txt": "not an image file by its name (.txt)",
        "cut.jpg": "not a readable image",
        "huge.png": "more than the limit of 40,000,000",
        "fake.png": "not a readable image",
    }
    lines = [line for line in err.splitlines() if line.startswith("skipped ")]
    assert len(lines) == len(reasons)
    for name, reason in reasons.items():
        assert sum(name in line and reason in line for line in lines) == 1, (name, lines)
    assert "added 10 images (5 files skipped)" in out
    assert "ITQ codes on 10 photos" in out
    model = load_run(col / "model", device="cpu")
    assert model.data_info["image_shape"] == [224, 224] and model.config.bits == 8


@pytest.mark.parametrize("quality", [90, 75, 50])
def test_a_resaved_copy_finds_its_source_first(
    photo_folder: Path, photo_collection: tuple[Path, str, str], quality: int
) -> None:
    col = photo_collection[0]
    checked = 0
    with Collection.open(col, read_only=True) as c:
        for name in NAMES:
            copy = _jpeg(Image.open(PHOTOS / f"{name}.jpg"), quality)
            codes, desc = c.encode_with_descriptors(c.decode(copy).rgb[None])
            hits = c.search(codes, 3, descriptors=desc)[0]
            assert c.get(hits[0].id).path == str((photo_folder / f"{name}.jpg").resolve())
            checked += 1
    assert checked == len(NAMES)


def test_a_folder_without_readable_images_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "bad"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"")
    (src / "b.png").write_bytes(b"junk")
    col = tmp_path / "col"
    assert main(["collection", "create", str(col), "--images", str(src), "--bits", "8"]) == 1
    assert "none of the 2 files sampled is a readable image" in capsys.readouterr().err
    assert not col.exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("keep")
    assert main(["collection", "create", str(busy), "--images", str(PHOTOS)]) == 1
    assert "is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["x"]
