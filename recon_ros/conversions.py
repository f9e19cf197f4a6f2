"""Conversions between ROS messages and numpy, in the manner of cv_bridge, image_geometry and
sensor_msgs_py.point_cloud2 (none of which is on PyPI).

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike, since both carry the same field names. Builders import the rclpy message classes
lazily, so this module imports without ROS. Every reader raises ``ValueError`` with a message that
says what is wrong with the input; the nodes log that message and drop the frame.
"""

from __future__ import annotations

import array
import math

import numpy as np

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.geometry import matrix_to_quaternion, pose_from_translation_quaternion
from recon_ros.core.mesh import Mesh

#: encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "8UC3": (np.dtype(np.uint8), 3),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8", "8UC3", "8UC1", "mono16")
#: Largest image (pixels) decoded by default: an 8K camera is 33 M pixels; a header declaring
#: more is refused before any pixel is decoded (a few bytes of PNG can declare gigabytes).
MAX_IMAGE_PIXELS = 40_000_000


def check_image_size(width: int, height: int, max_pixels: int = MAX_IMAGE_PIXELS) -> None:
    """Raise ValueError for an image that declares more than ``max_pixels`` pixels."""
    if width * height > max_pixels:
        raise ValueError(
            f"image declares {width}x{height} = {width * height} pixels, more than "
            f"max_image_pixels = {max_pixels}; not decoded"
        )


DEPTH_ENCODINGS = ("16UC1", "mono16", "32FC1")


def _buffer(data) -> np.ndarray:
    """The bytes of a ``uint8[]`` field as a flat uint8 array, without copying.

    rclpy gives ``array.array('B')``, rosbags a numpy array, hand-built messages bytes or lists.
    """
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    if isinstance(data, (bytes, bytearray, memoryview, array.array)):
        return np.frombuffer(data, dtype=np.uint8)
    return np.asarray(data, dtype=np.uint8)


def image_to_array(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[np.ndarray, str]:
    """Decode a sensor_msgs/Image into an array ``(H, W)`` or ``(H, W, C)`` of its own dtype.

    Returns ``(array, encoding)``. Rows padded beyond ``width * pixel size`` (``step`` larger) are
    cropped. Raises ValueError for unsupported encodings, empty or oversized images
    (``check_image_size``), and data whose length disagrees with ``step * height``.
    """
    encoding = str(msg.encoding)
    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(
            f"unsupported image encoding '{encoding}' (supported: {', '.join(IMAGE_ENCODINGS)})"
        )
    dtype, channels = IMAGE_ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"empty image: {width}x{height} pixels")
    check_image_size(width, height, max_pixels)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(
            f"step {step} is smaller than width x pixel size = {width} x "
            f"{channels * dtype.itemsize} = {row_bytes} bytes"
        )
    data = _buffer(msg.data)
    if data.size != step * height:
        raise ValueError(
            f"data length {data.size} disagrees with step x height = {step} x {height} = "
            f"{step * height} bytes"
        )
    rows = data.reshape(height, step)[:, :row_bytes]
    pixels = np.ascontiguousarray(rows).view(dtype)
    if dtype.itemsize > 1 and bool(msg.is_bigendian) != (np.little_endian is False):
        pixels = pixels.byteswap()
    if channels == 1:
        return pixels.reshape(height, width), encoding
    return pixels.reshape(height, width, channels), encoding


