"""Procedural objects of the six object classes, built from analytic primitives.

Every builder takes a numpy Generator and an optional variant name and returns an ``ObjectModel``
in its own frame: z up, the object resting on the plane z = 0, its front facing +x (the seat of a
chair, the drawers of a nightstand, the screen of a laptop, a person's face). Dimensions are drawn
per instance from ranges typical of real furniture and people (metres):

============ ======================================= ============================================
class        variants                                main dimensions
============ ======================================= ============================================
table        four_legged, pedestal, desk             height 0.70-0.78; top 0.9-1.8 x 0.6-1.0
chair        plain, armchair, office                 seat height 0.42-0.48; seat 0.40-0.50 wide
nightstand   drawers, shelf, legs                    0.45-0.65 high, 0.40-0.60 wide
laptop       open, closed                            0.30-0.38 x 0.21-0.26; lid open 95-125 deg
bag          backpack, tote, duffel                  0.25-0.50 high
human        standing, t_pose, walking, sitting      stature 1.55-1.95 (sitting: on the floor)
============ ======================================= ============================================

Tables and nightstands expose a ``support`` rectangle (their top) on which children (laptops,
bags) are placed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from recon_ros.scenes.appearance import Material, pick, random_material
from recon_ros.scenes.geometry import (
    Primitive,
    box,
    box_between,
    capsule_between,
    cylinder_between,
    make_pose,
    rot_y,
    rot_z,
    sphere,
)

OBJECT_CLASSES = ("table", "chair", "nightstand", "laptop", "bag", "human")

#: Classes that can carry children, and the classes that can be placed on them.
PARENT_CLASSES = ("table", "nightstand")
CHILD_CLASSES = ("laptop", "bag")


@dataclass
class Support:
    """A horizontal rectangle in the object's frame on which children may rest: ``lo`` (2,) and
    ``hi`` (2,) corners in x, y and its height ``z``."""

    lo: tuple[float, float]
    hi: tuple[float, float]
    z: float

    def to_dict(self) -> dict:
        return {
            "lo": [float(v) for v in self.lo],
            "hi": [float(v) for v in self.hi],
            "z": float(self.z),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Support:
        return cls(tuple(d["lo"]), tuple(d["hi"]), d["z"])


@dataclass
class ObjectModel:
    """A procedurally built object in its own frame (see the module docstring).

    Attributes:
        class_name: one of ``OBJECT_CLASSES``.
        variant: the builder's variant name.
        primitives: the solids; their poses map primitive frames to the object frame.
        materials: material name -> ``Material`` (primitives name theirs).
        support: where children may rest, or ``None``.
        dimensions: the drawn dimensions, for the scene file.
    """

    class_name: str
    variant: str
    primitives: list[Primitive]
    materials: dict[str, Material]
    support: Support | None = None
    dimensions: dict[str, float] = field(default_factory=dict)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned bounds ``(lo, hi)`` (3,) of all primitives in the object frame."""
        los, his = zip(*(p.bounds() for p in self.primitives), strict=True)
        return np.min(los, axis=0), np.max(his, axis=0)

    def _rest_on_floor(self) -> ObjectModel:
        """Shift vertically so the lowest point is at z = 0."""
        lo, _ = self.bounds()
        shift = make_pose(None, (0.0, 0.0, -lo[2]))
        self.primitives = [p.moved(shift) for p in self.primitives]
        if self.support is not None:
            self.support = Support(self.support.lo, self.support.hi, self.support.z - lo[2])
        return self


def _choose(rng: np.random.Generator, variants: dict[str, float], variant: str | None) -> str:
    if variant is not None:
        if variant not in variants:
            raise ValueError(f"variant: expected one of {sorted(variants)}, got {variant!r}")
        return variant
    names = list(variants)
    weights = np.array([variants[n] for n in names], float)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


# --------------------------------------------------------------------------------------------
# tables

TABLE_VARIANTS = {"four_legged": 0.5, "pedestal": 0.25, "desk": 0.25}


