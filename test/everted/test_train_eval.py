"""`recon-ros train everted-unet` / `recon-ros evaluate everted-unet` end to end on tiny rig
scenes with the paper's volumes: both stages train and resume; the evaluation writes the
paper's metrics."""

import json

import pytest

from recon_ros.apps.cli import main
from recon_ros.everted.train import THRESHOLDS, RigScenes, evaluate_scenes, load_everted
from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import SceneConfig

RIG = GenerationConfig(
    scene=SceneConfig(room=RoomConfig(size_x=(3.0, 3.2), size_y=(3.0, 3.2), height=(2.4, 2.5))),
    trajectory=TrajectoryConfig(kind="rig", rig_cameras=3),
    width=64,
    height=64,
    voxel_sizes=(),
    paper_volumes=True,
    mesh_resolution=None,
    shadows=False,
)


@pytest.fixture(scope="module")
def rig_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("rig")
    for index, seed in enumerate((31, 32)):
        generate_scene_folder(root / "train" / f"scene_{index:04d}", seed, RIG, threads=1)
    generate_scene_folder(root / "val" / "scene_0000", 33, RIG, threads=1)
    return root


def test_rig_scenes_hold_views_and_the_papers_volumes(rig_scenes):
    item = RigScenes(rig_scenes / "train", image_size=64)[0]
    assert item["views"].shape == (3, 3, 64, 64)
    assert item["occupancy"].shape == (1, 80, 96, 64) and item["masks"].shape == (6, 80, 96, 64)
    assert 0 < float(item["occupancy"].mean()) < 1
    # every mask voxel is occupied
    assert float((item["masks"].amax(0) * (1 - item["occupancy"][0])).sum()) == 0.0


def test_stages_train_resume_and_evaluate(rig_scenes, tmp_path, capsys):
    def train(out, stage, views, steps, *extra):
        argv = ["train", "everted-unet", "--data", str(rig_scenes / "train"), "--val-data",
                str(rig_scenes / "val"), "--out", str(out), "--stage", stage, "--views", views,
                "--steps", str(steps), "--batch-size", "1", "--image-size", "64",
                "--val-every", "2", "--val-scenes", "1", "--log-every", "1", "--threads", "1",
                *extra]  # fmt: skip
        assert main(argv) == 0

    train(tmp_path / "stage1", "reconstruction", "one", 2)
    train(tmp_path / "stage1", "reconstruction", "one", 3)
    assert "resumed at step 2" in capsys.readouterr().out
    train(tmp_path / "stage2", "both", "all", 2, "--init", str(tmp_path / "stage1" / "best.pt"))
    model, metadata = load_everted(tmp_path / "stage2" / "best.pt")
    assert metadata["extra"]["stage"] == "both"
    assert metadata["extra"]["validation"]["threshold"] in THRESHOLDS
    out = tmp_path / "eval"
    assert main(["evaluate", "everted-unet", "--data", str(rig_scenes / "val"), "--checkpoint",
                 str(tmp_path / "stage2" / "best.pt"), "--out", str(out), "--val-data",
                 str(rig_scenes / "train"), "--threads", "1"]) == 0  # fmt: skip
    assert "thresholds chosen on" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    for key in ("reconstruction_iou", "segmentation_miou", "class_iou", "threshold"):
        assert key in results
    assert 0.0 <= results["reconstruction_iou"] <= 1.0
    assert results["threshold"] in THRESHOLDS and results["mask_threshold"] in THRESHOLDS
    # the same figures as evaluating in-process at the thresholds the validation scenes chose
    scenes = RigScenes(rig_scenes / "val", 64)
    again = evaluate_scenes(model, scenes, results["threshold"], None, results["mask_threshold"])
    assert again["reconstruction_iou"] == pytest.approx(results["reconstruction_iou"])
    assert again["class_iou"] == pytest.approx(results["class_iou"], nan_ok=True)
