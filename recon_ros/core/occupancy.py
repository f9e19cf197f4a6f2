"""A 2D occupancy slice of the TSDF map, for planners (nav_msgs/OccupancyGrid at the ROS edge).

Each cell is a column of voxels across world up, cut to a band of heights above the floor. A
column is *occupied* when an observed voxel in the band lies behind a surface (TSDF < 0), *free*
when it has observed voxels and none of them is behind a surface, and *unknown* when no voxel in
the band was observed. Behind-surface voxels only exist within the truncation band, so obstacles
come out as thick as the truncation (a planner inflates them anyway).

World up may be any signed axis (a SLAM frame with y down gives up = -y): the grid lies in the
plane across up, its axes ``(a, b)`` chosen right-handed with up, and the returned rotation
places it in the world (the OccupancyGrid's origin orientation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: OccupancyGrid cell values.
OCCUPIED, FREE, UNKNOWN = 100, 0, -1


@dataclass(frozen=True)
class OccupancySlice:
    """cells (H, W) int8 (row = grid b, column = grid a); ``origin`` (3,) world position of the
    corner of cell (0, 0) at the band's lower height; ``rotation`` (3, 3) world-from-grid, its
    columns the grid's a, b and up directions; ``resolution`` metres per cell."""

    cells: np.ndarray
    origin: np.ndarray
    rotation: np.ndarray
    resolution: float


def grid_axes(up_axis: int, up_sign: float) -> tuple[int, int, float, np.ndarray]:
    """(a axis, b axis, b sign, rotation) of the grid across world up ``up_sign * e[up_axis]``:
    a is the first other world axis (positive), b = up x a is ``b sign * e[b axis]``."""
    if up_axis not in (0, 1, 2) or up_sign not in (1.0, -1.0, 1, -1):
        raise ValueError(f"up: expected an axis 0-2 and a sign +-1, got {up_axis}, {up_sign}")
    a_axis = 0 if up_axis != 0 else 1
    b_axis = 3 - up_axis - a_axis
    up = np.zeros(3)
    up[up_axis] = up_sign
    a = np.zeros(3)
    a[a_axis] = 1.0
    b = np.cross(up, a)
    return a_axis, b_axis, float(b[b_axis]), np.stack([a, b, up], axis=1)


def _band_indices(low_m, high_m, floor_m, up_sign, voxel_size) -> tuple[int, int]:
    """Inclusive world voxel index range along the up axis whose heights above the floor
    (``up_sign * index * voxel_size - floor_m``) lie in [low_m, high_m]."""
    ends = [up_sign * (floor_m + h) / voxel_size for h in (low_m, high_m)]
    return int(np.ceil(min(ends) - 1e-9)), int(np.floor(max(ends) + 1e-9))


