"""Atomic text and ``.npz`` writes of the sufficiency tools, on ``core.atomic_io`` (the one home
of atomic writes)."""

import io
import os
from pathlib import Path

import numpy as np

from recon_ros.core.atomic_io import atomic_write_bytes


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` atomically."""
    return atomic_write_bytes(path, text.encode("utf8"))


def atomic_save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez_compressed`` atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
