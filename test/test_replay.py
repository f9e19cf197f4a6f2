"""`recon-ros replay`: the demo bag reconstructed offline (no ROS) with the same decoding, TF
buffer and parameters as atlas_node; writes mesh, semantic cloud, render and report."""

import json

import numpy as np

from recon_ros.bagfile import BagReader
from recon_ros.cli import main
from recon_ros.demo import default_demo_bag
from recon_ros.ply import read_ply


def test_replay_demo_bag_offline(tmp_path):
    bag = default_demo_bag()
    with BagReader(bag) as reader:
        images = reader.topics["/camera/color/image_raw"].count
    out = tmp_path / "out"
    assert main(["replay", str(bag), "-o", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == images
    assert report["integrated"] + report["not_keyframes"] + sum(report["drops"].values()) == images
    assert report["integrated"] > 0 and sum(report["drops"].values()) == 0
    mesh = read_ply(out / "mesh.ply")
    cloud = read_ply(out / "semantic_cloud.ply")
    assert len(mesh["faces"]) == report["triangles"] > 0
    assert len(cloud["vertices"]) == report["semantic_points"] > 0
    labels = cloud["label"]
    # a class id, or 255 (no label vote reached that surface voxel): a small share at most
    assert np.all((labels < 9) | (labels == 255)) and np.mean(labels == 255) < 0.05
    assert np.all((cloud["confidence"] >= 0) & (cloud["confidence"] <= 1))
    render = (out / "render.png").read_bytes()
    assert render[:8] == b"\x89PNG\r\n\x1a\n" and len(render) > 10_000
    assert "integrated" in (out / "report.md").read_text()


def test_replay_counts_frames_it_cannot_use(tmp_path):
    """A bag whose camera frame has no transform: every image dropped as no_pose, and said so."""
    from recon_ros.replay import replay_bag

    report = replay_bag(
        default_demo_bag(), tmp_path, {"camera_frame": "not_a_frame", "device": "cpu"}, render=False
    )
    assert report.integrated == 0 and report.drops["no_pose"] == report.images > 0
    assert "not_a_frame" in report.drop_examples["no_pose"]


def test_replay_with_the_depth_topic_maps_where_the_scene_is(tmp_path):
    """The RGB-D path: the demo bag's depth topic (16UC1, in its own optical frame, linked by
    TF) fused instead of stereo; the mesh explains the recorded depth."""
    import sys
    from pathlib import Path

    from recon_ros.replay import replay_bag
    from recon_ros.training.evaluation import mesh_depth_agreement

    sys.path.insert(0, str(Path(__file__).parent))
    from bag_views import depth_views

    depth_topic, info_topic = "/camera/depth/image_raw", "/camera/depth/camera_info"
    report = replay_bag(
        default_demo_bag(),
        tmp_path,
        {"device": "cpu", "depth_source": "sensor"},
        render=False,
        progress=False,
        depth_topic=depth_topic,
        depth_info_topic=info_topic,
    )
    assert report.integrated > 5 and sum(report.drops.values()) == 0, report.drop_examples
    mesh = read_ply(tmp_path / "mesh.ply")
    views = depth_views(default_demo_bag(), depth_topic, info_topic, every=3)
    agreement = mesh_depth_agreement(mesh["vertices"], mesh["faces"], views)
    assert agreement > 0.8, agreement
