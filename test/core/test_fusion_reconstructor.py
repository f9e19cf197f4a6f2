"""The fusion pipeline end to end on an analytic room with exact sensor depth: the mesh lies on
the walls, the map survives the window's moves, and the same walk in a rotated world (a visual
SLAM world: z along the first camera's optical axis, y down) gives the same mesh up to that
rotation."""

import numpy as np

from recon_ros.core.geometry import look_at_pose
from recon_ros.core.reconstructor import AtlasReconstructor, ReconstructorConfig

K = np.array([[80.0, 0.0, 63.5], [0.0, 80.0, 47.5], [0.0, 0.0, 1.0]])
HEIGHT, WIDTH = 96, 128
ROOM = (np.array([0.0, 0.0, 0.0]), np.array([4.0, 3.0, 2.4]))


def room_depth(T_world_cam: np.ndarray) -> np.ndarray:
    """Depth (along the optical axis) of the inside of the box ``ROOM`` seen from a pose."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    direction = rays @ T_world_cam[:3, :3].T
    origin = T_world_cam[:3, 3]
    lo, hi = ROOM
    with np.errstate(divide="ignore", invalid="ignore"):
        t_lo = (lo - origin) / direction
        t_hi = (hi - origin) / direction
    t_exit = np.where(direction > 0, t_hi, t_lo)
    t_exit[~np.isfinite(t_exit)] = np.inf
    return t_exit.min(axis=-1).astype(np.float32)  # rays have z = 1: t is the depth


def walk(count: int = 16):
    for i in range(count):
        angle = 2 * np.pi * i / count
        position = np.array([2.0 + 0.5 * np.cos(angle), 1.5 + 0.4 * np.sin(angle), 1.3])
        target = position + np.array([np.cos(angle + 1.2), np.sin(angle + 1.2), -0.25])
        yield look_at_pose(position, target)


def reconstruct(world_from_room: np.ndarray) -> np.ndarray:
    config = ReconstructorConfig(
        device="cpu",
        depth_source="sensor",
        window_dims=(96, 96, 80),
        keyframe_min_translation=0.0,
        keyframe_min_rotation_deg=0.0,
    )
    rec = AtlasReconstructor(None, config)
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    for i, T in enumerate(walk()):
        depth = room_depth(T)
        result = rec.integrate(image, K, world_from_room @ T, float(i), depth=depth)
        assert result.integrated
        if i % 4 == 3:
            rec.update()
    rec.update()
    vertices = rec.mesh().vertices.astype(np.float64)
    back = np.linalg.inv(world_from_room)
    return vertices @ back[:3, :3].T + back[:3, 3], rec


def distance_to_room(points: np.ndarray) -> np.ndarray:
    lo, hi = ROOM
    return np.minimum(np.abs(points - lo), np.abs(points - hi)).min(axis=1)


def test_mesh_lies_on_the_walls():
    vertices, rec = reconstruct(np.eye(4))
    assert len(vertices) > 1000
    assert np.median(distance_to_room(vertices)) < 0.01
    assert np.quantile(distance_to_room(vertices), 0.95) < 0.03
    assert "floor" in rec.window_note and rec.stats.counters["keyframes_sensor_depth"] == 16


def test_rotated_world_gives_the_same_mesh():
    from scipy.spatial import cKDTree

    reference, _ = reconstruct(np.eye(4))
    slam = np.eye(4)
    slam[:3, :3] = [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]]  # z up -> y down
    slam[:3, 3] = [0.3, -1.1, 2.0]
    rotated, rec = reconstruct(slam)
    assert "world up is -y" in rec.window_note
    # the room's floor (1.1 m along -y in that world) is found in the first keyframe's depth
    assert "floor found in the depth at 1.1" in rec.window_note, rec.window_note
    # Both lie on the room's walls (the grids differ by the world's sub-voxel offset, so the
    # meshes are compared with the room, not vertex by vertex) and cover the same surfaces.
    assert np.median(distance_to_room(rotated)) < 0.01
    assert np.quantile(distance_to_room(rotated), 0.95) < 0.03
    distances, _ = cKDTree(reference).query(rotated)
    assert np.mean(distances < 0.05) > 0.9
    back, _ = cKDTree(rotated).query(reference)
    assert np.mean(back < 0.05) > 0.9  # covers the same surfaces: no slice of the room is lost