def build_table(rng: np.random.Generator, variant: str | None = None) -> ObjectModel:
    """A table: top plus legs (four-legged), a central column (pedestal) or side panels (desk)."""
    variant = _choose(rng, TABLE_VARIANTS, variant)
    height = rng.uniform(0.70, 0.78)
    top_t = rng.uniform(0.025, 0.05)
    top_family = "wood" if rng.random() < 0.7 else "plastic"
    materials = {"top": random_material(rng, top_family)}
    materials["frame"] = materials["top"] if rng.random() < 0.4 else random_material(rng, "metal")
    prims: list[Primitive] = []
    under = height - top_t
    if variant == "four_legged":
        length, width = rng.uniform(0.9, 1.8), rng.uniform(0.6, 1.0)
        prims.append(
            box((length, width, top_t), (0, 0, height - top_t / 2), material="top", part="top")
        )
        inset = rng.uniform(0.03, 0.1)
        round_legs = rng.random() < 0.4
        leg = rng.uniform(0.02, 0.035) if round_legs else rng.uniform(0.04, 0.07)
        for sx in (-1, 1):
            for sy in (-1, 1):
                x = sx * (length / 2 - inset - leg / 2)
                y = sy * (width / 2 - inset - leg / 2)
                if round_legs:
                    prims.append(cylinder_between((x, y, 0), (x, y, under), leg, "frame", "leg"))
                else:
                    prims.append(
                        box_between(
                            (x - leg / 2, y - leg / 2, 0),
                            (x + leg / 2, y + leg / 2, under),
                            "frame",
                            "leg",
                        )
                    )
        if rng.random() < 0.6:
            apron_h, apron_t = rng.uniform(0.06, 0.1), 0.02
            ax, ay = length / 2 - inset - apron_t, width / 2 - inset - apron_t
            for s in (-1, 1):
                prims.append(
                    box_between(
                        (-ax, s * ay - apron_t / 2, under - apron_h),
                        (ax, s * ay + apron_t / 2, under),
                        "frame",
                        "apron",
                    )
                )
                prims.append(
                    box_between(
                        (s * ax - apron_t / 2, -ay, under - apron_h),
                        (s * ax + apron_t / 2, ay, under),
                        "frame",
                        "apron",
                    )
                )
        support = Support(
            (-length / 2 + 0.02, -width / 2 + 0.02), (length / 2 - 0.02, width / 2 - 0.02), height
        )
        dims = {"length": length, "width": width, "height": height}
    elif variant == "pedestal":
        column_r = rng.uniform(0.035, 0.06)
        if rng.random() < 0.6:
            radius = rng.uniform(0.4, 0.6)
            prims.append(
                Primitive(
                    "cylinder",
                    (radius, top_t),
                    make_pose(None, (0, 0, height - top_t / 2)),
                    "top",
                    "top",
                )
            )
            half = radius / np.sqrt(2) - 0.02
            dims = {"diameter": 2 * radius, "height": height}
        else:
            side = rng.uniform(0.6, 0.9)
            prims.append(
                box((side, side, top_t), (0, 0, height - top_t / 2), material="top", part="top")
            )
            half = side / 2 - 0.02
            dims = {"length": side, "width": side, "height": height}
        base_t = rng.uniform(0.02, 0.03)
        if rng.random() < 0.5:
            base_r = rng.uniform(0.22, 0.32)
            prims.append(
                Primitive(
                    "cylinder",
                    (base_r, base_t),
                    make_pose(None, (0, 0, base_t / 2)),
                    "frame",
                    "base",
                )
            )
        else:
            foot_len, foot_w = rng.uniform(0.25, 0.35), rng.uniform(0.04, 0.06)
            for k in range(4):
                angle = k * np.pi / 2 + np.pi / 4
                center = (foot_len / 2 * np.cos(angle), foot_len / 2 * np.sin(angle), base_t * 0.75)
                prims.append(
                    box((foot_len, foot_w, base_t * 1.5), center, rot_z(angle), "frame", "foot")
                )
        prims.append(cylinder_between((0, 0, 0.0), (0, 0, under), column_r, "frame", "column"))
        support = Support((-half, -half), (half, half), height)
    else:  # desk
        length, width = rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.8)
        panel_t = rng.uniform(0.02, 0.035)
        prims.append(
            box((length, width, top_t), (0, 0, height - top_t / 2), material="top", part="top")
        )
        for s in (-1, 1):
            x0 = s * (length / 2 - panel_t / 2 - 0.01)
            prims.append(
                box(
                    (panel_t, width - 0.02, under),
                    (x0, 0, under / 2),
                    material="frame",
                    part="panel",
                )
            )
        modesty_lo = rng.uniform(0.25, 0.4)
        prims.append(
            box_between(
                (-length / 2 + 0.01 + panel_t, -width / 2 + 0.03, modesty_lo),
                (length / 2 - 0.01 - panel_t, -width / 2 + 0.03 + panel_t, under),
                "frame",
                "modesty_panel",
            )
        )
        support = Support(
            (-length / 2 + 0.02, -width / 2 + 0.02), (length / 2 - 0.02, width / 2 - 0.02), height
        )
        dims = {"length": length, "width": width, "height": height}
    return ObjectModel("table", variant, prims, materials, support, dims)._rest_on_floor()


# --------------------------------------------------------------------------------------------
# chairs

CHAIR_VARIANTS = {"plain": 0.45, "armchair": 0.25, "office": 0.3}


