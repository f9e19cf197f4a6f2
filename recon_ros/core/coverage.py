"""Coverage: which surfaces the recent frames saw well enough, in the map.

Each frame-sufficiency estimate says, per pixel of a reference keyframe, how many of its ``m``
partner frames also see that point (the conjugate-pair count, ``recon_ros.sufficiency``). With a
depth for the reference pixels (the estimator's own plane sweep, or a sensor's) the pixels become
points in the world, and the points fall into cells of a sparse grid. A cell keeps the best count
any estimate gave it (a surface is covered once some reference saw it with enough partners) and
how many estimates reached it. Cells below the sufficient count are where the operator should
point the camera next.

The grid is sparse (sorted int64 cell keys), bounded (``max_cells``: the cells farthest from the
latest camera go first) and free of ROS; sufficiency_node publishes it as a coloured cloud.
``coverage_cells_reference`` is a slow per-point loop of ``CoverageGrid.add``, for tests.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

#: Cell indices are packed 21 bits per axis: +-2^20 cells from the world origin.
_BITS = 21
_OFFSET = 1 << (_BITS - 1)
_MASK = (1 << _BITS) - 1


class CoverageCells(NamedTuple):
    """centres: (N, 3) float64 world cell centres; best: (N,) uint8 best count; hits: (N,)
    int64 estimates that reached the cell; keys: (N,) int64 packed cell indices (sorted)."""

    centres: np.ndarray
    best: np.ndarray
    hits: np.ndarray
    keys: np.ndarray


def pack_cells(index: np.ndarray) -> np.ndarray:
    """(N, 3) int cell indices within +-2^20 -> (N,) int64 keys (order-preserving per axis)."""
    shifted = np.asarray(index, dtype=np.int64) + _OFFSET
    return (shifted[:, 0] << (2 * _BITS)) | (shifted[:, 1] << _BITS) | shifted[:, 2]


def unpack_cells(keys: np.ndarray) -> np.ndarray:
    """Inverse of ``pack_cells``: (N,) int64 -> (N, 3) int64."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.stack([keys >> (2 * _BITS), (keys >> _BITS) & _MASK, keys & _MASK], axis=1) - _OFFSET


