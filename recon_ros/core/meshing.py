"""Surface extraction: masked marching cubes on a TSDF, per-vertex attributes from the label,
confidence and colour volumes, vertex colouring, and the semantic point cloud.

The surface is the TSDF's zero level. A marching-cubes cell (the cube between 8 neighbouring
voxel centres) is meshed only when all 8 corners are observed and at least one corner lies inside
the truncation band (|tsdf| below ``saturation``): unobserved voxels hold no information, and a
jump straight from -1 to +1 between saturated voxels is an artefact of clamping or of regions
never seen, not a surface. Faces are wound counter-clockwise seen from free space (positive TSDF),
so their normals point out of solids towards the cameras.
"""

from dataclasses import dataclass, field

import numpy as np
from skimage.measure import marching_cubes

from recon_ros.core.classes import IGNORE_LABEL, palette
from recon_ros.core.mesh import Mesh

#: Default |TSDF| at or beyond which a voxel counts as saturated (outside the truncation band).
SATURATION = 0.99
COLOR_MODES = ("semantic", "rgb")


def concatenate_meshes(meshes: list[Mesh]) -> Mesh:
    """One mesh holding all of ``meshes`` (face indices offset accordingly)."""
    meshes = [m for m in meshes if m.num_vertices]
    if not meshes:
        return Mesh()
    offsets = np.cumsum([0] + [m.num_vertices for m in meshes[:-1]])
    return Mesh(
        vertices=np.concatenate([m.vertices for m in meshes]),
        faces=np.concatenate([m.faces + o for m, o in zip(meshes, offsets, strict=True)]).astype(
            np.int32
        ),
        colors=np.concatenate([m.colors for m in meshes]),
        labels=np.concatenate([m.labels for m in meshes]),
        confidence=np.concatenate([m.confidence for m in meshes]),
        rgb=np.concatenate([m.rgb for m in meshes]),
    )


def surface_cell_mask(
    tsdf: np.ndarray, observed: np.ndarray, saturation: float = SATURATION
) -> np.ndarray:
    """Cells worth meshing.

    Args:
        tsdf: (X, Y, Z) float.
        observed: (X, Y, Z) bool.

    Returns:
        (X - 1, Y - 1, Z - 1) bool: cell (i, j, k), the cube with lower corner voxel (i, j, k), has
        all 8 corners observed and at least one corner with |tsdf| < ``saturation``.
    """
    if tsdf.shape != observed.shape or tsdf.ndim != 3:
        raise ValueError(
            f"tsdf/observed: expected equal (X, Y, Z), got {tsdf.shape}, {observed.shape}"
        )
    in_band = np.abs(tsdf) < saturation
    all_observed = np.ones(tuple(d - 1 for d in tsdf.shape), dtype=bool)
    any_in_band = np.zeros_like(all_observed)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                corner = (
                    slice(dx, dx + tsdf.shape[0] - 1),
                    slice(dy, dy + tsdf.shape[1] - 1),
                    slice(dz, dz + tsdf.shape[2] - 1),
                )
                all_observed &= observed[corner]
                any_in_band |= in_band[corner]
    return all_observed & any_in_band


def surface_cell_mask_reference(
    tsdf: np.ndarray, observed: np.ndarray, saturation: float = SATURATION
) -> np.ndarray:
    """Slow reference of ``surface_cell_mask``: a loop over cells and their 8 corners."""
    cells = np.zeros(tuple(d - 1 for d in tsdf.shape), dtype=bool)
    for cell in np.ndindex(*cells.shape):
        corners = [tuple(np.add(cell, offset)) for offset in np.ndindex(2, 2, 2)]
        cells[cell] = all(observed[c] for c in corners) and any(
            abs(tsdf[c]) < saturation for c in corners
        )
    return cells