def build_chair(rng: np.random.Generator, variant: str | None = None) -> ObjectModel:
    """A chair facing +x: seat, backrest (tilted back), legs or a five-star base, maybe arms."""
    variant = _choose(rng, CHAIR_VARIANTS, variant)
    seat_h = rng.uniform(0.42, 0.48)
    seat_w, seat_d = rng.uniform(0.40, 0.50), rng.uniform(0.40, 0.48)
    seat_t = rng.uniform(0.05, 0.08) if variant == "office" else rng.uniform(0.03, 0.06)
    back_h, back_t = rng.uniform(0.35, 0.5), rng.uniform(0.02, 0.04)
    tilt = np.radians(rng.uniform(0, 12))
    materials = {
        "seat": random_material(rng, pick(rng, ["fabric", "leather", "wood", "plastic"])),
        "frame": random_material(rng, pick(rng, ["wood", "metal", "plastic"])),
    }
    materials["back"] = materials["seat"] if rng.random() < 0.7 else random_material(rng, "fabric")
    prims: list[Primitive] = [
        box((seat_d, seat_w, seat_t), (0, 0, seat_h - seat_t / 2), material="seat", part="seat")
    ]
    # Backrest: tilted about its bottom edge at the back of the seat.
    hinge = np.array([-seat_d / 2 + back_t / 2, 0.0, seat_h])
    back_pose = make_pose(rot_y(-tilt), hinge) @ make_pose(None, (0, 0, back_h / 2))
    prims.append(Primitive("box", (back_t, seat_w, back_h), back_pose, "back", "backrest"))
    if variant == "office":
        column_r = rng.uniform(0.025, 0.035)
        star_r = rng.uniform(0.28, 0.34)
        caster_r = rng.uniform(0.022, 0.03)
        leg_z = 2 * caster_r + 0.015
        for k in range(5):
            angle = 2 * np.pi * k / 5
            c, s = np.cos(angle), np.sin(angle)
            prims.append(
                box(
                    (star_r, 0.04, 0.03),
                    (c * star_r / 2, s * star_r / 2, leg_z),
                    rotation=rot_z(angle),
                    material="frame",
                    part="star_leg",
                )
            )
            prims.append(
                sphere(
                    caster_r,
                    (c * (star_r - 0.02), s * (star_r - 0.02), caster_r),
                    material="frame",
                    part="caster",
                )
            )
        prims.append(
            cylinder_between((0, 0, leg_z - 0.03), (0, 0, leg_z + 0.04), 0.05, "frame", "hub")
        )
        prims.append(
            cylinder_between((0, 0, leg_z), (0, 0, seat_h - seat_t), column_r, "frame", "column")
        )
        prims.append(
            box_between(
                (-seat_d / 2 - 0.02, -0.03, seat_h - seat_t - 0.02),
                (-seat_d / 2 + 0.06, 0.03, seat_h + 0.12),
                "frame",
                "back_bar",
            )
        )
        with_arms = rng.random() < 0.5
    else:
        round_legs = rng.random() < 0.4
        leg = rng.uniform(0.015, 0.022) if round_legs else rng.uniform(0.03, 0.045)
        for sx in (-1, 1):
            for sy in (-1, 1):
                x = sx * (seat_d / 2 - 0.02 - leg / 2)
                y = sy * (seat_w / 2 - 0.02 - leg / 2)
                top = seat_h - seat_t
                if round_legs:
                    prims.append(cylinder_between((x, y, 0), (x, y, top), leg, "frame", "leg"))
                else:
                    prims.append(
                        box_between(
                            (x - leg / 2, y - leg / 2, 0),
                            (x + leg / 2, y + leg / 2, top),
                            "frame",
                            "leg",
                        )
                    )
        with_arms = variant == "armchair"
    if with_arms:
        arm_h = seat_h + rng.uniform(0.18, 0.25)
        arm_w, arm_t = rng.uniform(0.04, 0.06), 0.03
        for s in (-1, 1):
            y = s * (seat_w / 2 - arm_w / 2)
            prims.append(
                box_between(
                    (-seat_d / 2 + back_t, y - arm_w / 2, arm_h - arm_t),
                    (seat_d / 2 - 0.02, y + arm_w / 2, arm_h),
                    "frame",
                    "armrest",
                )
            )
            prims.append(
                cylinder_between(
                    (seat_d / 2 - 0.06, y, seat_h),
                    (seat_d / 2 - 0.06, y, arm_h - arm_t),
                    0.015,
                    "frame",
                    "arm_post",
                )
            )
    dims = {
        "seat_height": seat_h,
        "seat_width": seat_w,
        "seat_depth": seat_d,
        "back_height": back_h,
    }
    return ObjectModel("chair", variant, prims, materials, None, dims)._rest_on_floor()


# --------------------------------------------------------------------------------------------
# nightstands

NIGHTSTAND_VARIANTS = {"drawers": 0.5, "shelf": 0.25, "legs": 0.25}


