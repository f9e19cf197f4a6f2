"""The frame-sequence interface shared by every loader (synthetic scenes, ScanNet, 7-Scenes, TUM).

A sequence has ``len()``, integer indexing (negative indices too) and iteration; frames are read
from disk lazily, one at a time. Cheap per-frame metadata (stamps, poses, intrinsics) is
available without reading images::

    seq = SyntheticSequence("data/scene_0000")
    frame = seq[0]          # Frame(rgb, depth, K, T_world_cam, stamp_ns, ...)
    seq.poses               # (N, 4, 4)
    seq.stamps_ns           # (N,) int64

Conventions (DEVELOPERS.md): ``rgb`` (H, W, 3) uint8; ``depth`` (Hd, Wd) float32 metres, 0 where
invalid; ``K`` (3, 3) for the colour image and ``K_depth`` for the depth image (the same when the
depth is registered to the colour camera); ``T_world_cam`` (4, 4) maps the colour camera's
optical frame to the world.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    """One posed RGB-D frame.

    Attributes:
        index: position in its sequence.
        stamp_ns: capture time (ns since the epoch).
        rgb: (H, W, 3) uint8.
        depth: (Hd, Wd) float32 metres, 0 where invalid; ``None`` when the dataset has none.
        K: (3, 3) intrinsics of ``rgb``.
        K_depth: (3, 3) intrinsics of ``depth``.
        T_world_cam: (4, 4) pose of the colour camera's optical frame.
        semantic: (H, W) uint8 class ids (255 none) or ``None``.
        instance: (H, W) uint16 instance ids (0 none) or ``None``.
    """

    index: int
    stamp_ns: int
    rgb: np.ndarray
    depth: np.ndarray | None
    K: np.ndarray
    K_depth: np.ndarray
    T_world_cam: np.ndarray
    semantic: np.ndarray | None = None
    instance: np.ndarray | None = None


class FrameSequence(abc.ABC):
    """Base of all loaders. Subclasses set ``name``, ``frame_rate``, ``continuous`` and the
    arrays ``_stamps_ns`` (N,), ``_poses`` (N, 4, 4), ``_K`` (N, 3, 3), ``_K_depth`` (N, 3, 3)
    in their constructor and implement ``_load(i)``."""

    name: str = ""
    #: Nominal frame rate (Hz), or None when unknown.
    frame_rate: float | None = None
    #: False when consecutive frames are not one moving camera (e.g. a rig of fixed cameras).
    continuous: bool = True

    _stamps_ns: np.ndarray
    _poses: np.ndarray
    _K: np.ndarray
    _K_depth: np.ndarray

    @abc.abstractmethod
    def _load(self, index: int) -> Frame:
        """Read frame ``index`` (0 <= index < len) from disk."""

    def __len__(self) -> int:
        return len(self._stamps_ns)

    def __getitem__(self, index: int) -> Frame:
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"index: expected an integer, got {type(index).__name__}")
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index: {index} out of range for {n} frames")
        return self._load(int(index) % n)

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self._load(i)

    @property
    def stamps_ns(self) -> np.ndarray:
        """Capture times (N,) int64 ns."""
        return self._stamps_ns.copy()

    @property
    def poses(self) -> np.ndarray:
        """``T_world_cam`` of every frame (N, 4, 4)."""
        return self._poses.copy()

    @property
    def intrinsics(self) -> np.ndarray:
        """Colour intrinsics of every frame (N, 3, 3)."""
        return self._K.copy()

    @property
    def depth_intrinsics(self) -> np.ndarray:
        """Depth intrinsics of every frame (N, 3, 3)."""
        return self._K_depth.copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} frames)"


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics of an image resized by ``sx`` horizontally and ``sy`` vertically, pixel
    centres at integers (DEVELOPERS.md): ``f -> s f``, ``c -> s (c + 0.5) - 0.5``."""
    K = np.asarray(K, dtype=np.float64).copy()
    if K.shape != (3, 3):
        raise ValueError(f"K: expected shape (3, 3), got {K.shape}")
    K[0, 0] *= sx
    K[0, 1] *= sx
    K[0, 2] = sx * (K[0, 2] + 0.5) - 0.5
    K[1, 1] *= sy
    K[1, 2] = sy * (K[1, 2] + 0.5) - 0.5
    return K
