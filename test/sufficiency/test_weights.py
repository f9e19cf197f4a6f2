"""The shipped plumbing checkpoint: rebuildable from its recipe, loadable by the estimator."""

from pathlib import Path

import numpy as np
import torch

import recon_ros.sufficiency
from recon_ros.sufficiency.checkpoint import load_checkpoint, write_untrained_checkpoint
from recon_ros.sufficiency.estimator import SufficiencyEstimator
from recon_ros.sufficiency.synthetic import ToySequence

SHIPPED = Path(recon_ros.sufficiency.__file__).parents[1] / "weights" / "sufficiency_untrained.pt"


def test_untrained_checkpoint_matches_its_recipe(tmp_path):
    rebuilt = load_checkpoint(write_untrained_checkpoint(tmp_path / "u.pt", seed=0))
    shipped = load_checkpoint(SHIPPED)
    assert shipped["metadata"]["trained"] is False
    assert shipped["metadata"]["m"] == 4 and shipped["metadata"]["input_size"] == [300, 300]
    assert rebuilt["model"].keys() == shipped["model"].keys()
    assert all(torch.equal(rebuilt["model"][k], shipped["model"][k]) for k in rebuilt["model"])


def test_estimator_runs_on_shipped_weights():
    est = SufficiencyEstimator.from_checkpoint(SHIPPED, device="cpu", input_size=(64, 64))
    seq = ToySequence(0, num_frames=5, hw=(48, 64))
    results = [est.update(f.rgb, f.K, f.T_world_cam, f.stamp) for f in (seq[i] for i in range(5))]
    assert results[:4] == [None] * 4
    assert results[4].counts.shape == (64, 64)
    assert np.isclose(results[4].count_fractions.sum(), 1.0)