def _drawer_fronts(rng, prims, x_front, y_half, z_range, *, count, handle_kind):
    """Append ``count`` drawer fronts, proud of the face x = ``x_front``, stacked over
    ``z_range`` (lo, hi), with knobs or bar handles."""
    z_lo, z_hi = z_range
    gap, front_t = 0.006, rng.uniform(0.012, 0.018)
    step = (z_hi - z_lo) / count
    for k in range(count):
        lo, hi = z_lo + k * step + gap / 2, z_lo + (k + 1) * step - gap / 2
        prims.append(
            box_between(
                (x_front, -y_half + 0.015, lo),
                (x_front + front_t, y_half - 0.015, hi),
                "front",
                "drawer_front",
            )
        )
        zc = 0.5 * (lo + hi)
        if handle_kind == "knob":
            r = 0.015
            prims.append(
                sphere(r, (x_front + front_t + 0.6 * r, 0, zc), material="handle", part="knob")
            )
        else:
            half_len = 0.05
            x = x_front + front_t + 0.012
            prims.append(
                capsule_between((x, -half_len, zc), (x, half_len, zc), 0.006, "handle", "handle")
            )
            for y in (-half_len, half_len):
                prims.append(
                    cylinder_between(
                        (x_front + front_t - 0.002, y, zc),
                        (x, y, zc),
                        0.004,
                        "handle",
                        "handle_post",
                    )
                )


def build_nightstand(rng: np.random.Generator, variant: str | None = None) -> ObjectModel:
    """A nightstand with its front at +x: a cabinet with 2-3 drawers, an open shelf under one
    drawer, or drawers on legs."""
    variant = _choose(rng, NIGHTSTAND_VARIANTS, variant)
    width, depth, height = rng.uniform(0.40, 0.60), rng.uniform(0.32, 0.45), rng.uniform(0.45, 0.65)
    materials = {"body": random_material(rng, pick(rng, ["wood", "wood", "paint", "plastic"]))}
    materials["front"] = materials["body"] if rng.random() < 0.6 else random_material(rng, "paint")
    materials["handle"] = random_material(rng, "metal")
    handle_kind = "knob" if rng.random() < 0.5 else "bar"
    prims: list[Primitive] = []
    xf = depth / 2
    if variant == "drawers":
        plinth = rng.uniform(0.03, 0.06)
        prims.append(
            box_between(
                (-depth / 2 + 0.02, -width / 2 + 0.02, 0),
                (depth / 2 - 0.02, width / 2 - 0.02, plinth),
                "body",
                "plinth",
            )
        )
        prims.append(
            box_between(
                (-depth / 2, -width / 2, plinth), (depth / 2, width / 2, height), "body", "body"
            )
        )
        _drawer_fronts(
            rng,
            prims,
            xf,
            width / 2,
            (plinth + 0.01, height - 0.02),
            count=int(rng.integers(2, 4)),
            handle_kind=handle_kind,
        )
    elif variant == "shelf":
        panel = rng.uniform(0.015, 0.025)
        shelf_top = rng.uniform(0.45, 0.65) * height
        prims.append(
            box_between(
                (-depth / 2, -width / 2, 0), (depth / 2, width / 2, panel), "body", "bottom"
            )
        )
        prims.append(
            box_between(
                (-depth / 2, -width / 2, height - panel),
                (depth / 2, width / 2, height),
                "body",
                "top",
            )
        )
        for s in (-1, 1):
            y0 = s * (width / 2 - panel / 2)
            prims.append(
                box((depth, panel, height), (0, y0, height / 2), material="body", part="side")
            )
        prims.append(
            box_between(
                (-depth / 2, -width / 2, 0), (-depth / 2 + panel, width / 2, height), "body", "back"
            )
        )
        prims.append(
            box_between(
                (-depth / 2, -width / 2, shelf_top - panel),
                (depth / 2, width / 2, shelf_top),
                "body",
                "shelf",
            )
        )
        # The drawer box fills the upper compartment; its front is proud of the carcass.
        prims.append(
            box_between(
                (-depth / 2 + panel, -width / 2 + panel, shelf_top),
                (depth / 2 - 0.002, width / 2 - panel, height - panel),
                "body",
                "drawer_box",
            )
        )
        _drawer_fronts(
            rng,
            prims,
            xf,
            width / 2,
            (shelf_top + 0.005, height - 0.005),
            count=1,
            handle_kind=handle_kind,
        )
    else:  # legs
        leg_h = rng.uniform(0.1, 0.2)
        leg_r = rng.uniform(0.014, 0.02)
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (depth / 2 - 0.04), sy * (width / 2 - 0.04)
                prims.append(
                    cylinder_between((x, y, 0), (x, y, leg_h + 0.01), leg_r, "body", "leg")
                )
        prims.append(
            box_between(
                (-depth / 2, -width / 2, leg_h), (depth / 2, width / 2, height), "body", "body"
            )
        )
        _drawer_fronts(
            rng,
            prims,
            xf,
            width / 2,
            (leg_h + 0.01, height - 0.02),
            count=int(rng.integers(1, 3)),
            handle_kind=handle_kind,
        )
    support = Support(
        (-depth / 2 + 0.02, -width / 2 + 0.02), (depth / 2 - 0.02, width / 2 - 0.02), height
    )
    dims = {"width": width, "depth": depth, "height": height}
    return ObjectModel("nightstand", variant, prims, materials, support, dims)._rest_on_floor()


