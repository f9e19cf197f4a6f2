"""Lifting image features into the room's grid along the cameras' rays (the Everted U-Net's
``lift="rays"``).

A fixed rig is calibrated once: each camera's intrinsics and its pose in the room. With them
every cell of the coarse grid projects to one point of each image; the cell takes the feature
there (bilinear), whether the point was inside the image, and its depth along that camera's
ray. The views' lifted volumes are then fused cell by cell: the mean and the variance of the
features over the views that see the cell (two views agreeing on a surface where their rays
cross is what locates it; the variance says where they disagree), the share of views that see
it and their mean depth.

``grid_projections`` builds the (3, 4) matrix that maps a grid index (i, j, k, 1) to the pixel
(u w, v w, w) of a camera, w its depth; ``lift_views`` samples with such matrices;
``lift_views_reference`` is the slow loop it is tested against; ``fuse_lifted`` fuses the views.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

#: lifted depths are divided by this (metres) so the channel is about unit scale in a room
DEPTH_SCALE_M = 5.0


def grid_projections(
    K: np.ndarray,
    T_world_cam: np.ndarray,
    image_hw: tuple[int, int],
    size: int,
    origin,
    voxel_size: float,
) -> np.ndarray:
    """(3, 4) map from a grid index (i, j, k, 1) to (u w, v w, w) in the ``size`` x ``size``
    network input the ``image_hw`` image is resized to.

    Args:
        K: (3, 3) intrinsics of the camera's image (pixel centres at integers).
        T_world_cam: (4, 4) camera pose (optical frame: z forward) in the grid's frame.
        image_hw: the image's (height, width) that ``K`` describes.
        size: side of the square network input.
        origin: (3,) centre of voxel (0, 0, 0); voxel_size: its edge (m).
    """
    K = np.asarray(K, dtype=np.float64)
    T_world_cam = np.asarray(T_world_cam, dtype=np.float64)
    if K.shape != (3, 3) or T_world_cam.shape != (4, 4):
        raise ValueError(
            f"K, T_world_cam: expected (3, 3), (4, 4), got {K.shape}, {T_world_cam.shape}"
        )
    height, width = image_hw
    # resizing maps pixel centres: u' + 0.5 = (u + 0.5) * size / width
    resize = np.array(
        [[size / width, 0, 0.5 * size / width - 0.5], [0, size / height, 0.5 * size / height - 0.5],
         [0, 0, 1]]
    )  # fmt: skip
    index_to_world = np.eye(4)
    index_to_world[:3, :3] *= float(voxel_size)
    index_to_world[:3, 3] = np.asarray(origin, dtype=np.float64)
    world_to_cam = np.linalg.inv(T_world_cam)
    return (resize @ K @ world_to_cam[:3] @ index_to_world).astype(np.float32)


def coarse_projections(projections: torch.Tensor, factor: int) -> torch.Tensor:
    """(..., 3, 4) maps of fine grid indices -> the same maps of a grid ``factor`` times
    coarser (coarse cell c covers fine cells f c ... f c + f - 1, its centre f c + (f - 1) / 2)."""
    scale = torch.eye(4, dtype=projections.dtype, device=projections.device)
    scale[:3, :3] *= factor
    scale[:3, 3] = (factor - 1) / 2
    return projections @ scale


def _points(projections: torch.Tensor, dims) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 4) -> image points (N, P, 2) in pixels and depths (N, P) of the P grid cells."""
    axes = [torch.arange(d, dtype=projections.dtype, device=projections.device) for d in dims]
    index = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    homogeneous = torch.cat([index, torch.ones_like(index[:, :1])], 1)  # (P, 4)
    projected = homogeneous @ projections.transpose(1, 2)  # (N, P, 3)
    depth = projected[..., 2]
    pixels = projected[..., :2] / depth.clamp(min=1e-6)[..., None]
    return pixels, depth


