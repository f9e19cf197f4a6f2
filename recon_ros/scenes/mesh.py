"""The reference mesh of a scene, for mesh metrics: the visible surface only.

Two methods, both verified against each other (``test/scenes/test_render_volumes.py``):

- ``union`` (default, ``union_mesh``): the primitives' own triangle meshes clipped against each
  other and against the room's air spaces. A triangle inside another solid goes (solids are
  convex, so three corners inside means inside); one touching another solid face to face goes
  too (a laptop's underside and the table top under it), except that of two coplanar faces
  facing the same way one is kept; triangles clear of every other solid stay whole; the rest are
  split across their longest edge until no edge exceeds ``resolution`` (1 cm) and then decided
  at their centroid. Flat faces stay exact and large, thin parts (laptop lids, window panes,
  lamp cords) survive, and labels come from the primitive each triangle lies on; seams where
  solids meet are cut to within ``resolution`` and leave T-junctions. A room of 5 x 4 m gives
  about 100k-170k faces (3-6 MB of PLY) in about 5 s.
- ``marching_cubes`` (``marching_cubes_mesh``): the zero level set of the exact union signed
  distance on a ``resolution`` grid (2 cm is a good choice), cropped to the air spaces. Smooth and
  watertight but bevelled by up to half a voxel at edges, about five times larger, and parts
  thinner than a voxel (a 6 mm laptop lid, a window pane) may vanish.

Vertices carry the class and instance of the surface they lie on.

The mesh type and its PLY file are the dataset folder's (``recon_ros.datasets.meshes``).
"""

from __future__ import annotations

import numpy as np

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.datasets.meshes import LabelledMesh
from recon_ros.datasets.volumes import Grid
from recon_ros.scenes.geometry import invert_pose, local_sdf, primitive_mesh, transform_points
from recon_ros.scenes.scene import Scene
from recon_ros.scenes.volumes import sdf_volume

MESH_METHODS = ("union", "marching_cubes")


def reference_mesh(scene: Scene, resolution: float = 0.01, method: str = "union") -> LabelledMesh:
    """The visible surface of ``scene`` (see the module docstring): ``resolution`` is the
    longest seam edge of ``union`` or the voxel size of ``marching_cubes``."""
    if method == "union":
        return union_mesh(scene, min_edge=resolution)
    if method == "marching_cubes":
        return marching_cubes_mesh(scene, voxel_size=resolution)
    raise ValueError(f"method: expected one of {MESH_METHODS}, got {method!r}")


def marching_cubes_mesh(scene: Scene, voxel_size: float = 0.02) -> LabelledMesh:
    """Marching cubes of the exact union signed distance (see the module docstring)."""
    if voxel_size <= 0:
        raise ValueError(f"voxel_size: must be positive, got {voxel_size}")
    cavities = scene.room.cavities()
    lo = np.min([c[0] for c in cavities], axis=0) - 2 * voxel_size
    hi = np.max([c[1] for c in cavities], axis=0) + 2 * voxel_size
    grid = Grid.covering(lo, hi, voxel_size)
    table = scene.primitive_table()
    band = 2.0 * voxel_size
    sdf, _ = sdf_volume(table, grid, band)
    from skimage.measure import marching_cubes  # imported here: only this method needs it

    vertices, faces, _, _ = marching_cubes(
        sdf.astype(np.float32),
        level=0.0,
        spacing=(voxel_size,) * 3,
        gradient_direction="descent",
        allow_degenerate=False,
    )
    vertices = vertices.astype(np.float64) + np.asarray(grid.origin)
    faces = faces.astype(np.int64)

    # Keep the room side of the shell: triangles near the air spaces.
    centroids = vertices[faces].mean(axis=1)
    keep = np.zeros(len(faces), dtype=bool)
    reach = 0.75 * voxel_size  # vertices sit within half a voxel of the true surface
    for c_lo, c_hi in cavities:
        keep |= np.all((centroids >= c_lo - reach) & (centroids <= c_hi + reach), axis=1)
    faces = faces[keep]
    vertices, faces = _compact(vertices, faces)

    _, nearest = table.sdf(vertices, max_distance=voxel_size)
    labels = np.where(nearest >= 0, table.class_ids[np.maximum(nearest, 0)], IGNORE_LABEL)
    instances = np.where(nearest >= 0, table.instance_ids[np.maximum(nearest, 0)], 0)
    return LabelledMesh(
        vertices.astype(np.float32),
        faces.astype(np.int32),
        labels.astype(np.uint8),
        instances.astype(np.uint16),
    )


def _compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices no face uses and renumber."""
    used, inverse = np.unique(faces.ravel(), return_inverse=True)
    return vertices[used], inverse.reshape(faces.shape)


# --------------------------------------------------------------------------------------------
# exact polygonal union


_CONTACT = 1e-5  # m: surfaces closer than this count as touching


def _subdivide(tris: np.ndarray) -> np.ndarray:
    """Split triangles (T, 3, 3) in two across the midpoint of their longest edge (slivers
    shorten quickly), keeping the winding: (2T, 3, 3)."""
    edge = np.linalg.norm(np.roll(tris, -1, axis=1) - tris, axis=2)  # edge i: vertex i -> i+1
    first = np.argmax(edge, axis=1)
    rows = np.arange(len(tris))
    a = tris[rows, first]
    b = tris[rows, (first + 1) % 3]
    c = tris[rows, (first + 2) % 3]
    m = (a + b) / 2
    return np.stack([np.stack([a, m, c], axis=1), np.stack([m, b, c], axis=1)], axis=1).reshape(
        -1, 3, 3
    )


def _cavity_state(tris: np.ndarray, cavities, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle: wholly inside one cavity box (grown by ``margin``), wholly outside all."""
    inside = np.zeros(len(tris), dtype=bool)
    outside = np.ones(len(tris), dtype=bool)
    for box_lo, box_hi in cavities:
        lo, hi = box_lo - margin, box_hi + margin
        in_box = (tris >= lo) & (tris <= hi)  # (T, 3 vertices, 3 axes)
        inside |= np.all(in_box, axis=(1, 2))
        # Separated from this box when all three vertices lie beyond one of its faces.
        beyond = np.any(np.all(tris < lo, axis=1) | np.all(tris > hi, axis=1), axis=1)
        outside &= beyond
    return inside, outside


