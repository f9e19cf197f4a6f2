"""Domain randomisation aimed at real cameras, for training on rendered scenes.

Our renders are clean: fixed exposure, neutral white balance, no noise, blur, vignetting or
compression, exact intrinsics and poses. Real robot cameras have all of these, and they differ
from frame to frame (auto exposure, rolling motion). ``CameraRandomiser`` applies, per image and
independently, a random draw of

- exposure (gain) and gamma, white balance (per-channel gains);
- vignetting (radial fall-off);
- defocus (Gaussian blur) or motion blur (a line kernel at a random angle);
- sensor noise (shot noise growing with brightness plus read noise);
- JPEG compression at a random quality;

and, for the geometry a network is given (not the image), small errors in the intrinsics
(focal length, principal point) and in the pose. Every draw comes from the ``numpy`` generator
passed in, so a seeded generator gives the same images.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from PIL import Image

from recon_ros.core.geometry import rotation_about_axis


@dataclass(frozen=True)
class CameraRandomiserConfig:
    """Ranges of the randomisation (each effect is applied with its probability ``p_*``)."""

    exposure_log_std: float = 0.35
    gamma_range: tuple[float, float] = (0.8, 1.25)
    white_balance_log_std: float = 0.08
    p_vignetting: float = 0.5
    vignetting_max: float = 0.45
    p_blur: float = 0.4
    blur_sigma_max: float = 1.3
    p_motion_blur: float = 0.25
    motion_blur_max_px: int = 7
    shot_noise_max: float = 0.03
    read_noise_max: float = 0.015
    p_jpeg: float = 0.5
    jpeg_quality_range: tuple[int, int] = (35, 95)
    focal_error_std: float = 0.01
    principal_point_error_px: float = 1.5
    rotation_error_deg: float = 0.3
    translation_error_m: float = 0.005


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(np.ceil(2.5 * sigma)))
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def _convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 convolved with a (k, k) kernel, edges replicated."""
    tensor = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), np.float32))[:, None]
    k = torch.from_numpy(kernel.astype(np.float32))[None, None]
    pad_y, pad_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = F.pad(tensor, (pad_x, pad_x, pad_y, pad_y), mode="replicate")
    return F.conv2d(padded, k)[:, 0].numpy().transpose(1, 2, 0)


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        x = round(float(centre + t * np.cos(angle)))
        y = round(float(centre + t * np.sin(angle)))
        kernel[y, x] = 1.0
    return kernel / kernel.sum()


class CameraRandomiser:
    """Random real-camera effects (module docstring)."""

    def __init__(self, config: CameraRandomiserConfig | None = None) -> None:
        self.config = config or CameraRandomiserConfig()

    def image(self, rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random draw of the photometric effects.

        Args:
            rgb: (H, W, 3) uint8.

        Returns:
            (H, W, 3) uint8.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb: expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        cfg = self.config
        height, width = rgb.shape[:2]
        x = rgb.astype(np.float32) / 255.0
        gain = float(np.exp(rng.normal(0.0, cfg.exposure_log_std)))
        balance = np.exp(rng.normal(0.0, cfg.white_balance_log_std, size=3)).astype(np.float32)
        x = np.clip(x * gain * balance, 0.0, 1.0)
        x = (x ** rng.uniform(*cfg.gamma_range)).astype(np.float32)
        if rng.random() < cfg.p_vignetting:
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
            r2 = ((xs - width / 2) ** 2 + (ys - height / 2) ** 2) / (
                (width / 2) ** 2 + (height / 2) ** 2
            )
            x = x * (1.0 - rng.uniform(0.0, cfg.vignetting_max) * r2)[..., None]
        if rng.random() < cfg.p_blur:
            kernel = _gaussian_kernel(rng.uniform(0.3, cfg.blur_sigma_max))
            x = _convolve(x, np.outer(kernel, kernel))
        if rng.random() < cfg.p_motion_blur:
            length = int(rng.integers(2, cfg.motion_blur_max_px + 1))
            x = _convolve(x, _motion_kernel(length, rng.uniform(0.0, np.pi)))
        shot = rng.uniform(0.0, cfg.shot_noise_max)
        read = rng.uniform(0.0, cfg.read_noise_max)
        sigma = np.sqrt(shot**2 * np.clip(x, 0.0, 1.0) + read**2)
        x = x + sigma * rng.standard_normal(x.shape).astype(np.float32)
        out = (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        if rng.random() < cfg.p_jpeg:
            buffer = io.BytesIO()
            quality = int(rng.integers(cfg.jpeg_quality_range[0], cfg.jpeg_quality_range[1] + 1))
            Image.fromarray(out).save(buffer, format="JPEG", quality=quality)
            out = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")).copy()
        return out

    def intrinsics(self, K: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``K`` with a small random calibration error (focal length scale, principal point)."""
        cfg = self.config
        out = np.array(K, dtype=np.float64)
        scale = 1.0 + rng.normal(0.0, cfg.focal_error_std)
        out[0, 0] *= scale
        out[1, 1] *= scale * (1.0 + rng.normal(0.0, cfg.focal_error_std / 4))
        out[:2, 2] += rng.normal(0.0, cfg.principal_point_error_px, size=2)
        return out

    def pose(self, T: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``T`` (4, 4) with a small random rotation (about a random axis) and translation."""
        cfg = self.config
        axis = rng.standard_normal(3)
        angle = np.radians(rng.normal(0.0, cfg.rotation_error_deg))
        delta = np.eye(4)
        delta[:3, :3] = rotation_about_axis(axis, angle)
        delta[:3, 3] = rng.normal(0.0, cfg.translation_error_m, size=3)
        return np.asarray(T, dtype=np.float64) @ delta
