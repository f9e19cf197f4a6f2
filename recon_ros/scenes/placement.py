"""Object placement as in the Everted U-Net scene generator (Mymlikov et al., section 3.1).

Objects are placed one by one with a random translation and a random rotation about z. Each new
object's bounding box is checked against every object placed before it (and against the room's
fixtures); on a collision it is drawn again, and after ``retries`` failed draws it is hidden: it
stays in the scene file with ``hidden: true`` but appears in no image, volume or mesh. Children
(laptops, and some bags) are placed the same way on a parent (a table or nightstand), using the
parent's top as the area to place in and resting on it.

Bounding boxes: each object's axis-aligned box in its own frame gives a rectangle in the floor
plane (turned with the object's yaw, so an *oriented* rectangle in the world) and a height
interval. Two objects collide when their rectangles intersect (separating-axis test) or come
closer than ``gap``, *and* their height intervals overlap; so a laptop on a table does not collide
with it, and a chair does not fit under a table (the paper's box test, not an exact one).

Placement order: parents first (tables, nightstands), then chairs, people and floor bags, then
children. Nightstands (and some tables) are pushed against a wall with their back to it. A child
goes on a parent whose top can hold it, turned roughly square to the parent's edges (within 20
degrees).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recon_ros.scenes.geometry import Footprint, make_pose, rot_z, yaw_pose
from recon_ros.scenes.objects import CHILD_CLASSES, OBJECT_CLASSES, PARENT_CLASSES, ObjectModel

#: Maximum counts per class: the paper's (2 tables, 3 chairs, 2 nightstands, 3 bags, 3 people)
#: plus laptops.
DEFAULT_MAX_COUNTS: dict[str, int] = {
    "table": 2,
    "chair": 3,
    "nightstand": 2,
    "laptop": 2,
    "bag": 3,
    "human": 3,
}

PLACEMENT_ORDER = ("table", "nightstand", "chair", "human", "bag", "laptop")


@dataclass
class PlacementConfig:
    """Counts and rules of placement.

    Attributes:
        max_counts: class -> most instances per scene; each scene draws a count uniformly from
            ``min_counts[class]`` to ``max_counts[class]``.
        min_counts: class -> fewest instances (default 0).
        retries: draws per object before it is hidden (the paper's N).
        gap: least distance between two objects' rectangles (m).
        wall_margin: least distance between an object and the walls (m).
        on_parent_probability: class -> probability that an instance goes on a parent rather
            than on the floor. With no parent able to hold it, it goes on the floor, unless its
            probability is 1 (laptops): then it is hidden.
        against_wall_probability: class -> probability of standing with its back to a wall.
    """

    max_counts: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_COUNTS))
    min_counts: dict[str, int] = field(default_factory=dict)
    retries: int = 25
    gap: float = 0.03
    wall_margin: float = 0.02
    on_parent_probability: dict[str, float] = field(
        default_factory=lambda: {"laptop": 1.0, "bag": 0.35}
    )
    against_wall_probability: dict[str, float] = field(
        default_factory=lambda: {"nightstand": 0.7, "table": 0.3}
    )

    def __post_init__(self):
        for name, counts in (("max_counts", self.max_counts), ("min_counts", self.min_counts)):
            for cls, n in counts.items():
                if cls not in OBJECT_CLASSES:
                    raise ValueError(f"{name}: unknown class {cls!r}; classes are {OBJECT_CLASSES}")
                if int(n) < 0:
                    raise ValueError(f"{name}: count of {cls} must be >= 0, got {n}")
        for cls, n in self.min_counts.items():
            if n > self.max_counts.get(cls, 0):
                raise ValueError(f"min_counts: {cls} minimum {n} exceeds its maximum")
        if self.retries < 1:
            raise ValueError(f"retries: need at least one attempt, got {self.retries}")
        if self.gap < 0 or self.wall_margin < 0:
            raise ValueError("gap, wall_margin: must be non-negative")

    def to_dict(self) -> dict:
        return {
            "max_counts": dict(self.max_counts),
            "min_counts": dict(self.min_counts),
            "retries": self.retries,
            "gap": self.gap,
            "wall_margin": self.wall_margin,
            "on_parent_probability": dict(self.on_parent_probability),
            "against_wall_probability": dict(self.against_wall_probability),
        }

    @classmethod
    def from_dict(cls, d: dict) -> PlacementConfig:
        return cls(**d)


@dataclass
class Placement:
    """Where ``place_objects`` put one model: ``pose`` (4, 4) object -> world or ``None`` when
    hidden, the index of its parent in the input list, and the draws it took."""

    model: ObjectModel
    pose: np.ndarray | None
    parent: int | None
    attempts: int

    @property
    def hidden(self) -> bool:
        return self.pose is None


def footprint_of(model: ObjectModel, pose: np.ndarray) -> Footprint:
    """The world-frame collision box of ``model`` at ``pose`` (see the module docstring)."""
    lo, hi = model.bounds()
    center_local = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2])
    center = pose[:2, :2] @ center_local + pose[:2, 3]
    yaw = float(np.arctan2(pose[1, 0], pose[0, 0]))
    half = ((hi[0] - lo[0]) / 2, (hi[1] - lo[1]) / 2)
    z = float(pose[2, 3])
    return Footprint((float(center[0]), float(center[1])), half, yaw, (z + lo[2], z + hi[2]))


# Yaw that turns an object's back (-x) to each wall.
_WALL_YAW = {"x0": 0.0, "x1": np.pi, "y0": np.pi / 2, "y1": -np.pi / 2}


def _fits_on(child: ObjectModel, parent: ObjectModel) -> bool:
    """Whether ``child``'s rectangle fits in ``parent``'s support, turned 0 or 90 degrees."""
    if parent.support is None:
        return False
    lo, hi = child.bounds()
    cw, cd = hi[0] - lo[0], hi[1] - lo[1]
    sw = parent.support.hi[0] - parent.support.lo[0]
    sd = parent.support.hi[1] - parent.support.lo[1]
    return bool((cw <= sw and cd <= sd) or (cd <= sw and cw <= sd))


class _Placer:
    """Placement state: the room, the rules and the collision boxes placed so far."""

    def __init__(self, rng, interior, obstacles, config):
        self.rng = rng
        self.lo = np.asarray(interior[0], float)
        self.hi = np.asarray(interior[1], float)
        self.obstacles = list(obstacles)
        self.config = config
        self.footprints: dict[int, Footprint] = {}

    def collides(self, fp: Footprint, ignore: int | None = None) -> bool:
        gap = self.config.gap
        if any(fp.overlaps(o, gap) for o in self.obstacles):
            return True
        return any(fp.overlaps(o, gap) for i, o in self.footprints.items() if i != ignore)

    def _origin_range(self, model, yaw, lo, hi, margin):
        """Range ``(lo, hi)`` (2,) each of origins at which ``model`` turned by ``yaw`` lies in
        the rectangle ``lo``-``hi`` shrunk by ``margin``, or ``None`` if it cannot fit."""
        corners = footprint_of(model, yaw_pose(0.0, 0.0, 0.0, yaw)).corners()
        origin_lo = np.asarray(lo, float) + margin - corners.min(axis=0)
        origin_hi = np.asarray(hi, float) - margin - corners.max(axis=0)
        if np.any(origin_hi < origin_lo):
            return None
        return origin_lo, origin_hi

    def floor_pose(self, model: ObjectModel, against_wall: bool) -> np.ndarray | None:
        """A random pose on the floor, inside the room: any yaw, or the back to a wall."""
        rng, margin = self.rng, self.config.wall_margin
        if against_wall:
            wall = ("x0", "x1", "y0", "y1")[int(rng.integers(0, 4))]
            yaw = _WALL_YAW[wall]
        else:
            yaw = rng.uniform(0, 2 * np.pi)
        span = self._origin_range(model, yaw, self.lo[:2], self.hi[:2], margin)
        if span is None:
            return None
        x, y = rng.uniform(span[0][0], span[1][0]), rng.uniform(span[0][1], span[1][1])
        if against_wall:
            # Push it to the wall: the extreme of the range on that side.
            x = {"x0": span[0][0], "x1": span[1][0]}.get(wall, x)
            y = {"y0": span[0][1], "y1": span[1][1]}.get(wall, y)
        return yaw_pose(x, y, 0.0, yaw)

    def place_on_floor(self, model: ObjectModel) -> tuple[np.ndarray | None, int]:
        cls = model.class_name
        against = self.rng.random() < self.config.against_wall_probability.get(cls, 0.0)
        for attempt in range(1, self.config.retries + 1):
            pose = self.floor_pose(model, against)
            if pose is not None and not self.collides(footprint_of(model, pose)):
                return pose, attempt
        return None, self.config.retries

    def place_on_parent(
        self, model: ObjectModel, parent: ObjectModel, parent_pose: np.ndarray, parent_index: int
    ) -> tuple[np.ndarray | None, int]:
        """A random pose resting on the support of ``parent``, inside its rectangle."""
        support = parent.support
        bottom = model.bounds()[0][2]
        for attempt in range(1, self.config.retries + 1):
            # Roughly square to the parent's edges, as things are usually put down.
            yaw = int(self.rng.integers(0, 4)) * np.pi / 2 + self.rng.uniform(-0.35, 0.35)
            span = self._origin_range(model, yaw, support.lo, support.hi, 0.0)
            if span is None:
                continue
            x = self.rng.uniform(span[0][0], span[1][0])
            y = self.rng.uniform(span[0][1], span[1][1])
            pose = parent_pose @ make_pose(rot_z(yaw), (x, y, support.z - bottom))
            if not self.collides(footprint_of(model, pose), ignore=parent_index):
                return pose, attempt
        return None, self.config.retries


def place_objects(
    rng: np.random.Generator,
    models: list[ObjectModel],
    interior: tuple[np.ndarray, np.ndarray],
    obstacles: list[Footprint],
    config: PlacementConfig | None = None,
) -> list[Placement]:
    """Place ``models`` in the room (see the module docstring).

    Args:
        models: objects to place, in any order.
        interior: room interior bounds ``(lo, hi)`` (3,) each.
        obstacles: collision boxes already in the room (fixtures, space kept free by doors).
        config: placement rules.

    Returns:
        One ``Placement`` per model, in the order of ``models``.
    """
    config = config or PlacementConfig()
    placer = _Placer(rng, interior, obstacles, config)
    placements: dict[int, Placement] = {}
    order = sorted(range(len(models)), key=lambda i: PLACEMENT_ORDER.index(models[i].class_name))
    for index in order:
        model = models[index]
        cls = model.class_name
        on_parent = cls in CHILD_CLASSES and (
            rng.random() < config.on_parent_probability.get(cls, 0.0)
        )
        parent = None
        if on_parent:
            parents = [
                i
                for i in placer.footprints
                if models[i].class_name in PARENT_CLASSES and _fits_on(model, models[i])
            ]
            if not parents and config.on_parent_probability.get(cls, 0.0) >= 1.0:
                # Only ever on a parent (laptops) and there is none that can hold it.
                placements[index] = Placement(model, None, None, 0)
                continue
            on_parent = bool(parents)
        if on_parent:
            parent = parents[int(rng.integers(0, len(parents)))]
            pose, attempts = placer.place_on_parent(
                model, models[parent], placements[parent].pose, parent
            )
        else:
            pose, attempts = placer.place_on_floor(model)
        placements[index] = Placement(model, pose, parent if pose is not None else None, attempts)
        if pose is not None:
            placer.footprints[index] = footprint_of(model, pose)
    return [placements[i] for i in range(len(models))]
