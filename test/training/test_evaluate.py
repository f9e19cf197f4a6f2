"""``recon-ros evaluate atlas`` end to end on a tiny generated scene: every metric of the report,
the upper-bound row, the frame-count study, the markdown table and the plots."""

import json

import numpy as np

from recon_ros.apps.cli import main
from recon_ros.core.atlas_model import AtlasModelConfig
from recon_ros.core.checkpoint import write_untrained_checkpoint
from recon_ros.io.mesh_images import render_depth
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


def test_evaluate_fusion_pipeline_rows(tiny_eval_scene, tmp_path):
    """The default (fusion) pipeline: its row on RGB, fusion of predicted depth alone, the
    sensor-depth row through the same reconstructor, the upper bound, and the depth network's
    own per-keyframe metrics. Sensor depth fused in the rolling window nearly matches the upper
    bound; an untrained depth network does not."""
    from recon_ros.core.depth_checkpoint import save_depth_net
    from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet

    weights = save_depth_net(
        MVSDepthNet(DepthNetConfig(image_size=(128, 96), planes=16, widths=(8, 8, 8, 8))),
        tmp_path / "depth.pt",
        trained=False,
    )
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate", "atlas", "--depth-weights", str(weights), "--data",
            str(tiny_eval_scene.parent), "--out", str(out), "--window-dims", "96", "96", "64",
            "--device", "cpu", "--threads", "1",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "results.json").read_text())
    assert report["pipeline"] == "fusion" and report["depth_weights_trained"] is False
    for row in ("model", "mvs_fusion", "sensor_fusion", "upper_bound"):
        assert "fscore" in report[row] and "depth_abs_rel" in report[row], row
    assert "miou" in report["model"]
    network = report["model"]["depth_network"]
    assert 0 < network["comp"] <= 1 and network["abs_rel"] > 0
    sensor, bound = report["sensor_fusion"], report["upper_bound"]
    assert sensor["fscore"] > 0.8 and sensor["fscore"] > bound["fscore"] - 0.1
    assert report["model"]["fscore"] < sensor["fscore"]
    text = (out / "results.md").read_text()
    assert "sensor depth fused (RGB-D path)" in text and "per keyframe" in text


def test_evaluate_with_refinement_reports_fusion_alone_beside_it(tiny_eval_scene, tmp_path):
    """With the 3D refinement on, the default row is meshed through it and fusion alone is run
    as its own row: a refiner that erases every surface empties the default row's mesh only."""
    import torch

    from recon_ros.core.depth_checkpoint import save_depth_net
    from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet
    from recon_ros.core.refine_checkpoint import save_refine_net
    from recon_ros.core.refine_net import SurfaceRefinerNet

    depth = save_depth_net(
        MVSDepthNet(DepthNetConfig(image_size=(128, 96), planes=16, widths=(8, 8, 8, 8))),
        tmp_path / "depth.pt",
        trained=False,
    )
    eraser = SurfaceRefinerNet()
    with torch.no_grad():
        eraser.tsdf_head.bias.fill_(2.0)  # every voxel pushed to free space
        eraser.occupancy_head.bias.fill_(-20.0)
    refine = save_refine_net(eraser, tmp_path / "refine.pt", trained=False)
    out = tmp_path / "eval"
    code = main(
        [
            "evaluate", "atlas", "--depth-weights", str(depth), "--refinement", "on",
            "--refinement-mode", "full", "--refine-weights", str(refine), "--data",
            str(tiny_eval_scene.parent), "--out", str(out), "--window-dims", "96", "96", "64",
            "--device", "cpu", "--threads", "1", "--no-upper-bound",
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads((out / "results.json").read_text())
    assert report["refine_weights_trained"] is False
    assert report["model"]["fscore"] == 0.0
    assert report["mvs_fusion"]["fscore"] > 0.0
    # the refinement switches itself off for sensor depth (it learned to correct stereo maps)
    assert report["sensor_fusion"]["fscore"] > 0.8
    text = (out / "results.md").read_text()
    assert "3D refinement (full) on top" in text and "fusion of predicted depth alone (RGB)" in text
    assert "3D refinement network weights" in text
