"""ifnet_node over DDS (issue 13.3): the demo bag's colour stream played by bag_player; for the
images it completes, the node publishes the predicted depth (32FC1, with its CameraInfo) and the
mesh in the image's optical frame, equal to what the ROS-free API gives for that image; an image
it cannot decode is dropped with a warning and the node keeps going."""

from __future__ import annotations

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
    weights = save_ifnet(SingleViewIFNet(tiny_ifnet_config), tmp_path / "w.pt", False, "test", {})
    node = start_node(
        "ifnet_node",
        {"weights_path": str(weights), "device": "cpu", "image_qos": "reliable", "rate_hz": 4.0},
        remaps={"image": IMAGE_TOPIC, "camera_info": INFO_TOPIC},
    )
    depths = ros_node.collect(Image, "/ifnet_node/depth", RELIABLE)
    infos = ros_node.collect(CameraInfo, "/ifnet_node/depth/camera_info", RELIABLE)
    meshes = ros_node.collect(Marker, "/ifnet_node/mesh", LATCHED)
    bag = default_demo_bag()
    player = start_node(
        "bag_player",
        {
            "bag": str(bag),
            "rate": 2.0,
            "topics": [IMAGE_TOPIC, INFO_TOPIC],
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

    # the same image through the ROS-free API gives the same depth
    wanted = stamp_to_ns(depth_msg.header.stamp)
    with BagReader(bag) as reader:
        for topic, _, _, msg in reader.messages([IMAGE_TOPIC, INFO_TOPIC]):
            if topic == INFO_TOPIC:
                camera = camera_info_conversions.camera_info_to_camera(msg)
            elif stamp_to_ns(msg.header.stamp) == wanted:
                rgb = image_conversions.image_to_rgb(msg)
                break
    model, _ = load_ifnet(weights)
    np.testing.assert_allclose(depth, complete_scene(model, rgb, camera).depth, rtol=1e-5)
    assert player.stop() == 0

    publisher = ros_node.matched_publisher(Image, IMAGE_TOPIC, RELIABLE)
    broken = image_conversions.rgb_to_image_msg(rgb, depth_msg.header.stamp, "cam")
    broken.data = broken.data[:100]
    publisher.publish(broken)
    log = node.wait_for_log("dropped an image")
    assert "dropped an image: data length" in log, log[-2000:]
    assert node.alive() and "Traceback" not in log
