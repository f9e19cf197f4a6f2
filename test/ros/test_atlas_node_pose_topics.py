"""atlas_node with poses from a topic instead of TF: nav_msgs/Odometry of the robot base (TF gives
the camera's mounting), or geometry_msgs/PoseStamped of the camera itself."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recon_ros.msg import AtlasStatus
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.geometry import look_at_pose, matrix_to_quaternion
from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
CAMERA = PinholeCamera(fx=80.0, fy=80.0, cx=63.5, cy=47.5, width=128, height=96)
NODE = {
    "world_frame": "world",
    "tf_timeout_s": 0.5,
    "queue_size": 100,
    "log_throttle_s": 0.0,
    "device": "cpu",
    "voxel_size_m": 0.08,
    "window_dims": [32, 32, 32],
    "chunk_size": 8,
    "keyframe_min_translation_m": 0.0,
    "keyframe_min_rotation_deg": 0.0,
    "cnn_period_s": 0.5,
    "publish_period_s": 0.2,
}
# camera optical frame on the robot: 0.2 m forward, 1 m up, looking along the base's x axis
T_BASE_CAM = np.array(
    [[0.0, 0.0, 1.0, 0.2], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 1.0], [0, 0, 0, 1]]
)


def stamp(seconds: float) -> Time:
    return Time(sec=int(seconds), nanosec=round((seconds % 1) * 1e9))


def fill_pose(pose, T):
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in T[:3, 3])
    q = matrix_to_quaternion(T[:3, :3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (
        float(v) for v in q
    )


def wait_subscribed(publishers, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while min(p.get_subscription_count() for p in publishers) == 0:
        assert time.monotonic() < deadline, "atlas_node did not subscribe"
        time.sleep(0.05)
    time.sleep(0.5)


@pytest.mark.parametrize("source", ["odometry", "pose"])
def test_poses_from_a_topic(source, ros_node, start_node):
    atlas = start_node("atlas_node", {**NODE, "pose_source": source, "camera_frame": "cam"})
    status = ros_node.collect(AtlasStatus, "/atlas_node/status", LATCHED)
    status.wait_for(lambda m, _: True, 90, "atlas_node to come up", [atlas])
    node = ros_node.node
    image_pub = node.create_publisher(Image, "/image", RELIABLE)
    info_pub = node.create_publisher(CameraInfo, "/camera_info", RELIABLE)
    tf_static_pub = node.create_publisher(TFMessage, "/tf_static", LATCHED)
    pose_pub = node.create_publisher(
        Odometry if source == "odometry" else PoseStamped, f"/{source}", RELIABLE
    )
    wait_subscribed([image_pub, info_pub, pose_pub])
    if source == "odometry":
        tf_static_pub.publish(
            TFMessage(
                transforms=[
                    transform_conversions.matrix_to_transform_stamped(
                        T_BASE_CAM, stamp(0), "base_link", "cam"
                    )
                ]
            )
        )
    info_pub.publish(camera_info_conversions.camera_info_msg(CAMERA, stamp(10.0), "cam"))
    rgb = np.random.default_rng(2).integers(
        0, 256, (CAMERA.height, CAMERA.width, 3), dtype=np.uint8
    )

    frames = 4
    for i in range(frames + 1):  # poses bracket every image stamp
        t = 10.0 + i
        T_world_cam = look_at_pose([0.3 * i, -1.0, 1.0], [0.3 * i + 1.0, 1.0, 0.8])
        if source == "odometry":
            msg = Odometry()
            msg.header.frame_id, msg.child_frame_id = "world", "base_link"
            fill_pose(msg.pose.pose, T_world_cam @ np.linalg.inv(T_BASE_CAM))
        else:
            msg = PoseStamped()
            msg.header.frame_id = "world"
            fill_pose(msg.pose, T_world_cam)
        msg.header.stamp = stamp(t)
        pose_pub.publish(msg)
    bad = PoseStamped() if source == "pose" else Odometry()
    bad.header.frame_id, bad.header.stamp = "world", stamp(20.0)
    target = bad.pose if source == "pose" else bad.pose.pose
    target.position.x, target.orientation.w = math.nan, 1.0
    pose_pub.publish(bad)
    time.sleep(0.5)
    for i in range(frames):
        image_pub.publish(image_conversions.rgb_to_image_msg(rgb, stamp(10.5 + i), "cam"))
    # From colour alone the first keyframe waits as a stereo partner; the others are mapped.
    final = status.wait_for(
        lambda m, _: m.frames_integrated == frames - 1 and m.frames_not_keyframes == 1,
        60,
        f"{frames - 1} frames integrated",
        [atlas],
    )
    assert final.frames_dropped == 0
    assert f"ignored a message on '/{source}'" in atlas.log() and "not finite" in atlas.log()


def test_compressed_image_transport(ros_node, start_node):
    """image_transport 'compressed': JPEG frames on image/compressed are decoded and integrated;
    a corrupt one is dropped as bad_image with the cause logged."""
    atlas = start_node(
        "atlas_node",
        {**NODE, "pose_source": "pose", "camera_frame": "cam", "image_transport": "compressed"},
        remaps={"image/compressed": "/camera/image_raw/compressed"},
    )
    status = ros_node.collect(AtlasStatus, "/atlas_node/status", LATCHED)
    status.wait_for(lambda m, _: True, 90, "atlas_node to come up", [atlas])
    node = ros_node.node
    image_pub = node.create_publisher(CompressedImage, "/camera/image_raw/compressed", RELIABLE)
    info_pub = node.create_publisher(CameraInfo, "/camera_info", RELIABLE)
    pose_pub = node.create_publisher(PoseStamped, "/pose", RELIABLE)
    wait_subscribed([image_pub, info_pub, pose_pub])
    info_pub.publish(camera_info_conversions.camera_info_msg(CAMERA, stamp(10.0), "cam"))
    for i in range(4):
        msg = PoseStamped()
        msg.header.frame_id, msg.header.stamp = "world", stamp(10.0 + i)
        fill_pose(msg.pose, look_at_pose([0.3 * i, -1.0, 1.0], [0.3 * i + 1.0, 1.0, 0.8]))
        pose_pub.publish(msg)
        time.sleep(0.02)
    time.sleep(0.5)
    rgb = np.random.default_rng(3).integers(
        0, 256, (CAMERA.height, CAMERA.width, 3), dtype=np.uint8
    )
    for i in range(3):
        image_pub.publish(
            image_conversions.rgb_to_compressed_msg(rgb, stamp(10.5 + i), "cam", "jpeg")
        )
    corrupt = image_conversions.rgb_to_compressed_msg(rgb, stamp(11.2), "cam", "jpeg")
    corrupt.data = corrupt.data[:40]
    image_pub.publish(corrupt)
    final = status.wait_for(
        lambda m, _: (
            m.frames_received == 4
            and m.frames_integrated + m.frames_not_keyframes + m.frames_dropped == 4
        ),
        60,
        "four compressed frames handled",
        [atlas],
    )
    assert final.frames_integrated == 2 and final.frames_not_keyframes == 1  # the first waits
    assert {d.reason: d.count for d in final.drops}["bad_image"] == 1
    # the status may go out before the worker's warning reaches the log file
    assert "cannot decode compressed image" in atlas.wait_for_log("cannot decode compressed image")
