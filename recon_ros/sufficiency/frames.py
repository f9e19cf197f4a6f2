"""The per-frame record the sufficiency code reads from a sequence, and an adapter that accepts
the sequence types of recon_ros (and users' own).

A *sequence* is any object with ``len(seq)`` and ``seq[i]`` returning a frame: a :class:`Frame`,
a mapping, or an object with attributes -- ``recon_ros.datasets`` sequences (generated scenes,
ScanNet, 7-Scenes, TUM) are read as they are. Accepted field names (first match wins):

- image: ``rgb``, ``image``, ``color`` -- (H, W, 3) uint8 RGB;
- depth: ``depth`` -- (H_d, W_d) float32 metres, 0 where invalid (may be a different size than
  the image);
- intrinsics: ``K``, ``intrinsics`` -- (3, 3) of the image;
- depth intrinsics (optional): ``K_depth`` -- (3, 3) of the depth image; when absent and the
  sizes differ, ``K`` rescaled to the depth size (resize rule of DEVELOPERS.md), i.e. depth
  registered to the colour camera;
- pose: ``T_world_cam``, ``pose`` -- (4, 4) optical frame to world;
- stamp (optional): ``stamp``, ``stamp_ns``, ``timestamp``, ``time``.

A sequence may carry a ``name`` attribute, and cheap metadata ``poses`` (N, 4, 4) and
``intrinsics`` (N, 3, 3) (as ``recon_ros.datasets.sequence.FrameSequence`` does): the sample
planner then chooses partners without reading images.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_FIELDS = {
    "rgb": ("rgb", "image", "color"),
    "depth": ("depth",),
    "K": ("K", "intrinsics"),
    "K_depth": ("K_depth",),
    "T_world_cam": ("T_world_cam", "pose"),
    "stamp": ("stamp", "stamp_ns", "timestamp", "time"),
}


@dataclass
class Frame:
    """One posed RGB(-D) frame.

    Attributes:
        rgb: (H, W, 3) uint8 RGB.
        depth: (H_d, W_d) float32 metres (0 = invalid) or None for RGB-only frames.
        K: (3, 3) float64 intrinsics of ``rgb``.
        T_world_cam: (4, 4) float64 pose of the optical frame in the world.
        stamp: any timestamp object (seconds, nanoseconds, a ROS Time), passed through untouched.
        K_depth: (3, 3) intrinsics of ``depth`` when they are not ``K`` rescaled to its size.
    """

    rgb: np.ndarray
    depth: np.ndarray | None
    K: np.ndarray
    T_world_cam: np.ndarray
    stamp: Any = None
    K_depth: np.ndarray | None = None


def _field(item: Any, key: str, required: bool) -> Any:
    for name in _FIELDS[key]:
        if isinstance(item, Mapping):
            if name in item:
                return item[name]
        elif hasattr(item, name):
            return getattr(item, name)
    if required:
        raise ValueError(f"frame has no {key!r} field (looked for {', '.join(_FIELDS[key])})")
    return None


def as_frame(item: Any, require_depth: bool = True) -> Frame:
    """Convert a sequence item to a checked :class:`Frame`.

    Raises:
        ValueError: naming the missing or malformed field.
    """
    rgb = np.asarray(_field(item, "rgb", True))
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"frame rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    depth = _field(item, "depth", require_depth)
    if depth is not None:
        depth = np.asarray(depth)
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise ValueError(f"frame depth must be (H, W) float metres, got {depth.shape}")
        depth = depth.astype(np.float32, copy=False)
    K = np.asarray(_field(item, "K", True), dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"frame K must be (3, 3), got {K.shape}")
    T = np.asarray(_field(item, "T_world_cam", True), dtype=np.float64)
    if T.shape != (4, 4):
        raise ValueError(f"frame T_world_cam must be (4, 4), got {T.shape}")
    K_depth = _field(item, "K_depth", False)
    if K_depth is not None:
        K_depth = np.asarray(K_depth, dtype=np.float64)
        if K_depth.shape != (3, 3):
            raise ValueError(f"frame K_depth must be (3, 3), got {K_depth.shape}")
    return Frame(
        rgb=rgb,
        depth=depth,
        K=K,
        T_world_cam=T,
        stamp=_field(item, "stamp", False),
        K_depth=K_depth,
    )


def get_frame(sequence: Any, index: int, require_depth: bool = True) -> Frame:
    """``as_frame(sequence[index])``."""
    return as_frame(sequence[index], require_depth=require_depth)


def sequence_name(sequence: Any, fallback: str) -> str:
    """The sequence's ``name`` attribute (or ``fallback``), used to key cached samples."""
    name = getattr(sequence, "name", None)
    return str(name) if name else fallback
