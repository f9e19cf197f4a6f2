"""Network input: resizing images to the network size and stacking them into one tensor.

Training and the estimator both go through these functions, so the network sees identically
prepared inputs. The input kinds (``INPUTS``): ``"rgb"``, the paper's stacked images;
``"rgb+frustum"``, the images plus two channels per partner from the poses
(``frustum.frustum_channels``); ``"rgb+frustum+stereo"``, those plus ``m + 1`` plane-sweep
channels (``stereo.stereo_channels``). Images are resized with PIL's bilinear filter
(antialiased when shrinking); the two axes scale independently (a 640x480 frame becomes
300x300), with intrinsics following ``intrinsics.resize_intrinsics``.
"""

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

#: Normalisation of uint8 images: ``(x / 255 - MEAN) / STD``.
MEAN = 0.5
STD = 0.25
#: Network input kinds (module docstring).
INPUTS = ("rgb", "rgb+frustum", "rgb+frustum+stereo")


def check_inputs(inputs: str) -> str:
    """``inputs`` when it is one of :data:`INPUTS`, else ValueError."""
    if inputs not in INPUTS:
        raise ValueError(f"inputs must be one of {INPUTS}, got {inputs!r}")
    return inputs


def uses_frustum(inputs: str) -> bool:
    """Whether ``inputs`` has the frustum channels."""
    return "frustum" in check_inputs(inputs)


def uses_stereo(inputs: str) -> bool:
    """Whether ``inputs`` has the plane-sweep channels."""
    return "stereo" in check_inputs(inputs)


def input_channels(m: int, inputs: str = "rgb") -> int:
    """Channels of the network input: ``3 (m + 1)`` image channels, plus ``2 m`` frustum
    channels with ``frustum``, plus ``m + 1`` plane-sweep channels with ``stereo``."""
    return 3 * (m + 1) + 2 * m * uses_frustum(inputs) + (m + 1) * uses_stereo(inputs)


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


def network_input(
    images: torch.Tensor, frustum: torch.Tensor | None = None, stereo: torch.Tensor | None = None
) -> torch.Tensor:
    """The network input of any kind.

    Args:
        images: (B, m + 1, H, W, 3) uint8 (reference first).
        frustum: None or (B, m, 2, H, W) uint8 frustum codes of the m partners
            (``frustum.frustum_channels``), in the order of the partner images.
        stereo: None or (B, m + 1, H, W) uint8 plane-sweep codes (``stereo.stereo_channels``,
            partners in the order of the images); only together with ``frustum``.

    Returns:
        (B, C, H, W) float32: the images as :func:`normalize_images`, then partner ``j``'s two
        frustum channels at ``3 (m + 1) + 2 j``, then the plane-sweep channels, all normalised
        the same way (``C = input_channels(m, inputs)``).
    """
    x = normalize_images(images)
    B, n, H, W, _ = images.shape
    parts = [x]
    if frustum is not None:
        if frustum.shape != (B, n - 1, 2, H, W) or frustum.dtype != torch.uint8:
            raise ValueError(
                f"frustum must be ({B}, {n - 1}, 2, {H}, {W}) uint8, got "
                f"{tuple(frustum.shape)} {frustum.dtype}"
            )
        parts.append(frustum.reshape(B, 2 * (n - 1), H, W))
    if stereo is not None:
        if frustum is None:
            raise ValueError("stereo needs frustum: no input kind has stereo channels alone")
        if stereo.shape != (B, n, H, W) or stereo.dtype != torch.uint8:
            raise ValueError(
                f"stereo must be ({B}, {n}, {H}, {W}) uint8, got {tuple(stereo.shape)} "
                f"{stereo.dtype}"
            )
        parts.append(stereo)
    extra = [(p.float() / 255.0 - MEAN) / STD for p in parts[1:]]
    return torch.cat([x, *extra], dim=1) if extra else x
