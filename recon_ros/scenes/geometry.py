"""Analytic solid primitives: exact signed distances, tessellation for ray casting, bounds.

Every object of a synthetic scene is a union of primitives. A primitive is described by its kind,
its size and a rigid pose (4, 4) that maps points in the primitive's own frame to its parent's
frame (the object's frame, or the world for room parts). In its own frame every primitive is
centred at the origin and, where it has an axis, that axis is z:

- ``box``: ``size = (sx, sy, sz)`` full edge lengths.
- ``cylinder``: ``size = (radius, height)``, capped, z from ``-height/2`` to ``height/2``.
- ``sphere``: ``size = (radius,)``.
- ``capsule``: ``size = (radius, length)``: the points within ``radius`` of the segment from
  ``(0, 0, -length/2)`` to ``(0, 0, length/2)``.

Signed distances are exact for each primitive (negative inside). The union of solids is the
minimum over primitives: exact outside the union (free space, where the TSDF lives) and on its
surface; inside, the minimum bounds the true depth from above (it is never deeper than the truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recon_ros.core.poses import invert_pose

PRIMITIVE_KINDS = ("box", "cylinder", "sphere", "capsule")
_SIZE_LENGTHS = {"box": 3, "cylinder": 2, "sphere": 1, "capsule": 2}


# --------------------------------------------------------------------------------------------
# rigid transforms


def make_pose(rotation: np.ndarray | None = None, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    """4x4 rigid transform from a rotation (3, 3) (default identity) and a translation (3,)."""
    T = np.eye(4)
    if rotation is not None:
        T[:3, :3] = rotation
    T[:3, 3] = translation
    return T


def rot_x(angle: float) -> np.ndarray:
    """Rotation (3, 3) by ``angle`` radians about x."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(angle: float) -> np.ndarray:
    """Rotation (3, 3) by ``angle`` radians about y."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1.0, 0], [-s, 0, c]])


def rot_z(angle: float) -> np.ndarray:
    """Rotation (3, 3) by ``angle`` radians about z."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def yaw_pose(x: float, y: float, z: float, yaw: float) -> np.ndarray:
    """4x4 pose at ``(x, y, z)`` rotated by ``yaw`` about the world z axis."""
    return make_pose(rot_z(yaw), (x, y, z))


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply the 4x4 transform ``T`` to ``points`` (N, 3) -> (N, 3)."""
    points = np.asarray(points, dtype=np.float64)
    # Element-wise sums rather than BLAS: identical results whatever the thread count.
    R, t = T[:3, :3], T[:3, 3]
    return points[:, 0:1] * R[:, 0] + points[:, 1:2] * R[:, 1] + points[:, 2:3] * R[:, 2] + t


def rotate_vectors(R: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Apply the rotation ``R`` (3, 3) to ``vectors`` (N, 3) -> (N, 3)."""
    v = np.asarray(vectors, dtype=np.float64)
    return v[:, 0:1] * R[:, 0] + v[:, 1:2] * R[:, 1] + v[:, 2:3] * R[:, 2]


