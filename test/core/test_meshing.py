"""Marching cubes on TSDF volumes, vertex attributes, colouring, semantic points."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from recon_ros.core.classes import palette
from recon_ros.core.meshing import (
    Mesh,
    colorize_mesh,
    extract_mesh,
    marching_cubes_masked,
    marching_cubes_reference,
    semantic_point_cloud,
    surface_cell_mask,
    surface_cell_mask_reference,
)

VOXEL = 0.04


def sphere_tsdf(radius=0.5, n=32, truncation=3 * VOXEL):
    origin = np.full(3, -0.5 * (n - 1) * VOXEL) + 0.013  # off-centre on purpose
    centres = np.indices((n, n, n)).transpose(1, 2, 3, 0) * VOXEL + origin
    distance = np.linalg.norm(centres, axis=-1) - radius
    return np.clip(distance / truncation, -1, 1).astype(np.float32), origin


def test_sphere_vertices_within_one_voxel_and_outward():
    radius = 0.5
    tsdf, origin = sphere_tsdf(radius)
    mesh = extract_mesh(tsdf, np.ones_like(tsdf, bool), origin, VOXEL)
    assert mesh.num_faces > 1000
    distance = np.linalg.norm(mesh.vertices, axis=1)
    assert np.all(np.abs(distance - radius) <= VOXEL)
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all(np.einsum("ij,ij->i", normals, v[f].mean(axis=1)) > 0)  # out of the solid
    assert mesh.vertices.dtype == np.float32 and mesh.faces.dtype == np.int32


def test_vertices_match_reference_edge_crossings():
    tsdf, origin = sphere_tsdf(0.3, n=20)
    cells = surface_cell_mask(tsdf, np.ones_like(tsdf, bool))
    vertices, _ = marching_cubes_masked(tsdf, cells, origin, VOXEL)
    reference = marching_cubes_reference(tsdf, cells, origin, VOXEL)
    assert len(reference) > 100
    # Every edge crossing is a vertex and every vertex an edge crossing (float32 precision).
    assert cKDTree(vertices).query(reference)[0].max() < 1e-5
    assert cKDTree(reference).query(vertices)[0].max() < 1e-5


def test_surface_cell_mask_matches_reference():
    rng = np.random.default_rng(0)
    tsdf = np.clip(rng.normal(0.8, 0.4, (7, 6, 5)), -1, 1).astype(np.float32)
    observed = rng.random((7, 6, 5)) > 0.15
    fast = surface_cell_mask(tsdf, observed)
    np.testing.assert_array_equal(fast, surface_cell_mask_reference(tsdf, observed))
    assert 0 < fast.mean() < 1


def test_cell_mask_selects_exactly_its_cells():
    tsdf = np.ones((4, 4, 4), np.float32)
    tsdf[2, 2, 2] = -1.0
    cells = np.zeros((3, 3, 3), bool)
    cells[1, 2, 1] = True  # the cube with lower corner (1, 2, 1), which touches voxel (2, 2, 2)
    vertices, faces = marching_cubes_masked(tsdf, cells, np.zeros(3), 1.0)
    assert len(faces) == 1
    assert np.all(vertices >= [1, 2, 1]) and np.all(vertices <= [2, 3, 2])
    cells[:] = False
    cells[0, 0, 0] = True  # far from the negative voxel: nothing
    assert len(marching_cubes_masked(tsdf, cells, np.zeros(3), 1.0)[1]) == 0


def test_unobserved_and_saturated_regions_make_no_surface():
    tsdf, origin = sphere_tsdf(0.5)
    observed = np.ones_like(tsdf, bool)
    observed[:16] = False  # half the volume never seen
    mesh = extract_mesh(tsdf, observed, origin, VOXEL)
    assert mesh.num_faces > 0
    assert mesh.vertices[:, 0].min() >= origin[0] + 16 * VOXEL - 1e-6
    # A jump from -1 to +1 with no band in between is not a surface.
    step = np.ones((8, 8, 8), np.float32)
    step[:, :, :4] = -1.0
    assert extract_mesh(step, np.ones_like(step, bool), np.zeros(3), VOXEL).num_faces == 0
    assert (
        extract_mesh(step, np.ones_like(step, bool), np.zeros(3), VOXEL, saturation=1.01).num_faces
        > 0
    )


def test_attributes_colouring_and_points():
    z = np.arange(8) * VOXEL
    tsdf = np.broadcast_to(np.clip((z - 0.1) / 0.12, -1, 1), (8, 8, 8)).astype(np.float32)
    labels = np.full((8, 8, 8), 3, np.uint8)
    labels[:4] = 5  # x < 4: class 5
    confidence = np.broadcast_to(np.linspace(0.1, 0.9, 8)[:, None, None], (8, 8, 8)).astype(
        np.float32
    )
    rgb = np.zeros((8, 8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    mesh = extract_mesh(tsdf, np.ones_like(tsdf, bool), np.zeros(3), VOXEL, labels, confidence, rgb)
    assert mesh.num_faces > 0
    nearest_x = np.rint(mesh.vertices[:, 0] / VOXEL)
    np.testing.assert_array_equal(mesh.labels, np.where(nearest_x < 4, 5, 3))
    np.testing.assert_allclose(mesh.vertices[:, 2], 0.1, atol=1e-6)  # the plane z = 0.1
    colorize_mesh(mesh, "semantic")
    np.testing.assert_array_equal(mesh.colors, palette()[mesh.labels])
    colorize_mesh(mesh, "rgb")
    assert np.all(mesh.colors == [200, 0, 0])
    with pytest.raises(ValueError, match="color_by"):
        colorize_mesh(mesh, "depth")
    points = semantic_point_cloud(mesh, cell_size=2 * VOXEL)
    cells = np.floor(points.xyz.astype(np.float64) / (2 * VOXEL)).astype(int)
    assert len(np.unique(cells, axis=0)) == len(points) < mesh.num_vertices
    # Each kept point is the most confident vertex of its cell.
    all_cells = np.floor(mesh.vertices.astype(np.float64) / (2 * VOXEL)).astype(int)
    for cell, confidence_kept in zip(cells, points.confidence, strict=True):
        in_cell = np.all(all_cells == cell, axis=1)
        assert confidence_kept == mesh.confidence[in_cell].max()
    assert points.xyz.dtype == np.float32 and points.label.dtype == np.uint8
    assert len(semantic_point_cloud(Mesh(), 0.1)) == 0
