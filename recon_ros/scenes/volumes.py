"""Ground-truth volumes of a scene on any voxel grid, from the exact signed distance.

Grids follow DEVELOPERS.md: ``origin`` (3,), ``voxel_size`` and ``dims`` (nx, ny, nz); voxel
``(i, j, k)`` has its centre at ``origin + (i, j, k) * voxel_size``; arrays are indexed
``[i, j, k]`` (x, y, z).

From the union of the visible primitives (room slabs included; the signed distance is exact
outside the solids and on their surfaces, see ``geometry``):

- ``tsdf``: signed distance / ``truncation`` clipped to [-1, 1], positive in free space;
- ``occupancy``: voxel centre inside a solid;
- ``semantic`` / ``instance``: class / instance of the nearest surface for voxels within the
  truncation distance of one (``IGNORE_LABEL`` / 0 elsewhere);
- ``solid_class``: class of the solid containing the voxel centre (``IGNORE_LABEL`` in free
  space); ``class_masks()`` expands it to per-class masks (C, nx, ny, nz);
- ``observed``: voxels the rendered views observed, as TSDF fusion would update them: the voxel
  centre projects (nearest pixel) into a view with valid depth ``d`` and its depth ``z`` along the
  optical axis satisfies ``0 < z <= d + truncation``.

``paper_volumes`` gives the Everted U-Net layout: an 80 x 96 x 64 grid over the room with an
occupancy grid and one mask per object class (channels last, classes in ``OBJECT_CLASSES``
order), by default without the room's own surfaces.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from recon_ros.core.classes import CLASS_IDS, CLASS_NAMES, IGNORE_LABEL
from recon_ros.datasets.io import read_npz, write_npz
from recon_ros.scenes.geometry import invert_pose, local_sdf, transform_points
from recon_ros.scenes.objects import OBJECT_CLASSES
from recon_ros.scenes.scene import PrimitiveTable, Scene

PAPER_DIMS = (80, 96, 64)


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


def sdf_volume(
    table: PrimitiveTable, grid: Grid, band: float, primitives: Iterable[int] | None = None
):
    """Exact union signed distance on ``grid`` wherever it is below ``band`` in magnitude.

    Each primitive is evaluated on the voxels within ``band`` of its bounding box (its inside
    included), keeping the minimum; voxels farther than ``band`` from every primitive read
    ``band``.

    Args:
        table: the scene's primitives.
        band: distance (m) within which values are exact.
        primitives: indices into ``table`` to use (default all).

    Returns:
        sdf (nx, ny, nz) float64 (at most ``band``) and owner (nx, ny, nz) int64: the primitive
        giving the minimum, -1 where none is within ``band``.
    """
    if band <= 0:
        raise ValueError(f"band: must be positive, got {band}")
    sdf = np.full(grid.dims, band, dtype=np.float64)
    owner = np.full(grid.dims, -1, dtype=np.int64)
    xs, ys, zs = grid.axes()
    indices = range(len(table)) if primitives is None else primitives
    for k in indices:
        slices = grid.index_slices(table.lo[k] - band, table.hi[k] + band)
        if slices is None:
            continue
        sx, sy, sz = slices
        points = np.stack(np.meshgrid(xs[sx], ys[sy], zs[sz], indexing="ij"), axis=-1)
        shape = points.shape[:3]
        prim = table.primitives[k]
        local = transform_points(invert_pose(prim.pose), points.reshape(-1, 3))
        d = local_sdf(prim.kind, prim.size, local).reshape(shape)
        region, region_owner = sdf[slices], owner[slices]
        better = d < region
        region[better] = d[better]
        region_owner[better] = k
    return sdf, owner


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


def observed_mask(
    grid: Grid, truncation: float, views: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Voxels observed by ``views`` (see the module docstring).

    Args:
        views: ``(K, T_world_cam, depth)`` triples: K (3, 3), pose (4, 4), depth (H, W) metres
            with 0 where invalid.

    Returns:
        (nx, ny, nz) bool.
    """
    if truncation <= 0:
        raise ValueError(f"truncation: must be positive, got {truncation}")
    observed = np.zeros(grid.dims, dtype=bool)
    xs, ys, zs = grid.axes()
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    for K_view, T_view, depth_view in views:
        K = np.asarray(K_view, float)
        T = np.asarray(T_view, float)
        if K.shape != (3, 3) or T.shape != (4, 4):
            raise ValueError(
                f"views: expected K (3, 3) and T_world_cam (4, 4), got {K.shape}, {T.shape}"
            )
        depth = np.asarray(depth_view, dtype=np.float32)
        height, width = depth.shape
        R, t = T[:3, :3], T[:3, 3]
        # Camera coordinates of the voxel centres, one z slice at a time: p_cam = R^T (p - t).
        base = [R[0, a] * (X - t[0]) + R[1, a] * (Y - t[1]) for a in range(3)]
        for k, z in enumerate(zs):
            xc, yc, zc = (base[a] + R[2, a] * (z - t[2]) for a in range(3))
            in_front = zc > 1e-6
            if not in_front.any():
                continue
            safe_z = np.where(in_front, zc, 1.0)
            v = K[1, 1] * yc / safe_z + K[1, 2]
            u = K[0, 0] * xc / safe_z + K[0, 1] * yc / safe_z + K[0, 2]
            ui, vi = np.round(u).astype(np.int64), np.round(v).astype(np.int64)
            ok = in_front & (ui >= 0) & (ui < width) & (vi >= 0) & (vi < height)
            if not ok.any():
                continue
            d = np.zeros_like(zc, dtype=np.float32)
            d[ok] = depth[vi[ok], ui[ok]]
            ok &= (d > 0) & (zc <= d + truncation)
            observed[:, :, k] |= ok
    return observed