def marching_cubes_masked(
    tsdf: np.ndarray, cell_mask: np.ndarray, origin: np.ndarray, voxel_size: float
) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of ``tsdf`` over the cells in ``cell_mask``.

    Args:
        tsdf: (X, Y, Z), X, Y, Z >= 2.
        cell_mask: (X - 1, Y - 1, Z - 1) bool (``surface_cell_mask``).
        origin: (3,) world centre of voxel (0, 0, 0).

    Returns:
        vertices (N, 3) float32 in world metres, faces (M, 3) int32; empty when no surface.
    """
    tsdf = np.asarray(tsdf, dtype=np.float32)
    if tsdf.ndim != 3 or min(tsdf.shape) < 2:
        raise ValueError(f"tsdf: expected (X, Y, Z) with every dim >= 2, got {tsdf.shape}")
    if cell_mask.shape != tuple(d - 1 for d in tsdf.shape):
        raise ValueError(
            f"cell_mask: expected {tuple(d - 1 for d in tsdf.shape)}, got {cell_mask.shape}"
        )
    empty = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    if not cell_mask.any():
        return empty
    corner_values = tsdf[:-1, :-1, :-1][cell_mask]
    if corner_values.size == 0 or not (tsdf.min() < 0.0 < tsdf.max()):
        return empty
    # scikit-image visits the cell whose *upper* corner is the masked voxel.
    skimage_mask = np.zeros(tsdf.shape, dtype=bool)
    skimage_mask[1:, 1:, 1:] = cell_mask
    try:
        vertices, faces, _, _ = marching_cubes(
            tsdf, level=0.0, gradient_direction="descent", mask=skimage_mask, allow_degenerate=False
        )
    except RuntimeError:  # no surface in the masked cells
        return empty
    world = vertices.astype(np.float64) * voxel_size + np.asarray(origin, dtype=np.float64)
    return world.astype(np.float32), faces.astype(np.int32)


def marching_cubes_reference(
    tsdf: np.ndarray, cell_mask: np.ndarray, origin: np.ndarray, voxel_size: float
) -> np.ndarray:
    """Slow reference for the vertex positions of ``marching_cubes_masked``: every zero crossing
    along an edge of a masked cell, linearly interpolated, deduplicated. Returns (N, 3) float64
    world points (no faces)."""
    points = set()
    for i, j, k in zip(*np.nonzero(cell_mask), strict=True):
        for corner in np.ndindex(2, 2, 2):
            a = np.array([i, j, k]) + corner
            for axis in range(3):
                if corner[axis] == 1:
                    continue
                b = a.copy()
                b[axis] += 1
                va, vb = float(tsdf[tuple(a)]), float(tsdf[tuple(b)])
                if (va < 0.0) != (vb < 0.0) and va != vb:
                    t = va / (va - vb)
                    point = a + t * (b - a)
                    points.add(tuple(np.round(point, 5)))
    if not points:
        return np.zeros((0, 3))
    return np.array(sorted(points)) * voxel_size + np.asarray(origin, dtype=np.float64)


def occupancy_surface(
    occupancy: np.ndarray, threshold: float, origin, voxel_size: float, closed: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The surface around the voxels of ``occupancy`` (X, Y, Z) at or above ``threshold`` (a
    probability or any value that rises inwards), faces wound to look outwards: marching cubes
    on the grid padded with empty voxels, so it closes at the grid's faces (an object), or, not
    ``closed``, on the grid as it is, open where solids leave it (a scene cut by its grid).

    Args:
        origin: (3,) centre of voxel (0, 0, 0).

    Returns:
        vertices (N, 3) float32 metres, faces (M, 3) int32; empty when nothing reaches the
        threshold.
    """
    occupancy = np.asarray(occupancy, dtype=np.float32)
    if occupancy.ndim != 3:
        raise ValueError(f"occupancy: expected (X, Y, Z), got {occupancy.shape}")
    if not occupancy.max(initial=-np.inf) >= threshold:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    pad = 1 if closed else 0
    if closed:
        empty = min(float(occupancy.min()), threshold - 1.0)
        occupancy = np.pad(occupancy, 1, constant_values=empty)
    elif min(occupancy.shape) < 2 or not occupancy.min() < threshold:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
    vertices, faces, _, _ = marching_cubes(occupancy, level=threshold, allow_degenerate=False)
    # padded index p is voxel p - pad
    world = (vertices - pad) * voxel_size + np.asarray(origin, dtype=np.float64)
    # marching cubes winds faces by the gradient, which points inwards here: reverse them
    return world.astype(np.float32), np.ascontiguousarray(faces[:, ::-1]).astype(np.int32)


def sample_nearest_voxel(
    volume: np.ndarray, points: np.ndarray, origin: np.ndarray, voxel_size: float
) -> np.ndarray:
    """Values of ``volume`` (X, Y, Z, ...) at the voxel nearest each world point (N, 3); points
    outside the grid take the nearest border voxel. Returns (N, ...)."""
    index = np.rint((np.asarray(points, np.float64) - origin) / voxel_size).astype(np.int64)
    for axis in range(3):
        np.clip(index[:, axis], 0, volume.shape[axis] - 1, out=index[:, axis])
    return volume[index[:, 0], index[:, 1], index[:, 2]]


