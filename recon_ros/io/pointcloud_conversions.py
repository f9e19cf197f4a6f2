"""sensor_msgs/PointCloud2 to and from numpy structured arrays, in the manner of
sensor_msgs_py.point_cloud2: the semantic cloud (xyz, packed rgb, confidence, label).

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike. Builders import the rclpy message classes lazily, so this module imports without
ROS. Readers raise ``ValueError`` saying what is wrong with the input; the nodes log it and
drop the frame.
"""

from __future__ import annotations

import array

import numpy as np

from recon_ros.io.image_conversions import message_buffer

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


#: Layout of the coverage cloud (sufficiency_node ``~/coverage``): a cell centre, its colour,
#: the best conjugate-pair count any estimate gave it and how many estimates reached it.
COVERAGE_CLOUD_DTYPE = np.dtype(
    [
        ("x", np.float32),
        ("y", np.float32),
        ("z", np.float32),
        ("rgb", np.float32),
        ("count", np.uint16),
        ("estimates", np.uint16),
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


def coverage_points_to_array(xyz, rgb, count, estimates) -> np.ndarray:
    """Pack coverage cells into a structured array of ``COVERAGE_CLOUD_DTYPE``."""
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    n = xyz.shape[0]
    for name, values in (("rgb", rgb), ("count", count), ("estimates", estimates)):
        if len(values) != n:
            raise ValueError(f"{name} has {len(values)} entries for {n} points")
    points = np.zeros(n, dtype=COVERAGE_CLOUD_DTYPE)
    points["x"], points["y"], points["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    points["rgb"] = pack_rgb(np.asarray(rgb).reshape(-1, 3))
    points["count"] = np.asarray(count, dtype=np.uint16)
    points["estimates"] = np.minimum(np.asarray(estimates), np.iinfo(np.uint16).max)
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
    data = message_buffer(msg.data)
    count = int(msg.width) * int(msg.height)
    if data.size < count * int(msg.point_step):
        raise ValueError(f"cloud data holds {data.size} bytes for {count} points")
    return np.frombuffer(data[: count * int(msg.point_step)].tobytes(), dtype=dtype)
