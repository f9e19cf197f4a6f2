"""The shipped-weights check: one held-out scene, generated deterministically, exported as a
rosbag2, reconstructed offline by ``recon_ros.apps.replay.replay_bag`` from its colour images alone
with the default pipeline and the weights atlas_node loads by default (the multi-view depth
network and the semantic network), and scored against its reference mesh (F-score at 5 cm after
the paper's trimming and the labels' mIoU, ``evaluation.mesh_scores``).
recon_ros/weights/depth_default.md and semantic_default.md record the figures;
test/training/test_shipped_weights.py checks that the shipped file still gives it.

The scene's seed comes from the held-out base seed 3000 (index 1000), never used for training
(base seeds 1000 and 11000) or validation (2000 and 12000). The scene is smaller than the
evaluation scenes (a 4 x 3.5 m room, 20 frames) to keep the test short.

    python -m recon_ros.apps.shipped_check [--weights PATH] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import SceneConfig, scene_seed

HELD_OUT_BASE_SEED = 3000
CHECK_INDEX = 1000
CHECK_SEED = scene_seed(HELD_OUT_BASE_SEED, CHECK_INDEX)
CHECK_CONFIG = GenerationConfig(
    scene=SceneConfig(room=RoomConfig(size_x=(4.0, 4.2), size_y=(3.4, 3.6))),
    trajectory=TrajectoryConfig(frames=20),
    width=384,
    height=288,
    bag_storage="mcap",
)
#: How far the F-score may move between machines (CPU float differences in the network, the
#: map's float16 storage and marching cubes): well under the differences between checkpoints.
TOLERANCE = 0.02
#: The same for the mIoU of the mesh's labels: a few voxels' labels flipping on a small mesh.
MIOU_TOLERANCE = 0.03


def check_scene(workdir: str | os.PathLike, weights: str | os.PathLike | None = None) -> dict:
    """Generate the check scene into ``workdir``, replay its bag with ``weights`` (default: the
    shipped ones) and score the mesh. Returns ``fscore``, ``prec``, ``recall``, ``depth_abs_rel``,
    ``miou`` (the mesh's labels), ``seed``, ``weights`` and the replay's counters."""
    from recon_ros.apps.replay import replay_bag
    from recon_ros.core.classes import CLASS_NAMES
    from recon_ros.datasets.layout import SyntheticSequence
    from recon_ros.io.ply import read_ply
    from recon_ros.training.evaluation import (
        frame_subset,
        load_frames,
        load_ground_truth_for,
        mesh_scores,
    )
    from recon_ros.training.metrics import iou_from_confusion, mean_of_present

    workdir = Path(workdir)
    folder = generate_scene_folder(workdir / "scene", CHECK_SEED, CHECK_CONFIG)
    params = {"depth_weights_path": str(weights)} if weights else {}
    report = replay_bag(
        folder / "bag",
        workdir / "replay",
        params,
        render=False,
        progress=False,
        log=lambda *_: None,
    )
    mesh = read_ply(workdir / "replay" / "mesh.ply")
    sequence = SyntheticSequence(folder)
    frames = load_frames(sequence, frame_subset(len(sequence), None))
    gt = load_ground_truth_for(sequence, "synthetic", frames, 0.04, 0.12)
    faces = mesh.get("faces", np.zeros((0, 3), np.int32))
    labels = mesh.get("label")
    scores = mesh_scores(mesh["vertices"], faces, labels, gt, frames, len(CLASS_NAMES))
    miou = float("nan")
    if "confusion" in scores:
        miou = mean_of_present(iou_from_confusion(np.asarray(scores["confusion"])))
    return {
        "seed": CHECK_SEED,
        "weights": report.weights,
        "fscore": scores["fscore"],
        "prec": scores["prec"],
        "recall": scores["recall"],
        "depth_abs_rel": scores["depth_abs_rel"],
        "miou": miou,
        "integrated": report.integrated,
        "cnn_updates": report.cnn_updates,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="checkpoint (default: the shipped weights)")
    parser.add_argument("--workdir", help="folder for the scene and replay (default: temporary)")
    args = parser.parse_args(argv)
    if args.workdir:
        result = check_scene(args.workdir, args.weights)
    else:
        with tempfile.TemporaryDirectory() as workdir:
            result = check_scene(workdir, args.weights)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