# --------------------------------------------------------------------------------------------
# laptops

LAPTOP_VARIANTS = {"open": 0.8, "closed": 0.2}


def build_laptop(rng: np.random.Generator, variant: str | None = None) -> ObjectModel:
    """A laptop with its hinge at -x: base with keyboard deck and, when open, a lid tilted back
    95-125 degrees from closed with its screen facing +x."""
    variant = _choose(rng, LAPTOP_VARIANTS, variant)
    width, depth = rng.uniform(0.30, 0.38), rng.uniform(0.21, 0.26)
    base_t, lid_t = rng.uniform(0.014, 0.02), rng.uniform(0.005, 0.008)
    shell = random_material(rng, pick(rng, ["metal", "plastic"]))
    materials = {
        "shell": shell,
        "keys": random_material(rng, "rubber"),
        "screen": random_material(rng, "screen"),
    }
    prims = [box((depth, width, base_t), (0, 0, base_t / 2), material="shell", part="base")]
    prims.append(
        box(
            (0.45 * depth, 0.85 * width, 0.001),
            (-0.06 * depth, 0, base_t + 0.0005),
            material="keys",
            part="keyboard",
        )
    )
    prims.append(
        box(
            (0.22 * depth, 0.3 * width, 0.0006),
            (0.33 * depth, 0, base_t + 0.0003),
            material="keys",
            part="touchpad",
        )
    )
    if variant == "open":
        angle = np.radians(rng.uniform(95, 125))
        # Lid frame: hinge line at the back top edge, lid extending along +x when closed with its
        # screen face at z = 0; opening rotates it up and back about y.
        hinge = make_pose(rot_y(-angle), (-depth / 2, 0, base_t + 0.0012))
        prims.append(
            Primitive(
                "box",
                (depth, width, lid_t),
                hinge @ make_pose(None, (depth / 2, 0, lid_t / 2)),
                "shell",
                "lid",
            )
        )
        prims.append(
            Primitive(
                "box",
                (0.88 * depth, 0.92 * width, 0.001),
                hinge @ make_pose(None, (depth / 2 + 0.01, 0, -0.0005)),
                "screen",
                "screen",
            )
        )
        dims = {"width": width, "depth": depth, "open_angle_deg": float(np.degrees(angle))}
    else:
        prims.append(
            box(
                (depth, width, lid_t),
                (0, 0, base_t + 0.0012 + lid_t / 2),
                material="shell",
                part="lid",
            )
        )
        dims = {"width": width, "depth": depth, "open_angle_deg": 0.0}
    return ObjectModel("laptop", variant, prims, materials, None, dims)._rest_on_floor()


# --------------------------------------------------------------------------------------------
# bags

BAG_VARIANTS = {"backpack": 0.45, "tote": 0.3, "duffel": 0.25}


def _handle_arch(prims, x, y_half, z_base, height, *, radius, material):
    """An inverted-U handle of three capsules in the plane x = ``x``."""
    a, b = (x, -y_half, z_base), (x, -y_half, z_base + height)
    c, d = (x, y_half, z_base + height), (x, y_half, z_base)
    prims.append(capsule_between(a, b, radius, material, "handle"))
    prims.append(capsule_between(b, c, radius, material, "handle"))
    prims.append(capsule_between(c, d, radius, material, "handle"))


def build_bag(rng: np.random.Generator, variant: str | None = None) -> ObjectModel:
    """A bag: an upright backpack (rounded top, front pocket, straps at -x), a tote with two
    handles, or a duffel lying on its side."""
    variant = _choose(rng, BAG_VARIANTS, variant)
    materials = {
        "body": random_material(rng, pick(rng, ["fabric", "fabric", "leather", "plastic"]))
    }
    materials["trim"] = (
        materials["body"]
        if rng.random() < 0.5
        else random_material(rng, pick(rng, ["fabric", "leather", "rubber"]))
    )
    prims: list[Primitive] = []
    if variant == "backpack":
        width, depth, height = (
            rng.uniform(0.26, 0.34),
            rng.uniform(0.14, 0.22),
            rng.uniform(0.36, 0.5),
        )
        body_h = height - depth / 2
        prims.append(box((depth, width, body_h), (0, 0, body_h / 2), material="body", part="body"))
        prims.append(
            cylinder_between(
                (0, -width / 2, body_h), (0, width / 2, body_h), depth / 2, "body", "top"
            )
        )
        pocket_d = rng.uniform(0.04, 0.07)
        pocket_h = rng.uniform(0.3, 0.45) * height
        prims.append(
            box_between(
                (depth / 2, -0.4 * width, 0.03),
                (depth / 2 + pocket_d, 0.4 * width, 0.03 + pocket_h),
                "trim",
                "pocket",
            )
        )
        for s in (-1, 1):
            prims.append(
                box_between(
                    (-depth / 2 - 0.01, s * width / 4 - 0.025, 0.05),
                    (-depth / 2, s * width / 4 + 0.025, 0.05 + 0.7 * height),
                    "trim",
                    "strap",
                )
            )
        prims.append(
            capsule_between(
                (0, -0.035, height + 0.004), (0, 0.035, height + 0.004), 0.008, "trim", "handle"
            )
        )
        dims = {"width": width, "depth": depth, "height": height}
    elif variant == "tote":
        width, depth, height = (
            rng.uniform(0.32, 0.45),
            rng.uniform(0.1, 0.16),
            rng.uniform(0.25, 0.35),
        )
        prims.append(box((depth, width, height), (0, 0, height / 2), material="body", part="body"))
        handle_h = rng.uniform(0.1, 0.18)
        for s in (-1, 1):
            _handle_arch(
                prims,
                s * depth * 0.3,
                width / 4,
                height - 0.01,
                handle_h,
                radius=0.008,
                material="trim",
            )
        dims = {"width": width, "depth": depth, "height": height + handle_h}
    else:  # duffel
        radius, length = rng.uniform(0.13, 0.18), rng.uniform(0.45, 0.65)
        prims.append(
            cylinder_between(
                (0, -length / 2, radius), (0, length / 2, radius), radius, "body", "body"
            )
        )
        for s in (-1, 1):
            prims.append(
                cylinder_between(
                    (0, s * length / 2, radius),
                    (0, s * (length / 2 + 0.03), radius),
                    0.6 * radius,
                    "trim",
                    "end_pocket",
                )
            )
        _handle_arch(
            prims,
            0.0,
            0.08,
            2 * radius - 0.01,
            rng.uniform(0.08, 0.12),
            radius=0.01,
            material="trim",
        )
        dims = {"length": length, "diameter": 2 * radius}
    return ObjectModel("bag", variant, prims, materials, None, dims)._rest_on_floor()


# --------------------------------------------------------------------------------------------
# humans

HUMAN_VARIANTS = {"standing": 0.35, "t_pose": 0.15, "walking": 0.3, "sitting": 0.2}


def _direction(elevation: float, azimuth: float) -> np.ndarray:
    """Unit vector tilted ``elevation`` radians from straight down (0 down, pi/2 horizontal),
    turned ``azimuth`` radians about z from +x."""
    return np.array(
        [
            np.sin(elevation) * np.cos(azimuth),
            np.sin(elevation) * np.sin(azimuth),
            -np.cos(elevation),
        ]
    )


