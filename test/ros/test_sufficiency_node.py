"""sufficiency_node end to end over DDS: the demo bag played live; the sufficiency message and the
count images arrive with the stamps and frames of reference images from the bag, and the coverage
layer puts the counts in the world."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recon_ros.msg import FrameSufficiency
from sensor_msgs.msg import Image, PointCloud2

from recon_ros.apps.demo import default_demo_bag
from recon_ros.io import image_conversions, transform_conversions
from recon_ros.io.bagfile import BagReader
from recon_ros.io.pointcloud_conversions import pointcloud2_to_array, unpack_rgb
from recon_ros.ros.sufficiency_node import count_palette

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bag_views import depth_views

IMAGE_TOPIC = "/camera/color/image_raw"
RELIABLE = QoSProfile(
    depth=100, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE
)


@pytest.mark.timeout(600)
def test_sufficiency_estimates_follow_reference_frames(ros_node, start_node):
    bag = default_demo_bag()
    with BagReader(bag) as reader:
        headers = [msg.header for _, _, _, msg in reader.messages([IMAGE_TOPIC])]
        first = next(reader.messages([IMAGE_TOPIC])).msg
    stamps = {transform_conversions.stamp_to_ns(h.stamp) for h in headers}
    node = start_node(
        "sufficiency_node",
        {"device": "cpu", "queue_size": 1000, "image_qos": "reliable"},
        remaps={"image": IMAGE_TOPIC, "camera_info": "/camera/color/camera_info"},
    )
    results = ros_node.collect(FrameSufficiency, "/sufficiency_node/sufficiency", RELIABLE)
    colored = ros_node.collect(Image, "/sufficiency_node/count_image", RELIABLE)
    raw = ros_node.collect(Image, "/sufficiency_node/counts", RELIABLE)
    coverage = ros_node.collect(PointCloud2, "/sufficiency_node/coverage", RELIABLE)
    diagnostics = ros_node.collect(DiagnosticArray, "/diagnostics", RELIABLE)
    player = start_node(
        "bag_player", {"bag": str(bag), "rate": 2.0, "wait_for_subscribers": [IMAGE_TOPIC]}
    )
    results.wait_for(lambda m, all_: len(all_) >= 3, 300, "three sufficiency estimates", [node])
    assert player.stop() == 0

    for msg in results.messages:
        assert transform_conversions.stamp_to_ns(msg.reference_stamp) in stamps
        assert (
            msg.header.stamp == msg.reference_stamp and msg.header.frame_id == first.header.frame_id
        )
        assert len(msg.partner_stamps) == msg.m and all(
            transform_conversions.stamp_to_ns(s) in stamps for s in msg.partner_stamps
        )
        assert transform_conversions.stamp_to_ns(msg.reference_stamp) not in {
            transform_conversions.stamp_to_ns(s) for s in msg.partner_stamps
        }
        assert len(msg.count_fractions) == msg.m + 1
        assert abs(sum(msg.count_fractions) - 1.0) < 1e-4
        assert abs(msg.score - sum(msg.count_fractions[msg.k :])) < 1e-4
        assert msg.sufficient == (msg.score >= msg.threshold)
    raw.wait_for(
        lambda m, all_: len(all_) >= len(results.messages), 30, "the raw count images", [node]
    )
    by_stamp = {transform_conversions.stamp_to_ns(m.header.stamp): m for m in raw.messages}
    for msg in results.messages:
        counts_msg = by_stamp[transform_conversions.stamp_to_ns(msg.reference_stamp)]
        assert (counts_msg.width, counts_msg.height) == (first.width, first.height)
        counts = image_conversions.image_to_array(counts_msg)[0]
        fractions = np.bincount(counts.ravel(), minlength=msg.m + 1) / counts.size
        np.testing.assert_allclose(
            fractions, msg.count_fractions, atol=0.02
        )  # resized to the image
    assert (
        colored.last.encoding == "rgb8"
        and transform_conversions.stamp_to_ns(colored.last.header.stamp) in stamps
    )
    # the coverage layer: one cloud per estimate, in the world frame, counts 0..m coloured by the
    # node's palette, every cell reached by at least one estimate and at most by all of them
    coverage.wait_for(
        lambda m, all_: len(all_) >= len(results.messages), 30, "the coverage clouds", [node]
    )
    cloud = pointcloud2_to_array(coverage.last)
    m = results.messages[0].m
    assert coverage.last.header.frame_id == "world" and len(cloud) > 100
    assert cloud["count"].max() <= m and len(np.unique(cloud["count"])) >= 2
    np.testing.assert_array_equal(unpack_rgb(cloud["rgb"]), count_palette(m)[cloud["count"]])
    assert cloud["estimates"].min() >= 1 and cloud["estimates"].max() <= len(coverage.messages)
    sizes = [msg.width for msg in coverage.messages]
    assert sizes == sorted(sizes)  # cells are only added (far below the cell bound)
    # the cells lie in the room the bag's camera walked (within the sweep's 6 m of it)
    xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1)
    assert np.all(np.isfinite(xyz)) and np.abs(xyz).max() < 20.0
    diagnostics.wait_for(
        lambda m, all_: any(s.name.endswith(": coverage") for a in all_ for s in a.status),
        30,
        "the coverage summary on /diagnostics",
        [node],
    )
    summary = next(
        s for a in diagnostics.messages for s in a.status if s.name.endswith(": coverage")
    )
    values = {kv.key: kv.value for kv in summary.values}
    assert int(values["cells"]) > 0 and 0.0 <= float(values["cells_covered_share"]) <= 1.0
    assert node.alive() and "Traceback" not in node.log()


DEPTH_TOPIC = "/camera/depth/image_raw"
DEPTH_INFO_TOPIC = "/camera/depth/camera_info"


@pytest.mark.timeout(600)
def test_coverage_through_sensor_depth_lies_on_the_scene(ros_node, start_node):
    """With the RGB-D camera's depth (its own optical frame, linked by TF), the coverage cells
    lie on the surfaces the recorded depth sees."""
    bag = default_demo_bag()
    node = start_node(
        "sufficiency_node",
        {
            "device": "cpu",
            "queue_size": 1000,
            "image_qos": "reliable",
            "use_depth": True,
            "tf_timeout_s": 2.0,
        },
        remaps={
            "image": IMAGE_TOPIC,
            "camera_info": "/camera/color/camera_info",
            "depth/image": DEPTH_TOPIC,
            "depth/camera_info": DEPTH_INFO_TOPIC,
        },
    )
    coverage = ros_node.collect(PointCloud2, "/sufficiency_node/coverage", RELIABLE)
    player = start_node(
        "bag_player",
        {
            "bag": str(bag),
            "rate": 2.0,
            "wait_for_subscribers": [IMAGE_TOPIC, DEPTH_TOPIC, DEPTH_INFO_TOPIC],
        },
    )
    coverage.wait_for(lambda m, all_: len(all_) >= 3, 300, "three coverage clouds", [node])
    assert player.stop() == 0
    assert "counts put in the world through the depth image" in node.log()
    cloud = pointcloud2_to_array(coverage.last)
    centres = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1).astype(np.float64)
    assert len(centres) > 50
    # every cell holds recorded surface: its centre lies within half a cell diagonal (0.17 m for
    # 0.2 m cells) of the points the bag's own depth views see
    from scipy.spatial import cKDTree

    surface = []
    for depth, K, T_world_depth in depth_views(bag, DEPTH_TOPIC, DEPTH_INFO_TOPIC, every=3):
        v, u = np.nonzero(depth[::4, ::4] > 0)
        z = depth[::4, ::4][v, u]
        rays = np.stack([(4 * u - K[0, 2]) / K[0, 0], (4 * v - K[1, 2]) / K[1, 1], np.ones_like(z)])
        surface.append((rays * z).T @ T_world_depth[:3, :3].T + T_world_depth[:3, 3])
    distance, _ = cKDTree(np.concatenate(surface)).query(centres)
    assert np.quantile(distance, 0.95) < 0.2, np.quantile(distance, [0.5, 0.95, 1.0])
    assert node.alive() and "Traceback" not in node.log()
