"""rig_node over DDS (issue 12.1): a generated rig scene's bag (three fixed cameras, each on its own
topics) played by bag_player; the node publishes, latched, the occupied voxels and the mesh that
the ROS-free API gives for the same images, in the room frame; an image it cannot decode is
dropped with a warning and the node keeps going. Both kinds of model: a learned lift (images
only) and the rays lift (the rig's CameraInfo and /tf_static from the bag as well)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, PointCloud2
from visualization_msgs.msg import Marker

from recon_ros.datasets.bag_export import rig_image_topic
from recon_ros.datasets.layout import SyntheticSequence
from recon_ros.everted.infer import RigCamera, predict_room
from recon_ros.everted.model import EvertedUNet
from recon_ros.everted.train import load_everted, save_everted
from recon_ros.io import image_conversions, pointcloud_conversions
from recon_ros.io.bagfile import BagReader
from recon_ros.scenes.cameras import TrajectoryConfig
from recon_ros.scenes.pipeline import GenerationConfig, generate_scene_folder
from recon_ros.scenes.room import RoomConfig
from recon_ros.scenes.scene import SceneConfig

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CORNER, VOXEL = [-0.5, -0.5, 0.0], 0.05


@pytest.mark.timeout(300)
@pytest.mark.parametrize("lift", ["camera", "rays"])
def test_rig_bag_to_occupied_voxels(ros_node, start_node, tmp_path, tiny_everted_config, lift):
    config = GenerationConfig(
        scene=SceneConfig(room=RoomConfig(size_x=(3.0, 3.2), size_y=(3.0, 3.2))),
        trajectory=TrajectoryConfig(kind="rig", rig_cameras=3),
        width=96,
        height=72,
        voxel_sizes=(),
        mesh_resolution=None,
        shadows=False,
        bag_storage="mcap",
    )
    scene = generate_scene_folder(tmp_path / "scene_0000", 5, config, threads=1)
    bag = scene / "bag"
    topics = [rig_image_topic(k) for k in range(3)]
    with BagReader(bag) as reader:
        assert {t: reader.topics[t].count for t in topics} == {t: 10 for t in topics}
        images, last = {}, {}
        for topic, _, _, msg in reader.messages(topics):
            images.setdefault(topic, image_conversions.image_to_rgb(msg))
            last[topic] = msg
    torch.manual_seed(0)
    config = tiny_everted_config
    cameras = None
    if lift == "rays":
        config = replace(config, lift="rays", encoder_channels=(4, 8, 8, 8), ray_channels=4,
                         volume_dims=(20, 24, 16), branch_channels=(4, 4))  # fmt: skip
        sequence = SyntheticSequence(scene)
        cameras = [RigCamera(sequence[k].K, sequence.poses[k]) for k in range(3)]
    weights = save_everted(EvertedUNet(config), tmp_path / "w.pt", False, "test", {})
    model, _ = load_everted(weights)
    views = [images[t] for t in topics]
    expected = predict_room(model, views, CORNER, VOXEL, cameras=cameras)
    # an untrained net sits near 0.5 everywhere: a threshold that leaves 0.5 % of the voxels
    threshold = float(np.quantile(expected.occupancy, 0.995))
    expected = predict_room(model, views, CORNER, VOXEL, threshold, cameras=cameras)

    params = {
        "weights_path": str(weights),
        "device": "cpu",
        "image_qos": "reliable",
        "grid_corner": CORNER,
        "voxel_size_m": VOXEL,
        "occupancy_threshold": threshold,
        "rate_hz": 2.0,
        "room_frame": "room",
    }
    node = start_node("rig_node", params)
    clouds = ros_node.collect(PointCloud2, "/rig_node/occupied", LATCHED)
    meshes = ros_node.collect(Marker, "/rig_node/mesh", LATCHED)
    player = start_node(
        "bag_player", {"bag": str(bag), "rate": 1.0, "wait_for_subscribers": topics}
    )
    cloud = clouds.wait_for(lambda m, _: True, 120, "the occupied voxels", [node])
    points = pointcloud_conversions.pointcloud2_to_array(cloud)
    assert cloud.header.frame_id == "room"
    assert len(points) == len(expected.centres)
    got = np.stack([points["x"], points["y"], points["z"]], axis=1)
    np.testing.assert_allclose(got, expected.centres, atol=1e-5)
    np.testing.assert_array_equal(points["label"], expected.labels)
    mesh = meshes.wait_for(lambda m, _: True, 60, "the mesh", [node])
    assert mesh.header.frame_id == "room" and len(mesh.points) == 3 * expected.mesh.num_faces
    # the whole bag played (not stopped early): every camera's newest image is of its last tick
    assert player.process.wait(60) == 0, player.log()[-2000:]

    # a camera sends an image that cannot be decoded: dropped, said, and the node goes on
    publisher = ros_node.matched_publisher(Image, topics[1], RELIABLE)
    newest = last[topics[1]].header.stamp  # the camera's newest image again, its data cut short
    later = newest.sec * 10**9 + newest.nanosec + 1_000_000  # new, and not stale
    stamp = Time(sec=later // 10**9, nanosec=later % 10**9)
    broken = image_conversions.rgb_to_image_msg(images[topics[1]], stamp, "rig_camera_1")
    broken.data = broken.data[:100]
    publisher.publish(broken)
    log = node.wait_for_log("dropped an image")
    assert "dropped an image on '/rig/camera_1/image_raw'" in log, log[-2000:]
    assert node.alive() and "Traceback" not in log
