"""``recon-ros evaluate atlas`` end to end on a tiny generated scene: every metric of the report,
the upper-bound row, the frame-count study, the markdown table and the plots."""

import json

import numpy as np

from recon_ros.cli import main
from recon_ros.core.atlas_model import AtlasModelConfig
from recon_ros.core.checkpoint import write_untrained_checkpoint
from recon_ros.render import render_depth
from recon_ros.training.evaluation import DepthRenderer, frame_subset, open_sequence

from .conftest import TINY_IMAGE_SIZE


def atlas_params(folder):
    """A parameter file selecting the paper's features-only Atlas pipeline."""
    path = folder / "atlas_pipeline.yaml"
    path.write_text("atlas_node:\n  ros__parameters:\n    pipeline: atlas\n")
    return path


def test_evaluate_cli_writes_every_metric(tiny_eval_scene, tmp_path):
    weights = write_untrained_checkpoint(
        tmp_path / "w.pt", config=AtlasModelConfig.small(image_size=TINY_IMAGE_SIZE)
    )
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate", "atlas", "--weights", str(weights), "--data", str(tiny_eval_scene.parent),
            "--out", str(out), "--window-dims", "48", "48", "48", "--device", "cpu",
            "--frames-study", "3", "--frames-study-scenes", "1", "--threads", "1",
            "--params-file", str(atlas_params(tmp_path)),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "results.json").read_text())
    model, bound = report["model"], report["upper_bound"]
    for key in (
        "l1",
        "acc",
        "comp",
        "prec",
        "recall",
        "fscore",
        "depth_abs_rel",
        "depth_rmse",
        "depth_delta1",
        "depth_comp",
        "miou",
    ):
        assert key in model and key in bound, key
    # Fusing the true depth reconstructs the scene almost perfectly; random weights do not.
    assert bound["fscore"] > 0.9 and bound["depth_abs_rel"] < 0.05 and bound["miou"] > 0.6
    assert model["fscore"] < bound["fscore"]
    assert len(model["iou"]) == 9
    assert report["frames_study"]["frames"] == [3, 10]
    text = (out / "results.md").read_text()
    assert "TSDF fusion of GT depth on the GT grid (upper bound)" in text and "| F-score |" in text
    for name in ("iou.png", "scenes.png", "frames.png"):
        assert (out / name).stat().st_size > 1000, name


def test_batch_renderer_matches_render_depth(tiny_eval_scene):
    sequence, _ = open_sequence(tiny_eval_scene)
    mesh = sequence.mesh()
    frame = sequence[frame_subset(len(sequence), 1)[0]]
    h, w = frame.depth.shape
    fast = DepthRenderer(mesh.vertices, mesh.faces).render(frame.K, frame.T_world_cam, w, h)
    slow = render_depth(mesh.vertices, mesh.faces, frame.K, frame.T_world_cam, w, h)
    np.testing.assert_allclose(fast, slow, atol=1e-5)
    valid = frame.depth > 0
    assert np.median(np.abs(fast[valid] - frame.depth[valid])) < 0.005  # the mesh is the scene
