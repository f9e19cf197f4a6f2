"""Folder layout of a generated synthetic scene, its writer and its loader.

One folder per scene (``scene_0000``, ``scene_0001`` ... under a dataset root)::

    scene_0000/
      scene.json              everything about the scene (below)
      intrinsics.txt          K (3 x 3) of the colour and depth images (one registered camera)
      color/000000.png        RGB, 8 bits per channel
      depth/000000.png        depth, 16-bit unsigned, millimetres, 0 = no measurement
      semantic/000000.png     class id per pixel, 8 bits (recon_ros.core.classes; 255 = nothing)
      instance/000000.png     instance id per pixel, 16 bits (0 = nothing; ids as in scene.json)
      pose/000000.txt         T_world_cam, 4 x 4, optical frame (x right, y down, z forward),
                              world z up, metres
      volumes/gt_040mm.npz    ground truth on a 4 cm grid (one file per requested voxel size)
      volumes/paper_80x96x64.npz   optional: the Everted U-Net occupancy + per-class masks
      mesh.ply                reference mesh of the visible surface with per-vertex labels
      bag/                    optional: the scene as a rosbag2 (see ``bag_export``)

``scene.json`` holds: ``format`` and ``format_version``; ``generator_version`` and ``seed``
(regenerating with them gives the same files); ``camera`` (width, height, K, depth unit);
``frames`` (count, frame rate, stamps in ns, the trajectory kind and settings, whether the frames
form one continuous camera path); ``render`` (sensor model, shadows); ``volumes`` (file, voxel
size, truncation, origin, dims of each), ``paper_volumes``, ``mesh`` and ``bag`` entries (or
null); and ``scene``: the room (size, wall thickness, openings), the lighting (ambient, lights,
exposure) and every object with its instance id, class, variant, role (structure, fixture or
object), ``hidden`` flag (placement failed: in no image, volume or mesh), parent, pose, drawn
dimensions, materials and primitives (kind, size, pose in the object frame).

Volume files (``GroundTruthVolume.save``): ``origin`` (3,), ``voxel_size``, ``dims`` (3,),
``truncation``, and (nx, ny, nz) arrays ``tsdf`` float32 in [-1, 1] (positive in free space),
``occupancy`` bool, ``semantic`` uint8 (class of the nearest surface within the truncation, 255
elsewhere), ``instance`` uint16, ``solid_class`` uint8 (class of the solid containing the voxel
centre, 255 in free space) and ``observed`` bool. The paper file holds ``occupancy`` (80, 96, 64)
uint8, ``masks`` (80, 96, 64, 6) uint8 (channels: table, chair, nightstand, laptop, bag, human),
``origin`` and ``voxel_size``.

All files are written atomically and deterministically: the same seed and settings give
byte-identical folders. A scene folder is assembled under a temporary name and moved into place
when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from recon_ros.datasets.io import (
    format_matrix,
    read_image,
    read_matrix,
    read_npz,
    write_npz,
    write_png,
    write_text,
)
from recon_ros.datasets.meshes import LabelledMesh
from recon_ros.datasets.sequence import Frame, FrameSequence
from recon_ros.datasets.volumes import GroundTruthVolume

FORMAT = "recon_ros.synthetic_scene"
FORMAT_VERSION = 1
DEPTH_UNIT = 0.001  # metres per depth PNG step
_MAX_DEPTH_MM = 65535


def frame_name(index: int) -> str:
    """File stem of frame ``index`` (``000042``)."""
    return f"{index:06d}"


def volume_name(voxel_size: float) -> str:
    """File name of the ground truth at ``voxel_size`` metres (``gt_040mm.npz``)."""
    mm = voxel_size * 1000
    if abs(mm - round(mm)) < 1e-6:
        return f"gt_{round(mm):03d}mm.npz"
    return f"gt_{mm:07.3f}mm.npz".replace(".", "p", 1)


def depth_to_png(depth: np.ndarray) -> np.ndarray:
    """Metres (H, W) float -> millimetres (H, W) uint16; 0 stays invalid, out of range -> 0."""
    mm = np.round(np.asarray(depth, dtype=np.float64) / DEPTH_UNIT)
    mm[(mm <= 0) | (mm > _MAX_DEPTH_MM) | ~np.isfinite(mm)] = 0
    return mm.astype(np.uint16)


def _json_dumps(data) -> str:
    return json.dumps(data, indent=1, ensure_ascii=True, allow_nan=False) + "\n"


class SceneFolderWriter:
    """Assembles a scene folder under a temporary name beside ``folder``; ``commit()`` (or
    leaving the ``with`` block without error) moves it into place, replacing an older one when
    ``overwrite``.

    Write frames with ``write_frame``, volumes with ``write_volume`` / ``write_paper_volumes``,
    the mesh with ``write_mesh`` and finally the description with ``write_metadata``.
    """

    def __init__(self, folder: str | os.PathLike, *, overwrite: bool = False):
        self.folder = Path(folder)
        if self.folder.exists() and not overwrite:
            raise ValueError(f"folder: {self.folder} exists (pass overwrite=True to replace it)")
        self.overwrite = overwrite
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(
            tempfile.mkdtemp(prefix=f".{self.folder.name}.", suffix=".tmp", dir=self.folder.parent)
        )
        for sub in ("color", "depth", "semantic", "instance", "pose", "volumes"):
            (self.tmp / sub).mkdir()
        self._committed = False

    def __enter__(self) -> SceneFolderWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()

    def write_frame(self, index: int, rgb, depth, semantic, instance, T_world_cam) -> None:
        """Write frame ``index``: rgb (H, W, 3) uint8, depth (H, W) metres, semantic (H, W)
        uint8, instance (H, W) uint16, T_world_cam (4, 4)."""
        name = frame_name(index)
        T = np.asarray(T_world_cam, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"T_world_cam: expected shape (4, 4), got {T.shape}")
        write_png(self.tmp / "color" / f"{name}.png", rgb)
        write_png(self.tmp / "depth" / f"{name}.png", depth_to_png(depth))
        write_png(self.tmp / "semantic" / f"{name}.png", np.asarray(semantic, dtype=np.uint8))
        write_png(self.tmp / "instance" / f"{name}.png", np.asarray(instance, dtype=np.uint16))
        write_text(self.tmp / "pose" / f"{name}.txt", format_matrix(T))

    def write_volume(self, volume) -> str:
        """Write a ``GroundTruthVolume``; returns its path relative to the folder."""
        relative = f"volumes/{volume_name(volume.grid.voxel_size)}"
        volume.save(self.tmp / relative)
        return relative

    def write_paper_volumes(self, grid, occupancy: np.ndarray, masks: np.ndarray) -> str:
        relative = "volumes/paper_{}x{}x{}.npz".format(*grid.dims)
        write_npz(
            self.tmp / relative,
            {
                "occupancy": occupancy.astype(np.uint8),
                "masks": masks.astype(np.uint8),
                "origin": np.asarray(grid.origin, dtype=np.float64),
                "voxel_size": np.float64(grid.voxel_size),
            },
        )
        return relative

    def write_mesh(self, mesh) -> str:
        mesh.save(self.tmp / "mesh.ply")
        return "mesh.ply"

    def write_metadata(self, metadata: dict, K: np.ndarray) -> None:
        """Write ``scene.json`` (``metadata`` completed with the format tag) and
        ``intrinsics.txt``."""
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
        write_text(self.tmp / "scene.json", _json_dumps(data))
        write_text(self.tmp / "intrinsics.txt", format_matrix(K))

    def commit(self) -> Path:
        if self._committed:
            return self.folder
        if not (self.tmp / "scene.json").exists():
            raise RuntimeError("write_metadata() must be called before commit()")
        if self.folder.exists():
            # Move the old folder aside first so the new one appears in a single rename.
            old = Path(
                tempfile.mkdtemp(
                    prefix=f".{self.folder.name}.", suffix=".old", dir=self.folder.parent
                )
            )
            os.replace(self.folder, old / "x")
            os.replace(self.tmp, self.folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.folder)
        self._committed = True
        return self.folder

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class SyntheticSequence(FrameSequence):
    """Loads a scene folder written by ``SceneFolderWriter`` (see the module docstring).

    Frames are read lazily; ``volume()``, ``paper_volumes()``, ``mesh()`` and ``scene`` load
    the ground truth."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        meta_path = self.folder / "scene.json"
        if not meta_path.is_file():
            raise ValueError(f"folder: {self.folder} has no scene.json")
        self.metadata = json.loads(meta_path.read_text(encoding="utf8"))
        if self.metadata.get("format") != FORMAT:
            raise ValueError(f"folder: {meta_path} is not a {FORMAT} file")
        if self.metadata.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"folder: format version {self.metadata['format_version']} is newer than this "
                "reader"
            )
        self.name = self.folder.name
        frames = self.metadata["frames"]
        self.frame_rate = frames.get("frame_rate")
        self.continuous = bool(frames.get("continuous", True))
        count = int(frames["count"])
        self._stamps_ns = np.asarray(frames["stamps_ns"], dtype=np.int64)
        if len(self._stamps_ns) != count:
            raise ValueError(
                f"folder: scene.json lists {len(self._stamps_ns)} stamps for {count} frames"
            )
        K = np.asarray(self.metadata["camera"]["K"], dtype=np.float64)
        self._K = np.repeat(K[None], count, axis=0)
        self._K_depth = self._K.copy()
        self._poses = (
            np.stack(
                [read_matrix(self.folder / "pose" / f"{frame_name(i)}.txt") for i in range(count)]
            )
            if count
            else np.zeros((0, 4, 4))
        )
        self.width = int(self.metadata["camera"]["width"])
        self.height = int(self.metadata["camera"]["height"])

    def _load(self, index: int) -> Frame:
        name = frame_name(index)
        depth_mm = read_image(self.folder / "depth" / f"{name}.png")
        return Frame(
            index=index,
            stamp_ns=int(self._stamps_ns[index]),
            rgb=read_image(self.folder / "color" / f"{name}.png"),
            depth=depth_mm.astype(np.float32) * np.float32(DEPTH_UNIT),
            K=self._K[index].copy(),
            K_depth=self._K_depth[index].copy(),
            T_world_cam=self._poses[index].copy(),
            semantic=read_image(self.folder / "semantic" / f"{name}.png"),
            instance=read_image(self.folder / "instance" / f"{name}.png").astype(np.uint16),
        )

    @property
    def volume_sizes(self) -> list[float]:
        """Voxel sizes (m) of the stored ground-truth volumes."""
        return [float(v["voxel_size"]) for v in self.metadata.get("volumes", [])]

    def volume(self, voxel_size: float | None = None):
        """The stored ``GroundTruthVolume`` at ``voxel_size`` (default: the only or first one).

        Raises ValueError when no volume of that size was stored (``recon_ros.scenes.volumes.
        compute_ground_truth(Scene.from_dict(seq.metadata['scene']), grid)`` computes any other)."""
        entries = self.metadata.get("volumes", [])
        if not entries:
            raise ValueError(f"voxel_size: {self.name} stores no volumes")
        if voxel_size is None:
            entry = entries[0]
        else:
            matches = [e for e in entries if abs(e["voxel_size"] - voxel_size) < 1e-9]
            if not matches:
                raise ValueError(f"voxel_size: {voxel_size} not stored; have {self.volume_sizes}")
            entry = matches[0]
        return GroundTruthVolume.load(self.folder / entry["file"])

    def paper_volumes(self) -> dict[str, np.ndarray]:
        """The Everted U-Net arrays (``occupancy``, ``masks``, ``origin``, ``voxel_size``)."""
        entry = self.metadata.get("paper_volumes")
        if not entry:
            raise ValueError(f"{self.name} stores no paper volumes")
        return read_npz(self.folder / entry["file"])

    def mesh(self):
        """The reference ``LabelledMesh``."""
        entry = self.metadata.get("mesh")
        if not entry:
            raise ValueError(f"{self.name} stores no mesh")
        return LabelledMesh.load(self.folder / entry["file"])

    @property
    def mesh_path(self) -> Path | None:
        entry = self.metadata.get("mesh")
        return None if not entry else self.folder / entry["file"]

    @property
    def bag_path(self) -> Path | None:
        entry = self.metadata.get("bag")
        return None if not entry else self.folder / entry["path"]


def list_scenes(root: str | os.PathLike) -> list[Path]:
    """Scene folders (holding a scene.json) directly under ``root``, sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"root: {root} is not a folder")
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and (p / "scene.json").is_file() and not p.name.startswith(".")
    )