def pose_along(p0, p1) -> np.ndarray:
    """Pose whose origin is the midpoint of ``p0``-``p1`` and whose z axis points from ``p0`` to
    ``p1`` (for cylinders and capsules between two points)."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    axis = p1 - p0
    length = np.linalg.norm(axis)
    if length < 1e-12:
        raise ValueError("p0, p1: the segment has zero length")
    z = axis / length
    helper = np.array([1.0, 0, 0]) if abs(z[0]) < 0.9 else np.array([0, 1.0, 0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return make_pose(np.stack([x, y, z], axis=1), 0.5 * (p0 + p1))


# --------------------------------------------------------------------------------------------
# primitives


@dataclass
class Primitive:
    """One analytic solid.

    Attributes:
        kind: one of ``PRIMITIVE_KINDS``.
        size: see the module docstring.
        pose: (4, 4) primitive frame -> parent frame.
        material: name of the material (a key of the owner's materials) that paints it.
        part: a name for people reading the scene file ("top", "leg", "head" ...).
    """

    kind: str
    size: tuple[float, ...]
    pose: np.ndarray = field(default_factory=lambda: np.eye(4))
    material: str = "base"
    part: str = ""

    def __post_init__(self):
        if self.kind not in PRIMITIVE_KINDS:
            raise ValueError(f"kind: expected one of {PRIMITIVE_KINDS}, got {self.kind!r}")
        self.size = tuple(float(s) for s in self.size)
        if len(self.size) != _SIZE_LENGTHS[self.kind]:
            raise ValueError(
                f"size: a {self.kind} takes {_SIZE_LENGTHS[self.kind]} values, got {self.size}"
            )
        if self.kind == "capsule":
            if self.size[0] <= 0 or self.size[1] < 0:
                raise ValueError(f"size: capsule radius must be > 0, length >= 0, got {self.size}")
        elif min(self.size) <= 0:
            raise ValueError(f"size: {self.kind} dimensions must be positive, got {self.size}")
        self.pose = np.asarray(self.pose, dtype=np.float64)
        if self.pose.shape != (4, 4):
            raise ValueError(f"pose: expected shape (4, 4), got {self.pose.shape}")

    def moved(self, T: np.ndarray) -> Primitive:
        """This primitive with its pose premultiplied by ``T`` (parent -> new parent)."""
        return Primitive(self.kind, self.size, T @ self.pose, self.material, self.part)

    def half_extents(self) -> np.ndarray:
        """Half extents (3,) of the primitive's box in its own frame."""
        s = self.size
        if self.kind == "box":
            return np.array(s) / 2
        if self.kind == "cylinder":
            return np.array([s[0], s[0], s[1] / 2])
        if self.kind == "sphere":
            return np.array([s[0]] * 3)
        return np.array([s[0], s[0], s[0] + s[1] / 2])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds ``(lo, hi)`` (3,) each, in the parent frame (exact for boxes,
        tight for round primitives)."""
        R, t = self.pose[:3, :3], self.pose[:3, 3]
        h = self.half_extents()
        if self.kind == "sphere":
            r = self.size[0]
            return t - r, t + r
        if self.kind in ("cylinder", "capsule"):
            # A disc of radius r with normal a spans r * sqrt(1 - a_i^2) along axis i.
            r, axis = self.size[0], R[:, 2]
            half_axis = (self.size[1] / 2) * np.abs(axis)
            if self.kind == "cylinder":
                extent = half_axis + r * np.sqrt(np.clip(1 - axis**2, 0, 1))
            else:
                extent = half_axis + r
            return t - extent, t + extent
        extent = np.abs(R) @ h
        return t - extent, t + extent

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "size": [float(s) for s in self.size],
            "pose": [[float(v) for v in row] for row in self.pose],
            "material": self.material,
            "part": self.part,
        }

    @classmethod
    def from_dict(cls, d: dict) -> Primitive:
        return cls(d["kind"], tuple(d["size"]), np.array(d["pose"]), d["material"], d["part"])


def box(size, center=(0.0, 0.0, 0.0), rotation=None, material="base", part="") -> Primitive:
    """Box with full edge lengths ``size`` centred at ``center``."""
    return Primitive("box", tuple(size), make_pose(rotation, center), material, part)


def box_between(lo, hi, material="base", part="") -> Primitive:
    """Axis-aligned box spanning ``lo`` to ``hi`` (3,) each."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    if np.any(hi <= lo):
        raise ValueError(f"lo, hi: empty box from {lo.tolist()} to {hi.tolist()}")
    return box(hi - lo, (lo + hi) / 2, material=material, part=part)


def cylinder_between(p0, p1, radius, material="base", part="") -> Primitive:
    """Capped cylinder of ``radius`` whose axis runs from ``p0`` to ``p1``."""
    length = float(np.linalg.norm(np.asarray(p1, float) - np.asarray(p0, float)))
    return Primitive("cylinder", (radius, length), pose_along(p0, p1), material, part)


def capsule_between(p0, p1, radius, material="base", part="") -> Primitive:
    """Capsule of ``radius`` around the segment ``p0``-``p1``."""
    length = float(np.linalg.norm(np.asarray(p1, float) - np.asarray(p0, float)))
    return Primitive("capsule", (radius, length), pose_along(p0, p1), material, part)


def sphere(radius, center=(0.0, 0.0, 0.0), material="base", part="") -> Primitive:
    return Primitive("sphere", (radius,), make_pose(None, center), material, part)


# --------------------------------------------------------------------------------------------
# signed distances


def local_sdf(kind: str, size: tuple[float, ...], p: np.ndarray) -> np.ndarray:
    """Exact signed distance (N,) of points ``p`` (N, 3), given in the primitive's own frame."""
    if kind == "box":
        q = np.abs(p) - np.asarray(size) / 2
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        inside = np.minimum(q.max(axis=1), 0.0)
        return outside + inside
    if kind == "sphere":
        return np.linalg.norm(p, axis=1) - size[0]
    if kind == "cylinder":
        radial = np.hypot(p[:, 0], p[:, 1]) - size[0]
        axial = np.abs(p[:, 2]) - size[1] / 2
        outside = np.hypot(np.maximum(radial, 0.0), np.maximum(axial, 0.0))
        inside = np.minimum(np.maximum(radial, axial), 0.0)
        return outside + inside
    if kind == "capsule":
        half = size[1] / 2
        z = p[:, 2] - np.clip(p[:, 2], -half, half)
        return np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2 + z**2) - size[0]
    raise ValueError(f"kind: expected one of {PRIMITIVE_KINDS}, got {kind!r}")


