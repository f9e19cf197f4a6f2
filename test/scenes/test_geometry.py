"""Analytic primitives: signed distances, meshes, bounds, collision boxes."""

import numpy as np
import open3d as o3d
import pytest

from recon_ros.scenes.geometry import (
    Footprint,
    Primitive,
    capsule_between,
    local_mesh,
    local_sdf,
    make_pose,
    pose_along,
    primitive_mesh,
    primitive_sdf,
    rot_x,
    rot_z,
)

SHAPES = [
    ("box", (0.3, 0.5, 0.7)),
    ("cylinder", (0.2, 0.6)),
    ("sphere", (0.25,)),
    ("capsule", (0.1, 0.5)),
]


@pytest.mark.parametrize(("kind", "size"), SHAPES)
def test_sdf_matches_the_distance_to_the_tessellated_surface(kind, size):
    vertices, faces = local_mesh(kind, size, tolerance=1e-3)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32))
    )
    points = np.random.default_rng(0).uniform(-0.6, 0.6, size=(3000, 3))
    reference = scene.compute_signed_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()
    # The mesh lies within 1 mm of the analytic surface.
    np.testing.assert_allclose(local_sdf(kind, size, points), reference, atol=1.2e-3)


@pytest.mark.parametrize(("kind", "size"), SHAPES)
def test_meshes_are_closed_outward_and_on_the_surface(kind, size):
    vertices, faces = local_mesh(kind, size)
    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(faces)
    )
    assert mesh.is_watertight()
    assert mesh.get_volume() > 0  # counter-clockwise seen from outside
    np.testing.assert_allclose(local_sdf(kind, size, vertices), 0, atol=1e-12)


def test_posed_primitive_bounds_contain_its_mesh_tightly():
    rng = np.random.default_rng(1)
    for kind, size in SHAPES:
        pose = make_pose(rot_z(rng.uniform(0, 6)) @ rot_x(rng.uniform(0, 6)), rng.uniform(-1, 1, 3))
        prim = Primitive(kind, size, pose)
        vertices, _ = primitive_mesh(prim)
        lo, hi = prim.bounds()
        assert np.all(vertices >= lo - 1e-9) and np.all(vertices <= hi + 1e-9)
        np.testing.assert_allclose(vertices.min(axis=0), lo, atol=3e-3)
        np.testing.assert_allclose(vertices.max(axis=0), hi, atol=3e-3)
        # Points of the mesh are on the posed surface.
        np.testing.assert_allclose(primitive_sdf(prim, vertices), 0, atol=1e-9)


def test_capsule_between_spans_its_endpoints():
    capsule = capsule_between((0, 0, 0), (1, 1, 0), 0.1)
    ends = np.array([[0.0, 0, 0], [1.0, 1, 0], [0.5, 0.5, 0.1]])
    np.testing.assert_allclose(primitive_sdf(capsule, ends), [-0.1, -0.1, 0.0], atol=1e-12)
    z_axis = pose_along((0, 0, 0), (0, 0, 2))[:3, 2]
    np.testing.assert_allclose(z_axis, [0, 0, 1])


def test_footprint_overlap():
    a = Footprint((0.0, 0.0), (1.0, 0.5), 0.0, (0.0, 1.0))
    assert a.overlaps(Footprint((1.5, 0.0), (0.6, 0.6), 0.0, (0.5, 2.0)))
    assert not a.overlaps(Footprint((1.7, 0.0), (0.6, 0.6), 0.0, (0.5, 2.0)))
    assert a.overlaps(Footprint((1.7, 0.0), (0.6, 0.6), 0.0, (0.5, 2.0)), gap=0.2)
    # Touching in height is not a collision (a laptop on a table).
    assert not a.overlaps(Footprint((0.0, 0.0), (0.2, 0.2), 0.3, (1.0, 1.2)))
    # Rotated: a diamond whose corner just misses the rectangle.
    diamond = Footprint((1.0 + 0.5 * np.sqrt(2) + 0.01, 0.0), (0.5, 0.5), np.pi / 4, (0.0, 1.0))
    assert not a.overlaps(diamond)
    assert a.inside((-1.0, -0.5), (1.0, 0.5))
    assert not a.inside((-1.0, -0.5), (1.0, 0.5), margin=0.01)


def test_bad_primitives_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        Primitive("cone", (1.0,))
    with pytest.raises(ValueError, match="size"):
        Primitive("box", (1.0, 1.0))
    with pytest.raises(ValueError, match="size"):
        Primitive("sphere", (-1.0,))
    with pytest.raises(ValueError, match="pose"):
        Primitive("sphere", (1.0,), np.eye(3))
