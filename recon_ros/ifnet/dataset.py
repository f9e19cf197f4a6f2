"""Training samples of the single-image model, from generated scene folders.

A sample is one frame of a scene: its image and depth resized to the model's input, the
intrinsics at that size, up in the camera frame and the camera's height above the floor (the
floor prior's inputs, ``ifnet.floor_prior``), and the exact signed distance of the scene
(``Scene.sdf``, the scene rebuilt from its ``scene.json``) at the centres of the
``FrustumGrid`` in front of the camera, clipped to +-``SDF_CLIP``. Occupancy is ``sdf < 0``
(inside a solid: furniture, people, the room's floor, walls and ceiling slabs).

``build_samples`` writes one ``.npz`` per frame (byte-identical for the same inputs) and an
``index.json``; ``SingleViewSamples`` reads them and draws query points per item: half near
the surface (voxels within two voxels of it, jittered inside their cell), half anywhere in the
grid, each labelled by the trilinear signed distance at the point. With ``augment`` (training)
each item is mirrored left-right at random (image, depth, distances and principal point
together: the grid is symmetric about the optical axis) and given a real camera's exposure,
white balance, vignetting, blur, noise and compression (``CameraRandomiser``). Deterministic by
seed. Augmented items carry the floor prior with a robot's TF errors (a few centimetres, about a
degree), or none for a quarter of them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch.utils.data import Dataset

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.semantic_net import up_in_camera
from recon_ros.datasets.io import read_npz, write_npz
from recon_ros.datasets.layout import SyntheticSequence, list_scenes
from recon_ros.datasets.randomise import CameraRandomiser
from recon_ros.ifnet.frustum_grid import FrustumGrid
from recon_ros.scenes.scene import Scene
from recon_ros.sufficiency.intrinsics import resize_intrinsics, resize_nearest
from recon_ros.sufficiency.preprocess import resize_rgb

#: The box reconstructed: 40 x 32 x 32 voxels of 10 cm, from 0.3 m to 4.3 m ahead.
DEFAULT_GRID = FrustumGrid.in_front((40, 32, 32), 0.1, near=0.3)
#: Signed distances are stored clipped to this (metres): only their sign and the near band
#: matter.
SDF_CLIP = 0.4
#: Share of augmented training items given without the floor prior.
FLOOR_UNKNOWN_SHARE = 0.25
#: Real-camera effects of augmented training items.
_CAMERA = CameraRandomiser()
#: The model's input (width, height), multiples of 32.
DEFAULT_IMAGE_SIZE = (128, 96)


def frustum_sdf(scene: Scene, T_world_cam: np.ndarray, grid: FrustumGrid) -> np.ndarray:
    """(D, H, W) float32 signed distance of the scene at the grid's voxel centres (camera at
    ``T_world_cam``), clipped to +-``SDF_CLIP``."""
    centres = grid.centres().reshape(-1, 3).double().numpy()
    T = np.asarray(T_world_cam, dtype=np.float64)
    world = centres @ T[:3, :3].T + T[:3, 3]
    sdf, _ = scene.primitive_table().sdf(world, max_distance=SDF_CLIP)
    return np.clip(sdf, -SDF_CLIP, SDF_CLIP).reshape(grid.dims).astype(np.float32)


def build_samples(
    data: str | os.PathLike,
    out: str | os.PathLike,
    *,
    frames_per_scene: int = 8,
    image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
    grid: FrustumGrid = DEFAULT_GRID,
    scenes: int | None = None,
) -> int:
    """Samples of the first ``scenes`` scene folders under ``data`` (all when None), the
    frames evenly spaced over each sequence; files already written are kept (resumable).

    Returns:
        The number of samples in ``out``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    folders = list_scenes(data)[:scenes]
    width, height = image_size
    names = []
    for folder in folders:
        sequence = SyntheticSequence(folder)
        scene = Scene.from_dict(sequence.metadata["scene"])
        count = len(sequence)
        poses = sequence.poses
        picks = np.unique(np.linspace(0, count - 1, min(frames_per_scene, count)).round())
        for index in picks.astype(int):
            name = f"{folder.name}_{index:04d}.npz"
            names.append(name)
            floor = _floor_arrays(poses[index])
            if (out / name).is_file():
                with np.load(out / name) as stored:  # the names only: no array is read
                    has_floor = "up_cam" in stored.files
                if not has_floor:  # written before samples kept the floor: add it
                    write_npz(out / name, {**read_npz(out / name), **floor})
                continue
            frame = sequence[index]
            src_hw = frame.rgb.shape[:2]
            depth = resize_nearest(frame.depth, (height, width))
            write_npz(
                out / name,
                {
                    "rgb": resize_rgb(frame.rgb, (height, width)),
                    "depth_mm": np.round(depth * 1000.0).astype(np.uint16),
                    "K": resize_intrinsics(frame.K, src_hw, (height, width)),
                    "sdf": frustum_sdf(scene, frame.T_world_cam, grid).astype(np.float16),
                    **floor,
                },
            )
    index = {
        "format": "recon_ros.ifnet_samples",
        "grid": {
            "dims": list(grid.dims),
            "voxel_size": grid.voxel_size,
            "origin": list(grid.origin),
        },
        "image_size": list(image_size),
        "samples": sorted(set(names) | {p.name for p in out.glob("*.npz")}),
    }
    atomic_write_bytes(out / "index.json", json.dumps(index, indent=1).encode())
    return len(index["samples"])


