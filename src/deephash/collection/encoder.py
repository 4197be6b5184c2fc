"""A collection's encoder: the run's network, loaded once, that turns decoded images into the
collection's packed codes and, for a re-ranking collection, its descriptors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deephash.codes import code_bytes, pack_bits, sign
from deephash.collection.descriptor_layout import DescriptorLayout
from deephash.collection.images import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    decode_image_bytes,
    to_model_input,
)
from deephash.collection.items import NewItem
from deephash.collection.layout import COLLECTION_FILE
from deephash.run_folder import RunFolder

__all__ = ["Encoder", "no_descriptors_message"]


def no_descriptors_message(directory: Path) -> str:
    """The error of a re-ranking request to collection ``directory``, which stores no descriptors."""
    return (
        f"collection {directory} stores no descriptors, so it cannot re-rank; create "
        "one with `deephash collection create DIR --run RUN --rerank KIND` and add the "
        "images again"
    )


class Encoder:
    """Decoding and encoding for the collection in ``directory`` with settings ``settings``
    (``collection.json``: the run, bits, pixel limit, re-rank descriptor); the network is loaded
    on first use on ``device``."""

    def __init__(self, directory: Path, settings: dict[str, Any], device: str) -> None:
        self.directory = directory
        self.device = device
        self.bits = int(settings["bits"])
        self.nbytes = code_bytes(self.bits)
        self.run_dir = Path(settings["run"])
        self.max_pixels = int(settings.get("max_pixels", DEFAULT_MAX_PIXELS))
        self.layout = DescriptorLayout.of_settings(settings)
        self.descriptor: str | None = self.layout.kind if self.layout else None
        self.descriptor_dim = self.layout.dim if self.layout else 0
        self._lock = threading.Lock()
        self._model: Any = None

    @property
    def model(self) -> Any:
        """The run's network (a :class:`~deephash.training.runs.LoadedRun`), loaded once; its
        code width must be the collection's."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> Any:
        from deephash.training.runs import load_run

        if not RunFolder(self.run_dir).is_run():
            raise FileNotFoundError(
                f"the collection's run folder {self.run_dir} is missing; restore it or "
                f'set "run" in {self.directory / COLLECTION_FILE}'
            )
        run = load_run(self.run_dir, device=self.device)
        if run.config.bits != self.bits:
            raise ValueError(
                f"the model of {self.run_dir} makes {run.config.bits}-bit codes but "
                f"collection {self.directory} holds {self.bits}-bit codes; point "
                f'"run" in {COLLECTION_FILE} at the run that built it, or create '
                "a new collection for this model"
            )
        return run

    @property
    def image_size(self) -> int:
        """Side of the square images the model takes."""
        return int(self.model.data_info["image_shape"][0])

    def decode(self, data: bytes, name: str = "image") -> DecodedImage:
        """Decode untrusted image bytes (see :func:`~deephash.collection.images.decode_image_bytes`)
        at the model's image size, within the collection's pixel limit."""
        return decode_image_bytes(data, self.image_size, max_pixels=self.max_pixels, name=name)

    def encode(self, rgb: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """RGB uint8 (N, S, S, 3) -> packed codes uint8 (N, ceil(bits / 8)) (model, sign, pack)."""
        if rgb.shape[0] == 0:
            return np.zeros((0, self.nbytes), dtype=np.uint8)
        model = self.model
        x = to_model_input(rgb, int(model.data_info["in_channels"]))
        out, _ = model.encode_for_search(x, None, batch_size)
        return pack_bits(sign(out))

    def encode_with_descriptors(
        self, rgb: np.ndarray, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """RGB uint8 (N, S, S, 3) -> (packed codes uint8 (N, ceil(bits / 8)), descriptors as the
        collection holds them (float32 (N, D) rounded as stored, or a binary kind's packed signs
        uint8 (N, ceil(D / 8))), or None for a collection without descriptors); one forward
        pass gives both (the codes equal :meth:`encode`'s)."""
        layout = self.layout
        if layout is None:
            return self.encode(rgb, batch_size), None
        if rgb.shape[0] == 0:
            return np.zeros((0, self.nbytes), np.uint8), layout.empty()
        model = self.model
        x = to_model_input(rgb, int(model.data_info["in_channels"]))
        out, desc = model.encode_for_search(x, layout.kind, batch_size)
        assert desc is not None  # asked for
        if layout.binary:
            desc = pack_bits(sign(desc))
        return pack_bits(sign(out)), layout.check(desc)

    def encode_records(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 (N, S, S, 3) -> one structured row per image: ``code`` uint8 (nbytes,) and,
        when the collection re-ranks, ``descriptor`` (float32 (D,), or packed bits uint8) (the
        micro-batcher's function: it slices rows)."""
        codes, desc = self.encode_with_descriptors(rgb)
        fields: list[tuple[str, Any, tuple[int, ...]]] = [("code", np.uint8, (self.nbytes,))]
        if desc is not None:
            fields.append(("descriptor", desc.dtype, (desc.shape[1],)))
        out = np.zeros(len(codes), dtype=np.dtype(fields))
        out["code"] = codes
        if desc is not None:
            out["descriptor"] = desc
        return out

    def new_descriptors(self, new: Sequence[NewItem]) -> np.ndarray | None:
        """The descriptors of the items to add as held (float32 (n, D) at stored precision, or
        packed bits uint8 (n, ceil(D / 8))), checked; None without re-ranking (then no item may
        carry one)."""
        given = [n.descriptor is not None for n in new]
        if self.layout is None:
            if any(given):
                message = no_descriptors_message(self.directory)
                raise ValueError(message.replace("so it cannot re-rank", "to add"))
            return None
        if not all(given):
            raise ValueError(
                f"collection {self.directory} re-ranks by {self.descriptor} descriptors: every "
                f"item to add needs one ({given.count(False)} of {len(new)} have none)"
            )
        rows = []
        for n in new:
            d = np.asarray(n.descriptor)
            if d.ndim != 1 or d.shape[0] != self.layout.width:
                unit = "bytes of packed bits" if self.layout.binary else "values"
                raise ValueError(
                    f"a descriptor of shape {d.shape}; this collection stores "
                    f"{self.descriptor} descriptors of {self.layout.width} {unit}"
                )
            rows.append(d)
        return self.layout.check(np.stack(rows))
