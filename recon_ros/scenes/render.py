"""CPU rendering of a scene with open3d's ``RaycastingScene`` (Embree).

Every visible primitive is tessellated (round ones to within ``tessellation`` of the analytic
surface) and merged into one triangle mesh; a table maps each triangle to its primitive, and so to
its instance, class, material and analytic normal. One ray per pixel centre gives:

- ``depth``: the z-depth of the first hit (rays are cast with camera-space directions of unit z,
  so the hit parameter *is* the z-depth), 0 where nothing is hit or beyond ``max_depth``;
- ``semantic`` (class id, 255 for no hit) and ``instance`` (instance id, 0 for no hit);
- ``rgb``: Lambertian shading of the solid-texture albedo (evaluated at the hit point in the
  owner's frame) under the ambient term and the lights, optionally with cast shadows (shadow rays
  against the objects and fixtures only: the closed shell of the room would otherwise shadow every
  directional light), then the sensor model and a display gamma of 2.2.

The sensor model (``SensorConfig``) adds, in order: per-frame exposure jitter and vignetting on
linear radiance, Gaussian blur, gamma, additive Gaussian noise in 8-bit levels; and optionally
depth noise growing with the square of the depth. All randomness comes from the ``rng`` passed to
``render``, so frames are reproducible.
"""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass

import numpy as np

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.scenes.appearance import albedo
from recon_ros.scenes.geometry import (
    invert_pose,
    local_normals,
    primitive_mesh,
    rotate_vectors,
    transform_points,
)
from recon_ros.scenes.scene import Scene

_INVALID = np.uint32(0xFFFFFFFF)
_KINDS = ("box", "cylinder", "sphere", "capsule")
_SHADOW_OFFSET = 2e-3  # m, along the normal, so shadow rays do not hit their own surface


