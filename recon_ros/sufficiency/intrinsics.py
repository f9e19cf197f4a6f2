"""Pinhole intrinsics under image resizing.

Pixel centres sit at integer coordinates (OpenCV), so pixel ``u`` covers ``[u - 0.5, u + 0.5)``
and an image of width ``W`` spans ``[-0.5, W - 0.5)``. Resizing the width by ``s`` maps
``fx -> s fx`` and ``cx -> s (cx + 0.5) - 0.5`` (likewise ``fy``, ``cy`` with the height factor),
the rule of DEVELOPERS.md.
"""

import numpy as np


def check_intrinsics(K: np.ndarray, name: str = "K") -> np.ndarray:
    """``K`` as a float64 (3, 3) array; ValueError naming ``name`` when malformed."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"{name} must have shape (3, 3), got {K.shape}")
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{name} must be finite with positive focal lengths, got {K.tolist()}")
    return K


def resize_intrinsics(
    K: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]
) -> np.ndarray:
    """Intrinsics of an image resized from ``src_hw`` to ``dst_hw``.

    Args:
        K: (3, 3) intrinsics of the source image.
        src_hw: source (height, width) in pixels.
        dst_hw: target (height, width) in pixels; the two axes scale independently.

    Returns:
        (3, 3) float64 intrinsics of the resized image.
    """
    K = check_intrinsics(K)
    (sh, sw), (dh, dw) = src_hw, dst_hw
    if min(sh, sw, dh, dw) <= 0:
        raise ValueError(f"src_hw and dst_hw must be positive, got {src_hw} and {dst_hw}")
    sx, sy = dw / sw, dh / sh
    out = K.copy()
    out[0, 0] *= sx
    out[0, 1] *= sx
    out[0, 2] = sx * (K[0, 2] + 0.5) - 0.5
    out[1, 1] *= sy
    out[1, 2] = sy * (K[1, 2] + 0.5) - 0.5
    return out


def nearest_source_index(src_len: int, dst_len: int) -> np.ndarray:
    """Nearest-neighbour resampling indices along one axis: for each target pixel, the source
    pixel whose area contains the target pixel's centre. Shape ``(dst_len,)`` int64."""
    if src_len <= 0 or dst_len <= 0:
        raise ValueError(f"src_len and dst_len must be positive, got {src_len}, {dst_len}")
    centres = (np.arange(dst_len) + 0.5) * (src_len / dst_len)
    return np.clip(np.floor(centres).astype(np.int64), 0, src_len - 1)


def resize_nearest(image: np.ndarray, dst_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``(H, W, ...)`` arrays (depth, labels): no values are mixed
    across edges. Consistent with :func:`resize_intrinsics`."""
    image = np.asarray(image)
    if image.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions, got shape {image.shape}")
    rows = nearest_source_index(image.shape[0], dst_hw[0])
    cols = nearest_source_index(image.shape[1], dst_hw[1])
    return image[rows[:, None], cols[None, :]]