def lift_views(features: torch.Tensor, projections: torch.Tensor, dims, size: int) -> torch.Tensor:
    """Features of N views sampled at the grid cells' projections.

    Args:
        features: (N, C, h, w) feature maps covering the ``size`` x ``size`` inputs.
        projections: (N, 3, 4) grid index -> (u w, v w, w) in input pixels (``grid_projections``).
        dims: the grid (D0, D1, D2).

    Returns:
        (N, C + 2, D0, D1, D2): the features (0 where unseen), then ``seen`` (1 where the cell
        is in front of the camera and inside its image) and its depth / ``DEPTH_SCALE_M`` (0
        where unseen).
    """
    if features.ndim != 4 or projections.shape != (features.shape[0], 3, 4):
        raise ValueError(
            f"features, projections: expected (N, C, h, w), (N, 3, 4), got "
            f"{tuple(features.shape)}, {tuple(projections.shape)}"
        )
    count = features.shape[0]
    pixels, depth = _points(projections.to(features.dtype), dims)
    normalised = (pixels + 0.5) / size * 2.0 - 1.0  # align_corners=False: -1 is pixel 0's edge
    seen = (depth > 0.05) & (normalised.abs() <= 1.0).all(-1)
    sampled = F.grid_sample(features, normalised[:, :, None], mode="bilinear", align_corners=False)[
        ..., 0
    ]  # (N, C, P)
    seen_f = seen.to(features.dtype)[:, None]
    lifted = torch.cat([sampled * seen_f, seen_f, (depth / DEPTH_SCALE_M)[:, None] * seen_f], 1)
    return lifted.view(count, -1, *dims)


def lift_views_reference(
    features: torch.Tensor, projections: torch.Tensor, dims, size: int
) -> torch.Tensor:
    """``lift_views`` cell by cell with explicit bilinear weights (slow; for tests)."""
    count, channels, height, width = features.shape
    out = torch.zeros(count, channels + 2, *dims, dtype=features.dtype)
    for n in range(count):
        P = projections[n].double()
        for i in range(dims[0]):
            for j in range(dims[1]):
                for k in range(dims[2]):
                    u, v, w = (P @ torch.tensor([i, j, k, 1.0], dtype=torch.float64)).tolist()
                    if w <= 0.05:
                        continue
                    u, v = u / w, v / w
                    if not (-0.5 <= u <= size - 0.5 and -0.5 <= v <= size - 0.5):
                        continue
                    # the input pixel (u, v) in feature-map pixels (same image extent)
                    x = (u + 0.5) * width / size - 0.5
                    y = (v + 0.5) * height / size - 0.5
                    x0, y0 = int(np.floor(x)), int(np.floor(y))
                    value = torch.zeros(channels, dtype=torch.float64)
                    for dy in (0, 1):
                        for dx in (0, 1):
                            xx, yy = x0 + dx, y0 + dy
                            weight = (1 - abs(x - xx)) * (1 - abs(y - yy))
                            if 0 <= xx < width and 0 <= yy < height:  # zero padding outside
                                value += weight * features[n, :, yy, xx].double()
                    out[n, :channels, i, j, k] = value.to(features.dtype)
                    out[n, channels, i, j, k] = 1.0
                    out[n, channels + 1, i, j, k] = w / DEPTH_SCALE_M
    return out


def fuse_lifted(lifted: torch.Tensor) -> torch.Tensor:
    """(B, V, C + 2, D0, D1, D2) lifted views (``lift_views``) -> (B, 2 C + 2, D0, D1, D2): the
    mean and variance of the C features over the views that see each cell (0 where none does),
    the share of the views that see it, and the mean of their depths."""
    if lifted.ndim != 6 or lifted.shape[2] < 3:
        raise ValueError(f"lifted: expected (B, V, C + 2, D0, D1, D2), got {tuple(lifted.shape)}")
    features, seen, depth = lifted[:, :, :-2], lifted[:, :, -2:-1], lifted[:, :, -1:]
    count = seen.sum(1).clamp(min=1.0)
    mean = (features * seen).sum(1) / count
    variance = (((features - mean[:, None]) ** 2) * seen).sum(1) / count
    return torch.cat([mean, variance, seen.mean(1), (depth * seen).sum(1) / count], 1)
