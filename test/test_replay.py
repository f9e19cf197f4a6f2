"""`recon-ros replay`: the demo bag reconstructed offline (no ROS) with the same decoding, TF
buffer and parameters as atlas_node; writes mesh, semantic cloud, render and report."""

import json

import numpy as np

from recon_ros.apps.cli import main
from recon_ros.apps.demo import default_demo_bag
from recon_ros.io.bagfile import BagReader
from recon_ros.io.ply import read_ply


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
    from recon_ros.apps.replay import replay_bag

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

    from recon_ros.apps.replay import replay_bag
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


def rotated_world_copy(source, target, R_new_old):
    """A copy of a bag whose world frame is turned by ``R_new_old`` (every transform out of
    ``world`` is premultiplied), everything else byte-for-byte the same messages."""
    from recon_ros.core.geometry import pose_from_translation_quaternion
    from recon_ros.io.bagfile import BagWriter

    turn = np.eye(4)
    turn[:3, :3] = R_new_old
    with BagReader(source) as reader, BagWriter(target, storage="mcap") as writer:
        for topic, info in reader.topics.items():
            writer.add_topic(topic, info.msgtype, reader.offered_qos(topic))
        for topic, msgtype, stamp, msg in reader.messages():
            if topic in ("/tf", "/tf_static"):
                for i, t in enumerate(msg.transforms):
                    if t.header.frame_id != "world":
                        continue
                    tr, q = t.transform.translation, t.transform.rotation
                    T = pose_from_translation_quaternion(
                        np.array([tr.x, tr.y, tr.z]), np.array([q.x, q.y, q.z, q.w])
                    )
                    stamp_ns = t.header.stamp.sec * 10**9 + t.header.stamp.nanosec
                    msg.transforms[i] = writer.transform_message(
                        "world", t.child_frame_id, turn @ T, stamp_ns
                    )
            writer.write(topic, msgtype, stamp, msg)


def test_rotated_world_gives_the_rotated_mesh(tmp_path):
    """Issue 8.4: the demo bag and the same bag in a visual-SLAM world (up is -y, as when z is
    the first camera's optical axis) give the same mesh up to that turn, and the report says
    which way the window slid."""
    from scipy.spatial import cKDTree

    from recon_ros.apps.replay import replay_bag

    R = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # +z -> -y
    turned_bag = tmp_path / "turned_bag"
    rotated_world_copy(default_demo_bag(), turned_bag, R)
    depth = {"depth_topic": "/camera/depth/image_raw",
             "depth_info_topic": "/camera/depth/camera_info"}  # fmt: skip
    params = {"device": "cpu", "depth_source": "sensor"}
    first = replay_bag(default_demo_bag(), tmp_path / "a", params, render=False, progress=False,
                       **depth)  # fmt: skip
    second = replay_bag(turned_bag, tmp_path / "b", params, render=False, progress=False,
                        **depth)  # fmt: skip
    assert first.integrated == second.integrated > 5
    assert "-y" in second.window and "-y" not in first.window
    a = read_ply(tmp_path / "a" / "mesh.ply")["vertices"] @ R.T
    b = read_ply(tmp_path / "b" / "mesh.ply")["vertices"]
    assert abs(len(a) - len(b)) <= 0.02 * len(a), (len(a), len(b))
    a_to_b = cKDTree(b).query(a)[0]
    b_to_a = cKDTree(a).query(b)[0]
    # the same surface: within a tenth of a 4 cm voxel nearly everywhere
    assert np.quantile(a_to_b, 0.99) < 0.004 and np.quantile(b_to_a, 0.99) < 0.004
