"""The voxel grid in front of a camera that the single-image model reconstructs.

A box in the camera's optical frame (x right, y down, z forward), ``dims`` = (D, H, W) voxels
along (z, y, x) of edge ``voxel_size``; voxel (k, j, i) has its centre at ``origin + (i, j, k) *
voxel_size``. Continuous grid coordinates of a point are ``(p - origin) / voxel_size`` in (x, y, z)
order, so they index (W, H, D) as ``grid_sample`` expects of its last axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class FrustumGrid:
    """dims: (D, H, W) voxels along z, y, x; voxel_size metres; origin: (x, y, z) metres of voxel
    (0, 0, 0)'s centre in the camera frame."""

    dims: tuple[int, int, int]
    voxel_size: float
    origin: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.dims) != 3 or min(self.dims) < 2:
            raise ValueError(f"dims: expected three sizes >= 2, got {self.dims}")
        if not self.voxel_size > 0:
            raise ValueError(f"voxel_size: must be > 0, got {self.voxel_size}")
        if len(self.origin) != 3:
            raise ValueError(f"origin: expected (x, y, z), got {self.origin}")

    @classmethod
    def in_front(
        cls, dims: tuple[int, int, int], voxel_size: float, near: float = 0.2
    ) -> FrustumGrid:
        """The grid centred on the optical axis, its first slice ``near`` metres ahead."""
        _, height, width = dims
        origin = (-(width - 1) / 2 * voxel_size, -(height - 1) / 2 * voxel_size, near)
        return cls(tuple(int(d) for d in dims), float(voxel_size), origin)

    def to_grid(self, points: torch.Tensor) -> torch.Tensor:
        """(..., 3) camera-frame points -> (..., 3) continuous grid coordinates (x, y, z)."""
        origin = torch.as_tensor(self.origin, dtype=points.dtype, device=points.device)
        return (points - origin) / self.voxel_size

    def normalised(self, grid_points: torch.Tensor) -> torch.Tensor:
        """(..., 3) grid coordinates -> ``grid_sample``'s [-1, 1] (align_corners=True)."""
        depth, height, width = self.dims
        size = torch.tensor([width - 1, height - 1, depth - 1], dtype=grid_points.dtype)
        return 2.0 * grid_points / size.to(grid_points.device) - 1.0

    def centres(self) -> torch.Tensor:
        """(D, H, W, 3) camera-frame voxel centres."""
        depth, height, width = self.dims
        k, j, i = torch.meshgrid(
            torch.arange(depth), torch.arange(height), torch.arange(width), indexing="ij"
        )
        index = torch.stack([i, j, k], dim=-1).float()
        return index * self.voxel_size + torch.tensor(self.origin)


def backproject_depth(depth: torch.Tensor, K: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera-frame points of every pixel.

    Args:
        depth: (B, H, W) metres (<= 0: none).
        K: (B, 3, 3) intrinsics of ``depth``.

    Returns:
        points (B, H * W, 3) and valid (B, H * W) bool.
    """
    if depth.ndim != 3 or tuple(K.shape) != (depth.shape[0], 3, 3):
        raise ValueError(
            f"depth, K: expected (B, H, W) and (B, 3, 3), got {tuple(depth.shape)}, "
            f"{tuple(K.shape)}"
        )
    batch, height, width = depth.shape
    v, u = torch.meshgrid(
        torch.arange(height, dtype=depth.dtype, device=depth.device),
        torch.arange(width, dtype=depth.dtype, device=depth.device),
        indexing="ij",
    )
    fx, fy = K[:, 0, 0, None, None], K[:, 1, 1, None, None]
    cx, cy = K[:, 0, 2, None, None], K[:, 1, 2, None, None]
    x = (u - cx) / fx * depth
    y = (v - cy) / fy * depth
    points = torch.stack([x, y, depth], dim=-1).reshape(batch, -1, 3)
    return points, (depth > 0).reshape(batch, -1)