def image_to_rgb(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a colour image message into ``(H, W, 3)`` uint8 RGB, whatever its colour encoding."""
    pixels, encoding = image_to_array(msg, max_pixels)
    if encoding not in COLOR_ENCODINGS:
        raise ValueError(
            f"image encoding '{encoding}' is not a colour encoding "
            f"(supported: {', '.join(COLOR_ENCODINGS)})"
        )
    if encoding == "mono16":
        pixels = (pixels >> 8).astype(np.uint8)
    if pixels.ndim == 2:
        return np.repeat(pixels[:, :, None], 3, axis=2)
    if encoding in ("bgr8", "bgra8", "8UC3"):  # 8UC3 follows OpenCV's BGR order
        return np.ascontiguousarray(pixels[:, :, 2::-1])
    return np.ascontiguousarray(pixels[:, :, :3])


def compressed_to_rgb(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a sensor_msgs/CompressedImage (JPEG or PNG, as image_transport's ``compressed``
    plugin publishes) into ``(H, W, 3)`` uint8 RGB. The size its header declares is checked
    (``check_image_size``) before any pixel is decoded."""
    import io

    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    data = _buffer(msg.data)
    if data.size == 0:
        raise ValueError(f"empty compressed image (format '{msg.format}')")
    try:
        with PILImage.open(io.BytesIO(data.tobytes())) as image:  # reads the header only
            if image.format not in ("JPEG", "PNG"):
                raise ValueError(f"compressed image in {image.format} (supported: JPEG, PNG)")
            check_image_size(image.width, image.height, max_pixels)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, PILImage.DecompressionBombError) as error:
        raise ValueError(
            f"cannot decode compressed image (format '{msg.format}'): {error}"
        ) from error


def rgb_to_compressed_msg(rgb: np.ndarray, stamp, frame_id: str, image_format: str = "jpeg"):
    """Build a sensor_msgs/CompressedImage (``jpeg`` or ``png``) from ``(H, W, 3)`` uint8 RGB."""
    import io

    from PIL import Image as PILImage
    from sensor_msgs.msg import CompressedImage

    if image_format not in ("jpeg", "png"):
        raise ValueError(f"image_format: 'jpeg' or 'png', got {image_format!r}")
    buffer = io.BytesIO()
    PILImage.fromarray(np.asarray(rgb, np.uint8)).save(buffer, format=image_format.upper())
    msg = CompressedImage()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.format = f"rgb8; {image_format} compressed rgb8"
    msg.data = array.array("B", buffer.getvalue())
    return msg


def image_to_depth(msg, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode a depth image into ``(H, W)`` float32 metres, 0 where invalid.

    16UC1/mono16 are millimetres (REP 118); 32FC1 is metres, with NaN and inf marking no return.
    """
    pixels, encoding = image_to_array(msg, max_pixels)
    if encoding not in DEPTH_ENCODINGS:
        raise ValueError(
            f"image encoding '{encoding}' is not a depth encoding "
            f"(supported: {', '.join(DEPTH_ENCODINGS)})"
        )
    if encoding == "32FC1":
        depth = pixels.astype(np.float32, copy=True)
        depth[~np.isfinite(depth) | (depth < 0)] = 0.0
        return depth
    return pixels.astype(np.float32) * np.float32(0.001)


def rgb_to_image_msg(rgb: np.ndarray, stamp, frame_id: str, encoding: str = "rgb8"):
    """Build a sensor_msgs/Image from ``(H, W, 3)`` uint8 RGB (``encoding`` rgb8 or bgr8), or from a
    2D array with any single-channel encoding of ``IMAGE_ENCODINGS``."""
    from sensor_msgs.msg import Image

    if encoding not in IMAGE_ENCODINGS:
        raise ValueError(f"unsupported image encoding '{encoding}'")
    dtype, channels = IMAGE_ENCODINGS[encoding]
    pixels = np.asarray(rgb)
    if encoding in ("bgr8", "bgra8"):
        pixels = pixels[:, :, ::-1]
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels > 1 and pixels.shape[2] != channels):
        raise ValueError(f"array of shape {pixels.shape} does not fit encoding '{encoding}'")
    pixels = np.ascontiguousarray(pixels, dtype=dtype)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0 if np.little_endian else 1
    msg.step = int(pixels.shape[1] * channels * dtype.itemsize)
    msg.data = array.array("B", pixels.tobytes())
    return msg


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


# --- transforms -----------------------------------------------------------------------------


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time to integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    """Integer nanoseconds to builtin_interfaces/Time."""
    from builtin_interfaces.msg import Time

    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def translation_quaternion(translation, rotation) -> tuple[np.ndarray, np.ndarray]:
    """``(t (3,), q (4,) x y z w normalised)`` of a geometry_msgs Vector3/Point and Quaternion.

    Raises ValueError for non-finite values or a quaternion far from unit length (a common sign of
    an uninitialised pose: all zeros).
    """
    t = np.array([translation.x, translation.y, translation.z], dtype=np.float64)
    q = np.array([rotation.x, rotation.y, rotation.z, rotation.w], dtype=np.float64)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise ValueError(f"pose is not finite: translation {t.tolist()}, quaternion {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-2:
        raise ValueError(f"quaternion {q.tolist()} is not unit length (norm {norm:.4f})")
    return t, q / norm


def transform_to_matrix(transform) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform (``translation``, ``rotation``)."""
    return pose_from_translation_quaternion(
        *translation_quaternion(transform.translation, transform.rotation)
    )


def pose_to_matrix(pose) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Pose (``position``, ``orientation``)."""
    return pose_from_translation_quaternion(
        *translation_quaternion(pose.position, pose.orientation)
    )


def matrix_to_transform_stamped(T: np.ndarray, stamp, parent: str, child: str):
    """geometry_msgs/TransformStamped of a 4x4 matrix ``T_parent_child``."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    q = matrix_to_quaternion(T[:3, :3])
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in T[:3, 3]
    )
    (
        msg.transform.rotation.x,
        msg.transform.rotation.y,
        msg.transform.rotation.z,
        msg.transform.rotation.w,
    ) = (float(v) for v in q)
    return msg


