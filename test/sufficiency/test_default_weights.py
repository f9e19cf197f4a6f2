"""The shipped trained checkpoint (recon_ros/weights/sufficiency_default.pt): it is what the node
loads, it is what its recipe says, and it reproduces its recorded figure on a held-out scene that
the test generates itself with the scene engine (nothing is downloaded).

The held-out scene: seed ``HELD_OUT_SEED`` (7000; not the seed of any scene of data/atlas, whose
train, val and test scenes come from base seeds 1000, 2000 and 3000, and not used in training),
``FRAMES`` frames of the same generator settings as the training data (384x288, a walk at
0.4 m/s, 10 Hz), no volumes or mesh. ``recon-ros evaluate sufficiency``'s ``evaluate`` runs on it
as on the held-out test set: overlap partners (the estimator's choice), window 8, every frame a
reference, i.e. ``FRAMES - 4`` samples. The figure is recorded in sufficiency_default.md; the
tolerance ``TOLERANCE`` (0.005 of accuracy) covers float differences between CPUs and BLAS
builds, which move a few pixels across an argmax boundary; a wrong or retrained checkpoint, or a
change of the inputs or labels, moves it by more.
"""

import re

import pytest
import torch

import recon_ros.weights
from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.sufficiency.checkpoint import load_checkpoint, load_model
from recon_ros.sufficiency.evaluate import evaluate
from recon_ros.sufficiency.sources import open_sequences

WEIGHTS = recon_ros.weights.WEIGHTS_DIR
SHIPPED = WEIGHTS / "sufficiency_default.pt"
RECIPE = WEIGHTS / "sufficiency_default.md"
HELD_OUT_SEED = 7000
FRAMES = 12
#: Recorded in sufficiency_default.md ("Test scene" section).
EXPECTED_ACCURACY = 0.9619
EXPECTED_BASELINE = 0.9154
TOLERANCE = 0.005


@pytest.fixture(scope="module")
def held_out_scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("held_out") / "scene_0000"
    config = GenerationConfig(
        width=384,
        height=288,
        trajectory=TrajectoryConfig(frames=FRAMES),
        voxel_sizes=(),
        mesh_resolution=None,
    )
    generate_scene_folder(folder, HELD_OUT_SEED, config, threads=1)
    return folder


def test_shipped_checkpoint_is_the_default_and_trained():
    assert recon_ros.weights.default_sufficiency_weights() == SHIPPED
    assert SHIPPED.stat().st_size < 20 * 2**20
    payload = load_checkpoint(SHIPPED)
    meta = payload["metadata"]
    assert meta["trained"] is True and meta["m"] == 4 and meta["input_size"] == [300, 300]
    assert meta["inputs"] == "rgb+frustum+stereo"
    assert set(payload) == {"model", "metadata"}
    assert all(v.dtype == torch.float16 for v in payload["model"].values() if v.is_floating_point())
    model, _ = load_model(SHIPPED)
    assert next(model.parameters()).dtype == torch.float32


def test_recorded_figure_on_a_held_out_scene(held_out_scene, tmp_path):
    torch.set_num_threads(1)
    metrics = evaluate(
        SHIPPED,
        open_sequences([held_out_scene]),
        tmp_path,
        device="cpu",
        overrides={"seed": 1, "partners": "overlap", "reference_stride": 1},
        progress=False,
    )
    assert metrics["samples"] == FRAMES - 4
    assert metrics["baseline_accuracy"] == pytest.approx(EXPECTED_BASELINE, abs=1e-4)
    assert metrics["pixel_accuracy"] == pytest.approx(EXPECTED_ACCURACY, abs=TOLERANCE)
    recorded = re.findall(r"test scene.*?pixel accuracy ([0-9.]+)", RECIPE.read_text(), re.S | re.I)
    assert recorded and float(recorded[0]) == pytest.approx(EXPECTED_ACCURACY, abs=5e-5)
