"""ifnet_node over DDS (issue 13.3): the demo bag's colour stream and TF played by bag_player; for
the images it completes, the node publishes the predicted depth (32FC1, with its CameraInfo) and
the mesh in the image's optical frame, equal to what the ROS-free API gives for that image and
the floor prior TF gives; without the floor frame in TF it says so and goes on without the prior;
an image it cannot decode is dropped with a warning and the node keeps going."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import Marker

from recon_ros.apps.demo import default_demo_bag
from recon_ros.ifnet.ifnet import SingleViewIFNet
from recon_ros.ifnet.infer import complete_scene
from recon_ros.ifnet.train import load_ifnet, save_ifnet
from recon_ros.io import camera_info_conversions, image_conversions
from recon_ros.io.bagfile import BagReader
from recon_ros.io.tf_buffer import TransformBuffer
from recon_ros.io.transform_conversions import stamp_to_ns

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
IMAGE_TOPIC, INFO_TOPIC = "/camera/color/image_raw", "/camera/color/camera_info"


@pytest.mark.timeout(300)
def test_depth_and_mesh_for_the_images_it_completes(
    ros_node, start_node, tmp_path, tiny_ifnet_config
):
    torch.manual_seed(0)
    config = replace(tiny_ifnet_config, floor_input=True)
    weights = save_ifnet(SingleViewIFNet(config), tmp_path / "w.pt", False, "test", {})
    node = start_node(
        "ifnet_node",
        {"weights_path": str(weights), "device": "cpu", "image_qos": "reliable", "rate_hz": 4.0,
         "floor_frame": "world"},  # the generated scene's floor: z = 0, z up
        remaps={"image": IMAGE_TOPIC, "camera_info": INFO_TOPIC},
    )  # fmt: skip
    depths = ros_node.collect(Image, "/ifnet_node/depth", RELIABLE)
    infos = ros_node.collect(CameraInfo, "/ifnet_node/depth/camera_info", RELIABLE)
    meshes = ros_node.collect(Marker, "/ifnet_node/mesh", LATCHED)
    bag = default_demo_bag()
    player = start_node(
        "bag_player",
        {
            "bag": str(bag),
            "rate": 2.0,
            "topics": [IMAGE_TOPIC, INFO_TOPIC, "/tf", "/tf_static"],
            "wait_for_subscribers": [IMAGE_TOPIC, INFO_TOPIC],
        },
    )
    depths.wait_for(lambda _, all_: len(all_) >= 2, 120, "two depth images", [node])
    depth_msg = depths.messages[-1]
    depth = image_conversions.image_to_depth(depth_msg)
    assert depth_msg.encoding == "32FC1" and depth.shape == (32, 32)
    assert depth_msg.header.frame_id == "camera_color_optical_frame"
    info = infos.wait_for(lambda m, _: True, 30, "the depth CameraInfo", [node])
    assert (info.width, info.height) == (32, 32)
    mesh = meshes.wait_for(lambda m, _: True, 30, "the mesh", [node])
    assert mesh.header.frame_id == "camera_color_optical_frame"

    # the same image through the ROS-free API, with the floor prior from the bag's TF, gives the
    # same depth
    wanted = stamp_to_ns(depth_msg.header.stamp)
    tf = TransformBuffer(cache_time_s=1000.0)
    with BagReader(bag) as reader:
        for topic, _, _, msg in reader.messages([IMAGE_TOPIC, INFO_TOPIC, "/tf", "/tf_static"]):
            if topic in ("/tf", "/tf_static"):
                tf.set_tf_message(msg, static=topic == "/tf_static")
            elif topic == INFO_TOPIC:
                camera = camera_info_conversions.camera_info_to_camera(msg)
            elif stamp_to_ns(msg.header.stamp) == wanted:
                rgb = image_conversions.image_to_rgb(msg)
    model, _ = load_ifnet(weights)
    T = tf.lookup("world", depth_msg.header.frame_id, wanted)
    up, height = T[:3, :3].T @ np.array([0.0, 0.0, 1.0]), T[2, 3]
    expected = complete_scene(model, rgb, camera, up=up, height=height).depth
    np.testing.assert_allclose(depth, expected, rtol=1e-5)
    assert not np.allclose(depth, complete_scene(model, rgb, camera).depth, rtol=1e-5)
    assert player.stop() == 0

    publisher = ros_node.matched_publisher(Image, IMAGE_TOPIC, RELIABLE)
    broken = image_conversions.rgb_to_image_msg(rgb, depth_msg.header.stamp, "cam")
    broken.data = broken.data[:100]
    publisher.publish(broken)
    log = node.wait_for_log("dropped an image")
    assert "dropped an image: data length" in log, log[-2000:]
    assert node.alive() and "Traceback" not in log


@pytest.mark.timeout(300)
def test_without_the_floor_frame_it_completes_without_the_prior(
    ros_node, start_node, tmp_path, tiny_ifnet_config
):
    """The demo bag has no base_footprint (the default floor_frame): the node says so, names
    the parameter, and still publishes depth."""
    torch.manual_seed(0)
    config = replace(tiny_ifnet_config, floor_input=True)
    weights = save_ifnet(SingleViewIFNet(config), tmp_path / "w.pt", False, "test", {})
    node = start_node(
        "ifnet_node",
        {"weights_path": str(weights), "device": "cpu", "image_qos": "reliable", "rate_hz": 4.0},
        remaps={"image": IMAGE_TOPIC, "camera_info": INFO_TOPIC},
    )  # fmt: skip
    depths = ros_node.collect(Image, "/ifnet_node/depth", RELIABLE)
    player = start_node(
        "bag_player",
        {
            "bag": str(default_demo_bag()),
            "rate": 2.0,
            "topics": [IMAGE_TOPIC, INFO_TOPIC, "/tf", "/tf_static"],
            "wait_for_subscribers": [IMAGE_TOPIC, INFO_TOPIC],
        },
    )
    depths.wait_for(lambda _, all_: len(all_) >= 1, 120, "a depth image", [node])
    log = node.wait_for_log("without the floor prior", timeout=90.0)
    assert "'base_footprint'" in log and "floor_frame" in log, log[-2000:]
    assert player.stop() == 0
    assert node.alive() and "Traceback" not in log
