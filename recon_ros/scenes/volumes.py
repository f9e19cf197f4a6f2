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

from collections.abc import Iterable

import numpy as np

from recon_ros.core.classes import CLASS_IDS, IGNORE_LABEL
from recon_ros.datasets.volumes import Grid, GroundTruthVolume
from recon_ros.scenes.geometry import invert_pose, local_sdf, transform_points
from recon_ros.scenes.objects import OBJECT_CLASSES
from recon_ros.scenes.scene import PrimitiveTable, Scene

PAPER_DIMS = (80, 96, 64)


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
