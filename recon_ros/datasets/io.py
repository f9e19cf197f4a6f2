"""File helpers shared by the dataset writers and loaders.

Writes are atomic (a temporary file in the target folder, then ``os.replace``) and
byte-deterministic: PNGs carry no time or text chunks, ``.npz`` archives are written with fixed
zip timestamps (``numpy.savez`` stamps the current time into every member), text uses fixed
number formats.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Mapping

import numpy as np
from PIL import Image

from recon_ros.core.atomic_io import atomic_path

_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8, ``\\n`` line ends) to ``path`` atomically."""
    write_bytes(path, text.encode("utf8"))


def write_png(path: str | os.PathLike, image: np.ndarray, compress_level: int = 6) -> None:
    """Write an (H, W, 3) uint8, (H, W) uint8 or (H, W) uint16 image as PNG, atomically and
    without metadata."""
    image = np.ascontiguousarray(image)
    rgb = image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    grey = image.dtype in (np.uint8, np.uint16) and image.ndim == 2
    if not (rgb or grey):
        raise ValueError(
            "image: expected (H, W, 3) uint8, (H, W) uint8 or uint16, "
            f"got {image.dtype} {image.shape}"
        )
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=compress_level)
    write_bytes(path, buffer.getvalue())


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG/JPEG as numpy: colour as (H, W, 3) uint8 RGB, grey as (H, W) uint8, 16-bit
    as (H, W) uint16."""
    with Image.open(path) as pil:
        if pil.mode in ("I;16", "I;16B", "I;16L"):
            return np.array(pil, dtype=np.uint16)
        if pil.mode == "I":
            return np.array(pil).astype(np.uint16)
        if pil.mode in ("L", "RGB"):
            return np.array(pil)
        return np.array(pil.convert("RGB"))


def write_npz(
    path: str | os.PathLike, arrays: Mapping[str, np.ndarray], compress: bool = True
) -> None:
    """``numpy.savez_compressed`` with fixed member timestamps (byte-identical for identical
    arrays), written atomically. Members are stored in sorted key order."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, mode="w", compression=method) as archive:
        for key in sorted(arrays):
            member = io.BytesIO()
            np.lib.format.write_array(
                member, np.require(arrays[key], requirements="C"), allow_pickle=False
            )
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            archive.writestr(info, member.getvalue())
    write_bytes(path, buffer.getvalue())


def read_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (no pickles)."""
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def format_matrix(matrix: np.ndarray) -> str:
    """Rows of ``matrix`` as space-separated numbers in ``%.9e`` format (round-trips to about
    1e-9 relative), one row per line."""
    matrix = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    return "".join(" ".join(f"{v:.9e}" for v in row) + "\n" for row in matrix)


def read_matrix(path: str | os.PathLike) -> np.ndarray:
    """A whitespace-separated numeric matrix from a text file."""
    return np.loadtxt(path, dtype=np.float64, ndmin=2)