def extract_mesh(
    tsdf: np.ndarray,
    observed: np.ndarray,
    origin: np.ndarray,
    voxel_size: float,
    labels: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
    saturation: float = SATURATION,
    cell_mask: np.ndarray | None = None,
) -> Mesh:
    """Mesh of a TSDF volume with per-vertex attributes from the nearest voxel.

    Args:
        tsdf: (X, Y, Z) float; observed: (X, Y, Z) bool.
        origin: (3,) world centre of voxel (0, 0, 0); voxel_size: metres.
        labels: (X, Y, Z) uint8; confidence: (X, Y, Z) float; rgb: (X, Y, Z, 3) uint8.
        cell_mask: cells to mesh; default ``surface_cell_mask(tsdf, observed, saturation)``.

    Returns:
        A ``Mesh`` whose ``colors`` are the image colours (``colorize_mesh`` recolours it).
    """
    if cell_mask is None:
        cell_mask = surface_cell_mask(tsdf, observed, saturation)
    vertices, faces = marching_cubes_masked(tsdf, cell_mask, origin, voxel_size)
    n = len(vertices)
    origin = np.asarray(origin, dtype=np.float64)
    vertex_labels = (
        sample_nearest_voxel(labels, vertices, origin, voxel_size).astype(np.uint8)
        if labels is not None
        else np.full(n, IGNORE_LABEL, np.uint8)
    )
    vertex_confidence = (
        sample_nearest_voxel(confidence, vertices, origin, voxel_size).astype(np.float32)
        if confidence is not None
        else np.zeros(n, np.float32)
    )
    vertex_rgb = (
        sample_nearest_voxel(rgb, vertices, origin, voxel_size).astype(np.uint8)
        if rgb is not None
        else np.full((n, 3), 128, np.uint8)
    )
    return Mesh(vertices, faces, vertex_rgb.copy(), vertex_labels, vertex_confidence, vertex_rgb)


def colorize_mesh(
    mesh: Mesh, color_by: str = "semantic", color_table: np.ndarray | None = None
) -> Mesh:
    """Set ``mesh.colors`` by semantic class (``color_table`` (256, 3) uint8, default
    ``classes.palette()``) or by image colour (``"rgb"``); returns the same mesh."""
    if color_by not in COLOR_MODES:
        raise ValueError(f"color_by: expected one of {COLOR_MODES}, got {color_by!r}")
    if color_by == "rgb":
        mesh.colors = mesh.rgb.copy()
        return mesh
    table = palette() if color_table is None else np.asarray(color_table, dtype=np.uint8)
    if table.shape != (256, 3):
        raise ValueError(f"color_table: expected shape (256, 3), got {table.shape}")
    mesh.colors = table[mesh.labels]
    return mesh


@dataclass
class SemanticPointCloud:
    """Surface points: xyz (N, 3) float32 world metres, rgb (N, 3) uint8 image colour, label (N,)
    uint8, confidence (N,) float32."""

    xyz: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    label: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.uint8))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))

    def __len__(self) -> int:
        return len(self.xyz)


def semantic_point_cloud(mesh: Mesh, cell_size: float) -> SemanticPointCloud:
    """Mesh vertices thinned to one point per ``cell_size`` grid cell (the most confident one;
    ties go to the first)."""
    if not cell_size > 0:
        raise ValueError(f"cell_size: must be positive, got {cell_size}")
    if mesh.num_vertices == 0:
        return SemanticPointCloud()
    keys = np.floor(mesh.vertices.astype(np.float64) / cell_size).astype(np.int64)
    # Sort by cell, then by descending confidence; keep the first vertex of each cell.
    order = np.lexsort((-mesh.confidence, keys[:, 2], keys[:, 1], keys[:, 0]))
    sorted_keys = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(sorted_keys[1:] != sorted_keys[:-1], axis=1)
    keep = np.sort(order[first])
    return SemanticPointCloud(
        xyz=mesh.vertices[keep].astype(np.float32),
        rgb=mesh.rgb[keep].astype(np.uint8),
        label=mesh.labels[keep].astype(np.uint8),
        confidence=mesh.confidence[keep].astype(np.float32),
    )
