"""Network input: resizing images to the network size and stacking them into one tensor.

Training and the estimator both go through these functions, so the network sees identically
prepared inputs. Images are resized with PIL's bilinear filter (antialiased when shrinking);
the two axes scale independently (a 640x480 frame becomes 300x300), with intrinsics following
``intrinsics.resize_intrinsics``.
"""

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

#: Normalisation of uint8 images: ``(x / 255 - MEAN) / STD``.
MEAN = 0.5
STD = 0.25


def resize_rgb(rgb: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, 3) uint8 image to ``hw`` = (height, width) (bilinear, antialiased)."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[:2] == tuple(hw):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((hw[1], hw[0]), Image.Resampling.BILINEAR))


def stack_images(images: Sequence[np.ndarray], hw: tuple[int, int]) -> np.ndarray:
    """Resize the reference image and its partners and stack them.

    Args:
        images: ``m + 1`` images (H_i, W_i, 3) uint8, reference first.
        hw: network (height, width).

    Returns:
        (m + 1, height, width, 3) uint8.
    """
    if len(images) < 2:
        raise ValueError(f"images must hold the reference and >= 1 partner, got {len(images)}")
    return np.stack([resize_rgb(im, hw) for im in images])


def normalize_images(images: torch.Tensor) -> torch.Tensor:
    """Stacked uint8 images to the network input.

    Args:
        images: (B, m + 1, H, W, 3) uint8 (reference first).

    Returns:
        (B, 3 (m + 1), H, W) float32: channels ``3 i .. 3 i + 2`` are image ``i``'s RGB.
    """
    if images.ndim != 5 or images.shape[-1] != 3 or images.dtype != torch.uint8:
        raise ValueError(
            f"images must be (B, m + 1, H, W, 3) uint8, got {tuple(images.shape)} {images.dtype}"
        )
    B, n, H, W, _ = images.shape
    x = images.permute(0, 1, 4, 2, 3).reshape(B, 3 * n, H, W).float()
    return (x / 255.0 - MEAN) / STD
