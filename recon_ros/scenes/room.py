"""The room: floor, walls and ceiling as solid slabs, openings and things fixed to the walls.

World frame: the room's interior spans ``x`` in [0, Lx], ``y`` in [0, Ly], ``z`` in [0, H] (floor
at z = 0). The floor slab lies below z = 0, the ceiling slab above z = H and the four walls just
outside the interior, each ``wall_thickness`` thick, overlapping at the corners so the shell is
watertight. Walls are named by the side they close: ``x0`` (x = 0), ``x1`` (x = Lx), ``y0``, ``y1``.

Openings cut a wall from its inner face to its outer face:

- ``door``: a closed door leaf recessed into the hole, with a casing around it and a knob;
- ``window``: a pane (an opaque, bright "view") set into the middle of the wall, a sill and bars;
- ``passage``: an open doorway into a shallow dead-end alcove closed by its own slabs, so rays
  never leave the scene.

Fixtures on the walls (labelled ``wall``): picture frames, screens and whiteboards, shelves with
brackets, radiators, and skirting boards along the floor. Objects are placed around them: they
are returned as obstacles (``Footprint``) together with the free space kept in front of doors and
passages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from recon_ros.scenes.appearance import Material, pick, random_material
from recon_ros.scenes.geometry import (
    Footprint,
    Primitive,
    box_between,
    cylinder_between,
    sphere,
)

WALLS = ("x0", "x1", "y0", "y1")
OPENING_KINDS = ("door", "window", "passage")


@dataclass
class RoomConfig:
    """Ranges the room is drawn from (metres; counts are inclusive ranges)."""

    size_x: tuple[float, float] = (4.0, 8.0)
    size_y: tuple[float, float] = (3.0, 6.0)
    height: tuple[float, float] = (2.4, 3.0)
    wall_thickness: tuple[float, float] = (0.12, 0.2)
    doors: tuple[int, int] = (0, 2)
    windows: tuple[int, int] = (0, 2)
    passages: tuple[int, int] = (0, 1)
    frames: tuple[int, int] = (0, 4)
    shelves: tuple[int, int] = (0, 2)
    radiators: tuple[int, int] = (0, 1)
    skirting_probability: float = 0.6

    def __post_init__(self):
        for name in ("size_x", "size_y", "height", "wall_thickness"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name}: expected 0 < lo <= hi, got {(lo, hi)}")
        if self.height[0] < 2.2:
            raise ValueError(
                f"height: rooms lower than 2.2 m leave no room for doors, got {self.height}"
            )
        for name in ("doors", "windows", "passages", "frames", "shelves", "radiators"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}: expected 0 <= lo <= hi, got {(lo, hi)}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> RoomConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass
class Opening:
    """A hole through wall ``wall`` spanning ``u`` (along the wall, from its start corner) and
    ``z`` (height); ``depth`` is the alcove depth behind a passage (0 otherwise)."""

    kind: str
    wall: str
    u: tuple[float, float]
    z: tuple[float, float]
    depth: float = 0.0

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "wall": self.wall,
            "u": [float(v) for v in self.u],
            "z": [float(v) for v in self.z],
            "depth": float(self.depth),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Opening:
        return cls(d["kind"], d["wall"], tuple(d["u"]), tuple(d["z"]), d["depth"])


@dataclass
class Room:
    """The drawn room: interior size ``(Lx, Ly, H)``, wall thickness and openings."""

    size: tuple[float, float, float]
    wall_thickness: float
    openings: list[Opening] = field(default_factory=list)

    @property
    def interior(self) -> tuple[np.ndarray, np.ndarray]:
        """Interior bounds ``(lo, hi)`` (3,) each."""
        return np.zeros(3), np.asarray(self.size, dtype=np.float64)

    def wall_frame(self, wall: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """``(origin, e_u, e_w, length)`` of a wall: points are ``origin + u e_u + w e_w + z ez``
        with ``u`` along the inner face, ``w`` outward from it (w = 0 on the inner face)."""
        lx, ly, _ = self.size
        frames = {
            "y0": ((0.0, 0.0, 0.0), (1.0, 0.0, 0.0), (0.0, -1.0, 0.0), lx),
            "y1": ((0.0, ly, 0.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), lx),
            "x0": ((0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (-1.0, 0.0, 0.0), ly),
            "x1": ((lx, 0.0, 0.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0), ly),
        }
        if wall not in frames:
            raise ValueError(f"wall: expected one of {WALLS}, got {wall!r}")
        origin, e_u, e_w, length = frames[wall]
        return np.array(origin), np.array(e_u), np.array(e_w), float(length)

    def wall_box(self, wall: str, u, w, z) -> tuple[np.ndarray, np.ndarray]:
        """World bounds ``(lo, hi)`` of the box spanning ``u``, ``w``, ``z`` (lo, hi) in the
        frame of ``wall``."""
        origin, e_u, e_w, _ = self.wall_frame(wall)
        corners = [
            origin + a * e_u + b * e_w + np.array([0.0, 0.0, c]) for a in u for b in w for c in z
        ]
        return np.min(corners, axis=0), np.max(corners, axis=0)

    def cavities(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The air spaces of the room: the interior plus, per opening, the hole through the
        wall (up to the leaf of a door or the pane of a window) and the alcove of a passage."""
        boxes = [self.interior]
        t = self.wall_thickness
        for opening in self.openings:
            if opening.kind == "door":
                w_end = 0.02
            elif opening.kind == "window":
                w_end = t / 2
            else:
                w_end = t + opening.depth
            boxes.append(self.wall_box(opening.wall, opening.u, (0.0, w_end), opening.z))
        return boxes

    def to_dict(self) -> dict:
        return {
            "size": [float(v) for v in self.size],
            "wall_thickness": float(self.wall_thickness),
            "openings": [o.to_dict() for o in self.openings],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Room:
        return cls(
            tuple(d["size"]), d["wall_thickness"], [Opening.from_dict(o) for o in d["openings"]]
        )


@dataclass
class RoomPart:
    """A piece of the room to become one scene instance: its class (floor, wall or ceiling),
    role (``structure`` or ``fixture``), primitives in world coordinates and materials."""

    class_name: str
    variant: str
    role: str
    primitives: list[Primitive]
    materials: dict[str, Material]


@dataclass
class RoomLayout:
    """``build_room``'s result: the room, its parts and the obstacles objects must avoid."""

    room: Room
    parts: list[RoomPart]
    obstacles: list[Footprint]


# --------------------------------------------------------------------------------------------


def _intervals_clear(interval, taken, gap) -> bool:
    return all(interval[1] + gap <= a or b + gap <= interval[0] for a, b in taken)


def _draw_openings(rng: np.random.Generator, room: Room, config: RoomConfig) -> list[Opening]:
    """Openings placed on random walls, away from corners and from each other."""
    lx, ly, height = room.size
    wanted = []
    for kind, (lo, hi) in (
        ("door", config.doors),
        ("passage", config.passages),
        ("window", config.windows),
    ):
        wanted += [kind] * int(rng.integers(lo, hi + 1))
    openings: list[Opening] = []
    taken: dict[str, list[tuple[float, float]]] = {w: [] for w in WALLS}
    for kind in wanted:
        for _attempt in range(20):
            wall = WALLS[int(rng.integers(0, 4))]
            length = lx if wall.startswith("y") else ly
            if kind == "door":
                width, z = rng.uniform(0.8, 1.0), (0.0, min(rng.uniform(2.0, 2.1), height - 0.2))
                depth = 0.0
            elif kind == "passage":
                width, z = rng.uniform(0.8, 1.2), (0.0, min(rng.uniform(2.0, 2.2), height - 0.2))
                depth = rng.uniform(0.4, 1.0)
            else:
                sill = rng.uniform(0.8, 1.0)
                width, z = (
                    rng.uniform(0.8, 1.6),
                    (sill, min(sill + rng.uniform(1.0, 1.4), height - 0.25)),
                )
                depth = 0.0
            if length < width + 0.8:
                continue
            u0 = rng.uniform(0.35, length - 0.35 - width)
            interval = (u0, u0 + width)
            if _intervals_clear(interval, taken[wall], 0.4):
                taken[wall].append(interval)
                openings.append(Opening(kind, wall, interval, z, depth))
                break
    return openings


def _wall_pieces(room: Room, wall: str, material: str) -> list[Primitive]:
    """The wall slab of ``wall`` minus its openings, as boxes."""
    t = room.wall_thickness
    height = room.size[2]
    _, _, _, length = room.wall_frame(wall)
    # y walls run past the corners to close them.
    u_start, u_end = (-t, length + t) if wall.startswith("y") else (0.0, length)
    holes = sorted((o for o in room.openings if o.wall == wall), key=lambda o: o.u[0])
    pieces = []
    cursor = u_start
    for hole in holes:
        if hole.u[0] > cursor:
            pieces.append(((cursor, hole.u[0]), (0.0, height)))
        if hole.z[0] > 0:
            pieces.append((hole.u, (0.0, hole.z[0])))
        if hole.z[1] < height:
            pieces.append((hole.u, (hole.z[1], height)))
        cursor = hole.u[1]
    if cursor < u_end:
        pieces.append(((cursor, u_end), (0.0, height)))
    return [
        box_between(*room.wall_box(wall, u, (0.0, t), z), material=material, part=f"wall_{wall}")
        for u, z in pieces
    ]


def build_room(rng: np.random.Generator, config: RoomConfig | None = None) -> RoomLayout:
    """Draw a room from ``config`` (see ``RoomConfig``) and build its slabs and fixtures."""
    config = config or RoomConfig()
    size = (
        rng.uniform(*config.size_x),
        rng.uniform(*config.size_y),
        rng.uniform(*config.height),
    )
    room = Room(size, rng.uniform(*config.wall_thickness))
    room.openings = _draw_openings(rng, room, config)
    lx, ly, height = size
    t = room.wall_thickness

    wall_paint = random_material(rng, "paint")
    materials_wall = {"paint": wall_paint}
    accent_wall = WALLS[int(rng.integers(0, 4))] if rng.random() < 0.25 else None
    if accent_wall:
        materials_wall["accent"] = random_material(rng, "paint")
    skirting = rng.random() < config.skirting_probability
    materials_wall["skirting"] = random_material(rng, pick(rng, ["paint", "wood"]))
    skirting_h = rng.uniform(0.06, 0.1)

    floor_prims = [box_between((-t, -t, -t), (lx + t, ly + t, 0.0), "floor", "floor_slab")]
    ceiling_prims = [
        box_between((-t, -t, height), (lx + t, ly + t, height + t), "ceiling", "ceiling_slab")
    ]
    parts: list[RoomPart] = []
    obstacles: list[Footprint] = []
    # Fixture spans per wall (u interval, z interval), to keep fixtures apart.
    taken: dict[str, list[tuple[tuple[float, float], tuple[float, float]]]] = {w: [] for w in WALLS}

    for wall in WALLS:
        material = "accent" if wall == accent_wall else "paint"
        prims = _wall_pieces(room, wall, material)
        if skirting:
            _, _, _, length = room.wall_frame(wall)
            cuts = sorted(o.u for o in room.openings if o.wall == wall and o.kind != "window")
            cursor = 0.0
            for a, b in [*cuts, (length, length)]:
                if a - cursor > 0.05:
                    lo, hi = room.wall_box(wall, (cursor, a), (-0.012, 0.0), (0.0, skirting_h))
                    prims.append(box_between(lo, hi, "skirting", "skirting"))
                cursor = b
        parts.append(RoomPart("wall", f"wall_{wall}", "structure", prims, dict(materials_wall)))

    for opening in room.openings:
        wall, (u0, u1), (z0, z1) = opening.wall, opening.u, opening.z
        taken[wall].append(((u0 - 0.12, u1 + 0.12), (0.0, height)))
        if opening.kind in ("door", "passage"):
            # Keep the floor in front of doors and passages free.
            lo, hi = room.wall_box(wall, (u0 - 0.1, u1 + 0.1), (-0.9, 0.0), (0.0, z1))
            obstacles.append(
                Footprint(
                    tuple((lo[:2] + hi[:2]) / 2), tuple((hi[:2] - lo[:2]) / 2), 0.0, (0.0, z1)
                )
            )
        if opening.kind == "door":
            mats = {
                "leaf": random_material(rng, pick(rng, ["wood", "paint"])),
                "casing": random_material(rng, "paint"),
                "knob": random_material(rng, "metal"),
            }
            casing_w = rng.uniform(0.05, 0.08)
            prims = [
                box_between(*room.wall_box(wall, (u0, u1), (0.02, 0.06), (0.0, z1)), "leaf", "leaf")
            ]
            prims.append(
                box_between(
                    *room.wall_box(wall, (u0 - casing_w, u0), (-0.015, 0.0), (0.0, z1 + casing_w)),
                    "casing",
                    "casing",
                )
            )
            prims.append(
                box_between(
                    *room.wall_box(wall, (u1, u1 + casing_w), (-0.015, 0.0), (0.0, z1 + casing_w)),
                    "casing",
                    "casing",
                )
            )
            prims.append(
                box_between(
                    *room.wall_box(wall, (u0, u1), (-0.015, 0.0), (z1, z1 + casing_w)),
                    "casing",
                    "casing",
                )
            )
            origin, e_u, e_w, _ = room.wall_frame(wall)
            knob_u = u1 - 0.07 if rng.random() < 0.5 else u0 + 0.07
            base = origin + knob_u * e_u + np.array([0, 0, 1.0])
            prims.append(
                cylinder_between(base + 0.02 * e_w, base - 0.04 * e_w, 0.008, "knob", "knob_stem")
            )
            prims.append(sphere(0.025, base - 0.05 * e_w, material="knob", part="knob"))
            parts.append(RoomPart("wall", "door", "fixture", prims, mats))
        elif opening.kind == "window":
            mats = {
                "glass": random_material(rng, "glass"),
                "frame": random_material(rng, pick(rng, ["paint", "wood"])),
            }
            prims = [
                box_between(
                    *room.wall_box(wall, (u0, u1), (t / 2, t / 2 + 0.01), (z0, z1)), "glass", "pane"
                )
            ]
            um, zm = 0.5 * (u0 + u1), 0.5 * (z0 + z1)
            prims.append(
                box_between(
                    *room.wall_box(wall, (um - 0.02, um + 0.02), (t / 2 - 0.04, t / 2), (z0, z1)),
                    "frame",
                    "bar",
                )
            )
            prims.append(
                box_between(
                    *room.wall_box(wall, (u0, u1), (t / 2 - 0.04, t / 2), (zm - 0.02, zm + 0.02)),
                    "frame",
                    "bar",
                )
            )
            prims.append(
                box_between(
                    *room.wall_box(wall, (u0 - 0.05, u1 + 0.05), (-0.05, t / 2), (z0 - 0.03, z0)),
                    "frame",
                    "sill",
                )
            )
            parts.append(RoomPart("wall", "window", "fixture", prims, mats))
        else:  # passage: an alcove closed by slabs of the wall's thickness
            d = opening.depth
            alcove = []
            alcove.append(
                box_between(
                    *room.wall_box(wall, (u0 - t, u1 + t), (t + d, 2 * t + d), (-t, z1 + t)),
                    "paint",
                    "alcove_back",
                )
            )
            alcove.append(
                box_between(
                    *room.wall_box(wall, (u0 - t, u0), (t, t + d), (-t, z1 + t)),
                    "paint",
                    "alcove_side",
                )
            )
            alcove.append(
                box_between(
                    *room.wall_box(wall, (u1, u1 + t), (t, t + d), (-t, z1 + t)),
                    "paint",
                    "alcove_side",
                )
            )
            alcove.append(
                box_between(
                    *room.wall_box(wall, (u0, u1), (t, t + d), (z1, z1 + t)), "paint", "alcove_top"
                )
            )
            parts[WALLS.index(wall)].primitives.extend(alcove)
            floor_prims.append(
                box_between(
                    *room.wall_box(wall, (u0, u1), (t, t + d), (-t, 0.0)), "floor", "alcove_floor"
                )
            )

    layout = RoomLayout(room, parts, obstacles)
    _add_wall_fixtures(rng, room, config, layout, taken)

    parts.insert(
        0,
        RoomPart(
            "floor", "floor", "structure", floor_prims, {"floor": random_material(rng, "floor")}
        ),
    )
    parts.insert(
        1,
        RoomPart(
            "ceiling",
            "ceiling",
            "structure",
            ceiling_prims,
            {"ceiling": random_material(rng, "ceiling")},
        ),
    )
    return layout


def _place_on_wall(rng, room, taken, width, z_range, *, gap=0.15):
    """A free ``(wall, (u0, u1))`` for a fixture ``width`` wide spanning heights ``z_range``,
    or ``None`` after 20 tries."""
    for _ in range(20):
        wall = WALLS[int(rng.integers(0, 4))]
        _, _, _, length = room.wall_frame(wall)
        if length < width + 0.4:
            continue
        u0 = rng.uniform(0.2, length - 0.2 - width)
        clear = all(
            u0 + width + gap <= a or b + gap <= u0 or z_range[1] <= zl or zh <= z_range[0]
            for (a, b), (zl, zh) in taken[wall]
        )
        if clear:
            taken[wall].append(((u0, u0 + width), z_range))
            return wall, (u0, u0 + width)
    return None


def _obstacle(lo, hi) -> Footprint:
    return Footprint(
        tuple((lo[:2] + hi[:2]) / 2),
        tuple((hi[:2] - lo[:2]) / 2),
        0.0,
        (float(lo[2]), float(hi[2])),
    )


def _add_wall_fixtures(rng, room, config, layout: RoomLayout, taken) -> None:
    """Add picture frames, screens, whiteboards, shelves and radiators on free stretches of wall
    to ``layout`` (parts and obstacles)."""
    parts, obstacles = layout.parts, layout.obstacles
    height = room.size[2]
    for _ in range(int(rng.integers(config.frames[0], config.frames[1] + 1))):
        kind = pick(rng, ["picture", "picture", "screen", "whiteboard"])
        width = rng.uniform(0.8, 1.4) if kind != "picture" else rng.uniform(0.3, 1.2)
        tall = width * rng.uniform(0.55, 0.7) if kind != "picture" else rng.uniform(0.3, 0.9)
        zc = min(rng.uniform(1.2, 1.7), height - 0.2 - tall / 2)
        z_range = (zc - tall / 2, zc + tall / 2)
        spot = _place_on_wall(rng, room, taken, width, z_range)
        if spot is None:
            continue
        wall, (u0, u1) = spot
        depth = rng.uniform(0.02, 0.04) if kind == "picture" else rng.uniform(0.03, 0.06)
        border = rng.uniform(0.02, 0.06) if kind == "picture" else rng.uniform(0.01, 0.03)
        face_family = {"picture": "canvas", "screen": "screen", "whiteboard": "ceiling"}[kind]
        frame_family = {"picture": "wood", "screen": "plastic", "whiteboard": "metal"}[kind]
        mats = {
            "frame": random_material(rng, frame_family),
            "face": random_material(rng, face_family),
        }
        prims = [
            box_between(*room.wall_box(wall, (u0, u1), (-depth, 0.0), z_range), "frame", "frame")
        ]
        prims.append(
            box_between(
                *room.wall_box(
                    wall,
                    (u0 + border, u1 - border),
                    (-depth - 0.003, -depth + 0.001),
                    (z_range[0] + border, z_range[1] - border),
                ),
                "face",
                "face",
            )
        )
        parts.append(RoomPart("wall", kind, "fixture", prims, mats))
        obstacles.append(_obstacle(*room.wall_box(wall, (u0, u1), (-depth - 0.003, 0.0), z_range)))
    for _ in range(int(rng.integers(config.shelves[0], config.shelves[1] + 1))):
        width, depth, thick = (
            rng.uniform(0.6, 1.4),
            rng.uniform(0.18, 0.3),
            rng.uniform(0.018, 0.03),
        )
        z = min(rng.uniform(1.0, 1.9), height - 0.3)
        spot = _place_on_wall(rng, room, taken, width, (z - 0.16, z + 0.3))
        if spot is None:
            continue
        wall, (u0, u1) = spot
        mats = {
            "board": random_material(rng, pick(rng, ["wood", "paint"])),
            "bracket": random_material(rng, "metal"),
        }
        prims = [
            box_between(
                *room.wall_box(wall, (u0, u1), (-depth, 0.0), (z - thick, z)), "board", "board"
            )
        ]
        for ub in (u0 + 0.08, u1 - 0.1):
            prims.append(
                box_between(
                    *room.wall_box(wall, (ub, ub + 0.02), (-0.012, 0.0), (z - 0.16, z - thick)),
                    "bracket",
                    "bracket",
                )
            )
            prims.append(
                box_between(
                    *room.wall_box(
                        wall, (ub, ub + 0.02), (-0.8 * depth, -0.012), (z - thick - 0.02, z - thick)
                    ),
                    "bracket",
                    "bracket",
                )
            )
        parts.append(RoomPart("wall", "shelf", "fixture", prims, mats))
        obstacles.append(_obstacle(*room.wall_box(wall, (u0, u1), (-depth, 0.0), (z - 0.16, z))))
    for _ in range(int(rng.integers(config.radiators[0], config.radiators[1] + 1))):
        width, tall = rng.uniform(0.6, 1.2), rng.uniform(0.4, 0.6)
        z0, depth = rng.uniform(0.1, 0.2), rng.uniform(0.06, 0.1)
        spot = _place_on_wall(rng, room, taken, width, (0.0, z0 + tall))
        if spot is None:
            continue
        wall, (u0, u1) = spot
        _, e_u, _, _ = room.wall_frame(wall)
        paint = random_material(rng, "paint")
        # Vertical fins: stripes varying along the wall.
        fins = Material(
            "stripes",
            paint.color,
            tuple(0.7 * c for c in paint.color),
            0.05,
            tuple(e_u),
            1.0,
            paint.seed,
        )
        mats = {"body": fins, "bracket": random_material(rng, "metal")}
        prims = [
            box_between(
                *room.wall_box(wall, (u0, u1), (-0.03 - depth, -0.03), (z0, z0 + tall)),
                "body",
                "body",
            )
        ]
        for ub in (u0 + 0.1, u1 - 0.12):
            prims.append(
                box_between(
                    *room.wall_box(
                        wall, (ub, ub + 0.02), (-0.03, 0.0), (z0 + tall - 0.1, z0 + tall - 0.05)
                    ),
                    "bracket",
                    "bracket",
                )
            )
        parts.append(RoomPart("wall", "radiator", "fixture", prims, mats))
        obstacles.append(
            _obstacle(*room.wall_box(wall, (u0, u1), (-0.03 - depth, 0.0), (0.0, z0 + tall)))
        )