# --- point clouds ---------------------------------------------------------------------------

# sensor_msgs/PointField datatypes
_POINTFIELD_TYPES = {
    np.dtype(np.int8): 1,
    np.dtype(np.uint8): 2,
    np.dtype(np.int16): 3,
    np.dtype(np.uint16): 4,
    np.dtype(np.int32): 5,
    np.dtype(np.uint32): 6,
    np.dtype(np.float32): 7,
    np.dtype(np.float64): 8,
}
_POINTFIELD_DTYPES = {code: dtype for dtype, code in _POINTFIELD_TYPES.items()}

#: Layout of the semantic cloud: RViz reads ``rgb`` as a float32 holding packed 0x00RRGGBB bits.
SEMANTIC_CLOUD_DTYPE = np.dtype(
    [
        ("x", np.float32),
        ("y", np.float32),
        ("z", np.float32),
        ("rgb", np.float32),
        ("confidence", np.float32),
        ("label", np.uint16),
    ],
    align=True,
)


def pack_rgb(rgb: np.ndarray) -> np.ndarray:
    """``(N, 3)`` uint8 colours to RViz's packed float32 ``rgb`` field ``(N,)``."""
    rgb = np.asarray(rgb, dtype=np.uint32)
    packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    return packed.astype(np.uint32).view(np.float32)


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """RViz's packed float32 ``rgb`` field ``(N,)`` to ``(N, 3)`` uint8 colours."""
    bits = np.ascontiguousarray(packed, dtype=np.float32).view(np.uint32)
    return np.stack([(bits >> 16) & 255, (bits >> 8) & 255, bits & 255], axis=1).astype(np.uint8)


