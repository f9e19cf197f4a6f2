"""The shipped weights still reconstruct the held-out check scene (generated here, exported as a
rosbag2, replayed offline with the weights atlas_node loads by default) with the F-score that
recon_ros/weights/atlas_default.md records, within ``shipped_check.TOLERANCE``."""

import re

import pytest

from recon_ros.scenes.scene import scene_seed
from recon_ros.training.shipped_check import CHECK_SEED, TOLERANCE, check_scene
from recon_ros.weights import WEIGHTS_DIR, default_atlas_weights

RECORD = WEIGHTS_DIR / "atlas_default.md"


def recorded_fscore() -> float:
    match = re.search(r"check scene F-score: \*\*([0-9.]+)\*\*", RECORD.read_text())
    assert match, f"{RECORD} records no check-scene F-score"
    return float(match.group(1))


def test_check_scene_is_held_out():
    assert CHECK_SEED not in {scene_seed(1000, i) for i in range(10_000)}  # training seeds
    assert CHECK_SEED not in {scene_seed(2000, i) for i in range(10_000)}  # validation seeds


@pytest.mark.skipif(
    not (WEIGHTS_DIR / "atlas_default.pt").is_file(), reason="no trained weights shipped"
)
def test_shipped_weights_reproduce_the_recorded_fscore(tmp_path):
    assert default_atlas_weights().name == "atlas_default.pt"
    result = check_scene(tmp_path)
    assert result["integrated"] > 5
    assert result["fscore"] == pytest.approx(recorded_fscore(), abs=TOLERANCE)
