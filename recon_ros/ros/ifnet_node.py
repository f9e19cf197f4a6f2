"""ifnet_node: the scene in front of the camera from one image alone (seed 004: a depth U-Net, the
depth voxelised differentiably, an IF-Net completing the occupancy). No poses and no partner
frames: it gives a robot a shape of what is ahead from its first image on.

Subscribes to ``image`` (sensor_msgs/Image) and ``camera_info``. At most ``rate_hz`` times a
second it takes the newest image (older ones are skipped, never queued) and publishes, in the
image's optical frame and with its stamp:

- ``~/depth`` (sensor_msgs/Image 32FC1, metres) at the network's input size, with
  ``~/depth/camera_info`` (the image's intrinsics scaled to that size);
- ``~/mesh`` (visualization_msgs/Marker TRIANGLE_LIST, transient local): the completed scene's
  surface in the grid in front of the camera.

With a model trained with the floor prior (``ifnet.floor_prior``), the camera's height above
``floor_frame`` and the direction of up come from TF (``/tf``, ``/tf_static``) at the image's
stamp (or the latest transform); without them the image is completed without the prior, with a
throttled warning saying why.

Images that cannot be decoded, and images before any CameraInfo, are dropped with a throttled
warning. The algorithm is ``recon_ros.ifnet.infer`` (no ROS); this module converts the messages.
Run: ``ros2 run recon_ros ifnet_node --ros-args -r image:=/camera/image_raw -r
camera_info:=/camera/camera_info``.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from recon_ros.io import (
    camera_info_conversions,
    image_conversions,
    mesh_conversions,
    transform_conversions,
)
from recon_ros.io.tf_buffer import ExtrapolationError, TransformBuffer, TransformError
from recon_ros.parameters import IFNET_PARAMS
from recon_ros.ros.common import (
    LATCHED_QOS,
    RELIABLE_STREAM_QOS,
    TF_QOS,
    TF_STATIC_QOS,
    run_node,
    stops_with_context,
)
from recon_ros.ros.declare_parameters import declare_table
from recon_ros.ros.posed_input import ThrottledLogger, store_tf_message
from recon_ros.weights import default_ifnet_weights, given_or_shipped


class IFNetNode(Node):
    def __init__(self, **kwargs):
        super().__init__("ifnet_node", **kwargs)
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import Marker

        from recon_ros.ifnet.train import load_ifnet

        params = declare_table(self, IFNET_PARAMS)
        weights = given_or_shipped(params["weights_path"], default_ifnet_weights)
        self._model, metadata = load_ifnet(weights, params["device"])
        if not metadata.get("trained", False):
            self.get_logger().warning(f"{weights} holds untrained weights: its scenes are noise")
        self._params = params
        self._log = ThrottledLogger(self.get_logger(), params["log_throttle_s"])
        self._lock = threading.Lock()
        self._image = None  # the newest Image not yet completed
        self._camera_info = None
        qos = RELIABLE_STREAM_QOS if params["image_qos"] == "reliable" else qos_profile_sensor_data
        inputs = MutuallyExclusiveCallbackGroup()
        self.create_subscription(Image, "image", self._on_image, qos, callback_group=inputs)
        self.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info, qos, callback_group=inputs
        )
        self._floor_frame = params["floor_frame"].lstrip("/")
        self._tf = TransformBuffer(cache_time_s=params["tf_cache_time_s"])
        if self._model.config.floor_input and self._floor_frame:
            self.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS, callback_group=inputs)
            self.create_subscription(
                TFMessage, "/tf_static", self._on_tf_static, TF_STATIC_QOS, callback_group=inputs
            )
        self._depth_pub = self.create_publisher(Image, "~/depth", 10)
        self._depth_info_pub = self.create_publisher(CameraInfo, "~/depth/camera_info", 10)
        self._mesh_pub = self.create_publisher(Marker, "~/mesh", LATCHED_QOS)
        self.create_timer(
            1.0 / params["rate_hz"], self._on_timer, callback_group=MutuallyExclusiveCallbackGroup()
        )
        width, height = self._model.config.image_size
        self.get_logger().info(f"ready: {weights.name}, images completed at {width}x{height}")

    def _on_image(self, msg) -> None:
        with self._lock:  # only hand it on; the timer takes the newest
            self._image = msg

    def _on_camera_info(self, msg) -> None:
        with self._lock:
            self._camera_info = msg

    def _on_tf(self, msg) -> None:
        store_tf_message(self._tf, msg, False, self._log)

    def _on_tf_static(self, msg) -> None:
        store_tf_message(self._tf, msg, True, self._log)

    def _floor_prior(self, header) -> tuple[np.ndarray | None, float | None]:
        """(up in the camera frame, the camera's height above the floor) from TF, or (None,
        None) with a throttled warning when the transform is missing."""
        if not (self._model.config.floor_input and self._floor_frame):
            return None, None
        stamp_ns = transform_conversions.stamp_to_ns(header.stamp)
        deadline = time.monotonic() + self._params["tf_timeout_s"]
        try:
            while True:
                try:
                    T = self._tf.lookup(self._floor_frame, header.frame_id, stamp_ns)
                    break
                except ExtrapolationError as error:
                    # the transform at the image's stamp may still be on its way: wait a little,
                    # then take the latest one
                    if not error.future or time.monotonic() >= deadline:
                        T = self._tf.lookup(self._floor_frame, header.frame_id, None)
                        break
                    time.sleep(0.01)
        except TransformError as error:
            self._log.warn(
                "no_floor",
                f"completed an image without the floor prior: no transform '{self._floor_frame}'"
                f" -> '{header.frame_id}' ({error}); set floor_frame to a frame on the floor "
                "with z up, or '' to complete without it",
            )
            return None, None
        return T[:3, :3].T @ np.array([0.0, 0.0, 1.0]), float(T[2, 3])

    @stops_with_context
    def _on_timer(self) -> None:
        from recon_ros.ifnet.infer import complete_scene

        with self._lock:
            msg, info, self._image = self._image, self._camera_info, None
        if msg is None:
            return
        if info is None:
            self._log.warn("no_camera_info", "dropped an image: no CameraInfo received yet")
            return
        try:
            rgb = image_conversions.image_to_rgb(msg, self._params["max_image_pixels"])
            camera = camera_info_conversions.camera_info_to_camera(info)
            up, height = self._floor_prior(msg.header)
            threshold = self._params["occupancy_threshold"]
            result = complete_scene(self._model, rgb, camera, threshold, up, height)
        except ValueError as error:
            self._log.warn("bad_image", f"dropped an image: {error}")
            return
        header = msg.header
        depth = image_conversions.rgb_to_image_msg(
            result.depth, header.stamp, header.frame_id, "32FC1"
        )
        self._depth_pub.publish(depth)
        self._depth_info_pub.publish(
            camera_info_conversions.camera_info_msg(result.camera, header.stamp, header.frame_id)
        )
        self._mesh_pub.publish(
            mesh_conversions.mesh_to_marker(
                result.mesh, header.stamp, header.frame_id, ns="ifnet_mesh"
            )
        )


def main(args=None) -> int:
    return run_node(IFNetNode, "ifnet_node", num_threads=3, args=args)
