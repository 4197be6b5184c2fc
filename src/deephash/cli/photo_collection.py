"""``deephash collection create DIR --images FOLDER``: a searchable collection of a folder of
photos without labels or training: fit the codes on a sample of the folder, then add it all."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

__all__ = ["create_from_photos"]


def _check_new_folder(directory: Path) -> None:
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(
            f"{directory} exists and is not an empty folder; pick a new folder for the collection"
        )


def create_from_photos(
    args: argparse.Namespace, create_collection: Callable[[argparse.Namespace, str], int]
) -> int:
    """Fit the model into ``DIR/model``, create the collection with ``create_collection(args,
    run_dir)`` (``collection create``'s own), add every readable photo."""
    from tqdm import tqdm

    from deephash.collection import DEFAULT_MAX_PIXELS, Collection
    from deephash.collection.layout import MODEL_DIR
    from deephash.collection.photo_files import Skipped, list_photo_files
    from deephash.collection.photo_import import add_photos
    from deephash.collection.photo_model import fit_photo_model

    bits = 64 if args.bits is None else args.bits
    size = 224 if args.image_size is None else args.image_size
    sample = 2000 if args.fit_sample is None else args.fit_sample
    if not 8 <= bits <= 256 or size < 16 or sample < 1:
        raise ValueError("--bits must be in 8..256, --image-size >= 16, --fit-sample >= 1")
    directory = Path(args.dir)
    _check_new_folder(directory)
    files, other = list_photo_files(args.images)
    if not files:
        raise ValueError(f"{args.images} holds no image files (.jpg, .png, ...), nested or not")

    def say(skip: Skipped) -> None:
        tqdm.write(skip.line(), file=sys.stderr)

    for skip in other:
        say(skip)
    existed = directory.exists()
    staging = directory / (MODEL_DIR + ".partial")
    try:
        model = fit_photo_model(
            files,
            staging,
            bits=bits,
            image_size=size,
            sample=sample,
            max_pixels=DEFAULT_MAX_PIXELS,
        )
        staging.rename(directory / MODEL_DIR)
        print(
            f"fitted {bits}-bit {model.method.upper()} codes on {model.fitted_on} photos "
            f"({args.images}, {size} px, ImageNet EfficientNet-Lite0 features)"
        )
        create_collection(args, str(directory / MODEL_DIR))
    except BaseException:
        # nothing half-made stays behind: the folder is as it was (missing, or empty)
        if existed:
            for child in directory.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        else:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    with Collection.open(directory, device=args.device) as col:
        with tqdm(total=len(files), desc="adding", unit="img", disable=None) as bar:
            done = add_photos(col, files, on_progress=bar.update, on_skip=say)
        count = col.count
    skipped = len(done.skipped) + len(other)
    print(
        f"added {len(done.ids)} images ({skipped} files skipped); {directory} holds {count} "
        f"items; search it with `deephash serve {directory}`"
    )
    return 0 if done.ids else 1
