"""atlas_node over DDS with bad input: each bad message gives a logged reason, a counted drop and no
crash, and the node keeps working on the next good frame."""

from __future__ import annotations

import array
import math
import time

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recon_ros.msg import AtlasStatus
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage

from recon_ros.core.camera import PinholeCamera
from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions
from recon_ros.io.mesh_images import look_at

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
SMALL_NODE = {
    "world_frame": "world",
    # long enough that the reset below finds the burst still queued behind its first image
    "tf_timeout_s": 2.0,
    "queue_size": 100,
    "image_qos": "reliable",  # every image of a burst reaches the queue
    "log_throttle_s": 0.0,  # every warning, so the log can be checked for each cause
    "device": "cpu",
    "voxel_size_m": 0.08,
    "window_dims": [32, 32, 32],
    "chunk_size": 8,
    "keyframe_min_translation_m": 0.0,
    "keyframe_min_rotation_deg": 0.0,
    "cnn_period_s": 0.5,
    "publish_period_s": 0.2,
}
CAMERA = PinholeCamera(fx=80.0, fy=80.0, cx=63.5, cy=47.5, width=128, height=96)


def stamp(seconds: float) -> Time:
    return Time(sec=int(seconds), nanosec=round((seconds % 1) * 1e9))


def drops(status: AtlasStatus) -> dict[str, int]:
    return {d.reason: d.count for d in status.drops}