@dataclass
class SensorConfig:
    """Camera imperfections (all off by default; see the module docstring).

    Attributes:
        noise_sigma: std of additive Gaussian noise in 8-bit levels.
        blur_sigma: Gaussian blur std in pixels.
        exposure_jitter: std of the per-frame log exposure.
        vignetting: darkening at the image corners (0 none, 1 black corners).
        depth_noise: depth noise std at 1 m (m); it grows with depth squared.
        max_depth: depths beyond this (m) read 0 (invalid).
        antialias: k gives k x k colour samples per pixel (depth and labels use the centre).
    """

    noise_sigma: float = 0.0
    blur_sigma: float = 0.0
    exposure_jitter: float = 0.0
    vignetting: float = 0.0
    depth_noise: float = 0.0
    max_depth: float = 20.0
    antialias: int = 1

    def __post_init__(self):
        for name in ("noise_sigma", "blur_sigma", "exposure_jitter", "vignetting", "depth_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be non-negative, got {getattr(self, name)}")
        if self.max_depth <= 0:
            raise ValueError(f"max_depth: must be positive, got {self.max_depth}")
        if int(self.antialias) < 1:
            raise ValueError(f"antialias: must be >= 1, got {self.antialias}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SensorConfig:
        return cls(**d)


@dataclass
class RenderedFrame:
    """One rendered view.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 metres, 0 where invalid.
        semantic: (H, W) uint8 class ids, ``IGNORE_LABEL`` where nothing was hit.
        instance: (H, W) uint16 instance ids, 0 where nothing was hit.
    """

    rgb: np.ndarray
    depth: np.ndarray
    semantic: np.ndarray
    instance: np.ndarray


def camera_directions(K: np.ndarray, width: int, height: int, offset=(0.0, 0.0)) -> np.ndarray:
    """Camera-frame ray directions (H * W, 3) with unit z through the pixel centres shifted by
    ``offset`` (2,) pixels, row-major."""
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"K: expected shape (3, 3), got {K.shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"width, height: must be positive, got {width}x{height}")
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    y = (v.ravel() + offset[1] - K[1, 2]) / K[1, 1]
    x = (u.ravel() + offset[0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x, y, np.ones_like(x)], axis=1)


def camera_rays(directions: np.ndarray, T_world_cam: np.ndarray) -> np.ndarray:
    """Rays (N, 6) float32 ``[origin, direction]`` in the world of a camera at ``T_world_cam``
    (4, 4) with camera-frame ``directions`` (N, 3)."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"T_world_cam: expected shape (4, 4), got {T.shape}")
    rays = np.empty((len(directions), 6), dtype=np.float32)
    rays[:, :3] = T[:3, 3]
    rays[:, 3:] = rotate_vectors(T[:3, :3], directions)
    return rays


def _open3d():
    """open3d, imported on first use (it takes most of a second; command-line tools that only
    parse arguments should not pay for it)."""
    return importlib.import_module("open3d")


def _tensor(array: np.ndarray):
    return _open3d().core.Tensor(array)


def _raycasting_scene(vertices: np.ndarray, faces: np.ndarray):
    o3d = _open3d()
    scene = o3d.t.geometry.RaycastingScene()
    if len(faces):
        scene.add_triangles(
            o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.uint32))
        )
    return scene


class Renderer:
    """Renders views of ``scene`` (see the module docstring).

    Args:
        scene: the scene; hidden objects are left out.
        shadows: cast shadows from lights that have ``cast_shadows``.
        tessellation: largest deviation (m) of round primitives' meshes from their surfaces.
        threads: ray-casting threads (0: all cores); results do not depend on it.
    """

    def __init__(
        self, scene: Scene, *, shadows: bool = True, tessellation: float = 1e-3, threads: int = 0
    ):
        if tessellation <= 0:
            raise ValueError(f"tessellation: must be positive, got {tessellation}")
        self.scene = scene
        self.shadows = shadows
        self.threads = int(threads)
        table = scene.primitive_table()
        self.table = table
        vertices, faces, owner = [], [], []
        # Shadow casters: objects and fixtures for point lights; objects alone for directional
        # lights, which in a closed room stand for light coming in from somewhere unmodelled.
        casters = {"point": ([], [], [0]), "directional": ([], [], [0])}
        offset = 0
        for k, prim in enumerate(table.primitives):
            v, f = primitive_mesh(prim, tessellation)
            vertices.append(v)
            faces.append(f + offset)
            owner.append(np.full(len(f), k, dtype=np.int64))
            offset += len(v)
            obj = table.objects[table.object_index[k]]
            kinds = []
            if obj.role == "object":
                kinds = ["point", "directional"]
            elif obj.role == "fixture" and obj.variant not in ("lamp", "window"):
                kinds = ["point"]
            for kind in kinds:
                cv, cf, count = casters[kind]
                cv.append(v)
                cf.append(f + count[0])
                count[0] += len(v)
        self.vertices = np.concatenate(vertices)
        self.faces = np.concatenate(faces)
        self.triangle_primitive = np.concatenate(owner)
        self._scene = _raycasting_scene(self.vertices, self.faces)
        self._occluders = {
            kind: _raycasting_scene(np.concatenate(cv), np.concatenate(cf)) if cf else None
            for kind, (cv, cf, _) in casters.items()
        }
        self._directions: dict[tuple, np.ndarray] = {}

        # Per-primitive lookups.
        count = len(table)
        self.primitive_kind = np.array([_KINDS.index(p.kind) for p in table.primitives], np.int64)
        self.primitive_rotation = np.stack([p.pose[:3, :3] for p in table.primitives]).reshape(
            count, 3, 3
        )
        self.primitive_origin = np.stack([p.pose[:3, 3] for p in table.primitives]).reshape(
            count, 3
        )
        self.primitive_half_length = np.array(
            [p.size[1] / 2 if p.kind == "capsule" else 0.0 for p in table.primitives]
        )
        self.primitive_class = table.class_ids.astype(np.uint8)
        self.primitive_instance = table.instance_ids.astype(np.uint16)
        # Materials: one entry per (object, material name), textured in the object's frame.
        self.materials, self.material_owner_inverse = [], []
        index: dict[tuple[int, str], int] = {}
        material_of = []
        for k, prim in enumerate(table.primitives):
            obj_k = int(table.object_index[k])
            key = (obj_k, prim.material)
            if key not in index:
                obj = table.objects[obj_k]
                index[key] = len(self.materials)
                self.materials.append(obj.materials[prim.material])
                self.material_owner_inverse.append(invert_pose(obj.pose))
            material_of.append(index[key])
        self.primitive_material = np.array(material_of, dtype=np.int64)

    # ----------------------------------------------------------------------------------------
    def camera_directions_for(self, K, width, height, offset=(0.0, 0.0)) -> np.ndarray:
        """``camera_directions`` (H * W, 3), cached per intrinsics and size."""
        key = (np.asarray(K, dtype=np.float64).tobytes(), int(width), int(height), tuple(offset))
        if key not in self._directions:
            if len(self._directions) > 32:
                self._directions.clear()
            self._directions[key] = camera_directions(K, width, height, offset)
        return self._directions[key]

    def cast(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        """Cast ``rays`` (N, 6) float32; returns ``t_hit`` (N,) float64 (inf on a miss),
        ``primitive`` (N,) int64 (-1 on a miss) and ``face_normal`` (N, 3)."""
        result = self._scene.cast_rays(_tensor(rays), nthreads=self.threads)
        t_hit = result["t_hit"].numpy().astype(np.float64)
        triangle = result["primitive_ids"].numpy()
        hit = triangle != _INVALID
        primitive = np.full(len(rays), -1, dtype=np.int64)
        primitive[hit] = self.triangle_primitive[triangle[hit].astype(np.int64)]
        t_hit[~hit] = np.inf
        return {
            "t_hit": t_hit,
            "primitive": primitive,
            "face_normal": result["primitive_normals"].numpy().astype(np.float64),
        }

    def _normals(self, points, primitive, face_normal, directions) -> np.ndarray:
        """Smooth world normals (N, 3) facing the viewer at hit ``points`` (N, 3)."""
        normals = face_normal.copy()
        kinds = self.primitive_kind[primitive]
        for code in (1, 2, 3):  # round primitives get analytic normals
            sel = np.nonzero(kinds == code)[0]
            if len(sel) == 0:
                continue
            prim = primitive[sel]
            R = self.primitive_rotation[prim]
            local_p = np.einsum("nji,nj->ni", R, points[sel] - self.primitive_origin[prim])
            local_f = np.einsum("nji,nj->ni", R, face_normal[sel])
            n_local = local_normals(
                _KINDS[code], local_p, local_f, self.primitive_half_length[prim]
            )
            normals[sel] = np.einsum("nij,nj->ni", R, n_local)
        facing_away = np.sum(normals * directions, axis=1) > 0
        normals[facing_away] *= -1
        return normals

    def _albedo(self, points, primitive) -> tuple[np.ndarray, np.ndarray]:
        """Albedo (N, 3) and emission (N,) at hit ``points`` of ``primitive``."""
        material = self.primitive_material[primitive]
        colors = np.zeros((len(points), 3))
        emission = np.zeros(len(points))
        order = np.argsort(material, kind="stable")
        boundaries = np.flatnonzero(np.diff(material[order])) + 1
        for group in np.split(order, boundaries):
            if len(group) == 0:
                continue
            m = int(material[group[0]])
            inv = self.material_owner_inverse[m]
            local = transform_points(inv, points[group])
            colors[group] = albedo(self.materials[m], local)
            emission[group] = self.materials[m].emission
        return colors, emission

    def _irradiance(self, points, normals) -> np.ndarray:
        """Irradiance (N, 3) at ``points`` with unit ``normals`` (float32 suffices here)."""
        lighting = self.scene.lighting
        count = len(points)
        normals = normals.astype(np.float32)
        origins = (points + _SHADOW_OFFSET * normals).astype(np.float32)
        total = np.empty((count, 3), dtype=np.float32)
        total[:] = np.asarray(lighting.ambient, dtype=np.float32)
        for light in lighting.lights:
            if light.kind == "point":
                to_light = np.asarray(light.position, dtype=np.float32) - origins
                distance2 = np.einsum("ij,ij->i", to_light, to_light)
                cosine = np.einsum("ij,ij->i", normals, to_light) / np.sqrt(
                    np.maximum(distance2, 1e-18)
                )
                lambert = np.maximum(cosine, 0.0) / (1.0 + distance2 / np.float32(light.falloff**2))
                far = 0.999  # rays span origin to light: parameter 1 is the light itself
                ray_dir = to_light
            else:
                towards = -np.asarray(light.direction, dtype=np.float32)
                lambert = np.maximum(np.einsum("ij,j->i", normals, towards), 0.0)
                far = np.inf
                ray_dir = np.broadcast_to(towards, origins.shape)
            lit = np.nonzero(lambert > 0)[0]
            occluders = self._occluders[light.kind]
            if self.shadows and light.cast_shadows and occluders is not None and len(lit):
                rays = np.concatenate([origins[lit], ray_dir[lit]], axis=1)
                blocked = occluders.test_occlusions(
                    _tensor(rays), tnear=0.0, tfar=far, nthreads=self.threads
                ).numpy()
                lambert[lit[blocked.astype(bool)]] = 0.0
            total += lambert[:, None] * np.asarray(light.color, dtype=np.float32)[None, :]
        return total.astype(np.float64)

    def _radiance(self, rays: np.ndarray, hits: dict[str, np.ndarray]) -> np.ndarray:
        """Linear radiance (N, 3) seen along ``rays`` with their ``hits``."""
        radiance = np.zeros((len(rays), 3))
        hit = np.isfinite(hits["t_hit"])
        if not hit.any():
            return radiance
        origins = rays[hit, :3].astype(np.float64)
        directions = rays[hit, 3:].astype(np.float64)
        points = origins + hits["t_hit"][hit, None] * directions
        primitive = hits["primitive"][hit]
        normals = self._normals(points, primitive, hits["face_normal"][hit], directions)
        colors, emission = self._albedo(points, primitive)
        irradiance = self._irradiance(points, normals)
        radiance[hit] = colors * (irradiance + emission[:, None])
        return radiance

    # ----------------------------------------------------------------------------------------
    def render(
        self,
        K: np.ndarray,
        T_world_cam: np.ndarray,
        width: int,
        height: int,
        *,
        sensor: SensorConfig | None = None,
        rng: np.random.Generator | None = None,
    ) -> RenderedFrame:
        """Render the view of a camera with intrinsics ``K`` (3, 3) at ``T_world_cam`` (4, 4).

        ``rng`` drives the sensor model's noise (required when it adds any)."""
        sensor = sensor or SensorConfig()
        k = int(sensor.antialias)
        rays = camera_rays(self.camera_directions_for(K, width, height), T_world_cam)
        hits = self.cast(rays)
        t_hit, primitive = hits["t_hit"], hits["primitive"]
        hit = primitive >= 0

        depth = np.where(hit & (t_hit <= sensor.max_depth), t_hit, 0.0)
        semantic = np.full(len(rays), IGNORE_LABEL, dtype=np.uint8)
        instance = np.zeros(len(rays), dtype=np.uint16)
        semantic[hit] = self.primitive_class[primitive[hit]]
        instance[hit] = self.primitive_instance[primitive[hit]]

        if k == 1:
            radiance = self._radiance(rays, hits)
        else:
            offsets = [
                ((i + 0.5) / k - 0.5, (j + 0.5) / k - 0.5) for j in range(k) for i in range(k)
            ]
            radiance = np.zeros((len(rays), 3))
            for offset in offsets:
                sub_rays = camera_rays(
                    self.camera_directions_for(K, width, height, offset), T_world_cam
                )
                radiance += self._radiance(sub_rays, self.cast(sub_rays))
            radiance /= k * k

        image = radiance.reshape(height, width, 3) * self.scene.lighting.exposure
        image, depth = self._sensor(image, depth.reshape(height, width), sensor, rng)
        return RenderedFrame(
            rgb=image,
            depth=depth.astype(np.float32),
            semantic=semantic.reshape(height, width),
            instance=instance.reshape(height, width),
        )

    @staticmethod
    def _sensor(linear: np.ndarray, depth: np.ndarray, sensor: SensorConfig, rng):
        needs_rng = sensor.noise_sigma > 0 or sensor.exposure_jitter > 0 or sensor.depth_noise > 0
        if needs_rng and rng is None:
            raise ValueError("rng: the sensor model adds noise; pass a numpy Generator")
        height, width = depth.shape
        if sensor.exposure_jitter > 0:
            linear = linear * np.exp(rng.normal(0.0, sensor.exposure_jitter))
        if sensor.vignetting > 0:
            v, u = np.mgrid[0:height, 0:width]
            r2 = ((u - (width - 1) / 2) ** 2 + (v - (height - 1) / 2) ** 2) / (
                ((width - 1) / 2) ** 2 + ((height - 1) / 2) ** 2
            )
            linear = linear * (1.0 - sensor.vignetting * r2)[..., None]
        if sensor.blur_sigma > 0:
            gaussian_filter = importlib.import_module("scipy.ndimage").gaussian_filter
            linear = gaussian_filter(linear, sigma=(sensor.blur_sigma, sensor.blur_sigma, 0))
        display = np.clip(linear, 0.0, 1.0) ** (1 / 2.2) * 255.0
        if sensor.noise_sigma > 0:
            display = display + rng.normal(0.0, sensor.noise_sigma, size=display.shape)
        rgb = np.clip(np.round(display), 0, 255).astype(np.uint8)
        if sensor.depth_noise > 0:
            valid = depth > 0
            noise = rng.normal(0.0, 1.0, size=depth.shape) * sensor.depth_noise * depth**2
            depth = np.where(valid, np.maximum(depth + noise, 1e-3), 0.0)
        return rgb, depth
