"""A tiny generated scene for the single-image model's tests (module scope: seconds)."""

import pytest

from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import SceneConfig

TINY = GenerationConfig(
    scene=SceneConfig(room=RoomConfig(size_x=(3.0, 3.2), size_y=(3.0, 3.2), height=(2.4, 2.5))),
    trajectory=TrajectoryConfig(frames=6, speed=1.0),
    width=128,
    height=96,
    voxel_sizes=(),
    mesh_resolution=None,
    shadows=False,
)


@pytest.fixture(scope="module")
def tiny_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("ifnet_scenes")
    generate_scene_folder(root / "scene_0000", 21, TINY, threads=1)
    return root
