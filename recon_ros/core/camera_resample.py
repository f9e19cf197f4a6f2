"""An image as another pinhole camera at the same place and orientation would see it.

A network trained on one camera (one focal length, one principal point) sees another camera's
image wrongly scaled: a single-image depth network reads metric depth from apparent sizes, so a
robot camera 20 % longer in focal length gives depth about 20 % too near. Resampling the image
into the training camera first removes that: both cameras share the centre and the axes, so each
target pixel's ray meets the source image at ``K_source K_target^-1 p``, an affine map per axis.
Target pixels whose ray leaves the source image are marked invalid (filled with zeros).

``resample_to_camera`` shrinks the source with antialiasing to about the target's scale first,
then samples bilinearly; ``resample_to_camera_reference`` is the per-pixel loop beside it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.camera import PinholeCamera, image_to_tensor, resize_image_tensor


def _source_coordinates(source: PinholeCamera, target: PinholeCamera) -> tuple[np.ndarray, ...]:
    """(w,) source x and (h,) source y of the target's pixel centres (the map is separable)."""
    u = np.arange(target.width, dtype=np.float64)
    v = np.arange(target.height, dtype=np.float64)
    x = source.fx * (u - target.cx) / target.fx + source.cx
    y = source.fy * (v - target.cy) / target.fy + source.cy
    return x, y


def resample_to_camera(
    rgb: np.ndarray, source: PinholeCamera, target: PinholeCamera
) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` (H, W, 3) uint8 of ``source`` as ``target`` sees it.

    Returns:
        (h, w, 3) uint8 image of ``target`` and (h, w) bool: the pixel's ray meets the source
        image (elsewhere the image is 0).

    Raises:
        ValueError: an image that is not (H, W, 3) uint8 of the source camera's size.
    """
    image = image_to_tensor(rgb)  # validates
    if image.shape[1:] != (source.height, source.width):
        raise ValueError(
            f"rgb: {image.shape[2]}x{image.shape[1]} pixels, the source camera's are "
            f"{source.width}x{source.height}"
        )
    # shrink first where the target samples the source sparsely (bilinear alone would alias)
    scale = min(1.0, target.fx / source.fx, target.fy / source.fy)
    if scale < 1.0:
        width = max(1, round(source.width * scale))
        height = max(1, round(source.height * scale))
        image = resize_image_tensor(image, width, height)
        source = source.resized(width, height)
    x, y = _source_coordinates(source, target)
    gx, gy = np.meshgrid((x + 0.5) / source.width * 2 - 1, (y + 0.5) / source.height * 2 - 1)
    grid = torch.from_numpy(np.stack([gx, gy], axis=-1)).float()[None]
    sampled = F.grid_sample(image[None], grid, mode="bilinear", align_corners=False)[0]
    valid = _inside(x, y, source)
    out = (sampled.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    out = np.where(valid[..., None], out, 0).astype(np.uint8)
    return np.ascontiguousarray(out), valid


def _inside(x: np.ndarray, y: np.ndarray, source: PinholeCamera) -> np.ndarray:
    """(h, w) bool: the sample point lies within the source's pixel area."""
    inside_x = (x >= -0.5) & (x <= source.width - 0.5)
    inside_y = (y >= -0.5) & (y <= source.height - 0.5)
    return inside_y[:, None] & inside_x[None, :]


def resample_to_camera_reference(
    image: np.ndarray, source: PinholeCamera, target: PinholeCamera
) -> tuple[np.ndarray, np.ndarray]:
    """Slow reference without the antialiasing step: (H, W, C) float image of ``source`` ->
    (h, w, C) float64 of ``target`` by per-pixel bilinear interpolation (neighbours outside the
    image count as zeros, as in ``grid_sample``'s zero padding), and the (h, w) valid mask."""
    image = np.asarray(image, dtype=np.float64)
    out = np.zeros((target.height, target.width, image.shape[2]))
    valid = np.zeros((target.height, target.width), dtype=bool)
    for row in range(target.height):
        for col in range(target.width):
            ray = np.array([(col - target.cx) / target.fx, (row - target.cy) / target.fy])
            x = source.fx * ray[0] + source.cx
            y = source.fy * ray[1] + source.cy
            if not (-0.5 <= x <= source.width - 0.5 and -0.5 <= y <= source.height - 0.5):
                continue
            valid[row, col] = True
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            ax, ay = x - x0, y - y0
            value = np.zeros(image.shape[2])
            for dy, wy in ((0, 1 - ay), (1, ay)):
                for dx, wx in ((0, 1 - ax), (1, ax)):
                    yy, xx = y0 + dy, x0 + dx
                    if 0 <= yy < source.height and 0 <= xx < source.width:
                        value += wy * wx * image[yy, xx]
            out[row, col] = value
    return out, valid