def _floor_arrays(T_world_cam: np.ndarray) -> dict[str, np.ndarray]:
    """The floor prior's inputs of a generated frame: up in the camera's optical frame and the
    camera's height (the scene engine's world has z up and the floor at z = 0)."""
    T = np.asarray(T_world_cam, dtype=np.float64)
    return {
        "up_cam": up_in_camera(T, (2, 1.0)).astype(np.float32),
        "camera_height": np.array(T[2, 3], dtype=np.float32),
    }


def sdf_at(sdf: torch.Tensor, grid: FrustumGrid, points: torch.Tensor) -> torch.Tensor:
    """Trilinear signed distance (P,) of a (D, H, W) grid at (P, 3) camera-frame points (the
    clip value outside the grid)."""
    coords = grid.normalised(grid.to_grid(points))
    values = F.grid_sample(
        sdf[None, None].float(),
        coords.view(1, 1, 1, -1, 3).float(),
        mode="bilinear",
        padding_mode="border",
        align_corners=True,
    ).view(-1)
    outside = (coords.abs() > 1.0).any(dim=-1)
    return torch.where(outside, torch.full_like(values, SDF_CLIP), values)


class SingleViewSamples(Dataset):
    """The samples ``build_samples`` wrote, with query points (module docstring).

    Item: ``image`` (3, h, w) float in [0, 1], ``K`` (3, 3), ``depth`` (h, w) metres, ``sdf``
    (D, H, W), ``up`` (3,) up in the camera frame and ``height`` () the camera's height above
    the floor (NaN: unknown; the floor prior), ``queries`` (P, 3) camera-frame points,
    ``occupied`` (P,) float 0/1.

    Args:
        augment: mirror and recolour items at random (module docstring); for training only.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        queries: int = 2048,
        seed: int = 0,
        augment: bool = False,
    ):
        self.folder = Path(folder)
        index_path = self.folder / "index.json"
        if not index_path.is_file():
            raise ValueError(f"{self.folder}: no index.json (build it with build_samples)")
        index = json.loads(index_path.read_text(encoding="utf8"))
        if index.get("format") != "recon_ros.ifnet_samples":
            raise ValueError(f"{index_path}: not an IF-Net sample index")
        spec = index["grid"]
        self.grid = FrustumGrid(tuple(spec["dims"]), spec["voxel_size"], tuple(spec["origin"]))
        self.names = list(index["samples"])
        self.image_size = tuple(int(d) for d in index["image_size"])  # (width, height)
        self.queries = int(queries)
        self.seed = int(seed)
        self.augment = bool(augment)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.names)

    def focal_length(self) -> float:
        """The first sample's focal length in pixels (the generator's camera; 0 when empty)."""
        if not self.names:
            return 0.0
        K = read_npz(self.folder / self.names[0])["K"]
        return float((K[0, 0] + K[1, 1]) / 2)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        arrays = read_npz(self.folder / self.names[item])
        rng = np.random.default_rng((self.seed, self.epoch, item))
        rgb, depth_mm, K, sdf_array = arrays["rgb"], arrays["depth_mm"], arrays["K"], arrays["sdf"]
        up = arrays.get("up_cam", np.zeros(3, np.float32)).astype(np.float32)
        height = float(arrays.get("camera_height", np.nan))
        if self.augment:
            rgb, depth_mm, K, sdf_array, up = _mirror(rng, rgb, depth_mm, K, sdf_array, up)
            up, height = _floor_error(rng, up, height)
        sdf = torch.from_numpy(sdf_array.astype(np.float32))
        near = np.argwhere(np.abs(sdf_array) < 2 * self.grid.voxel_size)
        half = self.queries // 2
        if len(near) == 0:
            near = np.argwhere(np.ones(self.grid.dims, dtype=bool))
        chosen = near[rng.integers(0, len(near), half)]  # (k, j, i)
        index = chosen[:, ::-1] + rng.uniform(-0.5, 0.5, (half, 3))
        anywhere = rng.uniform(0.0, 1.0, (self.queries - half, 3)) * (
            np.array(self.grid.dims[::-1]) - 1
        )
        grid_points = torch.from_numpy(np.concatenate([index, anywhere])).float()
        queries = grid_points * self.grid.voxel_size + torch.tensor(self.grid.origin)
        occupied = (sdf_at(sdf, self.grid, queries) < 0).float()
        if self.augment:
            rgb = _CAMERA.image(np.ascontiguousarray(rgb), rng)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0,
            "K": torch.from_numpy(K).float(),
            "depth": torch.from_numpy(np.ascontiguousarray(depth_mm).astype(np.float32) / 1000.0),
            "sdf": sdf,
            "up": torch.from_numpy(up),
            "height": torch.tensor(height, dtype=torch.float32),
            "queries": queries,
            "occupied": occupied,
        }


def _mirror(rng: np.random.Generator, rgb, depth_mm, K, sdf, up):
    """Half the time, the frame seen in a mirror: columns, grid x, principal point and the x of
    up flipped."""
    if rng.random() >= 0.5:
        return rgb, depth_mm, K, sdf, up
    K = K.copy()
    K[0, 2] = (rgb.shape[1] - 1) - K[0, 2]
    up = up * np.array([-1.0, 1.0, 1.0], np.float32)
    return rgb[:, ::-1], depth_mm[:, ::-1], K, np.ascontiguousarray(sdf[:, :, ::-1]), up


def _floor_error(rng: np.random.Generator, up: np.ndarray, height: float):
    """The floor prior as a robot's TF gives it (a few centimetres and about a degree off), or
    unknown (NaN height) for a quarter of the items, so the network also works without it."""
    if rng.random() < FLOOR_UNKNOWN_SHARE:
        return up, float("nan")
    tilted = up + rng.normal(0.0, np.deg2rad(1.0), 3).astype(np.float32)
    return tilted / np.linalg.norm(tilted), height + float(rng.normal(0.0, 0.03))
