"""object_node: the whole shape of one object from a few views of it, on request (3D-R2N2).

Service ``~/reconstruct_object`` (recon_ros/ReconstructObject): 1 to ``max_views`` images of one
object, optional masks (one per view), the object's size and a frame in; a TRIANGLE_LIST Marker
mesh, the 32^3 occupancy probabilities and a message out. The last mesh also goes out on
``~/mesh`` (visualization_msgs/Marker, transient local, for RViz). A bad request (no view, an
undecodable image, masks that do not match) is answered with ``success`` false and the reason,
and logged; the node keeps serving.

The algorithm is ``recon_ros.r2n2.reconstruct`` (no ROS); this module converts the messages.
Run: ``ros2 run recon_ros object_node`` (parameters in config/atlas.yaml, section object_node).
"""

from __future__ import annotations

import array
import threading

import numpy as np
from rclpy.node import Node

from recon_ros.io import image_conversions, mesh_conversions
from recon_ros.parameters import OBJECT_PARAMS
from recon_ros.ros.common import LATCHED_QOS, run_node
from recon_ros.ros.declare_parameters import declare_table
from recon_ros.ros.posed_input import ThrottledLogger
from recon_ros.weights import default_r2n2_weights, given_or_shipped

LOG_THROTTLE_S = 5.0


class ObjectNode(Node):
    def __init__(self, **kwargs):
        super().__init__("object_node", **kwargs)
        from visualization_msgs.msg import Marker

        from recon_ros.r2n2.train import load_r2n2
        from recon_ros.srv import ReconstructObject

        params = declare_table(self, OBJECT_PARAMS)
        weights = given_or_shipped(params["weights_path"], default_r2n2_weights)
        self._model, metadata = load_r2n2(weights, params["device"])
        if not metadata.get("trained", False):
            self.get_logger().warning(f"{weights} holds untrained weights: its shapes are noise")
        self._threshold = params["threshold"]
        self._max_views = params["max_views"]
        self._max_pixels = params["max_image_pixels"]
        self._log = ThrottledLogger(self.get_logger(), LOG_THROTTLE_S)
        self._model_lock = threading.Lock()  # one request at a time through the network
        self._mesh_pub = self.create_publisher(Marker, "~/mesh", LATCHED_QOS)
        self._service = self.create_service(
            ReconstructObject, "~/reconstruct_object", self._on_request
        )
        self.get_logger().info(
            f"ready: {weights.name}, threshold {self._threshold:g}, up to {self._max_views} views"
        )

    def _decode(self, request) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """The request's views as RGB arrays and its masks as bool arrays (None without masks);
        raises ValueError saying what is wrong."""
        count = len(request.views)
        if count == 0:
            raise ValueError("no views: send 1 or more images of the object")
        if count > self._max_views:
            raise ValueError(f"{count} views, more than max_views = {self._max_views}")
        if request.masks and len(request.masks) != count:
            raise ValueError(f"{len(request.masks)} masks for {count} views (none, or one each)")
        images = []
        for index, msg in enumerate(request.views):
            try:
                images.append(image_conversions.image_to_rgb(msg, self._max_pixels))
            except ValueError as error:
                raise ValueError(f"view {index}: {error}") from None
        if not request.masks:
            return images, None
        masks = []
        for index, msg in enumerate(request.masks):
            try:
                pixels, _ = image_conversions.image_to_array(msg, self._max_pixels)
            except ValueError as error:
                raise ValueError(f"mask {index}: {error}") from None
            if pixels.ndim != 2:
                raise ValueError(f"mask {index}: expected one channel (mono8), got {msg.encoding}")
            if pixels.shape != images[index].shape[:2]:
                raise ValueError(
                    f"mask {index}: {pixels.shape[1]}x{pixels.shape[0]}, its view is "
                    f"{images[index].shape[1]}x{images[index].shape[0]}"
                )
            if not pixels.any():
                raise ValueError(f"mask {index}: no pixel on the object")
            masks.append(pixels != 0)
        return images, masks

    def _on_request(self, request, response):
        from recon_ros.r2n2.reconstruct import reconstruct_object

        size_m = float(request.size_m) if request.size_m > 0 else 1.0
        frame_id = request.frame_id or "object"
        try:
            images, masks = self._decode(request)
        except ValueError as error:
            response.success = False
            response.message = f"request refused: {error}"
            self._log.warn("bad_request", f"reconstruct_object: {response.message}")
            return response
        with self._model_lock:
            result = reconstruct_object(self._model, images, masks, self._threshold, size_m)
        stamp = self.get_clock().now().to_msg()
        marker = mesh_conversions.mesh_to_marker(result.mesh, stamp, frame_id, ns="object_mesh")
        response.mesh = marker
        response.grid_size = int(result.occupancy.shape[0])
        occupancy = array.array("f")
        occupancy.frombytes(result.occupancy.astype(np.float32).tobytes())
        response.occupancy = occupancy
        occupied = int((result.occupancy >= self._threshold).sum())
        response.success = True
        response.message = (
            f"{result.views} views: {occupied} of {result.occupancy.size} voxels occupied, "
            f"{result.mesh.num_faces} triangles in a {size_m:g} m cube in '{frame_id}'"
        )
        self._mesh_pub.publish(marker)
        self.get_logger().info(f"reconstruct_object: {response.message}")
        return response


def main(args=None) -> int:
    return run_node(ObjectNode, "object_node", num_threads=2, args=args)
