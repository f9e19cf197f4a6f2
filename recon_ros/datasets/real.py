"""Loaders for real RGB-D dataset folders, returning the common ``FrameSequence`` interface.

- ``ScanNetSequence``: a scene exported by ScanNet's SensReader (``color/N.jpg``,
  ``depth/N.png`` in millimetres, ``pose/N.txt`` camera-to-world 4 x 4,
  ``intrinsic/intrinsic_color.txt`` and ``intrinsic_depth.txt`` 4 x 4). Colour (1296 x 968) and
  depth (640 x 480) differ in size; frames carry both intrinsics, and ``color_size`` resizes the
  colour images (and their K) on load. Frames whose pose is invalid (``-inf``/NaN, as ScanNet
  marks tracking failures) are skipped by default.
- ``SevenScenesSequence``: one ``seq-XX`` folder of Microsoft 7-Scenes
  (``frame-NNNNNN.color.png``, ``.depth.png`` in millimetres with 65535 = invalid,
  ``.pose.txt`` camera-to-world). The dataset ships no calibration; the usual 585 / 585 / 320 /
  240 is the default. Its depth is not registered to the colour camera; K_depth = K here, as
  most users assume.
- ``TUMSequence``: a TUM RGB-D sequence (``rgb.txt``, ``depth.txt``, ``groundtruth.txt`` with
  ``timestamp tx ty tz qx qy qz qw`` of the colour camera's optical centre, depth PNG scale 5000
  per metre). Each colour image is associated with the depth image and ground-truth pose nearest
  in time, within ``max_difference`` seconds; images with no partner are dropped. Intrinsics are
  the published ones of freiburg1/2/3 (chosen from the folder name) or ROS's 525 / 525 / 319.5 /
  239.5, unless ``K`` is given; lens distortion is ignored.

Poses are ``T_world_cam`` of the colour camera in the optical convention (all three datasets use
it). Stamps: TUM's own; ScanNet and 7-Scenes have none, so frames are stamped at ``frame_rate``
(30 Hz) from ``start_ns``.
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import numpy as np
from PIL import Image

from recon_ros.core.geometry import quaternion_to_matrix
from recon_ros.datasets.io import read_image, read_matrix
from recon_ros.datasets.sequence import Frame, FrameSequence, scale_intrinsics

DEFAULT_START_NS = 1_700_000_000 * 1_000_000_000

#: TUM RGB-D colour intrinsics (fx, fy, cx, cy) by camera, from the dataset's calibration page.
TUM_INTRINSICS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
    "ros_default": (525.0, 525.0, 319.5, 239.5),
}
SEVEN_SCENES_INTRINSICS = (585.0, 585.0, 320.0, 240.0)


def _pinhole(fx, fy, cx, cy) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def _numeric_stem(path: Path) -> int:
    digits = re.findall(r"\d+", path.stem)
    if not digits:
        raise ValueError(f"path: {path} has no frame number")
    return int(digits[-1])


def _uniform_stamps(count: int, frame_rate: float, start_ns: int) -> np.ndarray:
    if frame_rate <= 0:
        raise ValueError(f"frame_rate: must be positive, got {frame_rate}")
    return start_ns + np.round(np.arange(count) * (1e9 / frame_rate)).astype(np.int64)


def _valid_pose(T: np.ndarray) -> bool:
    return (
        T.shape == (4, 4)
        and bool(np.all(np.isfinite(T)))
        and abs(np.linalg.det(T[:3, :3]) - 1) < 1e-2
    )


class ScanNetSequence(FrameSequence):
    """A ScanNet SensReader export (see the module docstring).

    Args:
        root: the scene folder (holding ``color``, ``depth``, ``pose``, ``intrinsic``).
        color_size: ``(width, height)`` to resize colour images to on load, or None.
        skip_invalid_poses: drop frames whose pose is not a finite rigid transform.
        frame_rate, start_ns: stamps of the frames.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        color_size: tuple[int, int] | None = None,
        skip_invalid_poses: bool = True,
        frame_rate: float = 30.0,
        start_ns: int = DEFAULT_START_NS,
    ):
        self.root = Path(root)
        for sub in ("color", "depth", "pose", "intrinsic"):
            if not (self.root / sub).is_dir():
                raise ValueError(f"root: {self.root} has no {sub}/ folder (not a ScanNet export)")
        self.name = self.root.name
        self.frame_rate = frame_rate
        colors = {
            _numeric_stem(p): p
            for p in (self.root / "color").iterdir()
            if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        }
        indices = sorted(
            i
            for i in colors
            if (self.root / "depth" / f"{i}.png").is_file()
            and (self.root / "pose" / f"{i}.txt").is_file()
        )
        K_color = read_matrix(self.root / "intrinsic" / "intrinsic_color.txt")[:3, :3]
        K_depth = read_matrix(self.root / "intrinsic" / "intrinsic_depth.txt")[:3, :3]
        self.color_size = color_size
        if color_size is not None:
            with Image.open(colors[indices[0]]) as first:
                native_w, native_h = first.size
            K_color = scale_intrinsics(K_color, color_size[0] / native_w, color_size[1] / native_h)
        poses, kept = [], []
        for i in indices:
            T = read_matrix(self.root / "pose" / f"{i}.txt")
            if skip_invalid_poses and not _valid_pose(T):
                continue
            poses.append(T)
            kept.append(i)
        self.frame_ids = kept
        self._paths = [colors[i] for i in kept]
        self._poses = np.stack(poses) if poses else np.zeros((0, 4, 4))
        # Stamps follow the original frame numbers, so skipped frames leave gaps.
        self._stamps_ns = start_ns + np.round(
            np.asarray(kept, dtype=np.float64) * (1e9 / frame_rate)
        ).astype(np.int64)
        self._K = np.repeat(K_color[None], len(kept), axis=0)
        self._K_depth = np.repeat(K_depth[None], len(kept), axis=0)

    def _load(self, index: int) -> Frame:
        frame_id = self.frame_ids[index]
        rgb = read_image(self._paths[index])
        if self.color_size is not None and rgb.shape[1::-1] != tuple(self.color_size):
            rgb = np.array(Image.fromarray(rgb).resize(tuple(self.color_size), Image.BILINEAR))
        depth = read_image(self.root / "depth" / f"{frame_id}.png").astype(np.float32) / 1000.0
        return Frame(
            index,
            int(self._stamps_ns[index]),
            rgb,
            depth,
            self._K[index].copy(),
            self._K_depth[index].copy(),
            self._poses[index].copy(),
        )


