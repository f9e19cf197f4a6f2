"""Ctrl-C with frames queued: both nodes stop their workers and exit cleanly within launch's
5 s escalation time, without tracebacks or aborts (issue 10.4)."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from tf2_msgs.msg import TFMessage

from recon_ros.core.camera import PinholeCamera
from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions
from recon_ros.io.mesh_images import look_at

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
CAMERA = PinholeCamera(fx=120.0, fy=120.0, cx=95.5, cy=71.5, width=192, height=144)
PARAMS = {
    "world_frame": "world",
    "queue_size": 100,
    "image_qos": "reliable",
    "device": "cpu",
    "keyframe_min_translation_m": 0.0,
    "keyframe_min_rotation_deg": 0.0,
}


@pytest.mark.parametrize("name", ["atlas_node", "sufficiency_node"])
def test_ctrl_c_with_frames_queued_exits_cleanly(name, ros_node, start_node):
    from recon_ros.msg import AtlasStatus

    node = start_node(
        name, PARAMS, remaps={"image": "/cam/image", "camera_info": "/cam/camera_info"}
    )
    if name == "atlas_node":
        ready = ros_node.collect(AtlasStatus, "/atlas_node/status", LATCHED)
        ready.wait_for(lambda m, _: True, 90, "atlas_node to come up", [node])
    image_pub = ros_node.node.create_publisher(Image, "/cam/image", RELIABLE)
    info_pub = ros_node.node.create_publisher(CameraInfo, "/cam/camera_info", RELIABLE)
    tf_pub = ros_node.node.create_publisher(TFMessage, "/tf", RELIABLE)
    deadline = time.monotonic() + 60
    while min(image_pub.get_subscription_count(), tf_pub.get_subscription_count()) == 0:
        assert time.monotonic() < deadline and node.alive(), node.log()[-2000:]
        time.sleep(0.05)
    time.sleep(0.5)
    rng = np.random.default_rng(0)
    count = 40
    for i in range(count):
        t = 10.0 + 0.1 * i
        stamp = Time(sec=int(t), nanosec=round((t % 1) * 1e9))
        T = look_at([0.05 * i, -1.0, 1.2], [0.05 * i, 1.0, 1.0])
        tf_pub.publish(
            TFMessage(
                transforms=[
                    transform_conversions.matrix_to_transform_stamped(T, stamp, "world", "cam")
                ]
            )
        )
        info_pub.publish(camera_info_conversions.camera_info_msg(CAMERA, stamp, "cam"))
        rgb = rng.integers(0, 256, (CAMERA.height, CAMERA.width, 3), dtype=np.uint8)
        image_pub.publish(image_conversions.rgb_to_image_msg(rgb, stamp, "cam"))
    time.sleep(1.5)  # the node is busy with the queue
    assert node.alive(), node.log()[-3000:]
    started = time.monotonic()
    node.process.send_signal(signal.SIGINT)
    code = node.process.wait(10)
    took = time.monotonic() - started
    log = node.log()
    assert code == 0, f"exit {code} after {took:.1f} s\n{log[-3000:]}"
    assert took < 5.0, f"{took:.1f} s to stop\n{log[-2000:]}"
    bad_lines = (
        "Traceback",
        "terminate called",
        "RCLError",
        "internal_error",
        "context is invalid",  # a publish after the context went
        "never retrieved",
    )
    for bad in bad_lines:
        assert bad not in log, f"{bad} in the log:\n{log[-3000:]}"
