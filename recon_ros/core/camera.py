"""Pinhole camera model (the part of image_geometry's PinholeCameraModel the core needs) and
image resizing that keeps intrinsics consistent.

Pixel centres sit at integer coordinates (OpenCV). Resizing the image by ``s`` along an axis maps
``f -> s f`` and ``c -> s (c + 0.5) - 0.5``: the image's outer edge (-0.5 and ``size - 0.5``)
stays the outer edge.
"""

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)


def validate_intrinsics(K: np.ndarray, name: str = "K") -> np.ndarray:
    """Check a 3x3 pinhole intrinsics matrix and return it as float64.

    Raises:
        ValueError: wrong shape, NaN/inf, ``fx`` or ``fy`` not positive, skew or a last row other
            than ``0 0 1``.
    """
    try:
        K = np.array(K, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: not a numeric 3x3 matrix ({error})") from error
    if K.shape != (3, 3):
        raise ValueError(f"{name}: expected shape (3, 3), got {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"{name}: focal length must be positive, got fx={K[0, 0]}, fy={K[1, 1]}")
    if not np.allclose(K[2], (0.0, 0.0, 1.0)) or K[1, 0] != 0 or abs(K[0, 1]) > 1e-9:
        raise ValueError(
            f"{name}: expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {K.tolist()}"
        )
    return K


@dataclass(frozen=True)
class PinholeCamera:
    """Pinhole intrinsics of an image of ``width`` x ``height`` pixels (no distortion: the core
    takes rectified images)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for field in ("fx", "fy", "cx", "cy"):
            value = getattr(self, field)
            if not np.isfinite(value):
                raise ValueError(f"camera {field}: must be finite, got {value}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(
                f"camera: focal length must be positive, got fx={self.fx}, fy={self.fy}"
            )
        if int(self.width) != self.width or int(self.height) != self.height:
            raise ValueError(f"camera size: must be integers, got {self.width}x{self.height}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"camera size: must be > 0, got {self.width}x{self.height}")

    @classmethod
    def from_matrix(cls, K: np.ndarray, width: int, height: int) -> "PinholeCamera":
        """Camera from a 3x3 ``K`` (validated) and the image size."""
        K = validate_intrinsics(K)
        return cls(float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), width, height)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the usual name of intrinsics)
        """(3, 3) float64 intrinsics."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def K_tensor(self, device="cpu", dtype=torch.float32) -> torch.Tensor:  # noqa: N802
        """(3, 3) intrinsics as a tensor."""
        return torch.as_tensor(self.K, dtype=dtype, device=device)

    def resized(self, width: int, height: int) -> "PinholeCamera":
        """The camera of this image resized to ``width`` x ``height`` (each axis scaled on its
        own, so the aspect ratio may change)."""
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"resize size: must be > 0, got {width}x{height}")
        sx, sy = width / self.width, height / self.height
        return PinholeCamera(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=sx * (self.cx + 0.5) - 0.5,
            cy=sy * (self.cy + 0.5) - 0.5,
            width=int(width),
            height=int(height),
        )

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project camera-frame points (N, 3) to pixels (N, 2) and their depth (N,). Points at
        or behind the camera get NaN pixels."""
        points = np.asarray(points_cam, dtype=np.float64).reshape(-1, 3)
        depth = points[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(depth > 0, self.fx * points[:, 0] / depth + self.cx, np.nan)
            v = np.where(depth > 0, self.fy * points[:, 1] / depth + self.cy, np.nan)
        return np.stack([u, v], axis=1), depth

    def backproject(self, pixels: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) from pixels (N, 2) and depths along the optical axis (N,)."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        depth = np.asarray(depth, dtype=np.float64).reshape(-1)
        x = (pixels[:, 0] - self.cx) / self.fx * depth
        y = (pixels[:, 1] - self.cy) / self.fy * depth
        return np.stack([x, y, depth], axis=1)

    def contains(self, pixels: np.ndarray) -> np.ndarray:
        """(N,) bool: the pixels (N, 2) fall inside the image area ``[-0.5, size - 0.5]``."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        u, v = pixels[:, 0], pixels[:, 1]
        return (u >= -0.5) & (u <= self.width - 0.5) & (v >= -0.5) & (v <= self.height - 0.5)


def validate_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Check an RGB image ``(H, W, 3)`` uint8 (DEVELOPERS.md) and return it.

    Raises:
        ValueError: not an array, empty, wrong shape or dtype.
    """
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected shape (H, W, 3), got {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: empty image of shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {image.dtype}")
    return image


def image_to_tensor(image: np.ndarray, device="cpu") -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1] on ``device``."""
    validate_image(image)
    # Decoded messages are read-only views of the message buffer, which torch must not share.
    array = np.ascontiguousarray(image) if image.flags.writeable else np.array(image)
    tensor = torch.from_numpy(array).to(device)
    return tensor.permute(2, 0, 1).float().div_(255.0)


def resize_image_tensor(image: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Resize ``(..., C, H, W)`` float images to ``(..., C, height, width)``.

    Bilinear with ``align_corners=False`` (pixel areas map onto pixel areas, the convention of
    ``PinholeCamera.resized``) and antialiasing when shrinking.
    """
    if image.ndim < 3:
        raise ValueError(f"image: expected (..., C, H, W), got {tuple(image.shape)}")
    if image.shape[-1] == width and image.shape[-2] == height:
        return image
    leading = image.shape[:-3]
    flat = image.reshape(-1, *image.shape[-3:])
    shrinking = width < image.shape[-1] or height < image.shape[-2]
    resized = F.interpolate(
        flat, size=(height, width), mode="bilinear", align_corners=False, antialias=shrinking
    )
    return resized.reshape(*leading, *resized.shape[-3:])


def resize_image(
    image: np.ndarray, camera: PinholeCamera, width: int, height: int
) -> tuple[np.ndarray, PinholeCamera]:
    """Resize an RGB image (H, W, 3) uint8 and its camera to ``width`` x ``height``.

    Returns:
        The resized image (height, width, 3) uint8 and ``camera.resized(width, height)``.

    Raises:
        ValueError: bad image, or an image whose size differs from the camera's.
    """
    validate_image(image)
    if image.shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"image: size {image.shape[1]}x{image.shape[0]} differs from the camera's "
            f"{camera.width}x{camera.height}"
        )
    resized = resize_image_tensor(image_to_tensor(image), width, height)
    out = (resized.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return np.ascontiguousarray(out), camera.resized(width, height)


def pixel_rays(K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(3, H, W) camera rays with z = 1 through each pixel centre of intrinsics ``K`` (3, 3)."""
    v, u = torch.meshgrid(
        torch.arange(height, dtype=K.dtype, device=K.device),
        torch.arange(width, dtype=K.dtype, device=K.device),
        indexing="ij",
    )
    return torch.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], torch.ones_like(u)])
