"""Procedural appearance: solid textures, material families, lights.

Textures are *solid*: a colour is a function of the 3D point in the owner's frame (object frame
for objects, world frame for the room), so no UV maps are needed and a pattern runs continuously
over the faces of a primitive. Patterns: ``plain`` (faint noise), ``noise`` (fBm between two
colours), ``stripes``, ``checker``, ``wood`` (rings round an axis with noisy grain), ``fabric``
(fine weave), ``tiles`` (grout lines, per-tile tint), ``planks`` (wood boards along an axis).

Colours are linear-light albedos in [0, 1]; the renderer shades them (Lambertian, ambient plus
lights) and encodes the result with a display gamma.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

PATTERNS = ("plain", "noise", "stripes", "checker", "wood", "fabric", "tiles", "planks")

# --------------------------------------------------------------------------------------------
# value noise


def _hash01(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer lattice point (arrays of int64)."""
    h = (
        ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        ^ iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        ^ iz.astype(np.uint64) * np.uint64(0x165667B19E3779F9)
        ^ np.uint64((seed * 0x27D4EB2F165667C5) & 0xFFFFFFFFFFFFFFFF)
    )
    # splitmix64 finaliser: every input bit affects every output bit.
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


_LATTICE = 1024  # noise repeats every 1024 cells
_TABLES: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _lattice_tables(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Permutation (2 * L,) and values (L,) of the noise lattice of ``seed`` (cached)."""
    if seed not in _TABLES:
        if len(_TABLES) > 4096:
            _TABLES.clear()
        rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 0x5EED]))
        perm = rng.permutation(_LATTICE).astype(np.int64)
        _TABLES[seed] = (np.concatenate([perm, perm]), rng.random(_LATTICE))
    return _TABLES[seed]


def value_noise(points: np.ndarray, seed: int) -> np.ndarray:
    """Smooth value noise in [0, 1] at ``points`` (N, 3) (lattice spacing 1; periodic every
    1024 cells). Lattice values come from a seeded permutation table, as in Perlin's noise."""
    perm, values = _lattice_tables(int(seed))
    mask = _LATTICE - 1
    cell = np.floor(points)
    f = points - cell
    u = f * f * (3.0 - 2.0 * f)
    i = cell.astype(np.int64) & mask
    result = np.zeros(len(points))
    for dx in (0, 1):
        wx = u[:, 0] if dx else 1 - u[:, 0]
        px = perm[i[:, 0] + dx]
        for dy in (0, 1):
            wxy = wx * (u[:, 1] if dy else 1 - u[:, 1])
            pxy = perm[px + i[:, 1] + dy]
            for dz in (0, 1):
                wz = u[:, 2] if dz else 1 - u[:, 2]
                result += wxy * wz * values[perm[pxy + i[:, 2] + dz] & mask]
    return result


def fbm(points: np.ndarray, seed: int, octaves: int = 3, gain: float = 0.5) -> np.ndarray:
    """Fractal sum of ``octaves`` of value noise, normalised to [0, 1]; ``points`` (N, 3)."""
    total = np.zeros(len(points))
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        total += amplitude * value_noise(points * (2.0**octave), seed + 7919 * octave)
        norm += amplitude
        amplitude *= gain
    return total / norm


# --------------------------------------------------------------------------------------------
# materials


@dataclass
class Material:
    """A solid texture.

    Attributes:
        pattern: one of ``PATTERNS``.
        color, color2: linear albedos (3,) in [0, 1]; the pattern blends between them.
        scale: feature size in metres (noise cell, stripe period, tile size, ring spacing ...).
        axis: direction (3,) of stripes, wood grain or planks in the owner's frame.
        amount: strength of the pattern's variation (0 plain colour, 1 full contrast).
        seed: noise lattice seed, so instances of one family differ.
        emission: added radiance (screens, windows), in the units of the albedo.
    """

    pattern: str = "plain"
    color: tuple[float, float, float] = (0.6, 0.6, 0.6)
    color2: tuple[float, float, float] = (0.4, 0.4, 0.4)
    scale: float = 0.1
    axis: tuple[float, float, float] = (1.0, 0.0, 0.0)
    amount: float = 1.0
    seed: int = 0
    emission: float = 0.0

    def __post_init__(self):
        if self.pattern not in PATTERNS:
            raise ValueError(f"pattern: expected one of {PATTERNS}, got {self.pattern!r}")
        if self.scale <= 0:
            raise ValueError(f"scale: must be positive, got {self.scale}")
        self.color = tuple(float(np.clip(c, 0, 1)) for c in self.color)
        self.color2 = tuple(float(np.clip(c, 0, 1)) for c in self.color2)
        axis = np.asarray(self.axis, float)
        norm = np.linalg.norm(axis)
        if axis.shape != (3,) or norm < 1e-9:
            raise ValueError(f"axis: expected a non-zero 3-vector, got {self.axis}")
        self.axis = tuple(float(a) for a in axis / norm)
        self.seed = int(self.seed)

    def to_dict(self) -> dict:
        return {
            "pattern": self.pattern,
            "color": [float(c) for c in self.color],
            "color2": [float(c) for c in self.color2],
            "scale": float(self.scale),
            "axis": [float(a) for a in self.axis],
            "amount": float(self.amount),
            "seed": self.seed,
            "emission": float(self.emission),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Material:
        return cls(
            d["pattern"],
            tuple(d["color"]),
            tuple(d["color2"]),
            d["scale"],
            tuple(d["axis"]),
            d["amount"],
            d["seed"],
            d.get("emission", 0.0),
        )


def _dot(points: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Row-wise dot products (N,) (element-wise sums: the same bits on any thread count)."""
    return points[:, 0] * direction[0] + points[:, 1] * direction[1] + points[:, 2] * direction[2]


def _blend(material: Material, t: np.ndarray) -> np.ndarray:
    a, b = np.asarray(material.color), np.asarray(material.color2)
    t = np.clip(t * material.amount, 0.0, 1.0)[:, None]
    return a * (1 - t) + b * t


def _perpendicular_basis(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    helper = np.array([0.0, 0, 1]) if abs(axis[2]) < 0.9 else np.array([1.0, 0, 0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(axis, e1)


def albedo(material: Material, points: np.ndarray) -> np.ndarray:
    """Albedo (N, 3) in [0, 1] of ``material`` at ``points`` (N, 3) in the owner's frame."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected shape (N, 3), got {points.shape}")
    if len(points) == 0:
        return np.zeros((0, 3))
    m, s = material, material.scale
    axis = np.asarray(m.axis)
    seed = m.seed
    if m.pattern == "plain":
        t = fbm(points / s, seed, octaves=2)
        base = np.asarray(m.color)[None, :] * (1.0 + 0.12 * m.amount * (t - 0.5))[:, None]
        return np.clip(base, 0, 1)
    if m.pattern == "noise":
        return _blend(m, fbm(points / s, seed, octaves=4))
    if m.pattern == "stripes":
        warp = 0.15 * (fbm(points / (4 * s), seed, octaves=2) - 0.5)
        phase = (_dot(points, axis)) / s + warp
        t = 0.5 + 0.5 * np.sin(2 * np.pi * phase)
        return _blend(m, (t > 0.5).astype(np.float64) * 0.85 + 0.15 * t)
    if m.pattern == "checker":
        cells = np.floor(points / s).astype(np.int64).sum(axis=1)
        jitter = 0.1 * (fbm(points / (0.5 * s), seed, octaves=2) - 0.5)
        return _blend(m, (cells % 2).astype(np.float64) + jitter)
    if m.pattern == "wood":
        e1, e2 = _perpendicular_basis(axis)
        along = _dot(points, axis)
        # Stretch the noise along the grain so streaks run with it.
        grain_points = np.stack(
            [along / (8 * s), _dot(points, e1) / s, _dot(points, e2) / s], axis=1
        )
        n = fbm(grain_points, seed, octaves=3)
        radius = np.hypot(_dot(points, e1) + 0.37, _dot(points, e2) - 0.21) / s
        rings = np.mod(radius + 2.5 * n, 1.0)
        t = 0.65 * rings**3 + 0.35 * n
        return _blend(m, t)
    if m.pattern == "fabric":
        period = s
        weave = (
            np.abs(np.sin(np.pi * points[:, 0] / period))
            + np.abs(np.sin(np.pi * points[:, 1] / period))
            + np.abs(np.sin(np.pi * points[:, 2] / period))
        ) / 3.0
        n = fbm(points / (6 * s), seed, octaves=2)
        return _blend(m, 0.55 * weave + 0.45 * n)
    if m.pattern == "tiles":
        e1, e2 = _perpendicular_basis(axis)
        a, b = _dot(points, e1) / s, _dot(points, e2) / s
        ia, ib = np.floor(a), np.floor(b)
        grout = (np.minimum(a - ia, 1 - (a - ia)) < 0.03) | (
            np.minimum(b - ib, 1 - (b - ib)) < 0.03
        )
        tint = _hash01(ia.astype(np.int64), ib.astype(np.int64), np.zeros_like(ia, np.int64), seed)
        speckle = fbm(points / (0.15 * s), seed + 1, octaves=2)
        t = 0.25 * tint + 0.15 * speckle
        out = _blend(m, t)
        out[grout] = np.asarray(m.color2) * 0.6 + 0.25
        return np.clip(out, 0, 1)
    if m.pattern == "planks":
        e1, e2 = _perpendicular_basis(axis)
        along = _dot(points, axis)
        across = _dot(points, e1)
        board_width = s
        board = np.floor(across / board_width)
        offset = _hash01(
            board.astype(np.int64), np.zeros_like(board, np.int64), board.astype(np.int64) * 0, seed
        )
        board_length = 8 * board_width
        along_shifted = along / board_length + offset
        seam = (np.mod(across / board_width, 1.0) < 0.015) | (np.mod(along_shifted, 1.0) < 0.004)
        grain = fbm(
            np.stack(
                [along / (10 * board_width), across / (0.25 * board_width), _dot(points, e2) / s], 1
            ),
            seed,
            octaves=3,
        )
        tint = _hash01(
            board.astype(np.int64),
            np.floor(along_shifted).astype(np.int64),
            np.ones_like(board, np.int64),
            seed,
        )
        t = 0.55 * grain + 0.3 * tint
        out = _blend(m, t)
        out[seam] *= 0.55
        return out
    raise ValueError(f"pattern: expected one of {PATTERNS}, got {m.pattern!r}")


# --------------------------------------------------------------------------------------------
# material families: plausible random materials per kind of surface


def pick(rng: np.random.Generator, options):
    """One of ``options`` drawn uniformly (as the Python object, not a numpy scalar)."""
    options = list(options)
    if not options:
        raise ValueError("options: nothing to pick from")
    return options[int(rng.integers(0, len(options)))]


def _hsv(rng: np.random.Generator, h, s, v) -> tuple[float, float, float]:
    """Random colour with hue, saturation, value drawn from the (lo, hi) ranges given."""
    hue = rng.uniform(*h) % 1.0
    return colorsys.hsv_to_rgb(hue, rng.uniform(*s), rng.uniform(*v))


def _darker(color, factor: float) -> tuple[float, float, float]:
    return tuple(float(c * factor) for c in color)


MATERIAL_FAMILIES = (
    "wood",
    "metal",
    "plastic",
    "fabric",
    "leather",
    "paint",
    "floor",
    "ceiling",
    "skin",
    "cloth",
    "mocap_suit",
    "marker",
    "screen",
    "canvas",
    "glass",
    "hair",
    "rubber",
)


def random_material(rng: np.random.Generator, family: str) -> Material:
    """A random material of a ``family`` (see ``MATERIAL_FAMILIES``): colours, pattern and scale
    drawn from ranges typical of that kind of surface."""
    seed = int(rng.integers(0, 2**31 - 1))
    axis = (1.0, 0.0, 0.0)
    if family == "wood":
        base = _hsv(rng, (0.05, 0.11), (0.35, 0.75), (0.25, 0.8))
        pattern = "wood" if rng.random() < 0.8 else "stripes"
        axis = tuple(rng.permutation([1.0, 0.0, 0.0]))
        return Material(
            pattern,
            base,
            _darker(base, rng.uniform(0.45, 0.7)),
            rng.uniform(0.02, 0.06),
            axis,
            1.0,
            seed,
        )
    if family == "metal":
        v = rng.uniform(0.15, 0.8)
        tint = _hsv(rng, (0.5, 0.65), (0.0, 0.12), (v, v))
        return Material("noise", tint, _darker(tint, 0.8), rng.uniform(0.01, 0.05), axis, 0.5, seed)
    if family == "plastic":
        color = _hsv(rng, (0.0, 1.0), (0.0, 0.8), (0.1, 0.95))
        return Material("plain", color, color, rng.uniform(0.05, 0.2), axis, 0.5, seed)
    if family == "fabric":
        color = _hsv(rng, (0.0, 1.0), (0.15, 0.7), (0.15, 0.8))
        if rng.random() < 0.25:
            return Material(
                "checker",
                color,
                _hsv(rng, (0, 1), (0.1, 0.6), (0.2, 0.9)),
                rng.uniform(0.03, 0.1),
                axis,
                0.8,
                seed,
            )
        return Material(
            "fabric",
            color,
            _darker(color, rng.uniform(0.6, 0.85)),
            rng.uniform(0.003, 0.008),
            axis,
            1.0,
            seed,
        )
    if family == "leather":
        color = _hsv(rng, (0.02, 0.1), (0.3, 0.8), (0.05, 0.5))
        return Material(
            "noise", color, _darker(color, 0.7), rng.uniform(0.005, 0.02), axis, 0.6, seed
        )
    if family == "paint":
        if rng.random() < 0.6:
            color = _hsv(rng, (0.0, 1.0), (0.0, 0.15), (0.7, 0.95))
        else:
            color = _hsv(rng, (0.0, 1.0), (0.1, 0.45), (0.45, 0.9))
        if rng.random() < 0.2:
            axis = (0.0, 0.0, 1.0)
            return Material(
                "stripes",
                color,
                _darker(color, rng.uniform(0.75, 0.9)),
                rng.uniform(0.08, 0.3),
                axis,
                1.0,
                seed,
            )
        return Material("plain", color, color, rng.uniform(0.2, 0.6), axis, 1.0, seed)
    if family == "floor":
        choice = rng.random()
        if choice < 0.45:
            base = _hsv(rng, (0.05, 0.11), (0.3, 0.7), (0.3, 0.75))
            axis = tuple(rng.permutation([1.0, 0.0, 0.0]))
            return Material(
                "planks", base, _darker(base, 0.6), rng.uniform(0.1, 0.25), axis, 1.0, seed
            )
        if choice < 0.7:
            base = _hsv(rng, (0.0, 1.0), (0.0, 0.2), (0.4, 0.9))
            return Material(
                "tiles",
                base,
                _hsv(rng, (0, 1), (0, 0.1), (0.3, 0.7)),
                rng.uniform(0.3, 0.6),
                (0.0, 0.0, 1.0),
                1.0,
                seed,
            )
        if choice < 0.85:
            base = _hsv(rng, (0.0, 1.0), (0.1, 0.5), (0.2, 0.6))
            return Material(
                "fabric", base, _darker(base, 0.75), rng.uniform(0.004, 0.01), axis, 1.0, seed
            )
        base = _hsv(rng, (0.0, 1.0), (0.0, 0.08), (0.35, 0.7))
        return Material("noise", base, _darker(base, 0.8), rng.uniform(0.05, 0.3), axis, 1.0, seed)
    if family == "ceiling":
        color = _hsv(rng, (0.0, 1.0), (0.0, 0.05), (0.8, 0.97))
        return Material("plain", color, color, rng.uniform(0.3, 0.8), axis, 0.6, seed)
    if family == "skin":
        color = _hsv(rng, (0.03, 0.09), (0.25, 0.6), (0.3, 0.95))
        return Material("plain", color, color, 0.05, axis, 0.4, seed)
    if family == "cloth":
        color = _hsv(rng, (0.0, 1.0), (0.05, 0.8), (0.08, 0.85))
        pattern = "stripes" if rng.random() < 0.15 else "fabric"
        scale = rng.uniform(0.02, 0.06) if pattern == "stripes" else rng.uniform(0.003, 0.006)
        return Material(pattern, color, _darker(color, 0.7), scale, (0.0, 0.0, 1.0), 1.0, seed)
    if family == "mocap_suit":
        color = _hsv(rng, (0.0, 1.0), (0.0, 0.2), (0.03, 0.1))
        return Material("fabric", color, _darker(color, 0.6), 0.004, axis, 1.0, seed)
    if family == "marker":
        return Material("plain", (0.92, 0.92, 0.9), (0.9, 0.9, 0.9), 0.02, axis, 0.2, seed, 0.15)
    if family == "screen":
        color = _hsv(rng, (0.5, 0.7), (0.1, 0.6), (0.05, 0.5))
        return Material(
            "noise",
            color,
            _hsv(rng, (0, 1), (0.1, 0.5), (0.3, 0.9)),
            rng.uniform(0.01, 0.05),
            axis,
            0.7,
            seed,
            rng.uniform(0.1, 0.5),
        )
    if family == "canvas":
        color = _hsv(rng, (0.0, 1.0), (0.2, 0.8), (0.2, 0.9))
        color2 = _hsv(rng, (0.0, 1.0), (0.2, 0.8), (0.2, 0.9))
        return Material("noise", color, color2, rng.uniform(0.05, 0.2), axis, 1.0, seed)
    if family == "glass":
        color = _hsv(rng, (0.52, 0.62), (0.1, 0.35), (0.75, 0.95))
        return Material(
            "noise", color, (0.95, 0.95, 0.95), rng.uniform(0.3, 1.0), axis, 0.6, seed, 0.6
        )
    if family == "hair":
        color = _hsv(rng, (0.05, 0.1), (0.2, 0.7), (0.03, 0.6))
        return Material("fabric", color, _darker(color, 0.7), 0.003, axis, 1.0, seed)
    if family == "rubber":
        v = rng.uniform(0.03, 0.15)
        return Material("plain", (v, v, v), (v, v, v), 0.05, axis, 0.3, seed)
    raise ValueError(f"family: expected one of {MATERIAL_FAMILIES}, got {family!r}")


# --------------------------------------------------------------------------------------------
# lights


@dataclass
class Light:
    """A light: ``kind`` ``"point"`` (at ``position``, intensity falling off as
    ``1 / (1 + (d / falloff)^2)``) or ``"directional"`` (travelling along ``direction``).
    ``color`` (3,) scales the Lambertian term ``max(0, n . l)``."""

    kind: str
    color: tuple[float, float, float]
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    falloff: float = 3.0
    cast_shadows: bool = True

    def __post_init__(self):
        if self.kind not in ("point", "directional"):
            raise ValueError(f"kind: expected 'point' or 'directional', got {self.kind!r}")
        d = np.asarray(self.direction, float)
        if np.linalg.norm(d) < 1e-9:
            raise ValueError("direction: must be non-zero")
        self.direction = tuple(float(v) for v in d / np.linalg.norm(d))
        self.color = tuple(float(c) for c in self.color)
        self.position = tuple(float(p) for p in self.position)
        if self.falloff <= 0:
            raise ValueError(f"falloff: must be positive, got {self.falloff}")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "color": [float(c) for c in self.color],
            "position": [float(p) for p in self.position],
            "direction": [float(d) for d in self.direction],
            "falloff": float(self.falloff),
            "cast_shadows": bool(self.cast_shadows),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Light:
        return cls(
            d["kind"],
            tuple(d["color"]),
            tuple(d["position"]),
            tuple(d["direction"]),
            d["falloff"],
            d["cast_shadows"],
        )


@dataclass
class Lighting:
    """Ambient term (3,) plus a list of lights; ``exposure`` scales the shaded radiance before
    the display gamma."""

    ambient: tuple[float, float, float] = (0.35, 0.35, 0.35)
    lights: list[Light] = field(default_factory=list)
    exposure: float = 1.0

    def to_dict(self) -> dict:
        return {
            "ambient": [float(a) for a in self.ambient],
            "lights": [light.to_dict() for light in self.lights],
            "exposure": float(self.exposure),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Lighting:
        return cls(tuple(d["ambient"]), [Light.from_dict(x) for x in d["lights"]], d["exposure"])


def random_lighting(
    rng: np.random.Generator, room_size, point_lights=(1, 3), directional_probability=0.5
) -> Lighting:
    """Ambient light plus 1-3 ceiling point lights and, sometimes, a directional light, with
    warm to cool tints; the exposure is set so a lit white wall lands near 0.8."""
    lx, ly, lz = room_size
    warmth = rng.uniform(-1, 1)
    tint = np.array([1.0 + 0.08 * warmth, 1.0, 1.0 - 0.12 * warmth])
    ambient = tuple(float(a) for a in rng.uniform(0.22, 0.4) * tint)
    lights = []
    count = int(rng.integers(point_lights[0], point_lights[1] + 1))
    for _ in range(count):
        position = (
            rng.uniform(0.2, 0.8) * lx,
            rng.uniform(0.2, 0.8) * ly,
            lz - rng.uniform(0.15, 0.4),
        )
        strength = rng.uniform(0.5, 0.9) * (1.6 / np.sqrt(count))
        lights.append(
            Light(
                "point",
                tuple(strength * tint),
                position,
                falloff=max(lx, ly) * rng.uniform(0.45, 0.7),
            )
        )
    if rng.random() < directional_probability:
        azimuth = rng.uniform(0, 2 * np.pi)
        elevation = rng.uniform(np.radians(25), np.radians(65))
        direction = (
            np.cos(elevation) * np.cos(azimuth),
            np.cos(elevation) * np.sin(azimuth),
            -np.sin(elevation),
        )
        lights.append(
            Light("directional", tuple(rng.uniform(0.2, 0.45) * tint), direction=direction)
        )
    exposure = float(rng.uniform(0.9, 1.1))
    return Lighting(ambient, lights, exposure)
