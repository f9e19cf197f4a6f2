"""Voxel grids and the ground-truth volumes a dataset folder stores (``volumes/*.npz``): the
folder format, read by training and evaluation without the scene engine that computes them
(``recon_ros.scenes.volumes``).

Grids follow DEVELOPERS.md: ``origin`` (3,), ``voxel_size`` and ``dims`` (nx, ny, nz); voxel
``(i, j, k)`` has its centre at ``origin + (i, j, k) * voxel_size``; arrays are indexed
``[i, j, k]`` (x, y, z). What each array of a ``GroundTruthVolume`` holds is said in
``recon_ros.scenes.volumes``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from recon_ros.core.classes import CLASS_NAMES
from recon_ros.datasets.io import read_npz, write_npz


@dataclass(frozen=True)
class Grid:
    """A voxel grid (see the module docstring)."""

    origin: tuple[float, float, float]
    voxel_size: float
    dims: tuple[int, int, int]

    def __post_init__(self):
        if self.voxel_size <= 0:
            raise ValueError(f"voxel_size: must be positive, got {self.voxel_size}")
        if len(self.dims) != 3 or min(self.dims) < 1:
            raise ValueError(f"dims: expected three positive sizes, got {self.dims}")
        object.__setattr__(self, "origin", tuple(float(v) for v in self.origin))
        object.__setattr__(self, "dims", tuple(int(v) for v in self.dims))
        object.__setattr__(self, "voxel_size", float(self.voxel_size))

    @classmethod
    def covering(cls, lo, hi, voxel_size: float) -> Grid:
        """The grid of ``voxel_size`` whose voxels (cubes round the centres) cover ``lo``-``hi``."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        if np.any(hi <= lo):
            raise ValueError(f"lo, hi: empty box {lo.tolist()} - {hi.tolist()}")
        if voxel_size <= 0:
            raise ValueError(f"voxel_size: must be positive, got {voxel_size}")
        dims = np.maximum(np.ceil((hi - lo) / voxel_size - 1e-9).astype(int), 1)
        origin = lo + 0.5 * voxel_size
        return cls(tuple(origin), voxel_size, tuple(dims))

    @classmethod
    def fitting(cls, lo, hi, dims) -> Grid:
        """The grid of shape ``dims`` with the smallest cubic voxels covering ``lo``-``hi``,
        centred on it."""
        lo, hi = np.asarray(lo, float), np.asarray(hi, float)
        dims = np.asarray(dims, int)
        if dims.shape != (3,) or np.any(dims < 1):
            raise ValueError(f"dims: expected three positive sizes, got {dims.tolist()}")
        voxel = float(np.max((hi - lo) / dims))
        center = (lo + hi) / 2
        origin = center - (dims - 1) / 2 * voxel
        return cls(tuple(origin), voxel, tuple(int(d) for d in dims))

    @property
    def lo(self) -> np.ndarray:
        """Lower corner of the covered box (the outer face of voxel 0)."""
        return np.asarray(self.origin) - self.voxel_size / 2

    @property
    def hi(self) -> np.ndarray:
        return np.asarray(self.origin) + (np.asarray(self.dims) - 0.5) * self.voxel_size

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Voxel centre coordinates along x (nx,), y (ny,), z (nz,)."""
        return tuple(self.origin[a] + np.arange(self.dims[a]) * self.voxel_size for a in range(3))

    def centers(self) -> np.ndarray:
        """All voxel centres (nx, ny, nz, 3)."""
        xs, ys, zs = self.axes()
        return np.stack(np.meshgrid(xs, ys, zs, indexing="ij"), axis=-1)

    def index_slices(self, lo, hi) -> tuple[slice, slice, slice] | None:
        """Slices of the voxels whose centres lie in ``lo``-``hi``, or None when none do."""
        first = np.ceil((np.asarray(lo) - self.origin) / self.voxel_size - 1e-9).astype(int)
        last = np.floor((np.asarray(hi) - self.origin) / self.voxel_size + 1e-9).astype(int)
        first = np.maximum(first, 0)
        last = np.minimum(last, np.asarray(self.dims) - 1)
        if np.any(last < first):
            return None
        return tuple(slice(int(a), int(b) + 1) for a, b in zip(first, last, strict=True))

    def world_to_index(self, points: np.ndarray) -> np.ndarray:
        """Continuous voxel coordinates (N, 3) of world ``points`` (N, 3)."""
        return (np.asarray(points, float) - np.asarray(self.origin)) / self.voxel_size

    def to_dict(self) -> dict:
        return {"origin": list(self.origin), "voxel_size": self.voxel_size, "dims": list(self.dims)}


@dataclass
class GroundTruthVolume:
    """Ground truth on one grid (see the module docstring); arrays are (nx, ny, nz)."""

    grid: Grid
    truncation: float
    tsdf: np.ndarray
    occupancy: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray
    solid_class: np.ndarray
    observed: np.ndarray | None = None

    def class_masks(self, num_classes: int = len(CLASS_NAMES)) -> np.ndarray:
        """Per-class occupancy masks (C, nx, ny, nz) bool: voxel centre inside a solid of class
        c."""
        return self.solid_class[None] == np.arange(num_classes, dtype=np.uint8)[:, None, None, None]

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "origin": np.asarray(self.grid.origin, dtype=np.float64),
            "voxel_size": np.float64(self.grid.voxel_size),
            "dims": np.asarray(self.grid.dims, dtype=np.int64),
            "truncation": np.float64(self.truncation),
            "tsdf": self.tsdf.astype(np.float32),
            "occupancy": self.occupancy.astype(bool),
            "semantic": self.semantic.astype(np.uint8),
            "instance": self.instance.astype(np.uint16),
            "solid_class": self.solid_class.astype(np.uint8),
        }
        if self.observed is not None:
            arrays["observed"] = self.observed.astype(bool)
        return arrays

    def save(self, path: str | os.PathLike) -> None:
        """Write as a deterministic, compressed ``.npz`` (atomically)."""
        write_npz(path, self.arrays())

    @classmethod
    def load(cls, path: str | os.PathLike) -> GroundTruthVolume:
        a = read_npz(path)
        grid = Grid(tuple(a["origin"]), float(a["voxel_size"]), tuple(int(v) for v in a["dims"]))
        return cls(
            grid=grid,
            truncation=float(a["truncation"]),
            tsdf=a["tsdf"],
            occupancy=a["occupancy"],
            semantic=a["semantic"],
            instance=a["instance"],
            solid_class=a["solid_class"],
            observed=a.get("observed"),
        )

    def sample_tsdf(self, points: np.ndarray) -> np.ndarray:
        """Trilinear TSDF (N,) at world ``points`` (N, 3); NaN outside the grid's centres."""
        return _trilinear(self.tsdf, self.grid.world_to_index(points))

    def lookup(self, volume: np.ndarray, points: np.ndarray, fill=0) -> np.ndarray:
        """Values (N,) of ``volume`` (nx, ny, nz) at the voxels nearest to ``points`` (N, 3);
        ``fill`` outside the grid."""
        index = np.round(self.grid.world_to_index(points)).astype(np.int64)
        inside = np.all((index >= 0) & (index < np.asarray(self.grid.dims)), axis=1)
        out = np.full(len(points), fill, dtype=volume.dtype)
        i = index[inside]
        out[inside] = volume[i[:, 0], i[:, 1], i[:, 2]]
        return out


def _trilinear(volume: np.ndarray, coords: np.ndarray) -> np.ndarray:
    dims = np.asarray(volume.shape)
    base = np.floor(coords).astype(np.int64)
    frac = coords - base
    inside = np.all((base >= 0) & (base + 1 < dims), axis=1)
    out = np.full(len(coords), np.nan)
    b, f = base[inside], frac[inside]
    acc = np.zeros(len(b))
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = (
                    (f[:, 0] if dx else 1 - f[:, 0])
                    * (f[:, 1] if dy else 1 - f[:, 1])
                    * (f[:, 2] if dz else 1 - f[:, 2])
                )
                acc += w * volume[b[:, 0] + dx, b[:, 1] + dy, b[:, 2] + dz]
    out[inside] = acc
    return out