def _observation_points(
    counts: np.ndarray, depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, max_depth: float
) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) and their counts (N,) of the pixels with a usable depth."""
    counts = np.asarray(counts)
    depth = np.asarray(depth, dtype=np.float64)
    if counts.ndim != 2 or counts.shape != depth.shape:
        raise ValueError(
            f"counts/depth: expected the same (H, W), got {counts.shape}, {depth.shape}"
        )
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(T_world_cam, dtype=np.float64)
    if K.shape != (3, 3) or T.shape != (4, 4):
        raise ValueError(f"K, T_world_cam: expected (3, 3), (4, 4), got {K.shape}, {T.shape}")
    if not (np.all(np.isfinite(K)) and np.all(np.isfinite(T))):
        raise ValueError("K, T_world_cam: must be finite")
    valid = np.isfinite(depth) & (depth > 0) & (depth <= max_depth)
    v, u = np.nonzero(valid)
    z = depth[v, u]
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    points = np.stack([x, y, z], axis=1) @ T[:3, :3].T + T[:3, 3]
    return points, counts[v, u].astype(np.int64)


class CoverageGrid:
    """Sparse grid of the best conjugate-pair count per cell (module docstring).

    Args:
        cell_size: cell edge in metres.
        m: partners per estimate (counts run 0..m).
        sufficient_count: a cell is covered when its best count reaches this (the estimator's
            ``k``).
        max_cells: memory bound; beyond it the cells farthest from the latest camera are
            dropped.
    """

    def __init__(
        self, cell_size: float, m: int, sufficient_count: int, max_cells: int = 200_000
    ) -> None:
        if not cell_size > 0:
            raise ValueError(f"cell_size: must be > 0, got {cell_size}")
        if m < 1 or not 0 <= sufficient_count <= m:
            raise ValueError(f"m, sufficient_count: need m >= 1, 0 <= count <= m, got {m}, "
                             f"{sufficient_count}")  # fmt: skip
        if max_cells < 1:
            raise ValueError(f"max_cells: must be >= 1, got {max_cells}")
        self.cell_size = float(cell_size)
        self.m = int(m)
        self.sufficient_count = int(sufficient_count)
        self.max_cells = int(max_cells)
        self.reset()

    def reset(self) -> None:
        self._keys = np.zeros(0, np.int64)
        self._best = np.zeros(0, np.uint8)
        self._hits = np.zeros(0, np.int64)

    def __len__(self) -> int:
        return len(self._keys)

    def add(
        self,
        counts: np.ndarray,
        depth: np.ndarray,
        K: np.ndarray,
        T_world_cam: np.ndarray,
        max_depth: float = 10.0,
    ) -> int:
        """Put one estimate into the grid.

        Args:
            counts: (H, W) int counts 0..m of the reference pixels (larger values, such as
                ``IGNORE_LABEL``, mark pixels without a count and are left out).
            depth: (H, W) metres of the same pixels (0, negative, NaN or inf: no depth).
            K: (3, 3) intrinsics of ``depth``.
            T_world_cam: (4, 4) the reference camera's pose.
            max_depth: pixels deeper than this are left out (a far depth is a poor one).

        Returns:
            The number of cells this estimate reached.
        """
        points, point_counts = _observation_points(counts, depth, K, T_world_cam, max_depth)
        index = np.floor(points / self.cell_size).astype(np.int64)
        inside = np.all(np.abs(index) < _OFFSET, axis=1) & (point_counts <= self.m)
        keys = pack_cells(index[inside])
        point_counts = point_counts[inside]
        if len(keys) == 0:
            return 0
        order = np.argsort(keys, kind="stable")
        keys, point_counts = keys[order], point_counts[order]
        new_keys, starts = np.unique(keys, return_index=True)
        new_best = np.maximum.reduceat(point_counts, starts).astype(np.uint8)
        merged = np.concatenate([self._keys, new_keys])
        best = np.concatenate([self._best, new_best])
        hits = np.concatenate([self._hits, np.ones(len(new_keys), np.int64)])
        order = np.argsort(merged, kind="stable")
        merged, best, hits = merged[order], best[order], hits[order]
        self._keys, starts = np.unique(merged, return_index=True)
        self._best = np.maximum.reduceat(best, starts).astype(np.uint8)
        self._hits = np.add.reduceat(hits, starts)
        if len(self._keys) > self.max_cells:
            self._keep_nearest(np.asarray(T_world_cam, dtype=np.float64)[:3, 3])
        return len(new_keys)

    def _keep_nearest(self, camera: np.ndarray) -> None:
        centres = (unpack_cells(self._keys) + 0.5) * self.cell_size
        distance = np.linalg.norm(centres - camera, axis=1)
        keep = np.sort(np.argsort(distance, kind="stable")[: self.max_cells])
        self._keys, self._best, self._hits = self._keys[keep], self._best[keep], self._hits[keep]

    def cells(self) -> CoverageCells:
        """Every cell, in key order."""
        centres = (unpack_cells(self._keys) + 0.5) * self.cell_size
        return CoverageCells(centres, self._best.copy(), self._hits.copy(), self._keys.copy())

    def covered(self) -> np.ndarray:
        """(N,) bool per cell (``cells`` order): best count >= ``sufficient_count``."""
        return self._best >= self.sufficient_count

    def chunk_summary(self, chunk_size: float) -> list[tuple[tuple[int, int, int], int, int]]:
        """Per chunk of ``chunk_size`` metres holding cells: (chunk index, cells, cells not
        covered), in chunk order."""
        if not chunk_size > 0:
            raise ValueError(f"chunk_size: must be > 0, got {chunk_size}")
        if len(self._keys) == 0:
            return []
        centres = (unpack_cells(self._keys) + 0.5) * self.cell_size
        chunks = np.floor(centres / chunk_size).astype(np.int64)
        unique, inverse = np.unique(chunks, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        total = np.bincount(inverse, minlength=len(unique))
        lacking = np.bincount(inverse[~self.covered()], minlength=len(unique))
        return [
            (tuple(int(c) for c in chunk), int(n), int(short))
            for chunk, n, short in zip(unique, total, lacking, strict=True)
        ]


def counts_for_depth(
    counts: np.ndarray,
    K_colour: np.ndarray,
    depth: np.ndarray,
    K_depth: np.ndarray,
    T_colour_depth: np.ndarray,
    ignore: int = 255,
) -> np.ndarray:
    """The colour image's counts at the pixels of a depth image taken from another optical
    frame (an RGB-D camera whose depth is not registered to its colour): each depth pixel's
    point, moved into the colour camera, takes the count of the colour pixel it falls on
    (nearest); ``ignore`` where it has no depth or falls outside the colour image.

    Args:
        counts: (H, W) counts of the colour image; K_colour (3, 3) its intrinsics.
        depth: (Hd, Wd) metres; K_depth (3, 3) its intrinsics.
        T_colour_depth: (4, 4) the depth optical frame in the colour optical frame.

    Returns:
        (Hd, Wd) uint8.
    """
    counts = np.asarray(counts)
    depth = np.asarray(depth, dtype=np.float64)
    if counts.ndim != 2 or depth.ndim != 2:
        raise ValueError(f"counts, depth: expected (H, W) each, got {counts.shape}, {depth.shape}")
    out = np.full(depth.shape, ignore, dtype=np.uint8)
    points, _ = _observation_points(
        np.zeros(depth.shape, np.int64), depth, K_depth, T_colour_depth, np.inf
    )
    valid = np.isfinite(depth) & (depth > 0)
    z = points[:, 2]
    front = z > 1e-6
    zs = np.where(front, z, 1.0)
    K_colour = np.asarray(K_colour, dtype=np.float64)
    u = np.round(K_colour[0, 0] * points[:, 0] / zs + K_colour[0, 2]).astype(np.int64)
    v = np.round(K_colour[1, 1] * points[:, 1] / zs + K_colour[1, 2]).astype(np.int64)
    height, width = counts.shape
    seen = front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    picked = np.full(len(points), ignore, dtype=np.uint8)
    picked[seen] = counts[v[seen], u[seen]]
    out[valid] = picked
    return out


def coverage_cells_reference(
    observations: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    cell_size: float,
    m: int,
    max_depth: float = 10.0,
) -> dict[tuple[int, int, int], tuple[int, int]]:
    """``CoverageGrid.add`` over (counts, depth, K, T_world_cam) observations, one pixel at a
    time, without a cell limit: cell index -> (best count, estimates that reached it)."""
    cells: dict[tuple[int, int, int], tuple[int, int]] = {}
    for counts, depth, K, T in observations:
        reached: dict[tuple[int, int, int], int] = {}
        for v in range(depth.shape[0]):
            for u in range(depth.shape[1]):
                z = float(depth[v, u])
                if not (np.isfinite(z) and 0 < z <= max_depth):
                    continue
                ray = np.array([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z])
                point = T[:3, :3] @ ray + T[:3, 3]
                cell = tuple(int(i) for i in np.floor(point / cell_size))
                count = int(counts[v, u])
                if count > m:
                    continue
                reached[cell] = max(reached.get(cell, 0), count)
        for cell, count in reached.items():
            best, hits = cells.get(cell, (0, 0))
            cells[cell] = (max(best, count), hits + 1)
    return cells