def semantic_points_to_array(xyz, rgb, label, confidence) -> np.ndarray:
    """Pack semantic points into a structured array of ``SEMANTIC_CLOUD_DTYPE``."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    n = xyz.shape[0]
    for name, values in (("rgb", rgb), ("label", label), ("confidence", confidence)):
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} points")
    points = np.zeros(n, dtype=SEMANTIC_CLOUD_DTYPE)
    points["x"], points["y"], points["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    points["rgb"] = pack_rgb(np.asarray(rgb).reshape(-1, 3))
    points["label"] = np.asarray(label, dtype=np.uint16)
    points["confidence"] = np.asarray(confidence, dtype=np.float32)
    return points


def array_to_pointcloud2(points: np.ndarray, stamp, frame_id: str):
    """sensor_msgs/PointCloud2 (unordered, dense) from a structured numpy array ``(N,)``."""
    from sensor_msgs.msg import PointCloud2, PointField

    if points.dtype.names is None:
        raise ValueError("points must be a structured array with named fields")
    msg = PointCloud2()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = 1, int(points.shape[0])
    for name in points.dtype.names:
        dtype, offset = points.dtype.fields[name][:2]
        if dtype not in _POINTFIELD_TYPES:
            raise ValueError(f"field '{name}' has dtype {dtype} with no PointField type")
        msg.fields.append(
            PointField(name=name, offset=int(offset), datatype=_POINTFIELD_TYPES[dtype], count=1)
        )
    msg.is_bigendian = not np.little_endian
    msg.point_step = int(points.dtype.itemsize)
    msg.row_step = msg.point_step * msg.width
    msg.is_dense = True
    msg.data = array.array("B", np.ascontiguousarray(points).tobytes())
    return msg


def pointcloud2_to_array(msg) -> np.ndarray:
    """Structured numpy array ``(N,)`` of a sensor_msgs/PointCloud2 (fields with count 1)."""
    names, formats, offsets = [], [], []
    for field in msg.fields:
        if int(field.count) != 1:
            raise ValueError(f"field '{field.name}' has count {field.count}; only 1 is supported")
        names.append(field.name)
        formats.append(_POINTFIELD_DTYPES[int(field.datatype)])
        offsets.append(int(field.offset))
    dtype = np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": int(msg.point_step)}
    )
    if msg.is_bigendian != (not np.little_endian):
        dtype = dtype.newbyteorder()
    data = _buffer(msg.data)
    count = int(msg.width) * int(msg.height)
    if data.size < count * int(msg.point_step):
        raise ValueError(f"cloud data holds {data.size} bytes for {count} points")
    return np.frombuffer(data[: count * int(msg.point_step)].tobytes(), dtype=dtype)


# --- markers --------------------------------------------------------------------------------


def triangle_corners(mesh: Mesh) -> tuple[list, list]:
    """geometry_msgs/Point and std_msgs/ColorRGBA of every triangle corner of a mesh, in the
    order a TRIANGLE_LIST marker wants them. Building these Python objects is the cost of a mesh
    marker, so callers with a changing mesh cache them per part (atlas_node: per map chunk)."""
    from geometry_msgs.msg import Point
    from std_msgs.msg import ColorRGBA

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64).reshape(-1, 3)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("mesh faces index vertices that do not exist")
    colors = np.asarray(mesh.colors, dtype=np.float64).reshape(-1, 3) / 255.0
    if len(colors) != len(vertices):
        raise ValueError(f"{len(colors)} colours for {len(vertices)} vertices")
    corners = faces.reshape(-1)
    points = [Point(x=x, y=y, z=z) for x, y, z in vertices[corners].tolist()]
    rgba = [ColorRGBA(r=r, g=g, b=b, a=1.0) for r, g, b in colors[corners].tolist()]
    return points, rgba


def triangle_list_marker(
    points: list, colors: list, stamp, frame_id: str, ns="atlas_mesh", marker_id=0
):
    """visualization_msgs/Marker TRIANGLE_LIST from corner points and per-corner colours (RViz
    shows it without any plugin); with no points, a DELETE of that marker."""
    from visualization_msgs.msg import Marker

    if len(points) % 3 or len(colors) != len(points):
        raise ValueError(f"{len(points)} corners and {len(colors)} colours do not form triangles")
    marker = Marker()
    marker.header.stamp = stamp
    marker.header.frame_id = frame_id
    marker.ns = ns
    marker.id = int(marker_id)
    marker.type = Marker.TRIANGLE_LIST
    marker.action = Marker.ADD if points else Marker.DELETE
    marker.pose.orientation.w = 1.0
    marker.scale.x = marker.scale.y = marker.scale.z = 1.0
    marker.color.r = marker.color.g = marker.color.b = marker.color.a = 1.0
    marker.points = points
    marker.colors = colors
    return marker


class SerializedMarker:
    """A Marker kept as its CDR bytes, the compact way to hold a large mesh marker between
    publishes: about 80 bytes a triangle corner against about 250 for the Python Point and
    ColorRGBA objects it was built from (a map of a few hundred chunks held 270 MB of those).

    CDR aligns 8-byte fields (the pose, the points) to the message start, so a marker's bytes
    depend on where it sits in a MarkerArray: at an offset of 0 or 4 modulo 8. Both are kept,
    each produced by rclpy's own serialiser, so the layout is right for any ROS distribution.
    ``marker_array_bytes`` puts markers together into a serialized MarkerArray, which rclpy's
    ``Publisher.publish`` sends as is (since Foxy).
    """

    __slots__ = ("_parts",)

    def __init__(self, marker) -> None:
        from rclpy.serialization import serialize_message
        from visualization_msgs.msg import MarkerArray

        # Standalone: the marker's payload starts at offset 0. In a one-marker array: after the
        # array's 4-byte length, at offset 4. Both after the 4-byte encapsulation header.
        at_0 = serialize_message(marker)[CDR_HEADER_BYTES:]
        at_4 = serialize_message(MarkerArray(markers=[marker]))[CDR_HEADER_BYTES + 4 :]
        self._parts = (at_0, at_4)

    def payload(self, offset: int) -> bytes:
        """The marker's bytes for a payload ``offset`` (a multiple of 4)."""
        if offset % 4:
            raise ValueError(f"offset: a marker starts 4-byte aligned, got {offset}")
        return self._parts[0 if offset % 8 == 0 else 1]

    @property
    def nbytes(self) -> int:
        return sum(len(part) for part in self._parts)


