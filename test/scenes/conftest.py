"""Shared, session-scoped scenes for the scene-engine tests (small images keep them fast)."""

import numpy as np
import pytest

from recon_ros.scenes.cameras import TrajectoryConfig, default_intrinsics, make_trajectory
from recon_ros.scenes.placement import PlacementConfig
from recon_ros.scenes.render import Renderer
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import SceneConfig, generate_scene

CROWDED_COUNTS = {"table": 2, "chair": 5, "nightstand": 2, "laptop": 3, "bag": 4, "human": 5}
#: A small room asked to hold too much with few retries: some objects get hidden, some laptops
#: sit on nightstands.
CROWDED = SceneConfig(
    room=RoomConfig(size_x=(4.0, 4.5), size_y=(3.0, 3.5)),
    placement=PlacementConfig(max_counts=CROWDED_COUNTS, min_counts=CROWDED_COUNTS, retries=3),
)
WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="session")
def crowded_scene():
    scene = generate_scene(2, CROWDED)
    assert any(o.hidden for o in scene.objects), "the fixture needs hidden objects"
    assert any(o.parent_id is not None for o in scene.visible_objects())
    return scene


@pytest.fixture(scope="session")
def crowded_views(crowded_scene):
    """(K, poses (N, 4, 4), frames) of a short walk through the crowded scene."""
    trajectory = make_trajectory(crowded_scene, TrajectoryConfig(frames=6, speed=2.0))
    K = default_intrinsics(WIDTH, HEIGHT)
    renderer = Renderer(crowded_scene)
    frames = [renderer.render(K, T, WIDTH, HEIGHT) for T in trajectory.poses]
    return K, trajectory.poses, frames


def _back_project(K: np.ndarray, T_world_cam: np.ndarray, depth: np.ndarray):
    """World points (N, 3) of the valid depth pixels and their (v, u) indices."""
    v, u = np.nonzero(depth > 0)
    z = depth[v, u].astype(np.float64)
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1)
    return cam @ T_world_cam[:3, :3].T + T_world_cam[:3, 3], (v, u)


@pytest.fixture(scope="session")
def back_project():
    return _back_project
