"""Voxel grid geometry: ``origin`` (3,), ``voxel_size`` (m), ``dims`` ``(nx, ny, nz)``; voxel
``(i, j, k)`` has its centre at ``origin + (i, j, k) * voxel_size`` (DEVELOPERS.md)."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


def validate_grid(origin, voxel_size: float, dims: Sequence[int]) -> tuple[int, int, int]:
    """Check a grid's parameters and return ``dims`` as a tuple of ints.

    Raises:
        ValueError: origin not 3 finite numbers, voxel_size not positive and finite, dims not
            three positive integers.
    """
    origin_array = np.asarray(
        origin.detach().cpu() if isinstance(origin, torch.Tensor) else origin, dtype=np.float64
    )
    if origin_array.shape != (3,) or not np.all(np.isfinite(origin_array)):
        raise ValueError(f"origin: expected 3 finite values, got {origin_array.tolist()}")
    if not np.isfinite(voxel_size) or voxel_size <= 0:
        raise ValueError(f"voxel_size: must be positive and finite, got {voxel_size}")
    dims = tuple(int(d) for d in dims)
    if len(dims) != 3 or min(dims) <= 0:
        raise ValueError(f"dims: expected three positive integers, got {dims}")
    return dims  # type: ignore[return-value]


def voxel_centres(
    origin: torch.Tensor,
    voxel_size: float,
    dims: Sequence[int],
    x_range: tuple[int, int] | None = None,
) -> torch.Tensor:
    """World coordinates of voxel centres, ``(n, 3)`` in x-major order (the order of
    ``volume.reshape(-1)`` for a ``(nx, ny, nz)`` volume).

    Args:
        origin: (3,) tensor; its dtype and device are used.
        x_range: optional ``(x_start, x_stop)`` to produce only a slab of the grid.
    """
    nx, ny, nz = dims
    x_start, x_stop = x_range if x_range is not None else (0, nx)
    options = {"dtype": origin.dtype, "device": origin.device}
    ii, jj, kk = torch.meshgrid(
        torch.arange(x_start, x_stop, **options),
        torch.arange(ny, **options),
        torch.arange(nz, **options),
        indexing="ij",
    )
    index = torch.stack([ii, jj, kk], dim=-1).reshape(-1, 3)
    return origin + index * voxel_size


@dataclass(frozen=True)
class VoxelGrid:
    """A world-aligned grid; ``origin`` is the centre of voxel (0, 0, 0)."""

    origin: tuple[float, float, float]
    voxel_size: float
    dims: tuple[int, int, int]

    def __post_init__(self) -> None:
        validate_grid(self.origin, self.voxel_size, self.dims)

    @property
    def extent(self) -> np.ndarray:
        """(3,) size in metres covered by the voxels' cells."""
        return np.asarray(self.dims, dtype=np.float64) * self.voxel_size

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corners (3,) of the region covered by the voxels' cells."""
        lower = np.asarray(self.origin, dtype=np.float64) - 0.5 * self.voxel_size
        return lower, lower + self.extent

    @property
    def centre(self) -> np.ndarray:
        """(3,) world centre of the covered region."""
        lower, upper = self.bounds
        return 0.5 * (lower + upper)
