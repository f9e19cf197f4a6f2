"""From an image message, its CameraInfo and a pose lookup to a posed frame for the core, or to the
named reason it cannot be used. ROS-free: atlas_node and the offline bag replay both call it, so a
bag gives the same drops live and offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recon_ros.core.camera import PinholeCamera
from recon_ros.io import camera_info_conversions, image_conversions, transform_conversions
from recon_ros.io.tf_buffer import TransformError

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
    "no_depth",
    "bad_depth",
    "internal_error",
    "reset",
)
#: Smallest image side (pixels) worth mapping from.
MIN_IMAGE_SIDE = 16
#: A depth image pairs with the colour image whose stamp is at most this far from its own.
DEPTH_STAMP_TOLERANCE_NS = 20_000_000


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
    depth: np.ndarray | None = None  # (Hd, Wd) float32 metres, 0 unknown
    depth_camera: PinholeCamera | None = None
    T_cam_depth: np.ndarray | None = None  # depth optical frame in the colour optical frame


def describe(msg) -> str:
    """Where an image came from, for log lines."""
    seconds = transform_conversions.stamp_to_ns(msg.header.stamp) / 1e9
    return f"image stamp {seconds:.3f}, frame '{msg.header.frame_id}'"


def decode_rgb(msg, max_pixels: int = image_conversions.MAX_IMAGE_PIXELS) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of an Image or CompressedImage message, or FrameDropped (images
    declaring more than ``max_pixels`` are refused undecoded, images with a side under
    ``MIN_IMAGE_SIDE`` pixels as too small to map from)."""
    rgb = _decode_rgb(msg, max_pixels)
    height, width = rgb.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise FrameDropped(
            "bad_image",
            f"{describe(msg)}: {width}x{height} pixels is too small to map from (each side at "
            f"least {MIN_IMAGE_SIDE})",
        )
    return rgb


def _decode_rgb(msg, max_pixels: int) -> np.ndarray:
    if hasattr(msg, "format"):  # sensor_msgs/CompressedImage
        try:
            return image_conversions.compressed_to_rgb(msg, max_pixels)
        except ValueError as error:
            raise FrameDropped("bad_image", f"{describe(msg)}: {error}") from error
    encoding = str(msg.encoding)
    if encoding not in image_conversions.COLOR_ENCODINGS:
        raise FrameDropped(
            "unsupported_encoding",
            f"{describe(msg)}: encoding '{encoding}' is not supported "
            f"(supported: {', '.join(image_conversions.COLOR_ENCODINGS)})",
        )
    try:
        return image_conversions.image_to_rgb(msg, max_pixels)
    except ValueError as error:
        raise FrameDropped("bad_image", f"{describe(msg)}: {error}") from error


def camera_for_image(
    info, width: int, height: int, where: str, missing_hint: str = ""
) -> PinholeCamera:
    """The pinhole camera of ``info`` at the image's size, or FrameDropped."""
    if info is None:
        raise FrameDropped("no_camera_info", f"{where}: no CameraInfo received yet{missing_hint}")
    try:
        camera = camera_info_conversions.camera_info_to_camera(info)
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
    max_pixels: int = image_conversions.MAX_IMAGE_PIXELS,
) -> PosedFrame:
    """Decode ``msg`` with CameraInfo ``info`` and look up its pose with
    ``lookup_pose(frame_id, stamp_ns) -> T_world_cam`` (which raises TransformError).

    Raises FrameDropped naming the reason when the image cannot be used.
    """
    where = describe(msg)
    rgb = decode_rgb(msg, max_pixels)
    frame_id = (camera_frame or msg.header.frame_id).lstrip("/")
    if not frame_id:
        raise FrameDropped(
            "bad_image", f"{where}: empty header.frame_id; set the camera frame explicitly"
        )
    camera = camera_for_image(info, rgb.shape[1], rgb.shape[0], where, missing_info_hint)
    stamp_ns = transform_conversions.stamp_to_ns(msg.header.stamp)
    try:
        T_world_cam = lookup_pose(frame_id, stamp_ns)
    except TransformError as error:
        raise FrameDropped("no_pose", f"{where}: no pose of '{frame_id}': {error}") from error
    if not np.all(np.isfinite(T_world_cam)):
        raise FrameDropped("bad_pose", f"{where}: the pose of '{frame_id}' is not finite")
    return PosedFrame(stamp_ns, frame_id, rgb, camera, T_world_cam, msg.header)


def attach_depth(
    frame: PosedFrame,
    msg,
    info,
    lookup_extrinsics: Callable[[str, str, int], np.ndarray],
    max_pixels: int = image_conversions.MAX_IMAGE_PIXELS,
) -> PosedFrame:
    """``frame`` with the depth image ``msg`` (16UC1/mono16 millimetres or 32FC1 metres) and its
    CameraInfo ``info`` attached. Depth registered to the colour image (the same frame id) may
    come without CameraInfo when it has the colour image's size; depth in its own optical frame
    gets ``T_cam_depth`` from ``lookup_extrinsics(colour_frame, depth_frame, stamp_ns)``.

    Raises FrameDropped (``bad_depth``) naming the problem.
    """
    where = f"depth image stamp {transform_conversions.stamp_to_ns(msg.header.stamp) / 1e9:.3f}"
    try:
        depth = image_conversions.image_to_depth(msg, max_pixels)
    except ValueError as error:
        raise FrameDropped("bad_depth", f"{where}: {error}") from error
    height, width = depth.shape
    depth_frame = str(msg.header.frame_id).lstrip("/") or frame.frame_id
    registered = depth_frame == frame.frame_id
    if info is None:
        if not registered or (height, width) != frame.rgb.shape[:2]:
            raise FrameDropped(
                "bad_depth",
                f"{where}: no depth CameraInfo, and the depth is not registered to the colour "
                f"image ('{depth_frame}' vs '{frame.frame_id}', {width}x{height} vs "
                f"{frame.rgb.shape[1]}x{frame.rgb.shape[0]})",
            )
        camera = frame.camera
    else:
        try:
            camera = camera_for_image(info, width, height, where)
        except FrameDropped as dropped:
            raise FrameDropped("bad_depth", dropped.detail) from dropped
    T_cam_depth = None
    if not registered:
        try:
            T_cam_depth = lookup_extrinsics(frame.frame_id, depth_frame, frame.stamp_ns)
        except TransformError as error:
            raise FrameDropped(
                "bad_depth",
                f"{where}: no transform from the depth frame '{depth_frame}' to the colour "
                f"frame '{frame.frame_id}': {error}",
            ) from error
    frame.depth, frame.depth_camera, frame.T_cam_depth = depth, camera, T_cam_depth
    return frame
