"""Rendering, ground-truth volumes and the reference mesh agree with each other and with the
analytic scene; hidden objects appear nowhere."""

import numpy as np
import pytest

from recon_ros.core.classes import CLASS_IDS, IGNORE_LABEL
from recon_ros.datasets.meshes import LabelledMesh
from recon_ros.scenes.cameras import default_intrinsics, look_at
from recon_ros.scenes.mesh import reference_mesh
from recon_ros.scenes.render import Renderer, SensorConfig
from recon_ros.scenes.volumes import (
    PAPER_DIMS,
    Grid,
    GroundTruthVolume,
    compute_ground_truth,
    observed_mask,
    paper_volumes,
    room_grid,
)

VOXEL = 0.04


@pytest.fixture(scope="module")
def ground_truth(crowded_scene, crowded_views):
    K, poses, frames = crowded_views
    views = [(K, T, f.depth) for T, f in zip(poses, frames, strict=True)]
    return compute_ground_truth(crowded_scene, room_grid(crowded_scene, VOXEL), views=views)


@pytest.fixture(scope="module")
def mesh(crowded_scene):
    return reference_mesh(crowded_scene)  # exact union at 1 cm


@pytest.fixture(scope="module")
def mc_mesh(crowded_scene):
    return reference_mesh(crowded_scene, 0.03, method="marching_cubes")


def _grid_points(ground_truth, crowded_views, back_project):
    """Back-projected depth points inside the grid, with their image labels."""
    K, poses, frames = crowded_views
    points, semantic = [], []
    grid = ground_truth.grid
    for T, frame in zip(poses, frames, strict=True):
        p, (v, u) = back_project(K, T, frame.depth)
        inside = np.all((p > grid.origin) & (p < grid.hi - grid.voxel_size), axis=1)
        points.append(p[inside])
        semantic.append(frame.semantic[v, u][inside])
    return np.concatenate(points), np.concatenate(semantic)


def test_frames_have_the_documented_types(crowded_views):
    _, _, frames = crowded_views
    frame = frames[0]
    assert frame.rgb.dtype == np.uint8 and frame.rgb.shape == (120, 160, 3)
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (120, 160)
    assert frame.semantic.dtype == np.uint8 and frame.instance.dtype == np.uint16
    # Closed room: every pixel sees a surface.
    assert np.all(frame.depth > 0) and np.all(frame.semantic != IGNORE_LABEL)
    assert 30 < frame.rgb.mean() < 230


def test_labels_match_the_instances_they_come_from(crowded_scene, crowded_views):
    _, _, frames = crowded_views
    class_of = np.full(len(crowded_scene.objects) + 1, 255, dtype=np.uint8)
    for obj in crowded_scene.objects:
        class_of[obj.instance_id] = obj.class_id
    seen = set()
    for frame in frames:
        np.testing.assert_array_equal(class_of[frame.instance], frame.semantic)
        seen |= set(np.unique(frame.semantic).tolist())
    assert {CLASS_IDS["floor"], CLASS_IDS["wall"]} <= seen
    assert seen & {CLASS_IDS[c] for c in ("table", "chair", "nightstand", "human", "bag")}


def test_depth_lies_on_the_analytic_surfaces(crowded_scene, crowded_views, back_project):
    K, poses, frames = crowded_views
    points, _ = back_project(K, poses[0], frames[0].depth)
    distance, _ = crowded_scene.sdf(points)
    # Tessellation is within 1 mm of the surfaces; float32 rays add a little.
    assert np.abs(distance).max() < 2e-3


def test_depth_and_tsdf_agree(ground_truth, crowded_views, back_project):
    points, _ = _grid_points(ground_truth, crowded_views, back_project)
    assert len(points) > 10000
    distance = ground_truth.sample_tsdf(points) * ground_truth.truncation
    assert np.all(np.isfinite(distance))
    # Back-projected points lie within half a voxel of the TSDF's zero crossing.
    assert np.mean(np.abs(distance) < VOXEL / 2) >= 0.99
    assert np.abs(distance).max() < VOXEL


def test_image_labels_match_volume_labels(ground_truth, crowded_views, back_project):
    points, semantic = _grid_points(ground_truth, crowded_views, back_project)
    volume_labels = ground_truth.lookup(ground_truth.semantic, points, fill=IGNORE_LABEL)
    assert np.mean(volume_labels == semantic) >= 0.95


