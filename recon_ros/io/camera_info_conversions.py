"""sensor_msgs/CameraInfo to and from ``core.camera.PinholeCamera``, in the manner of
image_geometry's PinholeCameraModel: binning and region of interest applied, absurd values
refused with the reason.

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike. Builders import the rclpy message classes lazily, so this module imports without
ROS. Readers raise ``ValueError`` saying what is wrong with the input; the nodes log it and
drop the frame.
"""

from __future__ import annotations

import math

import numpy as np

from recon_ros.core.camera import PinholeCamera

#: The largest image side a CameraInfo may declare (before binning and region of interest).
MAX_CAMERA_SIDE = 65535
#: The field of view a pinhole camera may have, in degrees, along either image axis: below the
#: low bound the focal length is absurd (a 1e38 px fx), at 180 a pinhole image cannot exist.
FIELD_OF_VIEW_RANGE_DEG = (0.1, 175.0)


def camera_info_to_camera(msg) -> PinholeCamera:
    """The pinhole camera of a sensor_msgs/CameraInfo, like image_geometry's
    ``PinholeCameraModel.fromCameraInfo``: K, with binning and region of interest applied.

    Distortion is not modelled: feed rectified images (``image_rect``). Raises ValueError naming
    the fault for a K that is not a pinhole matrix (non-finite, focal length not positive, a
    bottom row other than 0 0 1, visible skew), an image size of zero or above
    ``MAX_CAMERA_SIDE``, a region of interest outside the image, a field of view outside
    ``FIELD_OF_VIEW_RANGE_DEG`` or a principal point far outside the image.
    """
    k = np.asarray(msg.k, dtype=np.float64).reshape(-1)
    if k.size != 9:
        raise ValueError(f"CameraInfo K has {k.size} entries, expected 9")
    if not np.all(np.isfinite(k)):
        raise ValueError(f"CameraInfo K is not finite: {k.tolist()}")
    fx, fy, cx, cy = k[0], k[4], k[2], k[5]
    if fx <= 0 or fy <= 0:
        raise ValueError(f"CameraInfo focal length must be positive, got fx={fx}, fy={fy}")
    if abs(k[8] - 1.0) > 1e-6 or np.any(np.abs(k[[3, 6, 7]]) > 1e-6):
        raise ValueError(
            f"CameraInfo K is not a pinhole matrix: rows 2 and 3 must be [0 fy cy] and [0 0 1], "
            f"got {k[3:6].tolist()} and {k[6:].tolist()}"
        )
    if abs(k[1]) > 1e-3 * fx:  # calibrations in ROS have none; a visible one is not modelled
        raise ValueError(f"CameraInfo K has skew {k[1]:g}, which is not modelled")
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise ValueError(f"CameraInfo image size is {width}x{height}")
    if width > MAX_CAMERA_SIDE or height > MAX_CAMERA_SIDE:
        raise ValueError(
            f"CameraInfo image size {width}x{height} is above {MAX_CAMERA_SIDE} px a side"
        )
    roi = msg.roi
    if int(roi.width) > 0 and int(roi.height) > 0:
        x0, y0, roi_w, roi_h = (int(v) for v in (roi.x_offset, roi.y_offset, roi.width, roi.height))
        if x0 + roi_w > width or y0 + roi_h > height:
            raise ValueError(
                f"CameraInfo region of interest {roi_w}x{roi_h} at ({x0}, {y0}) is outside "
                f"the {width}x{height} image"
            )
        cx -= x0
        cy -= y0
        width, height = roi_w, roi_h
    bin_x, bin_y = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    if bin_x > width or bin_y > height:
        raise ValueError(f"CameraInfo binning {bin_x}x{bin_y} exceeds the {width}x{height} image")
    if bin_x > 1 or bin_y > 1:
        fx, cx = fx / bin_x, (cx + 0.5) / bin_x - 0.5
        fy, cy = fy / bin_y, (cy + 0.5) / bin_y - 0.5
        width, height = width // bin_x, height // bin_y
    low, high = FIELD_OF_VIEW_RANGE_DEG
    fov_x = math.degrees(2 * math.atan(0.5 * width / fx))
    fov_y = math.degrees(2 * math.atan(0.5 * height / fy))
    if not (low <= fov_x <= high and low <= fov_y <= high):
        raise ValueError(
            f"CameraInfo gives a field of view of {fov_x:.3g} x {fov_y:.3g} degrees "
            f"(fx={fx:g}, fy={fy:g} for {width}x{height} px), outside {low}-{high}"
        )
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        raise ValueError(
            f"CameraInfo principal point ({cx:g}, {cy:g}) is far outside the {width}x{height} image"
        )
    return PinholeCamera(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height)


def has_distortion(msg) -> bool:
    """True when a CameraInfo declares non-zero distortion coefficients."""
    d = np.asarray(msg.d, dtype=np.float64)
    return bool(d.size and np.any(np.abs(d) > 1e-9))


def camera_info_msg(camera: PinholeCamera, stamp, frame_id: str):
    """Build a sensor_msgs/CameraInfo (no distortion) for a pinhole camera."""
    from sensor_msgs.msg import CameraInfo

    msg = CameraInfo()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(camera.width), int(camera.height)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [camera.fx, 0.0, camera.cx, 0.0, camera.fy, camera.cy, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [camera.fx, 0.0, camera.cx, 0.0, 0.0, camera.fy, camera.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg
