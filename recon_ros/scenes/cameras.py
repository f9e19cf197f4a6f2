"""Cameras: pinhole intrinsics, look-at poses, smooth walks through the room and fixed rigs.

Poses are ``T_world_cam`` in the optical convention (x right, y down, z forward).

``walk``: a robot or hand-held camera moving at a constant ``speed`` along a centripetal
Catmull-Rom spline through random waypoints in free space (``clearance`` from every solid,
heights within ``height``), looking at targets that move along a second spline through points
inside the room. Frames are taken at ``frame_rate`` with equal arc-length spacing; paths that come
too close to a solid or turn faster than ``max_turn_rate`` are drawn again.

``rig``: ``rig_cameras`` fixed cameras spread round the room on an ellipse near the walls, high
up, looking at the middle of the room (the Everted U-Net paper used 3 views, the conjugate-pair
paper 8). Their frames are stamped one ``1 / frame_rate`` apart, as if one camera visited them in
turn; the sequence is not continuous.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from recon_ros.core.poses import look_at_pose as look_at
from recon_ros.scenes.scene import Scene, stream

#: Stamp of the first frame: 2023-11-14 22:13:20 UTC, a plausible recording time.
DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000


def default_intrinsics(width: int = 640, height: int = 480, fx: float | None = None) -> np.ndarray:
    """Pinhole K (3, 3) with square pixels, the principal point at the image centre (pixel
    centres at integers) and by default a Kinect-like focal length of 525 px at 640 wide
    (about 63 degrees across)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"width, height: must be positive, got {width}x{height}")
    f = 525.0 * width / 640.0 if fx is None else float(fx)
    if f <= 0:
        raise ValueError(f"fx: must be positive, got {fx}")
    return np.array([[f, 0.0, (width - 1) / 2], [0.0, f, (height - 1) / 2], [0.0, 0.0, 1.0]])


