"""A tiny ray-cast RGB-D scene for tests, smoke runs and benchmarks: an axis-aligned room with
axis-aligned boxes, textured procedurally in world coordinates (so a surface looks the same from
every view), seen by a camera that circles the room and looks at points near its centre.

It is not the scene engine (``recon_ros.scenes``): train real models on its scenes. This one only
needs numpy, renders a 120x160 frame in milliseconds, and gives exact depth.
"""

from dataclasses import dataclass, field

import numpy as np

from recon_ros.core.poses import look_at_pose as look_at
from recon_ros.sufficiency.frames import Frame


@dataclass(frozen=True)
class Box:
    """Axis-aligned box ``[lo, hi]`` (world metres) with a base colour (RGB 0-255) and a texture
    frequency (cycles per metre)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    color: tuple[int, int, int]
    frequency: float = 4.0


@dataclass(frozen=True)
class ToyScene:
    """A room (interior of ``room``) holding ``boxes``."""

    room: Box
    boxes: tuple[Box, ...] = field(default_factory=tuple)


def _texture(points: np.ndarray, box: Box, axis: np.ndarray) -> np.ndarray:
    """Colour (N, 3) float of surface points on ``box``; ``axis`` (N,) is the face normal axis."""
    f = box.frequency
    coords = points * f
    # Use the two in-plane coordinates of each face for a checkerboard plus a smooth stripe.
    a = np.where(axis == 0, coords[:, 1], coords[:, 0])
    b = np.where(axis == 2, coords[:, 1], coords[:, 2])
    checker = (np.floor(a) + np.floor(b)) % 2
    stripe = 0.5 + 0.5 * np.sin(2.7 * a + 1.3 * b)
    shade = 0.45 + 0.35 * checker + 0.2 * stripe
    return np.asarray(box.color, dtype=np.float64)[None, :] * shade[:, None]


def render(scene: ToyScene, K: np.ndarray, T_world_cam: np.ndarray, hw: tuple[int, int]):
    """Ray-cast the scene.

    Args:
        scene: the room and boxes.
        K: (3, 3) intrinsics; T_world_cam: (4, 4) pose; hw: (H, W) image size.

    Returns:
        rgb (H, W, 3) uint8 and depth (H, W) float32 metres along the optical axis (0 where a
        ray leaves the room, which only happens for cameras outside it).
    """
    H, W = hw
    K = np.asarray(K, dtype=np.float64)
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    pix = np.stack([u.ravel(), v.ravel(), np.ones(H * W)], axis=1)
    dirs = pix @ np.linalg.inv(K).T @ T_world_cam[:3, :3].T  # (N, 3), camera z = 1: t == depth
    origin = T_world_cam[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        lo = (np.asarray(scene.room.lo) - origin) * inv
        hi = (np.asarray(scene.room.hi) - origin) * inv
        far = np.maximum(lo, hi)
        far = np.where(np.isnan(far), np.inf, far)
        t_best = far.min(axis=1)
        axis_best = far.argmin(axis=1)
        owner = np.full(H * W, -1)
        for b, box in enumerate(scene.boxes):
            lo = (np.asarray(box.lo) - origin) * inv
            hi = (np.asarray(box.hi) - origin) * inv
            near = np.minimum(lo, hi)
            near = np.where(np.isnan(near), -np.inf, near)
            far = np.maximum(lo, hi)
            far = np.where(np.isnan(far), np.inf, far)
            t_near, t_far = near.max(axis=1), far.min(axis=1)
            hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < t_best)
            t_best = np.where(hit, t_near, t_best)
            axis_best = np.where(hit, near.argmax(axis=1), axis_best)
            owner = np.where(hit, b, owner)
    valid = np.isfinite(t_best) & (t_best > 0)
    t = np.where(valid, t_best, 0.0)
    points = origin + dirs * t[:, None]
    colour = np.zeros((H * W, 3))
    for b, box in enumerate((scene.room, *scene.boxes)):
        sel = (owner == b - 1) & valid
        if np.any(sel):
            colour[sel] = _texture(points[sel], box, axis_best[sel])
    rgb = np.clip(colour, 0, 255).astype(np.uint8).reshape(H, W, 3)
    return rgb, t.astype(np.float32).reshape(H, W)


def random_scene(rng: np.random.Generator, num_boxes: int = 6) -> ToyScene:
    """A 5 x 4 x 2.6 m room with ``num_boxes`` random boxes standing on the floor."""
    room = Box((-2.5, -2.0, 0.0), (2.5, 2.0, 2.6), tuple(rng.integers(120, 230, 3)), 1.5)
    boxes = []
    for _ in range(num_boxes):
        size = rng.uniform([0.2, 0.2, 0.2], [0.9, 0.9, 1.3])
        centre = rng.uniform([-2.0, -1.6], [2.0, 1.6])
        lo = (*(centre - size[:2] / 2), 0.0)
        hi = (*(centre + size[:2] / 2), size[2])
        color = tuple(int(c) for c in rng.integers(30, 255, 3))
        boxes.append(Box(lo, hi, color, float(rng.uniform(3.0, 9.0))))
    return ToyScene(room, tuple(boxes))


class ToySequence:
    """A rendered camera path through a :func:`random_scene`: ``len(seq)`` frames, ``seq[i]`` a
    :class:`~recon_ros.sufficiency.frames.Frame` (rendered on first access, then kept).

    The camera circles the room centre on an ellipse at ~1.4 m height, ``arc`` radians over the
    sequence, and looks at a slowly wandering point near the centre.
    """

    def __init__(
        self,
        seed: int,
        *,
        num_frames: int = 24,
        hw: tuple[int, int] = (120, 160),
        arc: float = 2.0,
        num_boxes: int = 6,
        fps: float = 5.0,
    ):
        if num_frames <= 0:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        rng = np.random.default_rng(seed)
        self.name = f"toy_{seed}_{num_frames}_{hw[0]}x{hw[1]}_{arc:g}_{num_boxes}"
        self.scene = random_scene(rng, num_boxes)
        self.hw = hw
        H, W = hw
        f = 0.55 * W  # ~85 degree horizontal field of view
        self.K = np.array([[f, 0.0, (W - 1) / 2], [0.0, f, (H - 1) / 2], [0.0, 0.0, 1.0]])
        phase = rng.uniform(0, 2 * np.pi)
        wobble = rng.uniform(0, 2 * np.pi, 2)
        poses = []
        for i in range(num_frames):
            a = phase + arc * i / max(num_frames - 1, 1)
            pos = np.array([1.7 * np.cos(a), 1.3 * np.sin(a), 1.4 + 0.1 * np.sin(3 * a)])
            target = np.array(
                [0.6 * np.sin(2 * a + wobble[0]), 0.5 * np.cos(1.5 * a + wobble[1]), 0.6]
            )
            poses.append(look_at(pos, target))
        #: (N, 4, 4) ``T_world_cam`` of every frame (cheap metadata, no rendering).
        self.poses = np.stack(poses)
        self.stamps = [i / fps for i in range(num_frames)]
        self._cache: dict[int, Frame] = {}

    @property
    def height(self) -> int:
        return self.hw[0]

    @property
    def width(self) -> int:
        return self.hw[1]

    @property
    def intrinsics(self) -> np.ndarray:
        """(N, 3, 3) intrinsics of every frame (cheap metadata, no rendering)."""
        return np.repeat(self.K[None], len(self), axis=0)

    def __len__(self) -> int:
        return len(self.poses)

    def __getitem__(self, index: int) -> Frame:
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} out of range for {len(self)} frames")
        index %= len(self)
        if index not in self._cache:
            rgb, depth = render(self.scene, self.K, self.poses[index], self.hw)
            self._cache[index] = Frame(
                rgb, depth, self.K.copy(), self.poses[index].copy(), self.stamps[index]
            )
        return self._cache[index]