def test_observed_mask_follows_the_views(ground_truth, crowded_views, back_project):
    points, _ = _grid_points(ground_truth, crowded_views, back_project)
    assert ground_truth.lookup(ground_truth.observed, points, fill=False).mean() > 0.99
    # Far behind the walls (outside the room) nothing is observed.
    grid = ground_truth.grid
    assert not ground_truth.observed[0, :, :].any() or grid.origin[0] > -0.2
    assert 0.05 < ground_truth.observed.mean() < 0.95
    # The slow, obvious reference: project every voxel centre into one view.
    K, poses, frames = crowded_views
    small = Grid(grid.origin, 0.2, (12, 10, 8))
    fast = observed_mask(small, ground_truth.truncation, [(K, poses[0], frames[0].depth)])
    centers = small.centers().reshape(-1, 3)
    T = np.linalg.inv(poses[0])
    cam = centers @ T[:3, :3].T + T[:3, 3]
    slow = np.zeros(len(centers), bool)
    for n, (x, y, z) in enumerate(cam):
        if z <= 1e-6:
            continue
        u, v = round(K[0, 0] * x / z + K[0, 2]), round(K[1, 1] * y / z + K[1, 2])
        if 0 <= u < 160 and 0 <= v < 120:
            d = frames[0].depth[v, u]
            slow[n] = d > 0 and z <= d + ground_truth.truncation
    np.testing.assert_array_equal(fast.reshape(-1), slow)


def test_volume_fields_are_consistent(ground_truth):
    gt = ground_truth
    assert gt.tsdf.dtype == np.float32 and gt.tsdf.min() >= -1 and gt.tsdf.max() <= 1
    np.testing.assert_array_equal(gt.occupancy, gt.tsdf < 0)
    near = np.abs(gt.tsdf) < 1
    assert np.all(gt.semantic[near] != IGNORE_LABEL) and np.all(gt.semantic[~near] == IGNORE_LABEL)
    np.testing.assert_array_equal(gt.solid_class != IGNORE_LABEL, gt.occupancy)
    masks = gt.class_masks()
    assert masks.shape == (9, *gt.grid.dims)
    np.testing.assert_array_equal(masks.any(axis=0), gt.occupancy)


def test_volume_save_load_round_trip(ground_truth, tmp_path):
    ground_truth.save(tmp_path / "gt.npz")
    loaded = GroundTruthVolume.load(tmp_path / "gt.npz")
    assert loaded.grid == ground_truth.grid and loaded.truncation == ground_truth.truncation
    for name, array in ground_truth.arrays().items():
        np.testing.assert_array_equal(loaded.arrays()[name], array)
    ground_truth.save(tmp_path / "again.npz")
    assert (tmp_path / "gt.npz").read_bytes() == (tmp_path / "again.npz").read_bytes()


def test_hidden_objects_are_absent_from_every_output(
    crowded_scene, crowded_views, ground_truth, mesh, mc_mesh
):
    hidden = {o.instance_id for o in crowded_scene.objects if o.hidden}
    visible_objects = {o.instance_id for o in crowded_scene.visible_objects()}
    _, _, frames = crowded_views
    for frame in frames:
        assert not hidden & set(np.unique(frame.instance).tolist())
    assert not hidden & set(np.unique(ground_truth.instance).tolist())
    for labelled in (mesh, mc_mesh):
        assert not hidden & set(np.unique(labelled.instances).tolist())
        assert set(np.unique(labelled.instances).tolist()) <= visible_objects
    _, _, paper_masks = paper_volumes(crowded_scene)
    assert paper_masks.sum() > 0


def _face_normals(mesh):
    v = mesh.vertices.astype(np.float64)[mesh.faces]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    return v.mean(axis=1), normals / np.linalg.norm(normals, axis=1, keepdims=True)


@pytest.mark.parametrize(("fixture", "tolerance"), [("mesh", 0.01), ("mc_mesh", 0.03)])
def test_reference_mesh_is_the_visible_surface(crowded_scene, request, fixture, tolerance):
    mesh = request.getfixturevalue(fixture)
    distance, _ = crowded_scene.sdf(mesh.vertices.astype(np.float64))
    assert np.abs(distance).max() < tolerance
    # Faces wind counter-clockwise seen from free space: normals point where the SDF grows.
    centers, normals = _face_normals(mesh)
    sample = np.random.default_rng(0).choice(len(centers), 3000, replace=False)
    ahead, _ = crowded_scene.sdf(centers[sample] + 0.005 * normals[sample])
    behind, _ = crowded_scene.sdf(centers[sample] - 0.005 * normals[sample])
    assert np.mean(ahead > behind) > 0.97
    # No internal faces: nothing deep inside the solids, and the room's outer shell is cut.
    center_distance, _ = crowded_scene.sdf(centers)
    assert center_distance.min() > -tolerance
    lo, hi = crowded_scene.bounds()
    assert np.all(mesh.vertices > lo - 0.05) and np.all(mesh.vertices < hi + 0.05)
    visible_classes = {o.class_id for o in crowded_scene.visible_objects()}
    assert set(np.unique(mesh.labels).tolist()) <= visible_classes


def test_mesh_methods_agree_and_the_union_labels_are_exact(crowded_scene, mesh, mc_mesh):
    import open3d as o3d

    union = o3d.t.geometry.RaycastingScene()
    union.add_triangles(
        o3d.core.Tensor(mesh.vertices), o3d.core.Tensor(mesh.faces.astype(np.uint32))
    )
    gap = union.compute_distance(o3d.core.Tensor(mc_mesh.vertices)).numpy()
    assert np.percentile(gap, 95) < 0.01 and gap.max() < 0.05
    assert len(mesh.faces) < len(mc_mesh.faces)
    # Union labels: the nearest primitive of each vertex is one of its own instance's.
    table = crowded_scene.primitive_table()
    _, nearest = table.sdf(mesh.vertices.astype(np.float64), max_distance=0.02)
    agree = table.instance_ids[nearest] == mesh.instances
    assert agree.mean() > 0.97


