"""rig_node: a room watched by a few fixed cameras, its occupancy and the class of what occupies it
(the Everted U-Net, seed 002). No moving camera: the model maps the rig's views to an
80 x 96 x 64 grid, placed in ``room_frame`` by ``grid_corner`` and ``voxel_size_m``.

Subscribes to the ``image_topics`` (sensor_msgs/Image, one per camera, in the rig's order). A
model that lifts along the rays (``lift="rays"``, the default training) also reads the rig's
calibration: each camera's CameraInfo (``camera_info_topics``, by default each image topic's
sibling ``camera_info``) and its optical frame's pose in ``room_frame`` from ``/tf_static`` (or
``/tf``); until both are known for every camera it waits and says so.
At most ``rate_hz`` times a second, once every camera has sent an image no older than
``max_image_age_s`` than the newest and one of them is new, it publishes (transient local, for
RViz started later):

- ``~/occupied`` (sensor_msgs/PointCloud2 in ``room_frame``: x y z rgb label confidence): the
  occupied voxels' centres, labelled with the project's class ids (``IGNORE_LABEL`` 255:
  occupied, no class), confidence the occupancy probability;
- ``~/mesh`` (visualization_msgs/Marker TRIANGLE_LIST): the occupied voxels' surface coloured by
  class.

Images that cannot be decoded are dropped with a throttled warning; the camera's previous image
stays in use. The algorithm is ``recon_ros.everted.infer`` (no ROS); this module converts the
messages. Run: ``ros2 run recon_ros rig_node`` or ``ros2 launch recon_ros rig.launch.py``.
"""

from __future__ import annotations

import threading

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from recon_ros.core.classes import palette
from recon_ros.io import (
    camera_info_conversions,
    image_conversions,
    mesh_conversions,
    pointcloud_conversions,
)
from recon_ros.io.tf_buffer import TransformBuffer, TransformError
from recon_ros.io.transform_conversions import stamp_to_ns
from recon_ros.parameters import RIG_PARAMS
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
from recon_ros.weights import default_everted_weights, given_or_shipped