def primitive_sdf(primitive: Primitive, points: np.ndarray) -> np.ndarray:
    """Signed distance (N,) of ``points`` (N, 3) in the primitive's parent frame."""
    local = transform_points(invert_pose(primitive.pose), points)
    return local_sdf(primitive.kind, primitive.size, local)


def local_normals(
    kind: str, p: np.ndarray, face_normals: np.ndarray, half_length=0.0
) -> np.ndarray:
    """Unit outward surface normals (N, 3) at surface points ``p`` (N, 3), both in the
    primitive's own frame. ``face_normals`` (N, 3) are the normals of the hit triangles: exact for
    flat faces, used to tell caps from sides; curved faces get the analytic normal.
    ``half_length`` (scalar or (N,)) is half the segment length of capsules."""
    if kind == "box":
        return face_normals
    if kind == "sphere":
        n = p.copy()
    elif kind == "cylinder":
        n = np.stack([p[:, 0], p[:, 1], np.zeros(len(p))], axis=1)
        on_cap = np.abs(face_normals[:, 2]) > 0.99
        n[on_cap] = face_normals[on_cap]
    elif kind == "capsule":
        axial = np.clip(p[:, 2], -half_length, half_length)
        n = p - np.stack([np.zeros(len(p)), np.zeros(len(p)), axial], 1)
    else:
        raise ValueError(f"kind: expected one of {PRIMITIVE_KINDS}, got {kind!r}")
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return np.where(norm > 1e-9, n / np.maximum(norm, 1e-12), face_normals)


# --------------------------------------------------------------------------------------------
# tessellation


def _segments(radius: float, tolerance: float) -> int:
    """Polygon sides so that the chord error of a circle of ``radius`` stays below
    ``tolerance`` (clamped to 8-96)."""
    if radius <= tolerance:
        return 8
    n = int(np.ceil(np.pi / np.arccos(1.0 - tolerance / radius)))
    return int(np.clip(n, 8, 96))


