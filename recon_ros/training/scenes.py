"""Scene folders of the synthetic dataset layout (``recon_ros.datasets.layout``) as training
sources: per scene the intrinsics, the poses, the frame files and the ground-truth volume at the
training voxel size, with a small in-memory cache of the volumes (a training run reads each scene
many times; each DataLoader worker process keeps its own cache).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.datasets.io import read_image, read_matrix, read_npz
from recon_ros.datasets.layout import DEPTH_UNIT, FORMAT, frame_name, list_scenes


@dataclass(frozen=True)
class TrainingScene:
    """One generated scene.

    Attributes:
        folder: the scene folder.
        name: its folder name.
        seed: the generator seed (from scene.json).
        K: (3, 3) intrinsics of the stored images.
        width, height: stored image size in pixels.
        poses: (N, 4, 4) ``T_world_cam`` of the frames.
        volume_file: ground truth at ``voxel_size`` (``GroundTruthVolume`` npz).
        voxel_size: metres.
    """

    folder: Path
    name: str
    seed: int
    K: np.ndarray
    width: int
    height: int
    poses: np.ndarray
    volume_file: Path
    voxel_size: float

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    def rgb(self, index: int) -> np.ndarray:
        """(H, W, 3) uint8 colour image of frame ``index``."""
        return read_image(self.folder / "color" / f"{frame_name(index)}.png")

    def depth(self, index: int) -> np.ndarray:
        """(H, W) float32 depth in metres, 0 where invalid."""
        millimetres = read_image(self.folder / "depth" / f"{frame_name(index)}.png")
        return millimetres.astype(np.float32) * np.float32(DEPTH_UNIT)

    def semantic(self, index: int) -> np.ndarray:
        """(H, W) uint8 class ids (``IGNORE_LABEL`` where nothing was hit)."""
        return read_image(self.folder / "semantic" / f"{frame_name(index)}.png")


def load_training_scene(folder: str | os.PathLike, voxel_size: float = 0.04) -> TrainingScene:
    """Read a scene folder's description.

    Raises:
        ValueError: not a synthetic scene folder, or no ground truth at ``voxel_size``.
    """
    folder = Path(folder)
    meta_path = folder / "scene.json"
    if not meta_path.is_file():
        raise ValueError(f"scene folder: {folder} has no scene.json")
    meta = json.loads(meta_path.read_text(encoding="utf8"))
    if meta.get("format") != FORMAT:
        raise ValueError(f"scene folder: {meta_path} is not a {FORMAT} description")
    volumes = [v for v in meta.get("volumes", []) if abs(v["voxel_size"] - voxel_size) < 1e-9]
    if not volumes:
        sizes = [v["voxel_size"] for v in meta.get("volumes", [])]
        raise ValueError(
            f"scene folder: {folder} has no ground truth at voxel size {voxel_size} m (has "
            f"{sizes}); generate with --voxel-sizes {voxel_size}"
        )
    count = int(meta["frames"]["count"])
    poses = np.stack([read_matrix(folder / "pose" / f"{frame_name(i)}.txt") for i in range(count)])
    camera = meta["camera"]
    return TrainingScene(
        folder=folder,
        name=folder.name,
        seed=int(meta.get("seed", -1)),
        K=np.asarray(camera["K"], dtype=np.float64),
        width=int(camera["width"]),
        height=int(camera["height"]),
        poses=poses,
        volume_file=folder / volumes[0]["file"],
        voxel_size=float(voxel_size),
    )


def load_training_scenes(
    roots: str | os.PathLike | list, voxel_size: float = 0.04
) -> list[TrainingScene]:
    """All scene folders under each root (or roots that are scene folders themselves), sorted by
    path.

    Raises:
        ValueError: a root holds no scene folder.
    """
    roots = [roots] if isinstance(roots, (str, os.PathLike)) else list(roots)
    scenes = []
    for entry in roots:
        root = Path(entry)
        folders = [root] if (root / "scene.json").is_file() else list_scenes(root)
        if not folders:
            raise ValueError(f"data: no scene folders (with scene.json) in {root}")
        scenes += [load_training_scene(f, voxel_size) for f in folders]
    return scenes


@dataclass
class GroundTruthArrays:
    """The arrays of a ground-truth volume that training needs.

    Attributes:
        origin: (3,) centre of voxel (0, 0, 0); voxel_size: metres; truncation: metres.
        tsdf: (X, Y, Z) float32 in [-1, 1]; observed: (X, Y, Z) bool; semantic: (X, Y, Z) uint8
            (``IGNORE_LABEL`` outside the truncation band).
    """

    origin: np.ndarray
    voxel_size: float
    truncation: float
    tsdf: np.ndarray
    observed: np.ndarray
    semantic: np.ndarray
    _codes: np.ndarray | None = field(default=None, repr=False)

    def lookup_codes(self) -> np.ndarray:
        """(X, Y, Z) float32 ``256 * observed + semantic + 1`` (computed once): one volume for
        nearest-voxel lookups of both, where 0 can mean "outside"."""
        if self._codes is None:
            self._codes = (
                np.where(self.observed, 256, 0).astype(np.float32)
                + self.semantic.astype(np.float32)
                + 1.0
            )
        return self._codes

    @property
    def dims(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.tsdf.shape)


_CACHE: OrderedDict[str, GroundTruthArrays] = OrderedDict()
#: Volumes kept per process (about 10 MB each for a 7 x 5 x 3 m room at 4 cm).
CACHE_SIZE = 256


def load_ground_truth(path: str | os.PathLike, cache: bool = True) -> GroundTruthArrays:
    """The arrays of a ``GroundTruthVolume`` file, from the per-process cache when possible.

    Raises:
        ValueError: the file has no ``observed`` mask (written without views).
    """
    key = str(Path(path).resolve())
    if cache and key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    data = read_npz(path)
    if "observed" not in data:
        raise ValueError(f"ground truth: {path} has no observed mask")
    arrays = GroundTruthArrays(
        origin=np.asarray(data["origin"], dtype=np.float64),
        voxel_size=float(data["voxel_size"]),
        truncation=float(data["truncation"]),
        tsdf=np.ascontiguousarray(data["tsdf"], dtype=np.float32),
        observed=np.ascontiguousarray(data["observed"], dtype=bool),
        semantic=np.ascontiguousarray(data["semantic"], dtype=np.uint8),
    )
    if cache:
        _CACHE[key] = arrays
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return arrays


def class_frequencies(scenes: list[TrainingScene], num_classes: int) -> np.ndarray:
    """Fraction of observed, labelled ground-truth voxels of each class over ``scenes``,
    ``(num_classes,)`` float64 (0 for absent classes)."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for scene in scenes:
        gt = load_ground_truth(scene.volume_file, cache=False)
        labels = gt.semantic[gt.observed]
        labels = labels[labels != IGNORE_LABEL]
        counts += np.bincount(labels, minlength=256)[:num_classes]
    total = counts.sum()
    return counts / total if total > 0 else counts


def balanced_class_weights(frequencies: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Class weights ``(median / frequency) ** power`` normalised to a frequency-weighted mean
    of 1; absent classes get weight 1. ``power`` 0 gives plain cross-entropy, 1 median-frequency
    balancing; 0.5 (the default) is the damped middle."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if frequencies.ndim != 1 or np.any(frequencies < 0):
        raise ValueError("frequencies: expected a non-negative vector")
    present = frequencies > 0
    weights = np.ones_like(frequencies)
    if not present.any():
        return weights
    median = np.median(frequencies[present])
    weights[present] = (median / frequencies[present]) ** power
    mean = float((weights * frequencies).sum() / frequencies.sum())
    return weights / mean