#: The CDR encapsulation header that starts every serialized ROS 2 message.
CDR_HEADER_BYTES = 4
_STAMP_BYTES = 8  # builtin_interfaces/Time: int32 sec, uint32 nanosec, a header's first field


def marker_array_bytes(markers, stamp=None) -> bytes:
    """A serialized visualization_msgs/MarkerArray of ``SerializedMarker``s, byte for byte what
    rclpy would serialise for the same markers; with ``stamp`` (builtin_interfaces/Time) every
    marker's header stamp is set to it (a stamp is a marker's first 8 bytes at any offset)."""
    from rclpy.serialization import serialize_message
    from visualization_msgs.msg import MarkerArray

    header = serialize_message(MarkerArray())[:CDR_HEADER_BYTES]
    chunks = [header, len(markers).to_bytes(4, _byte_order(header))]
    offset = 4
    new_stamp = (
        None
        if stamp is None
        else int(stamp.sec).to_bytes(4, _byte_order(header), signed=True)
        + int(stamp.nanosec).to_bytes(4, _byte_order(header))
    )
    for marker in markers:
        padding = -offset % 4  # a marker ends where its last field does; the next is aligned
        if padding:
            chunks.append(bytes(padding))
            offset += padding
        payload = marker.payload(offset)
        if new_stamp is not None:
            chunks.extend((new_stamp, memoryview(payload)[_STAMP_BYTES:]))
        else:
            chunks.append(payload)
        offset += len(payload)
    return b"".join(chunks)


def _byte_order(header: bytes) -> str:
    # Encapsulation kinds 0x0001 (CDR_LE) and 0x0003 (PL_CDR_LE) are little endian.
    return "little" if header[1] & 1 else "big"


def mesh_to_marker(mesh: Mesh, stamp, frame_id: str, ns: str = "atlas_mesh", marker_id=0):
    """visualization_msgs/Marker TRIANGLE_LIST with per-vertex colours of a whole mesh."""
    points, colors = triangle_corners(mesh)
    return triangle_list_marker(points, colors, stamp, frame_id, ns, marker_id)