def _box_mesh(size) -> tuple[np.ndarray, np.ndarray]:
    h = np.asarray(size) / 2
    corners = np.array(
        [[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64
    )
    vertices = corners * h
    # Corner index = 4 * (x > 0) + 2 * (y > 0) + (z > 0); faces wound counter-clockwise outward.
    faces = np.array(
        [
            [0, 1, 3], [0, 3, 2],  # -x
            [4, 6, 7], [4, 7, 5],  # +x
            [0, 4, 5], [0, 5, 1],  # -y
            [2, 3, 7], [2, 7, 6],  # +y
            [0, 2, 6], [0, 6, 4],  # -z
            [1, 5, 7], [1, 7, 3],  # +z
        ]
    )  # fmt: skip
    return vertices, faces


def _revolve(profile_r: np.ndarray, profile_z: np.ndarray, segments: int):
    """Surface of revolution about z of a profile running from bottom pole to top pole.

    ``profile_r`` (M,), ``profile_z`` (M,) with ``r = 0`` at both ends (the poles)."""
    angles = 2 * np.pi * np.arange(segments) / segments
    ring_r, ring_z = profile_r[1:-1], profile_z[1:-1]
    rings = len(ring_r)
    xs = ring_r[:, None] * np.cos(angles)[None, :]
    ys = ring_r[:, None] * np.sin(angles)[None, :]
    zs = np.repeat(ring_z[:, None], segments, axis=1)
    ring_vertices = np.stack([xs, ys, zs], axis=-1).reshape(-1, 3)
    bottom, top = len(ring_vertices), len(ring_vertices) + 1
    vertices = np.concatenate(
        [ring_vertices, [[0, 0, profile_z[0]]], [[0, 0, profile_z[-1]]]], axis=0
    )
    faces = []
    j = np.arange(segments)
    jn = (j + 1) % segments
    faces.append(np.stack([np.full(segments, bottom), jn, j], axis=1))
    for i in range(rings - 1):
        a, b = i * segments + j, i * segments + jn
        c, d = (i + 1) * segments + jn, (i + 1) * segments + j
        faces.append(np.stack([a, b, c], axis=1))
        faces.append(np.stack([a, c, d], axis=1))
    last = (rings - 1) * segments
    faces.append(np.stack([np.full(segments, top), last + j, last + jn], axis=1))
    return vertices, np.concatenate(faces, axis=0)


def local_mesh(kind: str, size, tolerance: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Closed triangle mesh of a primitive in its own frame.

    Round primitives are tessellated finely enough that the surface deviates from the analytic
    one by less than ``tolerance`` (m) at the chord middles.

    Returns:
        vertices (V, 3) float64 and faces (F, 3) int64, wound counter-clockwise seen from outside.
    """
    if kind == "box":
        return _box_mesh(size)
    radius = size[0]
    if kind == "cylinder":
        segments = _segments(radius, tolerance)
        h = size[1] / 2
        r = np.array([0.0, radius, radius, 0.0])
        z = np.array([-h, -h, h, h])
        return _revolve(r, z, segments)
    # Doubly curved facets err in both directions: halve the chord tolerance.
    segments = _segments(radius, tolerance / 2)
    latitude_steps = max(4, segments // 2)
    if kind == "sphere":
        theta = np.linspace(-np.pi / 2, np.pi / 2, latitude_steps + 1)
        r = radius * np.cos(theta)
        r[0] = r[-1] = 0.0
        return _revolve(r, radius * np.sin(theta), segments)
    if kind == "capsule":
        h = size[1] / 2
        half_steps = max(2, latitude_steps // 2)
        theta = np.linspace(-np.pi / 2, 0, half_steps + 1)
        r_low, z_low = radius * np.cos(theta), radius * np.sin(theta) - h
        r_high, z_high = r_low[::-1], -z_low[::-1]
        r = np.concatenate([r_low, r_high])
        z = np.concatenate([z_low, z_high])
        r[0] = r[-1] = 0.0
        return _revolve(r, z, segments)
    raise ValueError(f"kind: expected one of {PRIMITIVE_KINDS}, got {kind!r}")


def primitive_mesh(primitive: Primitive, tolerance: float = 1e-3):
    """Mesh of ``primitive`` in its parent frame: vertices (V, 3), faces (F, 3)."""
    vertices, faces = local_mesh(primitive.kind, primitive.size, tolerance)
    return transform_points(primitive.pose, vertices), faces


# --------------------------------------------------------------------------------------------
# oriented rectangles in the floor plane (collision checks)


@dataclass(frozen=True)
class Footprint:
    """An object's bounding volume for collision checks: a rectangle in the floor plane with
    centre ``center`` (2,), half extents ``half`` (2,) along its axes rotated by ``yaw``, and
    the height interval ``z_range`` (lo, hi)."""

    center: tuple[float, float]
    half: tuple[float, float]
    yaw: float
    z_range: tuple[float, float]

    def axes(self) -> np.ndarray:
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, s], [-s, c]])  # rows: the rectangle's x and y axes

    def corners(self) -> np.ndarray:
        """Corners (4, 2) counter-clockwise."""
        ax = self.axes()
        hx, hy = self.half
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
        return np.asarray(self.center) + signs[:, :1] * hx * ax[0] + signs[:, 1:] * hy * ax[1]

    def overlaps(self, other: Footprint, gap: float = 0.0) -> bool:
        """True when the two boxes intersect or come closer than ``gap`` (separating axes in the
        plane, interval test in z; boxes that only touch in z do not overlap)."""
        if self.z_range[1] <= other.z_range[0] + 1e-9 or other.z_range[1] <= self.z_range[0] + 1e-9:
            return False
        a, b = self.corners(), other.corners()
        for axis in np.concatenate([self.axes(), other.axes()]):
            pa, pb = a @ axis, b @ axis
            if pa.max() + gap <= pb.min() or pb.max() + gap <= pa.min():
                return False
        return True

    def inside(self, lo, hi, margin: float = 0.0) -> bool:
        """True when the rectangle lies within the axis-aligned rectangle ``lo``-``hi`` (2,)
        shrunk by ``margin``."""
        c = self.corners()
        return bool(
            np.all(c >= np.asarray(lo) + margin - 1e-9)
            and np.all(c <= np.asarray(hi) - margin + 1e-9)
        )