class SevenScenesSequence(FrameSequence):
    """One 7-Scenes sequence folder ``seq-XX`` (see the module docstring).

    Args:
        root: the ``seq-XX`` folder.
        K: (3, 3) intrinsics, default 585 / 585 / 320 / 240.
        frame_rate, start_ns: stamps of the frames.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        K: np.ndarray | None = None,
        frame_rate: float = 30.0,
        start_ns: int = DEFAULT_START_NS,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"root: {self.root} is not a folder")
        colors = sorted(
            [*self.root.glob("frame-*.color.png"), *self.root.glob("frame-*.color.jpg")],
            key=_numeric_stem_7,
        )
        if not colors:
            raise ValueError(
                f"root: no frame-*.color.png or .color.jpg in {self.root} (not a 7-Scenes sequence)"
            )
        self.name = f"{self.root.parent.name}/{self.root.name}"
        self.frame_rate = frame_rate
        self._stems = [p.name.split(".color.")[0] for p in colors]
        self._colors = colors
        self._poses = np.stack([read_matrix(self.root / f"{s}.pose.txt") for s in self._stems])
        if K is None:
            K = _seven_scenes_intrinsics(self.root)
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K: expected shape (3, 3), got {K.shape}")
        self._K = np.repeat(K[None], len(colors), axis=0)
        self._K_depth = self._K.copy()
        self._stamps_ns = _uniform_stamps(len(colors), frame_rate, start_ns)

    def _load(self, index: int) -> Frame:
        stem = self._stems[index]
        depth_raw = read_image(self.root / f"{stem}.depth.png")
        depth = np.where(depth_raw == 65535, 0, depth_raw).astype(np.float32) / 1000.0
        rgb = read_image(self._colors[index])
        return Frame(
            index,
            int(self._stamps_ns[index]),
            rgb,
            depth,
            self._K[index].copy(),
            self._K_depth[index].copy(),
            self._poses[index].copy(),
        )


def _seven_scenes_intrinsics(root: Path) -> np.ndarray:
    """``camera-intrinsics.txt`` beside the frames or in the scene folder above (a 3x3 matrix,
    or ``fx fy cx cy``), else the dataset's published 585 / 585 / 320 / 240."""
    for folder in (root, root.parent):
        path = folder / "camera-intrinsics.txt"
        if path.is_file():
            values = np.array(path.read_text().split(), dtype=np.float64)
            if values.size == 9:
                return values.reshape(3, 3)
            if values.size == 4:
                return _pinhole(*values)
            raise ValueError(
                f"{path}: expected a 3x3 matrix or fx fy cx cy, got {values.size} values"
            )
    return _pinhole(*SEVEN_SCENES_INTRINSICS)


def _numeric_stem_7(path: Path) -> int:
    return int(path.name.split(".")[0].split("-")[1])