def build_human(rng: np.random.Generator, variant: str | None = None) -> ObjectModel:
    """A person facing +x built from capsules and spheres on a simple skeleton with proportions
    scaled by stature: standing (arms down), T-pose (as for motion capture calibration), walking
    (mid-stride, arms swinging) or sitting on the floor with legs stretched out. Dressed either in
    a motion-capture suit with white markers or in casual clothes."""
    variant = _choose(rng, HUMAN_VARIANTS, variant)
    S = rng.uniform(1.55, 1.95)  # stature
    build = rng.uniform(0.9, 1.15)  # girth factor
    hip_w, shoulder_w = 0.085 * S * build, 0.115 * S * build
    thigh_len, shin_len = 0.245 * S, 0.246 * S
    upper_arm, forearm, hand = 0.186 * S, 0.146 * S, 0.09 * S
    r_thigh, r_shin = 0.045 * S * build, 0.03 * S * build
    r_upper, r_fore = 0.026 * S * build, 0.021 * S * build
    head_r = 0.062 * S
    ankle_h = 0.045 * S
    mocap = rng.random() < 0.5
    if mocap:
        suit = random_material(rng, "mocap_suit")
        materials = {
            "shirt": suit,
            "trousers": suit,
            "sleeve": suit,
            "skin": suit,
            "shoes": random_material(rng, "rubber"),
            "marker": random_material(rng, "marker"),
            "hair": suit,
        }
    else:
        shirt = random_material(rng, "cloth")
        skin = random_material(rng, "skin")
        materials = {
            "shirt": shirt,
            "trousers": random_material(rng, "cloth"),
            "skin": skin,
            "shoes": random_material(rng, "rubber"),
            "hair": random_material(rng, "hair"),
        }
        materials["sleeve"] = shirt if rng.random() < 0.4 else skin

    prims: list[Primitive] = []
    markers: list[np.ndarray] = []

    def limb(a, b, radius, material, part, *, marker_at_b=True):
        prims.append(capsule_between(a, b, radius, material, part))
        if marker_at_b:
            markers.append(np.asarray(b, float) + np.array([0.0, 0.0, radius * 0.6]))

    # Pelvis height and leg joints depend on the pose.
    if variant == "sitting":
        pelvis_z = 0.075 * S
        hips = [np.array([0.0, s * hip_w, pelvis_z]) for s in (-1, 1)]
        knees = [
            h + thigh_len * np.array([np.cos(np.radians(8)), 0, np.sin(np.radians(8))])
            for h in hips
        ]
        ankles = [
            k + shin_len * np.array([np.cos(np.radians(-12)), 0, np.sin(np.radians(-12))])
            for k in knees
        ]
        foot_dirs = [np.array([0.25, 0, 1.0]) for _ in ankles]
        lean = np.radians(rng.uniform(-15, -5))  # leaning back slightly
    else:
        pelvis_z = ankle_h + shin_len + thigh_len
        if variant == "walking":
            swing = np.radians(rng.uniform(15, 25))
            angles = [swing, -swing * 0.8]
            if rng.random() < 0.5:
                angles.reverse()
        else:
            angles = [np.radians(rng.uniform(-3, 3)), np.radians(rng.uniform(-3, 3))]
        spread = np.radians(rng.uniform(0, 6)) if variant != "walking" else 0.0
        hips, knees, ankles, foot_dirs = [], [], [], []
        for side, a in zip((-1, 1), angles, strict=True):
            hip = np.array([0.0, side * hip_w, pelvis_z])
            thigh_dir = np.array([np.sin(a), side * np.sin(spread), -np.cos(a)])
            knee = hip + thigh_len * thigh_dir / np.linalg.norm(thigh_dir)
            bend = np.radians(rng.uniform(2, 6) if a >= 0 else rng.uniform(10, 25))
            shin_dir = np.array([np.sin(a - bend), side * np.sin(spread), -np.cos(a - bend)])
            ankle = knee + shin_len * shin_dir / np.linalg.norm(shin_dir)
            hips.append(hip)
            knees.append(knee)
            ankles.append(ankle)
            foot_dirs.append(np.array([1.0, 0.0, 0.0]))
        lean = np.radians(rng.uniform(-3, 5))

    # Legs and feet.
    for hip, knee, ankle, foot_dir in zip(hips, knees, ankles, foot_dirs, strict=True):
        limb(hip, knee, r_thigh, "trousers", "thigh")
        limb(knee, ankle, r_shin, "trousers", "shin")
        fdir = foot_dir / np.linalg.norm(foot_dir)
        toe = ankle + 0.13 * S * fdir
        heel = ankle - 0.03 * S * fdir
        prims.append(
            capsule_between(
                heel - np.array([0, 0, 0.015 * S]) if variant != "sitting" else heel,
                toe - np.array([0, 0, 0.015 * S]) if variant != "sitting" else toe,
                0.028 * S,
                "shoes",
                "foot",
            )
        )

    # Torso: pelvis, abdomen and chest leaning by ``lean`` about y.
    pelvis_center = np.array([0.0, 0.0, pelvis_z + 0.02 * S])
    up = np.array([np.sin(lean), 0.0, np.cos(lean)])
    prims.append(
        capsule_between(
            pelvis_center - np.array([0, hip_w, 0]),
            pelvis_center + np.array([0, hip_w, 0]),
            0.065 * S * build,
            "trousers",
            "pelvis",
        )
    )
    chest_len = 0.22 * S
    chest_center = pelvis_center + up * (0.05 * S + chest_len / 2)
    prims.append(
        Primitive(
            "box",
            (0.11 * S * build, 0.19 * S * build, chest_len),
            make_pose(rot_y(lean), chest_center),
            "shirt",
            "chest",
        )
    )
    shoulder_center = pelvis_center + up * (0.05 * S + chest_len)
    shoulders = [shoulder_center + np.array([0.0, s * shoulder_w, 0.0]) for s in (-1, 1)]
    prims.append(
        capsule_between(shoulders[0], shoulders[1], 0.04 * S * build, "shirt", "shoulders")
    )
    markers.extend(
        [
            chest_center + np.array([0.06 * S * build, 0, 0.05 * S]),
            pelvis_center + np.array([0, 0, 0.07 * S]),
        ]
    )

    # Neck and head.
    neck_base = shoulder_center + up * 0.01 * S
    neck_top = neck_base + up * 0.04 * S
    prims.append(capsule_between(neck_base, neck_top, 0.028 * S, "skin", "neck"))
    head_center = neck_top + up * head_r * 0.95 + np.array([0.01 * S, 0, 0])
    prims.append(sphere(head_r, head_center, material="skin", part="head"))
    if not mocap:
        prims.append(
            sphere(
                head_r * 1.04,
                head_center + np.array([-0.012 * S, 0, 0.012 * S]),
                material="hair",
                part="hair",
            )
        )
    markers.append(head_center + np.array([0, 0, head_r]))

    # Arms.
    for side_index, side in enumerate((-1, 1)):
        shoulder = shoulders[side_index]
        if variant == "t_pose":
            upper_dir = _direction(np.radians(rng.uniform(85, 95)), side * np.pi / 2)
            fore_dir = upper_dir
        elif variant == "walking":
            swing = np.radians(rng.uniform(10, 25)) * (1 if side_index == 0 else -1)
            upper_dir = np.array([np.sin(swing), side * 0.12, -np.cos(swing)])
            fore_dir = np.array(
                [np.sin(swing + np.radians(20)), side * 0.1, -np.cos(swing + np.radians(20))]
            )
        elif variant == "sitting":
            # Hands resting on the thighs.
            upper_dir = np.array([0.35, side * 0.15, -1.0])
            fore_dir = np.array([1.0, -side * 0.05, -0.35])
        else:
            abduct = np.radians(rng.uniform(5, 20))
            upper_dir = _direction(abduct, side * np.pi / 2 + np.radians(rng.uniform(-10, 10)))
            bend = np.radians(rng.uniform(0, 25))
            fore_dir = upper_dir + np.array([np.sin(bend), 0, 0])
        upper_dir = upper_dir / np.linalg.norm(upper_dir)
        fore_dir = fore_dir / np.linalg.norm(fore_dir)
        elbow = shoulder + upper_arm * upper_dir
        wrist = elbow + forearm * fore_dir
        hand_end = wrist + hand * fore_dir
        markers.append(shoulder + np.array([0, 0, 0.04 * S * build]))
        limb(
            shoulder,
            elbow,
            r_upper,
            "shirt" if materials["sleeve"] is materials["skin"] else "sleeve",
            "upper_arm",
        )
        limb(elbow, wrist, r_fore, "sleeve", "forearm")
        limb(wrist, hand_end, 0.022 * S, "skin", "hand", marker_at_b=False)

    if mocap:
        for k, position in enumerate(markers):
            prims.append(sphere(0.012, position, material="marker", part=f"marker_{k}"))
    dims = {"stature": S, "build": build}
    model = ObjectModel("human", variant, prims, materials, None, dims)._rest_on_floor()
    # Centre the footprint on the origin so the yaw turns the person about their middle.
    lo, hi = model.bounds()
    shift = make_pose(None, (-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, 0.0))
    model.primitives = [p.moved(shift) for p in model.primitives]
    return model


