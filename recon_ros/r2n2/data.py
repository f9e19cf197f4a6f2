"""Object-centric samples for the conv-LSTM 3D-R2N2, from the scene engine.

A sample is one object of the engine's library (each class, its shape variants) standing in a
generated room (the room's random materials and lights are the random background), seen by
``views`` cameras at random azimuths and elevations that see at least 2 % of the image's pixels
on it (no wall or other object in between), each with its own sensor noise, blur, exposure and
vignetting (a real camera's imperfections), plus the 32^3
occupancy of the object alone in its own frame (canonical: x forward, z up, the grid a cube
around its bounds), which is what the network predicts from unposed views, as 3D-R2N2 does with
ShapeNet's aligned models. Laptops are allowed a table to rest on, and other objects the room
draws are left out of the target.

``object_sample(seed, class_name)`` is deterministic by seed; ``write_object_samples`` writes
them as ``.npz`` files (resumable, byte-identical) and ``ObjectSamples`` reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.poses import look_at_pose
from recon_ros.datasets.io import read_npz, write_npz
from recon_ros.scenes.objects import OBJECT_CLASSES
from recon_ros.scenes.placement import PlacementConfig
from recon_ros.scenes.render import Renderer, SensorConfig
from recon_ros.scenes.scene import (
    PrimitiveTable,
    SceneConfig,
    generate_scene,
    scene_seed,
    stream,
)

VIEW_SIZE = 127
GRID = 32
#: A view counts when the object covers at least this share of its pixels unoccluded.
MIN_VISIBLE_SHARE = 0.02


def _object_grid(obj) -> tuple[np.ndarray, float]:
    """Object-frame centres (G, G, G, 3) of a cube grid around the object's bounds (5 % margin)
    and its voxel size."""
    lows, highs = [], []
    for primitive in obj.primitives:
        corners = primitive.bounds()
        lows.append(corners[0])
        highs.append(corners[1])
    lo, hi = np.min(lows, axis=0), np.max(highs, axis=0)
    side = float(np.max(hi - lo)) * 1.05
    voxel = side / GRID
    centre = (lo + hi) / 2
    axis = (np.arange(GRID) + 0.5) * voxel - side / 2
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1) + centre
    return grid, voxel


def object_sample(
    seed: int,
    class_name: str,
    views: int = 5,
    size: int = VIEW_SIZE,
    fov_deg: float = 50.0,
    variant_set: str = "all",
) -> dict[str, np.ndarray] | None:
    """Views (V, size, size, 3) uint8 and occupancy (32, 32, 32) uint8 of one object (module
    docstring); None when the room could not place it or show it unoccluded from ``views``
    places (the caller draws another seed)."""
    if class_name not in OBJECT_CLASSES:
        raise ValueError(f"class_name: expected one of {OBJECT_CLASSES}, got {class_name!r}")
    counts = {class_name: 1}
    if class_name == "laptop":
        counts["table"] = 1
    placement = PlacementConfig(max_counts=counts, min_counts={class_name: 1})
    scene = generate_scene(seed, SceneConfig(placement=placement, variant_set=variant_set))
    targets = [
        o for o in scene.visible_objects() if o.class_name == class_name and o.role == "object"
    ]
    if not targets:
        return None
    obj = targets[0]
    grid, voxel = _object_grid(obj)
    world = grid.reshape(-1, 3) @ obj.pose[:3, :3].T + obj.pose[:3, 3]
    sdf, _ = PrimitiveTable.from_objects([obj]).sdf(world, max_distance=voxel)
    occupancy = (sdf.reshape(GRID, GRID, GRID) < 0).astype(np.uint8)

    world_primitives = obj.world_primitives()
    lo = np.min([p.bounds()[0] for p in world_primitives], axis=0)
    hi = np.max([p.bounds()[1] for p in world_primitives], axis=0)
    centre, radius = (lo + hi) / 2, float(np.linalg.norm(hi - lo)) / 2
    room_lo, room_hi = scene.bounds()
    focal = size / 2 / np.tan(np.radians(fov_deg) / 2)
    K = np.array([[focal, 0, (size - 1) / 2], [0, focal, (size - 1) / 2], [0, 0, 1.0]])
    distance = radius / np.sin(np.radians(fov_deg) / 2) * 1.1
    rng = stream(seed, "trajectory")  # the cameras' stream of this scene
    renderer = Renderer(scene, shadows=False, threads=1)
    min_pixels = MIN_VISIBLE_SHARE * size * size
    images = []
    for _ in range(views):
        # A real camera's imperfections, drawn per view (a robot's views differ in exposure).
        sensor = SensorConfig(
            noise_sigma=rng.uniform(0.0, 4.0),
            blur_sigma=rng.uniform(0.0, 0.8),
            exposure_jitter=0.2,
            vignetting=rng.uniform(0.0, 0.3),
        )
        frame = None
        for _attempt in range(50):
            azimuth = rng.uniform(0, 2 * np.pi)
            elevation = rng.uniform(np.radians(10), np.radians(45))
            direction = np.array(
                [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                 np.sin(elevation)]
            )  # fmt: skip
            position = centre + distance * direction
            if np.any(position <= room_lo + 0.1) or np.any(position >= room_hi - 0.1):
                continue
            frame = renderer.render(K, look_at_pose(position, centre), size, size, sensor=sensor,
                                    rng=rng)  # fmt: skip
            # a wall or another object between camera and object: that view shows nothing of it
            if np.count_nonzero(frame.instance == obj.instance_id) >= min_pixels:
                break
            frame = None
        if frame is None:
            return None
        images.append(frame.rgb)
    return {"images": np.stack(images), "occupancy": occupancy}


def write_object_samples(
    out: str | os.PathLike,
    count: int,
    seed: int,
    views: int = 5,
    classes=OBJECT_CLASSES,
    variant_set: str = "all",
) -> int:
    """``count`` samples, classes in turn, into ``out`` (``object_NNNNNN.npz`` + index.json);
    seeds derive from ``seed``; shapes from ``variant_set`` (``SceneConfig.variant_set``); files
    already there are kept (resumable). Returns the count."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for index in range(count):
        class_name = classes[index % len(classes)]
        name = f"object_{index:06d}.npz"
        path = out / name
        if not path.is_file():
            for attempt in range(20):
                sample = object_sample(
                    scene_seed(seed, index * 20 + attempt), class_name, views,
                    variant_set=variant_set,
                )  # fmt: skip
                if sample is not None:
                    break
            else:
                raise RuntimeError(f"no placement of a {class_name} in 20 rooms (sample {index})")
            write_npz(path, {**sample, "class_id": np.array(OBJECT_CLASSES.index(class_name))})
        entries.append({"file": name, "class": class_name})
    index = {
        "format": "recon_ros.r2n2_samples",
        "seed": seed,
        "views": views,
        "variant_set": variant_set,
        "samples": entries,
    }
    atomic_write_bytes(out / "index.json", json.dumps(index, indent=1).encode())
    return len(entries)


class ObjectSamples(Dataset):
    """Item: ``views`` (V, 3, 127, 127) float in [0, 1], ``occupancy`` (32, 32, 32) float,
    ``class_id`` int."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise ValueError(f"{self.folder}: no index.json (write it with write_object_samples)")
        self.entries = json.loads(index_path.read_text(encoding="utf8"))["samples"]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, item: int) -> dict:
        arrays = read_npz(self.folder / self.entries[item]["file"])
        return {
            "views": torch.from_numpy(arrays["images"]).permute(0, 3, 1, 2).float() / 255.0,
            "occupancy": torch.from_numpy(arrays["occupancy"].astype(np.float32)),
            "class_id": int(arrays["class_id"]),
        }