def test_mesh_ply_round_trip(mesh, tmp_path):
    mesh.save(tmp_path / "mesh.ply")
    loaded = LabelledMesh.load(tmp_path / "mesh.ply")
    np.testing.assert_array_equal(loaded.vertices, mesh.vertices)
    np.testing.assert_array_equal(loaded.faces, mesh.faces)
    np.testing.assert_array_equal(loaded.labels, mesh.labels)
    np.testing.assert_array_equal(loaded.instances, mesh.instances)
    import open3d as o3d

    other = o3d.io.read_triangle_mesh(str(tmp_path / "mesh.ply"))
    assert len(other.triangles) == len(mesh.faces) and other.has_vertex_colors()
    np.testing.assert_allclose(np.asarray(other.vertices), mesh.vertices, atol=1e-6)


def test_paper_layout(crowded_scene):
    grid, occupancy, masks = paper_volumes(crowded_scene)
    assert grid.dims == PAPER_DIMS
    assert occupancy.shape == PAPER_DIMS and occupancy.dtype == np.uint8
    assert masks.shape == (*PAPER_DIMS, 6) and masks.dtype == np.uint8
    np.testing.assert_array_equal(masks.max(axis=-1), occupancy)
    assert masks.sum(axis=-1).max() <= 1
    lo, hi = crowded_scene.room.interior
    assert np.all(grid.lo <= lo + 1e-9) and np.all(grid.hi >= hi - 1e-9)


def test_sensor_model_is_reproducible_and_changes_the_image(crowded_scene):
    renderer = Renderer(crowded_scene, shadows=False)
    K = default_intrinsics(64, 48)
    lo, hi = crowded_scene.room.interior
    T = look_at((lo + hi) / 2 + [0, 0, 0.3], [hi[0], hi[1] / 2, 0.5])
    clean = renderer.render(K, T, 64, 48)
    sensor = SensorConfig(
        noise_sigma=3, blur_sigma=0.7, exposure_jitter=0.1, vignetting=0.3, depth_noise=0.01
    )
    a = renderer.render(K, T, 64, 48, sensor=sensor, rng=np.random.default_rng(1))
    b = renderer.render(K, T, 64, 48, sensor=sensor, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert not np.array_equal(a.rgb, clean.rgb)
    np.testing.assert_array_equal(a.semantic, clean.semantic)
    with pytest.raises(ValueError, match="rng"):
        renderer.render(K, T, 64, 48, sensor=sensor)
    smooth = renderer.render(K, T, 64, 48, sensor=SensorConfig(antialias=2))
    np.testing.assert_array_equal(smooth.depth, clean.depth)


def test_banded_grid_sdf_matches_the_pointwise_union(crowded_scene):
    """``sdf_volume`` (per-primitive boxes of the grid) against ``PrimitiveTable.sdf`` (every
    point against every primitive, pruned by bounding boxes)."""
    from recon_ros.scenes.volumes import sdf_volume

    table = crowded_scene.primitive_table()
    lo, hi = crowded_scene.room.interior
    grid = Grid.covering(lo - 0.2, hi + 0.2, 0.09)
    band = 0.2
    banded, owner = sdf_volume(table, grid, band)
    exact, nearest = table.sdf(grid.centers().reshape(-1, 3))
    np.testing.assert_allclose(banded.reshape(-1), np.minimum(exact, band), atol=1e-12)
    # Owners agree, except on exact ties (then both solids are equally near).
    from recon_ros.scenes.geometry import primitive_sdf

    points = grid.centers().reshape(-1, 3)
    differ = np.nonzero((exact < band) & (owner.reshape(-1) != nearest))[0]
    assert len(differ) < 0.001 * len(points)
    for i in differ:
        a = primitive_sdf(table.primitives[owner.reshape(-1)[i]], points[i : i + 1])
        b = primitive_sdf(table.primitives[nearest[i]], points[i : i + 1])
        assert abs(a[0] - b[0]) < 1e-12


def test_paper_occupancy_modes(crowded_scene):
    _, center, center_masks = paper_volumes(crowded_scene, occupancy_mode="center")
    _, overlap, _ = paper_volumes(crowded_scene)
    assert np.all(overlap >= center) and overlap.sum() > center.sum()
    _, with_room, _ = paper_volumes(crowded_scene, occupancy_mode="center", include_room=True)
    assert with_room.sum() > center.sum()
    laptop = center_masks[..., 3].sum()
    with pytest.raises(ValueError, match="occupancy_mode"):
        paper_volumes(crowded_scene, occupancy_mode="any")
    assert laptop >= 0
