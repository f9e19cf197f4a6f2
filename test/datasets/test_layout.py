"""The generated dataset folder: determinism (by seed, whatever the number of workers), the
loader, the CLI wiring."""

import argparse
import json

import numpy as np
import pytest

from recon_ros.datasets.layout import SyntheticSequence, list_scenes, volume_name
from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.cli import add_parser, generate_dataset
from recon_ros.scenes.pipeline import GenerationConfig
from recon_ros.scenes.scene import Scene
from recon_ros.scenes.volumes import compute_ground_truth

CONFIG = GenerationConfig(
    trajectory=TrajectoryConfig(frames=5, speed=1.0),
    width=96,
    height=72,
    voxel_sizes=(0.08, 0.1),
    mesh_resolution=0.05,
    paper_volumes=True,
    bag_storage="mcap",
)


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataset")
    generate_dataset(root, scenes=2, seed=9, config=CONFIG, workers=1, show_progress=False)
    return root


def test_same_seed_gives_identical_bytes_with_any_number_of_workers(dataset, tmp_path):
    generate_dataset(tmp_path, scenes=2, seed=9, config=CONFIG, workers=2, show_progress=False)
    first, second = _files(dataset), _files(tmp_path)
    assert first.keys() == second.keys()
    different = [str(name) for name in first if first[name] != second[name]]
    assert not different, f"files differ: {different}"
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")], "temporary files left"


def test_folder_layout(dataset):
    scenes = list_scenes(dataset)
    assert [p.name for p in scenes] == ["scene_0000", "scene_0001"]
    folder = scenes[0]
    for sub in ("color", "depth", "semantic", "instance", "pose"):
        assert sorted(p.name for p in (folder / sub).iterdir())[0].startswith("000000.")
    assert (folder / "volumes" / volume_name(0.08)).is_file()
    assert (folder / "volumes" / "paper_80x96x64.npz").is_file()
    assert (folder / "mesh.ply").is_file() and (folder / "bag" / "metadata.yaml").is_file()
    index = json.loads((dataset / "dataset.json").read_text())
    assert [s["folder"] for s in index["scenes"]] == ["scene_0000", "scene_0001"]
    meta = json.loads((folder / "scene.json").read_text())
    assert meta["seed"] == index["scenes"][0]["seed"]
    assert {o["hidden"] for o in meta["scene"]["objects"]} <= {True, False}


def test_loader_reads_frames_lazily_and_the_ground_truth(dataset):
    seq = SyntheticSequence(dataset / "scene_0000")
    assert len(seq) == 5 and seq.continuous and seq.frame_rate == 10.0
    frame = seq[-1]
    assert frame.index == 4 and frame.stamp_ns == seq.stamps_ns[4]
    assert frame.rgb.shape == (72, 96, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.dtype == np.float32 and frame.depth.shape == (72, 96)
    assert frame.semantic.dtype == np.uint8 and frame.instance.dtype == np.uint16
    np.testing.assert_allclose(frame.T_world_cam, seq.poses[4])
    np.testing.assert_allclose(frame.K[0, 0], 525 * 96 / 640)
    assert np.allclose(
        frame.T_world_cam[:3, :3].T @ frame.T_world_cam[:3, :3], np.eye(3), atol=1e-8
    )
    assert [f.index for f in seq] == list(range(5))
    with pytest.raises(IndexError):
        seq[5]

    # Stored depth (mm) back-projects onto the stored TSDF's zero crossing.
    volume = seq.volume(0.08)
    assert volume.observed is not None and volume.observed.any()
    v, u = np.nonzero(frame.depth > 0)
    z = frame.depth[v, u].astype(np.float64)
    K = frame.K
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1)
    world = cam @ frame.T_world_cam[:3, :3].T + frame.T_world_cam[:3, 3]
    distance = volume.sample_tsdf(world) * volume.truncation
    distance = distance[np.isfinite(distance)]
    assert np.mean(np.abs(distance) < 0.04) > 0.98

    # The scene rebuilt from scene.json gives the same volume.
    again = compute_ground_truth(
        Scene.from_dict(seq.metadata["scene"]), volume.grid, volume.truncation
    )
    np.testing.assert_array_equal(again.tsdf, volume.tsdf)
    np.testing.assert_array_equal(again.semantic, volume.semantic)

    paper = seq.paper_volumes()
    assert paper["occupancy"].shape == (80, 96, 64) and paper["masks"].shape == (80, 96, 64, 6)
    mesh = seq.mesh()
    assert len(mesh.faces) > 1000
    assert seq.volume_sizes == [0.08, 0.1]
    with pytest.raises(ValueError, match="voxel_size"):
        seq.volume(0.05)


def test_cli_registers_generate():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(
        ["generate", "out", "-n", "3", "--voxel-sizes", "0.04", "0.08", "--bag", "sqlite3"]
    )
    assert args.scenes == 3 and args.voxel_sizes == [0.04, 0.08] and args.bag == "sqlite3"
    assert args.func.__name__ == "run"
