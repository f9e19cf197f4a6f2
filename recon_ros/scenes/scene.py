"""A synthetic scene: the room, its fixtures and lamps, the placed objects, the lighting.

``generate_scene(seed, config)`` is deterministic: the seed feeds independent numpy streams for
the room and objects, the lighting, the camera trajectory and the sensor noise (``stream``), so
changing e.g. the number of frames does not move any object.

Every element is a ``SceneObject`` with a 1-based ``instance_id`` (0 means "nothing" in instance
images): first the room's structure (floor, ceiling, four walls), then its fixtures (doors,
windows, frames, shelves, radiators, lamps; all labelled ``wall`` or ``ceiling``), then the placed
objects in class order. Hidden objects (placement failed) keep their id and entry with
``hidden = True`` and take part in nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recon_ros.core.classes import CLASS_IDS
from recon_ros.scenes.appearance import Light, Lighting, Material, random_lighting, random_material
from recon_ros.scenes.geometry import (
    Primitive,
    cylinder_between,
    invert_pose,
    local_sdf,
    transform_points,
)
from recon_ros.scenes.objects import OBJECT_CLASSES, VARIANT_SETS, Support, build_object
from recon_ros.scenes.placement import PlacementConfig, place_objects
from recon_ros.scenes.room import Room, RoomConfig, build_room

#: Bumped whenever the same seed and config would give a different scene.
GENERATOR_VERSION = "1.0.0"

#: Independent random streams of one scene (see ``stream``).
STREAMS = {"layout": 1, "lighting": 2, "trajectory": 3, "sensor": 4}

ROLES = ("structure", "fixture", "object")


def stream(seed: int, name: str, *extra: int) -> np.random.Generator:
    """The numpy Generator of stream ``name`` (a key of ``STREAMS``) of scene ``seed``;
    ``extra`` integers give sub-streams (e.g. a frame index)."""
    if name not in STREAMS:
        raise ValueError(f"name: expected one of {sorted(STREAMS)}, got {name!r}")
    if int(seed) < 0:
        raise ValueError(f"seed: must be non-negative, got {seed}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), STREAMS[name], *extra]))


def scene_seed(base_seed: int, index: int) -> int:
    """Seed of scene ``index`` of a dataset generated from ``base_seed`` (a 32-bit integer)."""
    if int(base_seed) < 0 or int(index) < 0:
        raise ValueError(f"base_seed, index: must be non-negative, got {base_seed}, {index}")
    return int(np.random.SeedSequence([int(base_seed), int(index)]).generate_state(1)[0])


@dataclass
class SceneConfig:
    """What ``generate_scene`` draws from."""

    room: RoomConfig = field(default_factory=RoomConfig)
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    point_lights: tuple[int, int] = (1, 3)
    directional_light_probability: float = 0.5
    lamps: bool = True
    #: which object variants the scene may draw (``objects.VARIANT_SETS``): "train" and
    #: "held_out" split the shapes so held-out data has shapes training never saw
    variant_set: str = "all"

    def __post_init__(self) -> None:
        if self.variant_set not in VARIANT_SETS:
            raise ValueError(
                f"variant_set: expected one of {VARIANT_SETS}, got {self.variant_set!r}"
            )

    def to_dict(self) -> dict:
        return {
            "room": self.room.to_dict(),
            "placement": self.placement.to_dict(),
            "point_lights": list(self.point_lights),
            "directional_light_probability": self.directional_light_probability,
            "lamps": self.lamps,
            "variant_set": self.variant_set,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SceneConfig:
        return cls(
            RoomConfig.from_dict(d["room"]),
            PlacementConfig.from_dict(d["placement"]),
            tuple(d["point_lights"]),
            d["directional_light_probability"],
            d["lamps"],
            d.get("variant_set", "all"),  # scenes written before the split drew from all
        )


@dataclass
class SceneObject:
    """One instance in the scene.

    Attributes:
        instance_id: 1-based id used in instance images and volumes.
        class_name: a class of ``recon_ros.core.classes`` (floor ... human).
        variant: builder variant ("four_legged", "door", "wall_x0" ...).
        role: ``structure`` (slabs), ``fixture`` (things fixed to the room) or ``object``.
        pose: (4, 4) object frame -> world; ``None`` when hidden.
        primitives: solids in the object frame.
        materials: material name -> ``Material``.
        hidden: placement failed; absent from every output.
        parent_id: instance id of the object it rests on, or ``None``.
        support: rectangle children may rest on (object frame), or ``None``.
        dimensions: the builder's drawn dimensions.
        attempts: placement draws used.
    """

    instance_id: int
    class_name: str
    variant: str
    role: str
    pose: np.ndarray | None
    primitives: list[Primitive]
    materials: dict[str, Material]
    hidden: bool = False
    parent_id: int | None = None
    support: Support | None = None
    dimensions: dict[str, float] = field(default_factory=dict)
    attempts: int = 0

    def __post_init__(self):
        if self.class_name not in CLASS_IDS:
            raise ValueError(f"class_name: unknown class {self.class_name!r}")
        if self.role not in ROLES:
            raise ValueError(f"role: expected one of {ROLES}, got {self.role!r}")
        if self.hidden != (self.pose is None):
            raise ValueError("pose: hidden objects have no pose and visible ones need one")
        for p in self.primitives:
            if p.material not in self.materials:
                raise ValueError(f"materials: primitive {p.part!r} names missing {p.material!r}")

    @property
    def class_id(self) -> int:
        return CLASS_IDS[self.class_name]

    def world_primitives(self) -> list[Primitive]:
        """The primitives moved to the world frame (empty when hidden)."""
        if self.hidden:
            return []
        return [p.moved(self.pose) for p in self.primitives]

    def to_dict(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "class": self.class_name,
            "class_id": self.class_id,
            "variant": self.variant,
            "role": self.role,
            "hidden": self.hidden,
            "parent_id": self.parent_id,
            "pose": None if self.pose is None else [[float(v) for v in row] for row in self.pose],
            "dimensions": {k: float(v) for k, v in self.dimensions.items()},
            "support": None if self.support is None else self.support.to_dict(),
            "attempts": self.attempts,
            "materials": {k: m.to_dict() for k, m in self.materials.items()},
            "primitives": [p.to_dict() for p in self.primitives],
        }

    @classmethod
    def from_dict(cls, d: dict) -> SceneObject:
        return cls(
            instance_id=d["instance_id"],
            class_name=d["class"],
            variant=d["variant"],
            role=d["role"],
            pose=None if d["pose"] is None else np.array(d["pose"], dtype=np.float64),
            primitives=[Primitive.from_dict(p) for p in d["primitives"]],
            materials={k: Material.from_dict(m) for k, m in d["materials"].items()},
            hidden=d["hidden"],
            parent_id=d["parent_id"],
            support=None if d["support"] is None else Support.from_dict(d["support"]),
            dimensions=dict(d["dimensions"]),
            attempts=d["attempts"],
        )


@dataclass
class Scene:
    """A generated scene (see the module docstring)."""

    seed: int
    room: Room
    objects: list[SceneObject]
    lighting: Lighting
    config: SceneConfig = field(default_factory=SceneConfig)
    generator_version: str = GENERATOR_VERSION

    def __post_init__(self):
        for index, obj in enumerate(self.objects):
            if obj.instance_id != index + 1:
                raise ValueError("objects: instance ids must be 1, 2, ... in list order")
        self._cache: dict | None = None

    def object(self, instance_id: int) -> SceneObject:
        return self.objects[instance_id - 1]

    def visible_objects(self) -> list[SceneObject]:
        return [o for o in self.objects if not o.hidden]

    def primitive_table(self) -> PrimitiveTable:
        """World-frame primitives of all visible objects with their owners (cached)."""
        if self._cache is None:
            self._cache = {"table": PrimitiveTable.from_objects(self.visible_objects())}
        return self._cache["table"]

    def sdf(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance (N,) of ``points`` (N, 3) to the scene's solids (union of all visible
        primitives, room slabs included) and the index (N,) of the nearest primitive in
        ``primitive_table()``."""
        return self.primitive_table().sdf(points)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds ``(lo, hi)`` of the room's air spaces (interior, holes, alcoves)."""
        boxes = self.room.cavities()
        return np.min([b[0] for b in boxes], axis=0), np.max([b[1] for b in boxes], axis=0)

    def to_dict(self) -> dict:
        return {
            "seed": int(self.seed),
            "generator_version": self.generator_version,
            "config": self.config.to_dict(),
            "room": self.room.to_dict(),
            "lighting": self.lighting.to_dict(),
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(
            seed=d["seed"],
            room=Room.from_dict(d["room"]),
            objects=[SceneObject.from_dict(o) for o in d["objects"]],
            lighting=Lighting.from_dict(d["lighting"]),
            config=SceneConfig.from_dict(d["config"]),
            generator_version=d["generator_version"],
        )


_KIND_CODES = {"box": 0, "cylinder": 1, "sphere": 2, "capsule": 3}


@dataclass
class PrimitiveTable:
    """Flat arrays over the world-frame primitives of a scene's visible objects.

    Attributes:
        primitives: list of P world-frame primitives.
        object_index: (P,) index into ``objects``.
        objects: the visible ``SceneObject`` list.
        instance_ids, class_ids: (P,) per primitive.
        lo, hi: (P, 3) axis-aligned bounds.
    """

    primitives: list[Primitive]
    object_index: np.ndarray
    objects: list[SceneObject]
    instance_ids: np.ndarray
    class_ids: np.ndarray
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def from_objects(cls, objects: list[SceneObject]) -> PrimitiveTable:
        prims, owner = [], []
        for k, obj in enumerate(objects):
            for p in obj.world_primitives():
                prims.append(p)
                owner.append(k)
        owner_arr = np.asarray(owner, dtype=np.int64)
        bounds = [p.bounds() for p in prims]
        return cls(
            primitives=prims,
            object_index=owner_arr,
            objects=list(objects),
            instance_ids=np.array([objects[k].instance_id for k in owner], dtype=np.int64),
            class_ids=np.array([objects[k].class_id for k in owner], dtype=np.int64),
            lo=np.array([b[0] for b in bounds]).reshape(-1, 3),
            hi=np.array([b[1] for b in bounds]).reshape(-1, 3),
        )

    def __len__(self) -> int:
        return len(self.primitives)

    def sdf(
        self, points: np.ndarray, max_distance: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact union distance (N,) at ``points`` (N, 3) and the index (N,) of the primitive
        giving it.

        A primitive is evaluated only at points nearer to its bounding box than the best
        distance so far (a box distance never exceeds the distance to what it contains). With
        ``max_distance``, points farther than that from every primitive read ``max_distance``
        with index -1, which makes queries near surfaces (mesh vertices) cheap."""
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"points: expected shape (N, 3), got {points.shape}")
        best = np.full(len(points), float(max_distance))
        owner = np.full(len(points), -1, dtype=np.int64)
        if len(points) == 0:
            return best, owner
        # Visit primitives nearest to the points' centre first, so the pruning bites early.
        center = points.mean(axis=0)
        gap = np.maximum(np.maximum(self.lo - center, center - self.hi), 0.0)
        for k in np.argsort(np.linalg.norm(gap, axis=1), kind="stable"):
            outside = np.maximum(np.maximum(self.lo[k] - points, points - self.hi[k]), 0.0)
            box_distance = np.sqrt(np.einsum("ij,ij->i", outside, outside))
            # Inside a solid (best < 0) only solids whose box holds the point can go deeper.
            candidates = np.nonzero(box_distance <= np.maximum(best, 0.0))[0]
            if len(candidates) == 0:
                continue
            prim = self.primitives[k]
            local = transform_points(invert_pose(prim.pose), points[candidates])
            d = local_sdf(prim.kind, prim.size, local)
            # Ties go to the lower primitive index, as in ``volumes.sdf_volume``.
            better = (d < best[candidates]) | ((d == best[candidates]) & (k < owner[candidates]))
            best[candidates[better]] = d[better]
            owner[candidates[better]] = k
        return best, owner


# --------------------------------------------------------------------------------------------


def _lamps(rng: np.random.Generator, lights: list[Light], ceiling_z: float) -> list[tuple]:
    """Pendant lamps at the point lights: a cord from the ceiling and a glowing shade just above
    the light (returned as ``(primitives, materials)`` pairs)."""
    lamps = []
    for light in lights:
        if light.kind != "point":
            continue
        x, y, z = light.position
        shade_r, shade_h = rng.uniform(0.12, 0.2), rng.uniform(0.08, 0.14)
        shade_lo = z + 0.03
        shade = random_material(rng, "paint")
        shade.emission = 0.6
        prims = [
            cylinder_between(
                (x, y, shade_lo), (x, y, shade_lo + shade_h), shade_r, "shade", "shade"
            ),
            cylinder_between((x, y, shade_lo + shade_h), (x, y, ceiling_z), 0.004, "cord", "cord"),
        ]
        lamps.append((prims, {"shade": shade, "cord": random_material(rng, "rubber")}))
    return lamps


def generate_scene(seed: int, config: SceneConfig | None = None) -> Scene:
    """Draw the room, objects and lights of scene ``seed`` (see the module docstring)."""
    config = config or SceneConfig()
    rng = stream(seed, "layout")
    layout = build_room(rng, config.room)
    room = layout.room

    objects: list[SceneObject] = []
    identity = np.eye(4)
    for part in layout.parts:
        objects.append(
            SceneObject(
                len(objects) + 1,
                part.class_name,
                part.variant,
                part.role,
                identity,
                part.primitives,
                part.materials,
            )
        )

    light_rng = stream(seed, "lighting")
    lighting = random_lighting(
        light_rng, room.size, config.point_lights, config.directional_light_probability
    )
    if config.lamps:
        for prims, materials in _lamps(light_rng, lighting.lights, room.size[2]):
            objects.append(
                SceneObject(
                    len(objects) + 1, "ceiling", "lamp", "fixture", identity, prims, materials
                )
            )

    models = []
    for cls in OBJECT_CLASSES:
        lo = config.placement.min_counts.get(cls, 0)
        hi = config.placement.max_counts.get(cls, 0)
        for _ in range(int(rng.integers(lo, hi + 1))):
            models.append(build_object(cls, rng, variant_set=config.variant_set))
    placements = place_objects(rng, models, room.interior, layout.obstacles, config.placement)
    first_id = len(objects) + 1
    for index, placement in enumerate(placements):
        model = placement.model
        objects.append(
            SceneObject(
                instance_id=first_id + index,
                class_name=model.class_name,
                variant=model.variant,
                role="object",
                pose=placement.pose,
                primitives=model.primitives,
                materials=model.materials,
                hidden=placement.hidden,
                parent_id=None if placement.parent is None else first_id + placement.parent,
                support=model.support,
                dimensions=model.dimensions,
                attempts=placement.attempts,
            )
        )
    return Scene(int(seed), room, objects, lighting, config)