class RigNode(Node):
    def __init__(self, **kwargs):
        super().__init__("rig_node", **kwargs)
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from tf2_msgs.msg import TFMessage
        from visualization_msgs.msg import Marker

        from recon_ros.everted.train import load_everted

        params = declare_table(self, RIG_PARAMS)
        self._topics = [t for t in params["image_topics"] if t]
        if not self._topics:
            raise ValueError("image_topics is empty: name the rig's image topics")
        if len(set(self._topics)) != len(self._topics):
            raise ValueError(f"image_topics names a topic twice: {self._topics}")
        corner = list(params["grid_corner"])
        if len(corner) != 3:
            raise ValueError(f"grid_corner: expected [x, y, z], got {corner}")
        self._corner = [float(c) for c in corner]
        weights = given_or_shipped(params["weights_path"], default_everted_weights)
        self._model, metadata = load_everted(weights, params["device"])
        if not metadata.get("trained", False):
            self.get_logger().warning(f"{weights} holds untrained weights: its rooms are noise")
        validation = metadata.get("extra", {}).get("validation", {})
        chosen = (("occupancy_threshold", "threshold"), ("mask_threshold", "mask_threshold"))
        for name, key in chosen:
            if not params[name]:  # 0: the checkpoint's, as chosen on validation
                params[name] = float(validation.get(key, 0.5))
        self._params = params
        self._log = ThrottledLogger(self.get_logger(), params["log_throttle_s"])
        self._lock = threading.Lock()
        self._latest: dict[int, object] = {}  # camera index -> newest Image message
        self._used: dict[int, int] = {}  # camera index -> stamp (ns) of the image last used
        qos = RELIABLE_STREAM_QOS if params["image_qos"] == "reliable" else qos_profile_sensor_data
        inputs = MutuallyExclusiveCallbackGroup()
        for index, topic in enumerate(self._topics):
            self.create_subscription(
                Image, topic, lambda msg, i=index: self._on_image(i, msg), qos,
                callback_group=inputs,
            )  # fmt: skip
        self._rays = self._model.config.lift == "rays"
        self._camera_info: dict[int, object] = {}
        self._tf = TransformBuffer()
        if self._rays:
            info_topics = [t for t in params["camera_info_topics"] if t] or [
                topic.rsplit("/", 1)[0] + "/camera_info" for topic in self._topics
            ]
            if len(info_topics) != len(self._topics):
                raise ValueError(
                    f"camera_info_topics: expected one per image topic ({len(self._topics)}), "
                    f"got {info_topics}"
                )
            for index, topic in enumerate(info_topics):
                self.create_subscription(
                    CameraInfo, topic, lambda msg, i=index: self._on_camera_info(i, msg), qos,
                    callback_group=inputs,
                )  # fmt: skip
            self.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS, callback_group=inputs)
            self.create_subscription(
                TFMessage, "/tf_static", self._on_tf_static, TF_STATIC_QOS, callback_group=inputs
            )
        self._cloud_pub = self.create_publisher(PointCloud2, "~/occupied", LATCHED_QOS)
        self._mesh_pub = self.create_publisher(Marker, "~/mesh", LATCHED_QOS)
        self.predictions = 0
        self.create_timer(
            1.0 / params["rate_hz"], self._on_timer, callback_group=MutuallyExclusiveCallbackGroup()
        )
        self.get_logger().info(
            f"ready: {weights.name}, {len(self._topics)} cameras, grid from {self._corner} at "
            f"{params['voxel_size_m']:g} m in '{params['room_frame']}', occupied from "
            f"{params['occupancy_threshold']:g}"
        )

    def _on_image(self, index: int, msg) -> None:
        with self._lock:  # only hand the message on: decoding happens in the timer
            self._latest[index] = msg

    def _on_camera_info(self, index: int, msg) -> None:
        with self._lock:
            self._camera_info[index] = msg

    def _on_tf(self, msg) -> None:
        store_tf_message(self._tf, msg, False, self._log)

    def _on_tf_static(self, msg) -> None:
        store_tf_message(self._tf, msg, True, self._log)

    def _calibration(self, latest: dict):
        """(one ``RigCamera`` per camera, None) or (None, why not): each camera's newest
        CameraInfo and its image frame's latest pose in ``room_frame``."""
        from recon_ros.everted.infer import RigCamera

        room = self._params["room_frame"]
        cameras = []
        with self._lock:
            infos = dict(self._camera_info)
        for index, topic in enumerate(self._topics):
            info = infos.get(index)
            if info is None:
                return None, f"waiting for the CameraInfo of '{topic}'"
            try:
                K = camera_info_conversions.camera_info_to_camera(info).K
            except ValueError as error:
                return None, f"the CameraInfo of '{topic}' is unusable: {error}"
            frame = latest[index].header.frame_id
            try:  # a fixed rig: its latest pose is its pose
                T_room_cam = self._tf.lookup(room, frame, None)
            except TransformError as error:
                return None, f"no pose of '{frame}' ('{topic}') in '{room}' from TF: {error}"
            cameras.append(RigCamera(K, T_room_cam))
        return cameras, None

    def _ready_images(self):
        """The newest message of every camera, or None (and why) while some camera has none,
        one is stale, or none is new since the last prediction."""
        with self._lock:
            latest = dict(self._latest)
        missing = [self._topics[i] for i in range(len(self._topics)) if i not in latest]
        if missing:
            return None, f"waiting for images on {missing}"
        stamps = {i: stamp_to_ns(msg.header.stamp) for i, msg in latest.items()}
        max_age = self._params["max_image_age_s"]
        newest = max(stamps.values())
        stale = [
            self._topics[i] for i, s in stamps.items() if max_age and newest - s > max_age * 1e9
        ]
        if stale:
            return None, f"images on {stale} are over max_image_age_s = {max_age:g} s older"
        if all(self._used.get(i) == s for i, s in stamps.items()):
            return None, None  # nothing new: not worth a line
        return latest, None

    @stops_with_context
    def _on_timer(self) -> None:
        from recon_ros.everted.infer import predict_room

        latest, why = self._ready_images()
        if latest is None:
            if why:
                self._log.warn("waiting", f"no prediction yet: {why}")
            return
        images = []
        for index in range(len(self._topics)):
            msg = latest[index]
            try:
                images.append(image_conversions.image_to_rgb(msg, self._params["max_image_pixels"]))
            except ValueError as error:
                with self._lock:  # drop it: the camera's next image is waited for
                    if self._latest.get(index) is msg:
                        del self._latest[index]
                self._log.warn(
                    f"bad_image_{index}",
                    f"dropped an image on '{self._topics[index]}': {error}",
                )
                return
        cameras = None
        if self._rays:
            cameras, why = self._calibration(latest)
            if cameras is None:
                self._log.warn("calibration", f"no prediction yet: {why}")
                return
        result = predict_room(
            self._model,
            images,
            self._corner,
            self._params["voxel_size_m"],
            self._params["occupancy_threshold"],
            self._params["mask_threshold"],
            cameras,
        )
        self._used = {i: stamp_to_ns(msg.header.stamp) for i, msg in latest.items()}
        stamp = max((msg.header.stamp for msg in latest.values()), key=stamp_to_ns)
        frame = self._params["room_frame"]

        points = pointcloud_conversions.semantic_points_to_array(
            result.centres, palette()[result.labels], result.labels, result.confidence
        )
        self._cloud_pub.publish(pointcloud_conversions.array_to_pointcloud2(points, stamp, frame))
        self._mesh_pub.publish(
            mesh_conversions.mesh_to_marker(result.mesh, stamp, frame, ns="rig_mesh")
        )
        self.predictions += 1


def main(args=None) -> int:
    return run_node(RigNode, "rig_node", num_threads=3, args=args)