def _box_overlap(tris: np.ndarray, half: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Whether triangles (T, 3, 3), given in a box's frame, overlap the box of half extents
    ``half`` (3,) with positive area or volume (separating axes). Touching along an edge or at
    a point is no overlap; lying flat on a face of the box is. ``normals`` (T, 3) are the
    triangles' unit normals in the same frame."""
    count = len(tris)
    edges = np.roll(tris, -1, axis=1) - tris  # (T, 3 edges, 3)
    eye = np.broadcast_to(np.eye(3), (count, 3, 3))
    crosses = np.cross(eye[:, :, None, :], edges[:, None, :, :]).reshape(count, 9, 3)
    axes = np.concatenate([eye, normals[:, None, :], crosses], axis=1)  # (T, 13, 3)
    length = np.linalg.norm(axes, axis=2)
    valid = length > 1e-9
    axes = axes / np.maximum(length, 1e-12)[..., None]
    projected = np.einsum("tvk,tak->tav", tris, axes)  # (T, 13 axes, 3 vertices)
    reach = np.einsum("tak,k->ta", np.abs(axes), half)  # (T, 13)
    # Penetration of the two intervals along each axis: > 0 interpenetrating, 0 touching.
    depth = np.minimum(projected.max(axis=2) + reach, reach - projected.min(axis=2))
    depth = np.where(valid, depth, np.inf)
    separated = np.any(depth < -_CONTACT, axis=1)
    touching = np.abs(depth) <= _CONTACT
    # Flat on a face: the only touching axes are the triangle's normal and the box axis it
    # is parallel to.
    along_normal = np.abs(np.einsum("tak,tk->ta", axes, normals)) > 1 - 1e-6
    flat_contact = np.all(~touching | along_normal, axis=1) & np.any(touching, axis=1)
    return ~separated & (~np.any(touching, axis=1) | flat_contact)


def _classify(table, tris, owner, normals, cavities, final: bool):
    """Keep (1), drop (0) or split (-1) each triangle of ``tris`` (T, 3, 3) lying on primitive
    ``owner`` (T,) with unit ``normals`` (T, 3).

    Solids are convex, so a triangle whose three vertices lie in a closed solid lies in it:
    dropped, unless it lies on that solid's surface facing the same way (two coplanar faces: the
    lower primitive index keeps it). A triangle that does not overlap a solid's box, or whose
    centroid is farther from the solid than its corners are from the centroid, misses the
    solid. Anything else is split, or, once ``final``, decided at its centroid."""
    count = len(tris)
    centroid = tris.mean(axis=1)
    radius = np.max(np.linalg.norm(tris - centroid[:, None], axis=2), axis=1)
    drop = np.zeros(count, dtype=bool)
    undecided = np.zeros(count, dtype=bool)
    in_cavity, out_cavity = _cavity_state(tris, cavities, 1e-4)
    drop |= out_cavity
    undecided |= ~in_cavity & ~out_cavity
    if final:
        c_in, _ = _cavity_state(centroid[:, None, :].repeat(3, axis=1), cavities, 1e-4)
        drop |= undecided & ~c_in
        undecided[:] = False
    # Triangles sorted along x: each solid only looks at the slice that can reach it.
    order = np.argsort(centroid[:, 0], kind="stable")
    xs = centroid[order, 0]
    reach = radius.max() + _CONTACT if count else 0.0
    for j in range(len(table)):
        first = np.searchsorted(xs, table.lo[j, 0] - reach, side="left")
        last = np.searchsorted(xs, table.hi[j, 0] + reach, side="right")
        if first >= last:
            continue
        near = order[first:last]
        gap = np.maximum(
            np.maximum(table.lo[j] - centroid[near], centroid[near] - table.hi[j]), 0.0
        )
        distance = np.sqrt(np.einsum("ij,ij->i", gap, gap))
        near = near[(distance <= radius[near] + _CONTACT) & (owner[near] != j) & ~drop[near]]
        if len(near) == 0:
            continue
        prim = table.primitives[j]
        to_local = invert_pose(prim.pose)
        local_tris = transform_points(to_local, tris[near].reshape(-1, 3)).reshape(-1, 3, 3)
        local_center = local_tris.mean(axis=1)
        local_normals = normals[near] @ to_local[:3, :3].T
        d_vertices = local_sdf(prim.kind, prim.size, local_tris.reshape(-1, 3)).reshape(-1, 3)
        d_center = local_sdf(prim.kind, prim.size, local_center)
        contained = d_center <= _CONTACT if final else np.all(d_vertices <= _CONTACT, axis=1)
        on_surface = contained & (d_center >= -_CONTACT)
        # Facing the same way as the solid's surface there: a coplanar duplicate.
        step = 1e-3 * local_normals
        ahead = local_sdf(prim.kind, prim.size, local_center + step)
        behind = local_sdf(prim.kind, prim.size, local_center - step)
        duplicate = on_surface & (ahead > behind) & (owner[near] < j)
        drop[near[contained & ~duplicate]] = True
        if not final:
            # Misses: clear of the solid's box, or farther from it than the triangle is wide.
            rest = np.nonzero(~contained & (d_center <= radius[near] + _CONTACT))[0]
            if len(rest):
                hits = _box_overlap(local_tris[rest], prim.half_extents(), local_normals[rest])
                undecided[near[rest[hits]]] = True
    return np.where(drop, 0, np.where(undecided, -1, 1))


def union_mesh(scene: Scene, min_edge: float = 0.01, tessellation: float = 1e-3) -> LabelledMesh:
    """The visible surface of ``scene`` cut exactly from the primitives' own meshes.

    Every primitive's tessellation is clipped against the other solids and the room's air
    spaces: triangles inside another solid (or outside the room) go, triangles clear of them
    stay, and triangles crossing a boundary are split in two across their longest edge until
    no edge exceeds ``min_edge``, and then decided at their centroid. Flat faces stay exact and
    large; only the seams where solids meet are finely cut (to within ``min_edge``). Labels
    come from the primitive each triangle lies on."""
    if min_edge <= 0:
        raise ValueError(f"min_edge: must be positive, got {min_edge}")
    table = scene.primitive_table()
    cavities = scene.room.cavities()
    tris, owners = [], []
    for k, prim in enumerate(table.primitives):
        vertices, faces = primitive_mesh(prim, tessellation)
        tris.append(vertices[faces])
        owners.append(np.full(len(faces), k, dtype=np.int64))
    pending = np.concatenate(tris)
    owner = np.concatenate(owners)
    kept_tris, kept_owner = [], []
    while len(pending):
        edges = np.linalg.norm(pending - np.roll(pending, 1, axis=1), axis=2).max(axis=1)
        normals = np.cross(pending[:, 1] - pending[:, 0], pending[:, 2] - pending[:, 0])
        normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-300)
        final = edges <= min_edge
        state = np.empty(len(pending), dtype=np.int64)
        for flag in (False, True):
            sel = np.nonzero(final == flag)[0]
            if len(sel):
                state[sel] = _classify(
                    table, pending[sel], owner[sel], normals[sel], cavities, flag
                )
        kept_tris.append(pending[state == 1])
        kept_owner.append(owner[state == 1])
        split = state == -1
        pending = _subdivide(pending[split])
        owner = np.repeat(owner[split], 2)
    tris = np.concatenate(kept_tris)
    owner = np.concatenate(kept_owner)
    vertices, inverse = np.unique(tris.reshape(-1, 3), axis=0, return_inverse=True)
    faces = inverse.reshape(-1, 3)
    corner_owner = np.repeat(owner, 3)
    vertex_owner = np.empty(len(vertices), dtype=np.int64)
    vertex_owner[inverse.ravel()[::-1]] = corner_owner[::-1]  # first triangle using it wins
    return LabelledMesh(
        vertices.astype(np.float32),
        faces.astype(np.int32),
        table.class_ids[vertex_owner].astype(np.uint8),
        table.instance_ids[vertex_owner].astype(np.uint16),
    )
