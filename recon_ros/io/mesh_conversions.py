"""Meshes as visualization_msgs markers: TRIANGLE_LIST markers (RViz shows them without any
plugin), their compact serialized form for a map's many chunks, and the window's outline.

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike. Builders import the rclpy message classes lazily, so this module imports without
ROS. Readers raise ``ValueError`` saying what is wrong with the input; the nodes log it and
drop the frame.
"""

from __future__ import annotations

import numpy as np

from recon_ros.core.mesh import Mesh


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