def _read_tum_list(path: Path) -> list[tuple[str, list[str]]]:
    """Lines of a TUM list file as (timestamp string, other fields), comments skipped."""
    entries = []
    for raw in path.read_text(encoding="utf8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        entries.append((fields[0], fields[1:]))
    return entries


def _seconds_to_ns(text: str) -> int:
    """A decimal seconds string to integer ns, without float rounding."""
    return int(Decimal(text) * 1_000_000_000)


def _nearest(sorted_times: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Index (Q,) of the nearest of ``sorted_times`` (N,) to each query."""
    right = np.clip(np.searchsorted(sorted_times, queries), 1, len(sorted_times) - 1)
    left = right - 1
    pick_left = np.abs(queries - sorted_times[left]) <= np.abs(sorted_times[right] - queries)
    return np.where(pick_left, left, right)


class TUMSequence(FrameSequence):
    """A TUM RGB-D sequence folder (see the module docstring).

    Args:
        root: the folder holding ``rgb.txt``, ``depth.txt`` and ``groundtruth.txt``.
        K: (3, 3) intrinsics; default chosen from the folder name.
        max_difference: association tolerance (s) for depth and pose.
        depth_scale: depth PNG units per metre.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        K: np.ndarray | None = None,
        max_difference: float = 0.02,
        depth_scale: float = 5000.0,
    ):
        self.root = Path(root)
        for name in ("rgb.txt", "depth.txt", "groundtruth.txt"):
            if not (self.root / name).is_file():
                raise ValueError(f"root: {self.root} has no {name} (not a TUM RGB-D sequence)")
        if max_difference <= 0:
            raise ValueError(f"max_difference: must be positive, got {max_difference}")
        if depth_scale <= 0:
            raise ValueError(f"depth_scale: must be positive, got {depth_scale}")
        self.name = self.root.name
        self.depth_scale = depth_scale
        if K is None:
            camera = next(
                (c for c in ("freiburg1", "freiburg2", "freiburg3") if c in self.root.name),
                "ros_default",
            )
            K = _pinhole(*TUM_INTRINSICS[camera])
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K: expected shape (3, 3), got {K.shape}")

        rgb = _read_tum_list(self.root / "rgb.txt")
        depth = _read_tum_list(self.root / "depth.txt")
        truth = _read_tum_list(self.root / "groundtruth.txt")
        if not rgb or not depth or not truth:
            raise ValueError(f"root: {self.root} lists no images or poses")
        rgb_ns = np.array([_seconds_to_ns(t) for t, _ in rgb], dtype=np.int64)
        depth_order = np.argsort([_seconds_to_ns(t) for t, _ in depth], kind="stable")
        depth = [depth[i] for i in depth_order]
        depth_ns = np.array([_seconds_to_ns(t) for t, _ in depth], dtype=np.int64)
        truth_order = np.argsort([_seconds_to_ns(t) for t, _ in truth], kind="stable")
        truth = [truth[i] for i in truth_order]
        truth_ns = np.array([_seconds_to_ns(t) for t, _ in truth], dtype=np.int64)
        tolerance = int(max_difference * 1e9)
        nearest_depth = (
            _nearest(depth_ns, rgb_ns) if len(depth_ns) > 1 else np.zeros(len(rgb_ns), int)
        )
        nearest_truth = (
            _nearest(truth_ns, rgb_ns) if len(truth_ns) > 1 else np.zeros(len(rgb_ns), int)
        )
        keep = (np.abs(depth_ns[nearest_depth] - rgb_ns) <= tolerance) & (
            np.abs(truth_ns[nearest_truth] - rgb_ns) <= tolerance
        )
        order = np.argsort(rgb_ns, kind="stable")
        order = order[keep[order]]
        self._rgb_files = [rgb[i][1][0] for i in order]
        self._depth_files = [depth[nearest_depth[i]][1][0] for i in order]
        poses = []
        for i in order:
            tx, ty, tz, qx, qy, qz, qw = (float(v) for v in truth[nearest_truth[i]][1][:7])
            T = np.eye(4)
            T[:3, :3] = quaternion_to_matrix([qx, qy, qz, qw])
            T[:3, 3] = (tx, ty, tz)
            poses.append(T)
        self._poses = np.stack(poses) if poses else np.zeros((0, 4, 4))
        self._stamps_ns = rgb_ns[order]
        if len(order) > 1:
            self.frame_rate = float(round(1e9 / np.median(np.diff(self._stamps_ns)), 3))
        self._K = np.repeat(K[None], len(order), axis=0)
        self._K_depth = self._K.copy()

    def _load(self, index: int) -> Frame:
        rgb = read_image(self.root / self._rgb_files[index])
        depth = read_image(self.root / self._depth_files[index]).astype(np.float32) / np.float32(
            self.depth_scale
        )
        return Frame(
            index,
            int(self._stamps_ns[index]),
            rgb,
            depth,
            self._K[index].copy(),
            self._K_depth[index].copy(),
            self._poses[index].copy(),
        )