def occupancy_slice(
    chunks: Mapping[tuple[int, int, int], tuple[np.ndarray, np.ndarray]],
    chunk_size: int,
    voxel_size: float,
    up_axis: int = 2,
    up_sign: float = 1.0,
    floor_m: float = 0.0,
    low_m: float = 0.1,
    high_m: float = 1.5,
    min_weight: int = 1,
) -> OccupancySlice:
    """The occupancy of the heights ``[low_m, high_m]`` above the floor.

    Args:
        chunks: chunk key -> (tsdf (S, S, S), weight (S, S, S)), world voxel ``key * S + i``
            centred at ``(key * S + i) * voxel_size``.
        floor_m: the floor's height along up (``up_sign * position[up_axis]`` of the floor).
        min_weight: weight from which a voxel counts as observed.

    Returns an empty (0, 0) grid when no chunk reaches the band.
    """
    if high_m < low_m:
        raise ValueError(f"occupancy band: high {high_m} m is below low {low_m} m")
    if voxel_size <= 0 or chunk_size < 1:
        raise ValueError(f"occupancy: voxel size {voxel_size}, chunk size {chunk_size}")
    a_axis, b_axis, b_sign, rotation = grid_axes(up_axis, up_sign)
    lo, hi = _band_indices(low_m, high_m, floor_m, up_sign, voxel_size)
    size = chunk_size
    columns = []  # (first a index, first b index (grid sign), occupied (S, S), observed (S, S))
    for key, (tsdf, weight) in chunks.items():
        first = key[up_axis] * size
        start, stop = max(lo, first), min(hi, first + size - 1)
        if start > stop:
            continue
        band = [slice(None)] * 3
        band[up_axis] = slice(start - first, stop - first + 1)
        observed = weight[tuple(band)] >= min_weight
        behind = observed & (tsdf[tuple(band)] < 0)
        # reduce over up, then order the remaining axes as (a, b)
        occupied, seen = behind.any(axis=up_axis), observed.any(axis=up_axis)
        if a_axis > b_axis:
            occupied, seen = occupied.T, seen.T
        b0 = key[b_axis] * size
        if b_sign < 0:  # grid b runs against the world axis
            occupied, seen = occupied[:, ::-1], seen[:, ::-1]
            b0 = -(b0 + size - 1)
        columns.append((key[a_axis] * size, b0, occupied, seen))
    if not columns:
        return OccupancySlice(np.zeros((0, 0), np.int8), np.zeros(3), rotation, float(voxel_size))
    a_min = min(c[0] for c in columns)
    b_min = min(c[1] for c in columns)
    width = max(c[0] for c in columns) + size - a_min
    height = max(c[1] for c in columns) + size - b_min
    occupied_grid = np.zeros((height, width), bool)
    seen_grid = np.zeros((height, width), bool)
    for a0, b0, occupied, seen in columns:
        rows, cols = slice(b0 - b_min, b0 - b_min + size), slice(a0 - a_min, a0 - a_min + size)
        occupied_grid[rows, cols] |= occupied.T  # (a, b) -> (row b, column a)
        seen_grid[rows, cols] |= seen.T
    cells = np.full((height, width), UNKNOWN, np.int8)
    cells[seen_grid] = FREE
    cells[occupied_grid] = OCCUPIED
    # corner of cell (0, 0): half a voxel before the first voxel centre, at the band's bottom
    corner = np.array([(a_min - 0.5) * voxel_size, (b_min - 0.5) * voxel_size, floor_m + low_m])
    return OccupancySlice(cells, rotation @ corner, rotation, float(voxel_size))


def occupancy_slice_reference(
    chunks: Mapping[tuple[int, int, int], tuple[np.ndarray, np.ndarray]],
    chunk_size: int,
    voxel_size: float,
    up_axis: int = 2,
    up_sign: float = 1.0,
    floor_m: float = 0.0,
    low_m: float = 0.1,
    high_m: float = 1.5,
    min_weight: int = 1,
) -> OccupancySlice:
    """``occupancy_slice`` voxel by voxel (slow; for tests)."""
    _, _, _, rotation = grid_axes(up_axis, up_sign)
    cells: dict[tuple[int, int], int] = {}
    for key, (tsdf, weight) in chunks.items():
        for index in np.ndindex(*tsdf.shape):
            world = np.asarray(key) * chunk_size + np.asarray(index)
            height = up_sign * world[up_axis] * voxel_size - floor_m
            if not low_m - 1e-9 <= height <= high_m + 1e-9 or weight[index] < min_weight:
                continue
            grid = rotation.T @ (world * voxel_size)  # (a, b, up) coordinates
            cell = (round(grid[1] / voxel_size), round(grid[0] / voxel_size))
            state = OCCUPIED if tsdf[index] < 0 else FREE
            cells[cell] = max(cells.get(cell, FREE), state)
    if not cells:
        return OccupancySlice(np.zeros((0, 0), np.int8), np.zeros(3), rotation, float(voxel_size))
    rows, cols = zip(*cells, strict=True)
    # the fast op covers whole chunks; the reference covers observed cells: compare on those
    grid = np.full((max(rows) - min(rows) + 1, max(cols) - min(cols) + 1), UNKNOWN, np.int8)
    for (row, col), state in cells.items():
        grid[row - min(rows), col - min(cols)] = state
    corner = np.array(
        [(min(cols) - 0.5) * voxel_size, (min(rows) - 0.5) * voxel_size, floor_m + low_m]
    )
    return OccupancySlice(grid, rotation @ corner, rotation, float(voxel_size))