def test_bad_input_is_dropped_with_a_logged_reason(ros_node, start_node):
    atlas = start_node(
        "atlas_node", SMALL_NODE, remaps={"image": "/cam/image", "camera_info": "/cam/camera_info"}
    )
    status = ros_node.collect(AtlasStatus, "/atlas_node/status", LATCHED)
    diagnostics = ros_node.collect(DiagnosticArray, "/diagnostics", RELIABLE)
    status.wait_for(lambda m, _: True, 90, "atlas_node to come up", [atlas])
    image_pub = ros_node.node.create_publisher(Image, "/cam/image", RELIABLE)
    info_pub = ros_node.node.create_publisher(CameraInfo, "/cam/camera_info", RELIABLE)
    tf_pub = ros_node.node.create_publisher(TFMessage, "/tf", RELIABLE)
    deadline = time.monotonic() + 20
    while (
        min(
            image_pub.get_subscription_count(),
            info_pub.get_subscription_count(),
            tf_pub.get_subscription_count(),
        )
        == 0
    ):
        assert time.monotonic() < deadline, "atlas_node did not subscribe"
        time.sleep(0.05)
    time.sleep(0.5)

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (CAMERA.height, CAMERA.width, 3), dtype=np.uint8)
    T_world_cam = look_at([-1.0, 0.0, 1.2], [1.0, 0.0, 1.0])

    def expect(reason: str, count: int, what: str):
        status.wait_for(lambda m, _: drops(m).get(reason, 0) >= count, 20, what, [atlas])

    def send_image(t: float, frame="cam", **changes):
        msg = image_conversions.rgb_to_image_msg(rgb, stamp(t), frame)
        for key, value in changes.items():
            setattr(msg, key, value)
        image_pub.publish(msg)

    def send_tf(t: float, T: np.ndarray, child="cam"):
        tf_pub.publish(
            TFMessage(
                transforms=[
                    transform_conversions.matrix_to_transform_stamped(T, stamp(t), "world", child)
                ]
            )
        )

    # an image before any CameraInfo
    send_image(100.0)
    expect("no_camera_info", 1, "no_camera_info")
    # CameraInfo with a zero focal length
    bad_info = camera_info_conversions.camera_info_msg(CAMERA, stamp(100.0), "cam")
    bad_info.k[0] = 0.0
    info_pub.publish(bad_info)
    time.sleep(0.5)
    send_image(100.1)
    expect("bad_camera_info", 1, "bad_camera_info")
    # CameraInfo declaring 4294967292x3221225469 px (the image's aspect ratio, so it would once
    # have been scaled down to a near-zero focal length) is refused by its bounds (issue 9.3)
    huge_info = camera_info_conversions.camera_info_msg(CAMERA, stamp(100.0), "cam")
    huge_info.width, huge_info.height = 4294967292, 3221225469
    info_pub.publish(huge_info)
    time.sleep(0.5)
    send_image(100.15)
    expect("bad_camera_info", 2, "bad_camera_info for an absurd size")
    info_pub.publish(camera_info_conversions.camera_info_msg(CAMERA, stamp(100.0), "cam"))
    time.sleep(0.5)
    # no transform for the camera at all
    send_image(100.2)
    expect("no_pose", 1, "no_pose without TF")
    # a NaN pose on /tf is refused, and the image at that time finds no pose
    nan_pose = T_world_cam.copy()
    nan_pose[0, 3] = math.nan
    send_tf(100.3, nan_pose, child="cam_nan")
    send_image(100.3, frame="cam_nan")
    expect("no_pose", 2, "no_pose after a NaN transform")
    # wrong encoding, zero-size image, data length that disagrees with step x height
    send_image(100.4, encoding="yuv422")
    expect("unsupported_encoding", 1, "unsupported_encoding")
    send_image(100.5, height=0, width=0, step=0, data=array.array("B"))
    send_image(100.6, data=array.array("B", bytes(10)))
    expect("bad_image", 2, "bad_image twice")
    # a header declaring 12288x9216 pixels is refused before any pixel is read (issue 9.1)
    send_image(100.7, height=9216, width=12288, step=3 * 12288, data=array.array("B", bytes(10)))
    expect("bad_image", 3, "bad_image for an oversized image")
    assert atlas.alive()
    # one transform stamped a million seconds ahead of the clock is refused; it must not push
    # the real poses out of the history (issue 9.2)
    send_tf(time.time() + 1e6, T_world_cam)

    # the next good frames are integrated (from colour alone the first keyframe waits as a stereo
    # partner, the second, 0.2 m further on, is mapped)
    moved = T_world_cam.copy()
    moved[1, 3] += 0.2
    for i in range(3):
        send_tf(101.0 + i, T_world_cam)
    for i in range(2):
        send_tf(104.0 + i, moved)
    time.sleep(0.3)
    send_image(101.5)
    send_image(104.5)
    final = status.wait_for(
        lambda m, _: m.frames_integrated >= 1 and m.frames_received == 11,
        60,
        "a good frame integrated",
        [atlas],
    )
    assert final.frames_received == 11
    assert (
        final.frames_integrated + final.frames_not_keyframes + final.frames_dropped
        == final.frames_received
    )
    assert final.header.frame_id == "world"

    # a reset with images still queued counts them under 'reset' (issue 9.4): 12 images whose
    # frame has no transform; the first waits tf_timeout_s (from its arrival) in the worker, so
    # the other 11 are still queued when the reset comes
    for i in range(12):
        send_image(106.0 + 0.01 * i, frame="cam_without_tf")
    status.wait_for(lambda m, _: m.frames_received == 23, 20, "the burst received", [atlas])
    reply = ros_node.call(Trigger, "/atlas_node/reset", Trigger.Request())
    assert reply.success and "queued images discarded" in reply.message
    settled = status.wait_for(
        lambda m, _: (
            m.frames_integrated + m.frames_not_keyframes + m.frames_dropped == 23
            and drops(m).get("reset", 0) > 0
        ),
        30,
        "every image of the burst accounted for, some as 'reset'",
        [atlas],
    )
    burst_no_pose = drops(settled)["no_pose"] - drops(final)["no_pose"]
    assert drops(settled)["reset"] + burst_no_pose == 12

    # the same accounting on /diagnostics, for rqt_robot_monitor and the aggregator (issue 10.6)
    def diagnosed(m, _):
        values = {kv.key: kv.value for kv in m.status[0].values} if m.status else {}
        return values.get("frames_received") == "23" and "atlas_node" in m.status[0].name

    report = diagnostics.wait_for(diagnosed, 20, "diagnostics with the final counts", [atlas])
    values = {kv.key: kv.value for kv in report.status[0].values}
    assert values["dropped_bad_image"] == "3" and int(values["dropped_reset"]) > 0
    assert {"device", "rss_mib", "map_chunks", "window_placement"} <= set(values)

    log = atlas.log()
    for cause in (
        "no CameraInfo received yet on '/cam/camera_info'",
        "focal length must be positive",
        "above 65535 px a side",
        "frame 'cam' does not exist",
        "ignored a transform on /tf",
        "not finite",
        "encoding 'yuv422' is not supported",
        "empty image: 0x0",
        "data length 10 disagrees with step x height",
        "more than max_image_pixels",
        "s after the node's clock and newest image",
    ):
        assert cause in log, f"log lacks '{cause}':\n{log[-3000:]}"
    assert atlas.alive() and "Traceback" not in log
