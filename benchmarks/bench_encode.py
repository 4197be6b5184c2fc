"""Images per second through the path ``collection add`` and ``serve`` use, and where the time goes.

For EfficientNet-Lite0 (ImageNet weights, the photo-folder model: ITQ codes fitted on the images,
early-stage re-rank descriptors) at each ``--sizes`` side, on ``--images`` JPEG photos made from
the test photos (random crops, brightness, sizes 300-640 px):

- stages of one add, timed separately: read + decode + resize (``read_photo``), network alone
  (codes), network + descriptor (``Collection.encode_with_descriptors``), the durable write
  (``Collection.add``: log record, fsync, index) and the whole ``add_photos`` (images/s);
- the network alone (backbone + projection head, the same preprocessed batch) under variants:
  plain NCHW torch (no_grad, inference_mode), the encoder's channels-last network (no_grad, the
  path the collection takes; inference_mode), 1 and 2 threads, and ONNX Runtime on the same
  network exported with torch.onnx (max |difference| to plain torch printed).

Interleaved repeats, best of ``--repeats``. Writes benchmarks/results/encode.json.

    python benchmarks/bench_encode.py --images 128 --sizes 64 224
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "models" / "data"


def make_photos(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """n JPEG files (quality 90) cut from the test photos: random crops, brightness, sizes."""
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(seed)
    sources = [Image.open(p).convert("RGB") for p in sorted(PHOTOS.glob("*.jpg"))]
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        im = sources[i % len(sources)]
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        side = int(rng.integers(300, 641))
        crop = im.crop((x0, y0, x0 + cw, y0 + ch)).resize((side, side * ch // cw))
        crop = ImageEnhance.Brightness(crop).enhance(float(rng.uniform(0.7, 1.3)))
        path = folder / f"{i:05d}.jpg"
        crop.save(path, "JPEG", quality=90)
        out.append(path)
    return out


def best(fn: Callable[[], Any], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def ort_session(net: torch.nn.Module, x: torch.Tensor, path: Path, threads: int) -> Any:
    import onnxruntime as ort

    torch.onnx.export(
        net,
        (x[:1],),
        str(path),
        input_names=["images"],
        output_names=["out"],
        dynamic_axes={"images": {0: "batch"}, "out": {0: "batch"}},
        dynamo=False,
    )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def network_variants(
    net: torch.nn.Module, x: torch.Tensor, repeats: int, tmp: Path, threads: int
) -> dict[str, Any]:
    """images/s of the network alone on batch x (B, 3, S, S) under each variant."""
    import copy

    n = len(x)
    out: dict[str, Any] = {}

    def run_no_grad(model: torch.nn.Module, inp: torch.Tensor) -> Callable[[], Any]:
        def f() -> Any:
            with torch.no_grad():
                return model(inp)

        return f

    def run_inference(model: torch.nn.Module, inp: torch.Tensor) -> Callable[[], Any]:
        def f() -> Any:
            with torch.inference_mode():
                return model(inp)

        return f

    # the encoder's own network (channels-last on a CPU, as load_run prepares it) and a plain
    # NCHW copy of it
    plain = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    sess = ort_session(plain, x, tmp / "net.onnx", threads)
    xn = x.numpy()
    with torch.no_grad():
        ref = plain(x).numpy()
        out["encoder_max_abs_diff"] = float(np.abs(net(x).numpy() - ref).max())
    out["onnxruntime_max_abs_diff"] = float(np.abs(sess.run(None, {"images": xn})[0] - ref).max())
    variants: dict[str, Callable[[], Any]] = {
        "torch_nchw_no_grad": run_no_grad(plain, x),
        "torch_nchw_inference_mode": run_inference(plain, x),
        "encoder_channels_last_no_grad": run_no_grad(net, x),
        "encoder_channels_last_inference_mode": run_inference(net, x),
        "onnxruntime": lambda: sess.run(None, {"images": xn}),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(repeats):  # interleaved: a noisy neighbour hits every variant alike
        for k, fn in variants.items():
            times[k].append(best(fn, 1))
    for k, t in times.items():
        out[k] = round(n / min(t), 1)
    torch.set_num_threads(1)
    out["encoder_1_thread"] = round(n / best(run_no_grad(net, x), repeats), 1)
    with torch.no_grad():
        t_ort1 = ort_session(plain, x, tmp / "net1.onnx", 1)
    out["onnxruntime_1_thread"] = round(
        n / best(lambda: t_ort1.run(None, {"images": xn}), repeats), 1
    )
    torch.set_num_threads(threads)
    return out


def stage_times(col: Any, files: list[Path], repeats: int) -> dict[str, Any]:
    """Seconds per stage of adding ``files`` to the open collection ``col``, and images/s."""
    from deephash.collection.items import NewItem
    from deephash.collection.photo_files import read_photo
    from deephash.collection.photo_import import add_photos

    n = len(files)
    size = col.image_size
    t_decode = best(lambda: [read_photo(f, size, max_pixels=col.max_pixels) for f in files], 1)
    photos = [read_photo(f, size, max_pixels=col.max_pixels) for f in files]
    rgb = np.stack([p.image.rgb for p in photos])  # type: ignore[union-attr]
    col.encode(rgb[:2]), col.encode_with_descriptors(rgb[:2])  # warm-up: builds the engine
    t_codes = best(lambda: col.encode(rgb), repeats)
    t_both = best(lambda: col.encode_with_descriptors(rgb), repeats)
    codes, desc = col.encode_with_descriptors(rgb)
    new = [
        NewItem(codes[i], p.data, p.image.suffix, None, str(p.path), desc[i])  # type: ignore[union-attr]
        for i, p in enumerate(photos)
    ]
    t0 = time.perf_counter()
    for s in range(0, n, 64):
        col.add(new[s : s + 64])
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    done = add_photos(col, files)
    t_add = time.perf_counter() - t0
    assert len(done.ids) == n
    return {
        "images": n,
        "engine": "onnxruntime" if col.model.engine(col.descriptor) is not None else "torch",
        "decode_resize_s": round(t_decode, 3),
        "network_codes_s": round(t_codes, 3),
        "network_plus_descriptor_s": round(t_both, 3),
        "durable_write_s": round(t_write, 3),
        "collection_add_s": round(t_add, 3),
        "collection_add_images_per_s": round(n / t_add, 1),
        "encode_with_descriptors_images_per_s": round(n / t_both, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=128)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "encode.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from deephash.cli.main import main as cli

    tmp = Path(tempfile.mkdtemp(prefix="bench-encode-"))
    results: dict[str, Any] = {
        "machine": platform.processor() or platform.machine(),
        "threads": args.threads,
        "device": args.device,
        "torch": torch.__version__,
        "command": "python benchmarks/bench_encode.py "
        + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items()
            if k != "out"
        ),
        "sizes": {},
    }
    try:
        import onnxruntime

        results["onnxruntime"] = onnxruntime.__version__
        files = make_photos(tmp / "photos", args.images)
        for size in args.sizes:
            col_dir = tmp / f"col{size}"
            argv = ["collection", "create", str(col_dir), "--images", str(tmp / "photos")]
            argv += ["--image-size", str(size), "--bits", "64", "--device", args.device]
            with io.StringIO() as sink:
                import contextlib

                with contextlib.redirect_stdout(sink):
                    assert cli(argv) == 0
            from deephash.collection import Collection

            with Collection.open(col_dir, device=args.device) as col:
                row = stage_times(col, files, args.repeats)
                model = col.model
                rgb = np.stack(
                    [col.decode(f.read_bytes()).rgb for f in files]  # same inputs as above
                )
                x = model.preprocess(rgb)
                row["network"] = network_variants(model.net, x, args.repeats, tmp, args.threads)
            results["sizes"][str(size)] = row
            print(json.dumps({str(size): row}, indent=2), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