BUILDERS: dict[str, Callable[[np.random.Generator, str | None], ObjectModel]] = {
    "table": build_table,
    "chair": build_chair,
    "nightstand": build_nightstand,
    "laptop": build_laptop,
    "bag": build_bag,
    "human": build_human,
}

VARIANTS: dict[str, dict[str, float]] = {
    "table": TABLE_VARIANTS,
    "chair": CHAIR_VARIANTS,
    "nightstand": NIGHTSTAND_VARIANTS,
    "laptop": LAPTOP_VARIANTS,
    "bag": BAG_VARIANTS,
    "human": HUMAN_VARIANTS,
}


#: One variant per class kept out of training data (``variant_set="train"``) and used alone in
#: held-out data (``"held_out"``), so that a model is tested on shapes it never saw, as the
#: Everted U-Net paper tests on unseen models.
HELD_OUT_VARIANTS: dict[str, str] = {
    "table": "pedestal",
    "chair": "armchair",
    "nightstand": "legs",
    "laptop": "closed",
    "bag": "duffel",
    "human": "sitting",
}
VARIANT_SETS = ("all", "train", "held_out")


def build_object(
    class_name: str,
    rng: np.random.Generator,
    variant: str | None = None,
    variant_set: str = "all",
) -> ObjectModel:
    """Build a random instance of ``class_name`` (one of ``OBJECT_CLASSES``), of ``variant`` or
    drawn from ``variant_set``: ``"all"`` (every variant, at its weight), ``"train"`` (all but
    ``HELD_OUT_VARIANTS``) or ``"held_out"`` (only those)."""
    if class_name not in BUILDERS:
        raise ValueError(f"class_name: expected one of {OBJECT_CLASSES}, got {class_name!r}")
    if variant_set not in VARIANT_SETS:
        raise ValueError(f"variant_set: expected one of {VARIANT_SETS}, got {variant_set!r}")
    if variant is None and variant_set != "all":
        held_out = HELD_OUT_VARIANTS[class_name]
        weights = {
            name: weight
            for name, weight in VARIANTS[class_name].items()
            if (name == held_out) == (variant_set == "held_out")
        }
        variant = _choose(rng, weights, None)
    return BUILDERS[class_name](rng, variant)
