"""Tiny generated scenes shared by the training tests (session scope: generated once)."""

import pytest

from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import SceneConfig

#: Small rooms, few small frames: seconds to generate, enough to exercise every stage.
TINY = GenerationConfig(
    scene=SceneConfig(room=RoomConfig(size_x=(3.0, 3.2), size_y=(3.0, 3.2), height=(2.4, 2.5))),
    trajectory=TrajectoryConfig(frames=10, speed=1.0),
    width=128,
    height=96,
    mesh_resolution=None,
    shadows=False,
)
#: Network image size of the tiny models (multiples of 32).
TINY_IMAGE_SIZE = (128, 96)


@pytest.fixture(scope="session")
def tiny_train(tmp_path_factory):
    """Two scenes without meshes: ``root`` with scene_0000, scene_0001."""
    root = tmp_path_factory.mktemp("tiny_train")
    for i, seed in enumerate((11, 12)):
        generate_scene_folder(root / f"scene_{i:04d}", seed, TINY, threads=1)
    return root


@pytest.fixture(scope="session")
def tiny_eval_scene(tmp_path_factory):
    """One scene with its reference mesh."""
    root = tmp_path_factory.mktemp("tiny_eval")
    config = GenerationConfig(**{**TINY.__dict__, "mesh_resolution": 0.02})
    return generate_scene_folder(root / "scene_0000", 13, config, threads=1)
