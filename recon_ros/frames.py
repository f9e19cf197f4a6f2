"""From an image message, its CameraInfo and a pose lookup to a posed frame for the core, or to the
named reason it cannot be used. ROS-free: atlas_node and the offline bag replay both call it, so a
bag gives the same drops live and offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recon_ros import conversions
from recon_ros.core.camera import PinholeCamera
from recon_ros.tf_buffer import TransformError

# Reasons an image is dropped; the status message and the replay report count under these names.
DROP_REASONS = (
    "unsupported_encoding",
    "bad_image",
    "no_camera_info",
    "bad_camera_info",
    "camera_info_mismatch",
    "no_pose",
    "bad_pose",
    "queue_full",
    "rejected",
)


class FrameDropped(Exception):
    """An image that cannot be integrated; ``reason`` is one of ``DROP_REASONS``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason '{reason}'")
        self.reason = reason
        self.detail = detail


@dataclass
class PosedFrame:
    """One decoded image with its camera and pose, ready for the core."""

    stamp_ns: int
    frame_id: str
    rgb: np.ndarray  # (H, W, 3) uint8
    camera: PinholeCamera
    T_world_cam: np.ndarray  # (4, 4)
    header: object  # the image's std_msgs/Header, for stamping outputs


def describe(msg) -> str:
    """Where an image came from, for log lines."""
    seconds = conversions.stamp_to_ns(msg.header.stamp) / 1e9
    return f"image stamp {seconds:.3f}, frame '{msg.header.frame_id}'"


def decode_rgb(msg) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an Image or CompressedImage message, or FrameDropped."""
    if hasattr(msg, "format"):  # sensor_msgs/CompressedImage
        try:
            return conversions.compressed_to_rgb(msg)
        except ValueError as error:
            raise FrameDropped("bad_image", f"{describe(msg)}: {error}") from error
    encoding = str(msg.encoding)
    if encoding not in conversions.COLOR_ENCODINGS:
        raise FrameDropped(
            "unsupported_encoding",
            f"{describe(msg)}: encoding '{encoding}' is not supported "
            f"(supported: {', '.join(conversions.COLOR_ENCODINGS)})",
        )
    try:
        return conversions.image_to_rgb(msg)
    except ValueError as error:
        raise FrameDropped("bad_image", f"{describe(msg)}: {error}") from error


def camera_for_image(
    info, width: int, height: int, where: str, missing_hint: str = ""
) -> PinholeCamera:
    """The pinhole camera of ``info`` at the image's size, or FrameDropped."""
    if info is None:
        raise FrameDropped("no_camera_info", f"{where}: no CameraInfo received yet{missing_hint}")
    try:
        camera = conversions.camera_info_to_camera(info)
    except ValueError as error:
        raise FrameDropped("bad_camera_info", f"{where}: {error}") from error
    if (camera.width, camera.height) != (width, height):
        sx, sy = width / camera.width, height / camera.height
        if abs(sx - sy) > 1e-6:
            raise FrameDropped(
                "camera_info_mismatch",
                f"{where}: image is {width}x{height} but CameraInfo is "
                f"{camera.width}x{camera.height}, another aspect ratio",
            )
        camera = camera.resized(width, height)
    return camera


def posed_frame(
    msg,
    info,
    lookup_pose: Callable[[str, int], np.ndarray],
    camera_frame: str = "",
    missing_info_hint: str = "",
) -> PosedFrame:
    """Decode ``msg`` with CameraInfo ``info`` and look up its pose with
    ``lookup_pose(frame_id, stamp_ns) -> T_world_cam`` (which raises TransformError).

    Raises FrameDropped naming the reason when the image cannot be used.
    """
    where = describe(msg)
    rgb = decode_rgb(msg)
    frame_id = (camera_frame or msg.header.frame_id).lstrip("/")
    if not frame_id:
        raise FrameDropped(
            "bad_image", f"{where}: empty header.frame_id; set the camera frame explicitly"
        )
    camera = camera_for_image(info, rgb.shape[1], rgb.shape[0], where, missing_info_hint)
    stamp_ns = conversions.stamp_to_ns(msg.header.stamp)
    try:
        T_world_cam = lookup_pose(frame_id, stamp_ns)
    except TransformError as error:
        raise FrameDropped("no_pose", f"{where}: no pose of '{frame_id}': {error}") from error
    if not np.all(np.isfinite(T_world_cam)):
        raise FrameDropped("bad_pose", f"{where}: the pose of '{frame_id}' is not finite")
    return PosedFrame(stamp_ns, frame_id, rgb, camera, T_world_cam, msg.header)
