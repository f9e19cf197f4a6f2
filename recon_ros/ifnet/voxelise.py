"""Differentiable voxelisation of a point cloud (the seed paper's section 2.2): each point is
splatted trilinearly onto its eight neighbouring voxels, then the grid is blurred by a separable
Gaussian (three 1D convolutions) whose width ``sigma`` (voxels) is learnable, and clipped to
[0, 1]. A point at a voxel centre gives that voxel 1; the gradient reaches the points (through
the splat weights) and sigma (through the kernel).

``voxelise_reference`` is the same sum evaluated voxel by voxel, for tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn


def splat_trilinear(
    grid_points: torch.Tensor, dims: tuple[int, int, int], valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Trilinear splat of points onto a grid.

    Args:
        grid_points: (B, N, 3) continuous grid coordinates (x, y, z) indexing (W, H, D).
        dims: (D, H, W).
        valid: (B, N) bool, points to splat (None: all).

    Returns:
        (B, 1, D, H, W) summed weights (corners outside the grid are dropped).
    """
    if grid_points.ndim != 3 or grid_points.shape[-1] != 3:
        raise ValueError(f"grid_points: expected (B, N, 3), got {tuple(grid_points.shape)}")
    batch, count, _ = grid_points.shape
    depth, height, width = dims
    base = torch.floor(grid_points)
    frac = grid_points - base
    base = base.long()
    keep = torch.ones(batch, count, dtype=torch.bool, device=grid_points.device)
    if valid is not None:
        keep = keep & valid
    out = grid_points.new_zeros(batch, depth * height * width)
    for corner in range(8):
        offset = torch.tensor(
            [(corner >> 0) & 1, (corner >> 1) & 1, (corner >> 2) & 1], device=grid_points.device
        )
        index = base + offset
        weight = torch.where(offset.bool(), frac, 1.0 - frac).prod(dim=-1)
        inside = (
            keep
            & (index[..., 0] >= 0)
            & (index[..., 0] < width)
            & (index[..., 1] >= 0)
            & (index[..., 1] < height)
            & (index[..., 2] >= 0)
            & (index[..., 2] < depth)
        )
        flat = (index[..., 2] * height + index[..., 1]) * width + index[..., 0]
        flat = torch.where(inside, flat, torch.zeros_like(flat))
        out = out.scatter_add(1, flat, torch.where(inside, weight, torch.zeros_like(weight)))
    return out.view(batch, 1, depth, height, width)


def gaussian_kernel(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(size,) 1D kernel exp(-x^2 / (2 sigma^2)) for x in -size//2..size//2: 1 at its centre, so
    a point at a voxel centre keeps occupancy 1 there."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"size: expected a positive odd number, got {size}")
    x = torch.arange(size, dtype=sigma.dtype, device=sigma.device) - size // 2
    return torch.exp(-0.5 * (x / sigma) ** 2)


def blur_separable(grid: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(B, C, D, H, W) blurred along D, H and W by ``gaussian_kernel(sigma, size)`` (zero
    padding: nothing outside the grid)."""
    if grid.ndim != 5:
        raise ValueError(f"grid: expected (B, C, D, H, W), got {tuple(grid.shape)}")
    kernel = gaussian_kernel(sigma, size)
    channels = grid.shape[1]
    pad = size // 2
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = size
        weight = kernel.view(1, 1, *shape).expand(channels, 1, *shape)
        padding = [0, 0, 0]
        padding[axis] = pad
        grid = F.conv3d(grid, weight, padding=tuple(padding), groups=channels)
    return grid


class DifferentiableVoxeliser(nn.Module):
    """Points -> occupancy grid in [0, 1], with a learnable Gaussian width.

    Args:
        dims: (D, H, W).
        sigma: initial width in voxels (the paper saw it settle just above 0.5).
        kernel_size: odd number of taps per axis (the paper used 3).
    """

    def __init__(self, dims: tuple[int, int, int], sigma: float = 1.0, kernel_size: int = 3):
        super().__init__()
        if not sigma > 0:
            raise ValueError(f"sigma: must be > 0, got {sigma}")
        self.dims = tuple(int(d) for d in dims)
        self.kernel_size = int(kernel_size)
        gaussian_kernel(torch.tensor(1.0), self.kernel_size)  # checks the size
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma)))

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def forward(self, grid_points: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N, 3) grid coordinates (+ (B, N) valid) -> (B, 1, D, H, W) occupancy."""
        splat = splat_trilinear(grid_points, self.dims, valid)
        return blur_separable(splat, self.sigma, self.kernel_size).clamp(0.0, 1.0)


def voxelise_reference(
    grid_points: torch.Tensor,
    dims: tuple[int, int, int],
    sigma: float,
    kernel_size: int,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """``DifferentiableVoxeliser`` of one cloud, voxel by voxel: (N, 3) -> (D, H, W)."""
    depth, height, width = dims
    out = torch.zeros(depth, height, width, dtype=torch.float64)
    reach = kernel_size // 2
    corners = []
    for n, point in enumerate(grid_points.double()):
        if valid is not None and not bool(valid[n]):
            continue
        base = torch.floor(point)
        frac = point - base
        for corner in range(8):
            offset = [(corner >> 0) & 1, (corner >> 1) & 1, (corner >> 2) & 1]
            weight = 1.0
            for axis in range(3):
                weight *= float(frac[axis]) if offset[axis] else 1.0 - float(frac[axis])
            i, j, k = (int(base[a]) + offset[a] for a in range(3))
            if 0 <= i < width and 0 <= j < height and 0 <= k < depth:
                corners.append((i, j, k, weight))
    for k in range(depth):
        for j in range(height):
            for i in range(width):
                total = 0.0
                for ci, cj, ck, weight in corners:
                    if max(abs(ci - i), abs(cj - j), abs(ck - k)) > reach:
                        continue
                    distance2 = (ci - i) ** 2 + (cj - j) ** 2 + (ck - k) ** 2
                    total += weight * math.exp(-0.5 * distance2 / sigma**2)
                out[k, j, i] = min(max(total, 0.0), 1.0)
    return out