@dataclass
class TrajectoryConfig:
    """How cameras move (see the module docstring). Lengths in metres, angles in degrees."""

    kind: str = "walk"
    frames: int = 100
    frame_rate: float = 10.0
    speed: float = 0.4
    height: tuple[float, float] = (0.3, 1.8)
    clearance: float = 0.3
    target_height: tuple[float, float] = (0.2, 1.4)
    min_target_distance: float = 1.0
    waypoint_spacing: tuple[float, float] = (0.8, 2.5)
    max_turn_rate: float = 90.0
    roll_jitter: float = 2.0
    rig_cameras: int = 3
    rig_height: tuple[float, float] = (1.6, 2.3)
    rig_inset: float = 0.35
    #: azimuth (degrees) of the first rig camera round the room's middle; None draws it, so
    #: every scene has its own rig; a fixed value with a small ``rig_jitter`` is one
    #: installation (a studio) seen with its mounting tolerances
    rig_phase: float | None = None
    #: scale of the rig's random azimuth (0.15 rad) and aim (0.3 m) offsets
    rig_jitter: float = 1.0
    start_ns: int = DEFAULT_START_NS

    def __post_init__(self):
        if self.kind not in ("walk", "rig"):
            raise ValueError(f"kind: expected 'walk' or 'rig', got {self.kind!r}")
        if self.frames < 1:
            raise ValueError(f"frames: need at least one, got {self.frames}")
        if self.frame_rate <= 0 or self.speed <= 0:
            raise ValueError("frame_rate, speed: must be positive")
        if not 0 <= self.height[0] <= self.height[1]:
            raise ValueError(f"height: expected 0 <= lo <= hi, got {self.height}")
        if self.rig_cameras < 1:
            raise ValueError(f"rig_cameras: need at least one, got {self.rig_cameras}")
        if self.clearance < 0:
            raise ValueError(f"clearance: must be non-negative, got {self.clearance}")
        if self.rig_jitter < 0:
            raise ValueError(f"rig_jitter: must be non-negative, got {self.rig_jitter}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> TrajectoryConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class Trajectory:
    """Camera poses ``poses`` (N, 4, 4) ``T_world_cam`` at ``stamps_ns`` (N,) int64;
    ``continuous`` is False for rigs (consecutive frames are different cameras)."""

    kind: str
    poses: np.ndarray
    stamps_ns: np.ndarray
    frame_rate: float
    continuous: bool

    def __len__(self) -> int:
        return len(self.poses)


def frame_stamps(count: int, frame_rate: float, start_ns: int = DEFAULT_START_NS) -> np.ndarray:
    """Stamps (count,) int64 ns of frames taken at ``frame_rate`` from ``start_ns``."""
    return start_ns + np.round(np.arange(count) * (1e9 / frame_rate)).astype(np.int64)


# --------------------------------------------------------------------------------------------
# splines


def catmull_rom(points: np.ndarray, samples_per_segment: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Centripetal Catmull-Rom curve through ``points`` (M, D), M >= 2, densely sampled.

    The end tangents come from mirrored phantom points. Returns the samples (S, D) and their
    parameter (S,) running from 0 at ``points[0]`` to M - 1 at ``points[-1]`` (waypoint i sits
    at parameter i)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or len(points) < 2:
        raise ValueError(f"points: expected shape (M >= 2, D), got {points.shape}")
    padded = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    curves, params = [], []
    for i in range(len(points) - 1):
        p0, p1, p2, p3 = padded[i : i + 4]
        # Knot spacing: square root of chord lengths (centripetal: no cusps or self-loops).
        t0 = 0.0
        t1 = t0 + max(np.linalg.norm(p1 - p0) ** 0.5, 1e-6)
        t2 = t1 + max(np.linalg.norm(p2 - p1) ** 0.5, 1e-6)
        t3 = t2 + max(np.linalg.norm(p3 - p2) ** 0.5, 1e-6)
        last = i == len(points) - 2
        u = np.linspace(
            0, 1, samples_per_segment + 1 if last else samples_per_segment, endpoint=last
        )
        t = (t1 + u * (t2 - t1))[:, None]
        a1 = (t1 - t) / (t1 - t0) * p0 + (t - t0) / (t1 - t0) * p1
        a2 = (t2 - t) / (t2 - t1) * p1 + (t - t1) / (t2 - t1) * p2
        a3 = (t3 - t) / (t3 - t2) * p2 + (t - t2) / (t3 - t2) * p3
        b1 = (t2 - t) / (t2 - t0) * a1 + (t - t0) / (t2 - t0) * a2
        b2 = (t3 - t) / (t3 - t1) * a2 + (t - t1) / (t3 - t1) * a3
        curves.append((t2 - t) / (t2 - t1) * b1 + (t - t1) / (t2 - t1) * b2)
        params.append(i + u)
    return np.concatenate(curves), np.concatenate(params)


# --------------------------------------------------------------------------------------------
# trajectories


def _free_points(scene: Scene, rng, lo, hi, *, clearance, count) -> np.ndarray:
    """Up to ``count`` random points in the box ``lo``-``hi`` at least ``clearance`` from every
    solid (M, 3)."""
    candidates = rng.uniform(lo, hi, size=(count * 4, 3))
    distance, _ = scene.sdf(candidates)
    return candidates[distance >= clearance][:count]


def _walk_once(scene: Scene, config: TrajectoryConfig, rng, clearance: float):
    lo, hi = scene.room.interior
    margin = max(clearance, 0.05)
    box_lo = np.array([lo[0] + margin, lo[1] + margin, config.height[0]])
    box_hi = np.array([hi[0] - margin, hi[1] - margin, min(config.height[1], hi[2] - margin)])
    if np.any(box_hi <= box_lo):
        raise ValueError("height, clearance: no room for the camera inside the room")
    pool = _free_points(scene, rng, box_lo, box_hi, clearance=clearance, count=400)
    if len(pool) < 4:
        return None
    step = config.speed / config.frame_rate
    needed = (config.frames - 1) * step
    waypoints = [pool[int(rng.integers(0, len(pool)))]]
    length = 0.0
    direction = None
    while length < needed * 1.15 + 0.5 or len(waypoints) < 3:
        d = pool - waypoints[-1]
        dist = np.linalg.norm(d, axis=1)
        ok = (dist >= config.waypoint_spacing[0]) & (dist <= config.waypoint_spacing[1])
        if direction is not None:
            # No sharp reversals: keep within 100 degrees of the current heading.
            ok &= np.einsum("ij,j->i", d, direction) > np.cos(np.radians(100)) * dist
        choices = np.nonzero(ok)[0]
        if len(choices) == 0:
            return None
        nxt = pool[choices[int(rng.integers(0, len(choices)))]]
        direction = (nxt - waypoints[-1]) / np.linalg.norm(nxt - waypoints[-1])
        length += float(np.linalg.norm(nxt - waypoints[-1]))
        waypoints.append(nxt)
        if len(waypoints) > 200:
            return None
    waypoints = np.array(waypoints)
    curve, param = catmull_rom(waypoints)
    distance, _ = scene.sdf(curve)
    if distance.min() < 0.8 * clearance:
        return None
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    if arc[-1] < needed:
        return None
    s = np.arange(config.frames) * step
    eyes = np.stack([np.interp(s, arc, curve[:, k]) for k in range(3)], axis=1)
    eye_param = np.interp(s, arc, param)

    # Look-at targets: one per waypoint, far enough and at a comfortable pitch.
    t_lo = np.array([lo[0] + 0.3, lo[1] + 0.3, config.target_height[0]])
    t_hi = np.array([hi[0] - 0.3, hi[1] - 0.3, config.target_height[1]])
    targets = []
    for w in waypoints:
        candidates = rng.uniform(t_lo, t_hi, size=(256, 3))
        d = candidates - w
        horizontal = np.hypot(d[:, 0], d[:, 1])
        pitch = np.degrees(np.arctan2(d[:, 2], horizontal))
        ok = (
            (np.linalg.norm(d, axis=1) >= config.min_target_distance) & (pitch > -50) & (pitch < 20)
        )
        choices = np.nonzero(ok)[0]
        if len(choices) == 0:
            return None
        targets.append(candidates[choices[int(rng.integers(0, len(choices)))]])
    target_curve, target_param = catmull_rom(np.array(targets))
    looks = np.stack([np.interp(eye_param, target_param, target_curve[:, k]) for k in range(3)], 1)
    view = looks - eyes
    view_len = np.linalg.norm(view, axis=1)
    if view_len.min() < 0.5 or np.max(np.abs(view[:, 2]) / view_len) > 0.9:
        return None
    forward = view / view_len[:, None]
    if len(forward) > 1:
        turn = np.degrees(np.arccos(np.clip(np.sum(forward[1:] * forward[:-1], axis=1), -1, 1)))
        if turn.max() * config.frame_rate > config.max_turn_rate:
            return None
    # Slow hand-held roll wobble: a smooth random curve through a few knots.
    knots = max(2, int(config.frames / config.frame_rate / 2) + 2)
    roll_knots = rng.normal(0.0, np.radians(config.roll_jitter), size=(knots, 1))
    roll_curve, roll_param = catmull_rom(roll_knots)
    rolls = np.interp(np.linspace(0, knots - 1, config.frames), roll_param, roll_curve[:, 0])
    return np.stack([look_at(e, t, roll=r) for e, t, r in zip(eyes, looks, rolls, strict=True)])


def walk_trajectory(scene: Scene, config: TrajectoryConfig, rng: np.random.Generator) -> Trajectory:
    """A smooth camera walk through ``scene`` (see the module docstring).

    Raises ValueError when no path is found (e.g. a room too cluttered for ``clearance``); the
    clearance is relaxed down to 40% before giving up."""
    clearance = config.clearance
    for attempt in range(60):
        if attempt and attempt % 15 == 0:
            clearance *= 0.7
        poses = _walk_once(scene, config, rng, clearance)
        if poses is not None:
            stamps = frame_stamps(config.frames, config.frame_rate, config.start_ns)
            return Trajectory("walk", poses, stamps, config.frame_rate, True)
    raise ValueError(
        f"config: no camera path of {config.frames} frames found in this room "
        f"(clearance {config.clearance} m, speed {config.speed} m/s)"
    )


def rig_trajectory(scene: Scene, config: TrajectoryConfig, rng: np.random.Generator) -> Trajectory:
    """``config.rig_cameras`` fixed cameras round the room (see the module docstring)."""
    lo, hi = scene.room.interior
    center = (lo + hi) / 2
    semi = (hi[:2] - lo[:2]) / 2 - config.rig_inset
    drawn_phase = rng.uniform(0, 2 * np.pi)
    phase = drawn_phase if config.rig_phase is None else np.radians(config.rig_phase)
    jitter = config.rig_jitter
    poses = []
    for k in range(config.rig_cameras):
        angle = phase + 2 * np.pi * k / config.rig_cameras + jitter * rng.uniform(-0.15, 0.15)
        z = min(rng.uniform(*config.rig_height), hi[2] - 0.15)
        eye = np.array(
            [center[0] + semi[0] * np.cos(angle), center[1] + semi[1] * np.sin(angle), z]
        )
        target = np.array([center[0], center[1], rng.uniform(0.4, 0.8)])
        target[:2] += jitter * rng.uniform(-0.3, 0.3, size=2)
        # Slide towards the middle until the camera is clear of fixtures and objects.
        for _ in range(20):
            if scene.sdf(eye[None])[0][0] >= 0.15:
                break
            eye[:2] += (
                0.1 * (center[:2] - eye[:2]) / max(np.linalg.norm(center[:2] - eye[:2]), 1e-6)
            )
        poses.append(look_at(eye, target))
    stamps = frame_stamps(config.rig_cameras, config.frame_rate, config.start_ns)
    return Trajectory("rig", np.stack(poses), stamps, config.frame_rate, False)


def make_trajectory(scene: Scene, config: TrajectoryConfig | None = None, rng=None) -> Trajectory:
    """The trajectory of ``config.kind`` for ``scene``; ``rng`` defaults to the scene's
    ``trajectory`` stream."""
    config = config or TrajectoryConfig()
    rng = rng if rng is not None else stream(scene.seed, "trajectory")
    if config.kind == "walk":
        return walk_trajectory(scene, config, rng)
    return rig_trajectory(scene, config, rng)