def marker_to_mesh(marker) -> Mesh:
    """Arrays of a TRIANGLE_LIST marker: a vertex per corner, faces ``[[0,1,2], [3,4,5], ...]``."""
    vertices = np.array([[p.x, p.y, p.z] for p in marker.points], dtype=np.float64).reshape(-1, 3)
    colors = np.array([[c.r, c.g, c.b] for c in marker.colors], dtype=np.float64).reshape(-1, 3)
    faces = np.arange(len(vertices)).reshape(-1, 3)
    return Mesh(vertices, faces, np.round(colors * 255).astype(np.uint8))


def apply_marker_array(markers: dict, msg) -> dict:
    """Keep a MarkerArray stream's current markers as a consumer like RViz does: ``markers``
    maps (ns, id) to the latest ADD marker; DELETE removes one, DELETEALL all. Returns it."""
    from visualization_msgs.msg import Marker

    for marker in msg.markers:
        if marker.action == Marker.DELETEALL:
            markers.clear()
        elif marker.action == Marker.DELETE:
            markers.pop((marker.ns, marker.id), None)
        else:
            markers[(marker.ns, marker.id)] = marker
    return markers


def markers_to_mesh(markers) -> Mesh:
    """One mesh of TRIANGLE_LIST markers (``marker_to_mesh`` of each, concatenated)."""
    parts = [marker_to_mesh(m) for m in markers]
    if not parts:
        return Mesh(np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3), np.uint8))
    offsets = np.cumsum([0] + [len(p.vertices) for p in parts[:-1]])
    return Mesh(
        np.concatenate([p.vertices for p in parts]),
        np.concatenate([p.faces + o for p, o in zip(parts, offsets, strict=True)]),
        np.concatenate([p.colors for p in parts]),
    )


def occupancy_grid_msg(cells, origin, rotation, resolution: float, stamp, frame_id: str):
    """A nav_msgs/OccupancyGrid of ``cells`` (H, W) int8 (100 occupied, 0 free, -1 unknown; row
    0 first, columns along the grid's x), whose cell (0, 0) has its corner at ``origin`` (3,)
    and whose axes are the columns of ``rotation`` (3, 3), in ``frame_id``."""
    from geometry_msgs.msg import Point, Pose, Quaternion
    from nav_msgs.msg import OccupancyGrid

    cells = np.asarray(cells, dtype=np.int8)
    if cells.ndim != 2:
        raise ValueError(f"occupancy cells: expected (H, W), got {cells.shape}")
    qx, qy, qz, qw = matrix_to_quaternion(np.asarray(rotation, dtype=np.float64))
    msg = OccupancyGrid()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.info.map_load_time = stamp
    msg.info.resolution = float(resolution)
    msg.info.height, msg.info.width = (int(v) for v in cells.shape)
    msg.info.origin = Pose(
        position=Point(x=float(origin[0]), y=float(origin[1]), z=float(origin[2])),
        orientation=Quaternion(x=float(qx), y=float(qy), z=float(qz), w=float(qw)),
    )
    msg.data = array.array("b", cells.tobytes())
    return msg


def box_outline_marker(origin, size, stamp, frame_id: str, ns="atlas_window", marker_id=0):
    """visualization_msgs/Marker LINE_LIST outlining an axis-aligned box (the rolling window)."""
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker

    lo = np.asarray(origin, dtype=np.float64)
    hi = lo + np.asarray(size, dtype=np.float64)
    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    edges = [
        (0, 1),
        (2, 3),
        (4, 5),
        (6, 7),
        (0, 2),
        (1, 3),
        (4, 6),
        (5, 7),
        (0, 4),
        (1, 5),
        (2, 6),
        (3, 7),
    ]
    marker = Marker()
    marker.header.stamp = stamp
    marker.header.frame_id = frame_id
    marker.ns, marker.id = ns, int(marker_id)
    marker.type, marker.action = Marker.LINE_LIST, Marker.ADD
    marker.pose.orientation.w = 1.0
    marker.scale.x = 0.02
    marker.color.r, marker.color.g, marker.color.b, marker.color.a = 1.0, 0.8, 0.1, 1.0
    marker.points = [
        Point(x=float(c[0]), y=float(c[1]), z=float(c[2])) for e in edges for c in corners[list(e)]
    ]
    return marker
