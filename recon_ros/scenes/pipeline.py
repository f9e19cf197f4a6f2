"""Generate one scene end to end into a dataset folder (``recon_ros.datasets.layout``).

``generate_scene_folder(folder, seed, config)``: draw the scene, its camera trajectory, render
every frame (RGB, depth, semantic and instance labels), compute the ground-truth volumes at each
requested voxel size (with the ``observed`` mask of the rendered views), the optional Everted
U-Net volumes, the reference mesh and optionally a rosbag2, and write them all. Same seed and
config, same bytes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from recon_ros.datasets.layout import DEPTH_UNIT, SceneFolderWriter, SyntheticSequence
from recon_ros.scenes.cameras import TrajectoryConfig, default_intrinsics, make_trajectory
from recon_ros.scenes.mesh import MESH_METHODS, reference_mesh
from recon_ros.scenes.render import Renderer, SensorConfig
from recon_ros.scenes.scene import GENERATOR_VERSION, SceneConfig, generate_scene, stream
from recon_ros.scenes.volumes import (
    PAPER_DIMS,
    compute_ground_truth,
    observed_mask,
    paper_volumes,
    room_grid,
)


@dataclass
class GenerationConfig:
    """Everything ``generate_scene_folder`` needs besides the seed.

    Attributes:
        scene, trajectory, sensor: see their classes.
        width, height: image size (px); fx: focal length (px), default 525 at 640 wide.
        voxel_sizes: ground-truth grids to write (m); empty for none.
        truncation_voxels: TSDF truncation in voxels.
        volume_margin: grids cover the room interior grown by this (m).
        paper_volumes: also write the Everted U-Net 80 x 96 x 64 occupancy and masks.
        mesh_method: ``"union"`` or ``"marching_cubes"`` (see ``recon_ros.scenes.mesh``).
        mesh_resolution: seam edge (union) or voxel (marching cubes) of the reference mesh
            (m); ``None`` for no mesh.
        shadows: cast shadows.
        bag_storage: also export a rosbag2 (``"mcap"`` or ``"sqlite3"``) into ``bag/`` (a rig's
            as live fixed cameras, ``datasets.bag_export.export_rig_bag``).
    """

    scene: SceneConfig = field(default_factory=SceneConfig)
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    sensor: SensorConfig = field(default_factory=SensorConfig)
    width: int = 640
    height: int = 480
    fx: float | None = None
    voxel_sizes: tuple[float, ...] = (0.04,)
    truncation_voxels: float = 3.0
    volume_margin: float = 0.1
    paper_volumes: bool = False
    mesh_method: str = "union"
    mesh_resolution: float | None = 0.01
    shadows: bool = True
    bag_storage: str | None = None

    def __post_init__(self):
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"width, height: must be positive, got {self.width}x{self.height}")
        self.voxel_sizes = tuple(float(v) for v in self.voxel_sizes)
        if any(v <= 0 for v in self.voxel_sizes):
            raise ValueError(f"voxel_sizes: must be positive, got {self.voxel_sizes}")
        if len(set(self.voxel_sizes)) != len(self.voxel_sizes):
            raise ValueError(f"voxel_sizes: repeated sizes in {self.voxel_sizes}")
        if self.truncation_voxels <= 0:
            raise ValueError(f"truncation_voxels: must be positive, got {self.truncation_voxels}")
        if self.mesh_resolution is not None and self.mesh_resolution <= 0:
            raise ValueError(
                f"mesh_resolution: must be positive or None, got {self.mesh_resolution}"
            )
        if self.mesh_method not in MESH_METHODS:
            raise ValueError(
                f"mesh_method: expected one of {MESH_METHODS}, got {self.mesh_method!r}"
            )
        if self.bag_storage not in (None, "mcap", "sqlite3"):
            raise ValueError(
                f"bag_storage: expected None, 'mcap' or 'sqlite3', got {self.bag_storage!r}"
            )

    def to_dict(self) -> dict:
        return {
            "scene": self.scene.to_dict(),
            "trajectory": self.trajectory.to_dict(),
            "sensor": self.sensor.to_dict(),
            "width": self.width,
            "height": self.height,
            "fx": self.fx,
            "voxel_sizes": list(self.voxel_sizes),
            "truncation_voxels": self.truncation_voxels,
            "volume_margin": self.volume_margin,
            "paper_volumes": self.paper_volumes,
            "mesh_method": self.mesh_method,
            "mesh_resolution": self.mesh_resolution,
            "shadows": self.shadows,
            "bag_storage": self.bag_storage,
        }


def generate_scene_folder(
    folder: str | os.PathLike,
    seed: int,
    config: GenerationConfig | None = None,
    *,
    overwrite: bool = True,
    threads: int = 0,
    progress=None,
) -> Path:
    """Generate scene ``seed`` into ``folder`` (see the module docstring).

    Args:
        overwrite: replace an existing folder.
        threads: ray-casting threads (0: all cores); the files do not depend on it.
        progress: optional callable taking the number of frames rendered so far.

    Returns:
        the scene folder.
    """
    config = config or GenerationConfig()
    scene = generate_scene(seed, config.scene)
    trajectory = make_trajectory(scene, config.trajectory)
    K = default_intrinsics(config.width, config.height, config.fx)
    renderer = Renderer(scene, shadows=config.shadows, threads=threads)

    volumes = []
    for voxel_size in config.voxel_sizes:
        grid = room_grid(scene, voxel_size, config.volume_margin)
        volume = compute_ground_truth(scene, grid, config.truncation_voxels * voxel_size)
        volume.observed = np.zeros(grid.dims, dtype=bool)
        volumes.append(volume)

    with SceneFolderWriter(folder, overwrite=overwrite) as writer:
        for index, T_world_cam in enumerate(trajectory.poses):
            frame = renderer.render(
                K,
                T_world_cam,
                config.width,
                config.height,
                sensor=config.sensor,
                rng=stream(seed, "sensor", index),
            )
            writer.write_frame(
                index, frame.rgb, frame.depth, frame.semantic, frame.instance, T_world_cam
            )
            # Observed as the stored (millimetre) depth would show it.
            stored_depth = np.round(frame.depth / DEPTH_UNIT) * DEPTH_UNIT
            for volume in volumes:
                volume.observed |= observed_mask(
                    volume.grid, volume.truncation, [(K, T_world_cam, stored_depth)]
                )
            if progress is not None:
                progress(index + 1)

        volume_entries = []
        for volume in volumes:
            relative = writer.write_volume(volume)
            volume_entries.append(
                {
                    "file": relative,
                    "voxel_size": volume.grid.voxel_size,
                    "truncation": volume.truncation,
                    "origin": list(volume.grid.origin),
                    "dims": list(volume.grid.dims),
                }
            )
        paper_entry = None
        if config.paper_volumes:
            grid, occupancy, masks = paper_volumes(scene, PAPER_DIMS)
            paper_entry = {
                "file": writer.write_paper_volumes(grid, occupancy, masks),
                "dims": list(grid.dims),
                "voxel_size": grid.voxel_size,
                "origin": list(grid.origin),
                "classes": ["table", "chair", "nightstand", "laptop", "bag", "human"],
                "include_room": False,
                "occupancy_mode": "overlap",
            }
        mesh_entry = None
        if config.mesh_resolution is not None:
            mesh = reference_mesh(scene, config.mesh_resolution, config.mesh_method)
            mesh_entry = {
                "file": writer.write_mesh(mesh),
                "method": config.mesh_method,
                "resolution": config.mesh_resolution,
            }

        metadata = {
            "generator_version": GENERATOR_VERSION,
            "seed": int(seed),
            "camera": {
                "width": config.width,
                "height": config.height,
                "K": K.tolist(),
                "depth_unit": DEPTH_UNIT,
            },
            "frames": {
                "count": len(trajectory),
                "frame_rate": trajectory.frame_rate,
                "stamps_ns": [int(s) for s in trajectory.stamps_ns],
                "continuous": trajectory.continuous,
                "trajectory": {"kind": trajectory.kind, "config": config.trajectory.to_dict()},
            },
            "render": {"sensor": asdict(config.sensor), "shadows": config.shadows},
            "volumes": volume_entries,
            "paper_volumes": paper_entry,
            "mesh": mesh_entry,
            "bag": None
            if config.bag_storage is None
            else {"path": "bag", "storage": config.bag_storage},
            "scene": scene.to_dict(),
        }
        writer.write_metadata(metadata, K)
        if config.bag_storage is not None:
            from recon_ros.datasets.bag_export import export_bag, export_rig_bag

            # a rig is fixed cameras, each on its own topics (what rig_node subscribes to)
            export = export_rig_bag if trajectory.kind == "rig" else export_bag
            export(SyntheticSequence(writer.tmp), writer.tmp / "bag", config.bag_storage)
    return Path(folder)