def compute_ground_truth(
    scene: Scene,
    grid: Grid,
    truncation: float | None = None,
    views: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
) -> GroundTruthVolume:
    """Ground-truth volumes of ``scene`` on ``grid`` (see the module docstring).

    Args:
        truncation: TSDF truncation (m); default three voxels.
        views: ``(K, T_world_cam, depth)`` of the rendered frames for the ``observed`` mask;
            ``None`` leaves it out.
    """
    truncation = 3 * grid.voxel_size if truncation is None else float(truncation)
    if truncation <= 0:
        raise ValueError(f"truncation: must be positive, got {truncation}")
    table = scene.primitive_table()
    sdf, owner = sdf_volume(table, grid, truncation)
    near = np.abs(sdf) < truncation
    has_owner = owner >= 0
    class_of = np.where(has_owner, table.class_ids[np.maximum(owner, 0)], IGNORE_LABEL)
    instance_of = np.where(has_owner, table.instance_ids[np.maximum(owner, 0)], 0)
    occupancy = sdf < 0
    return GroundTruthVolume(
        grid=grid,
        truncation=truncation,
        tsdf=np.clip(sdf / truncation, -1.0, 1.0).astype(np.float32),
        occupancy=occupancy,
        semantic=np.where(near, class_of, IGNORE_LABEL).astype(np.uint8),
        instance=np.where(near, instance_of, 0).astype(np.uint16),
        solid_class=np.where(occupancy, class_of, IGNORE_LABEL).astype(np.uint8),
        observed=None if views is None else observed_mask(grid, truncation, views),
    )


def room_grid(scene: Scene, voxel_size: float, margin: float = 0.1) -> Grid:
    """Grid of ``voxel_size`` covering the room interior grown by ``margin`` on every side."""
    lo, hi = scene.room.interior
    return Grid.covering(lo - margin, hi + margin, voxel_size)


def paper_volumes(
    scene: Scene,
    dims=PAPER_DIMS,
    *,
    include_room: bool = False,
    occupancy_mode: str = "overlap",
) -> tuple[Grid, np.ndarray, np.ndarray]:
    """The Everted U-Net layout: ``dims`` voxels fitted over the room interior.

    Args:
        include_room: count floor, walls and ceiling as occupied (the paper's grids hold the
            objects only).
        occupancy_mode: ``"center"`` (voxel centre inside a solid) or ``"overlap"`` (the
            solid comes within half a voxel diagonal of the centre: a conservative test for
            "the voxel touches the solid", so thin parts such as laptop lids are not lost).

    Returns:
        grid, occupancy (nx, ny, nz) uint8 and masks (nx, ny, nz, 6) uint8 with one channel per
        class of ``OBJECT_CLASSES``.
    """
    if occupancy_mode not in ("center", "overlap"):
        raise ValueError(f"occupancy_mode: expected 'center' or 'overlap', got {occupancy_mode!r}")
    lo, hi = scene.room.interior
    grid = Grid.fitting(lo, hi, dims)
    table = scene.primitive_table()
    roles = [table.objects[i].role for i in table.object_index]
    use = [k for k in range(len(table)) if include_room or roles[k] == "object"]
    threshold = 0.0 if occupancy_mode == "center" else grid.voxel_size * np.sqrt(3) / 2
    band = max(threshold, grid.voxel_size) + 1e-6
    sdf, owner = sdf_volume(table, grid, band, use)
    occupied = sdf < threshold
    class_of = np.where(owner >= 0, table.class_ids[np.maximum(owner, 0)], -1)
    masks = np.zeros((*grid.dims, len(OBJECT_CLASSES)), dtype=np.uint8)
    for channel, name in enumerate(OBJECT_CLASSES):
        masks[..., channel] = occupied & (class_of == CLASS_IDS[name])
    return grid, occupied.astype(np.uint8), masks
