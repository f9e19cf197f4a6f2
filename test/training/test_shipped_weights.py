"""The shipped depth network still reconstructs the held-out check scene (generated here, exported
as a rosbag2, replayed offline from its colour images with the default pipeline and the weights
atlas_node loads by default) with the F-score that recon_ros/weights/depth_default.md records,
within ``shipped_check.TOLERANCE``, and with the shipped semantic network, the mIoU that
recon_ros/weights/semantic_default.md records, within ``shipped_check.MIOU_TOLERANCE``."""

import re

import pytest

from recon_ros.apps.shipped_check import CHECK_SEED, MIOU_TOLERANCE, TOLERANCE, check_scene
from recon_ros.scenes.scene import scene_seed
from recon_ros.weights import WEIGHTS_DIR, default_depth_weights, default_semantic_weights

RECORD = WEIGHTS_DIR / "depth_default.md"
SEMANTIC_RECORD = WEIGHTS_DIR / "semantic_default.md"


def recorded(record, what: str) -> float:
    match = re.search(rf"check scene {what}: \*\*([0-9.]+)\*\*", record.read_text())
    assert match, f"{record} records no check-scene {what}"
    return float(match.group(1))


def test_check_scene_is_held_out():
    for base in (1000, 2000, 11000, 12000):  # training and validation seeds of every model
        assert CHECK_SEED not in {scene_seed(base, i) for i in range(10_000)}, base


def test_shipped_weights_reproduce_the_recorded_fscore(tmp_path):
    weights = default_depth_weights()
    assert weights is not None and weights.name == "depth_default.pt", "no depth weights ship"
    semantic = default_semantic_weights()
    assert semantic is not None and semantic.name == "semantic_default.pt", "no semantic weights"
    result = check_scene(tmp_path)
    assert result["integrated"] > 5
    assert result["fscore"] == pytest.approx(recorded(RECORD, "F-score"), abs=TOLERANCE)
    assert result["miou"] == pytest.approx(recorded(SEMANTIC_RECORD, "mIoU"), abs=MIOU_TOLERANCE)
