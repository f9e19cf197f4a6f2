"""Keyframe gating by camera motion (NeuralRecon keys a frame after 0.1 m or 15 degrees).

A frame is a keyframe when there is no keyframe yet, or when it moved at least
``min_translation`` metres or turned at least ``min_rotation_deg`` degrees from the last
keyframe. A threshold of 0 disables its test; with both at 0 every frame is a keyframe.
"""

import math

import numpy as np

from recon_ros.core.geometry import rotation_angle_between, translation_between


class KeyframeGate:
    """Motion-based keyframe selection; ``is_keyframe`` asks, ``accept`` records."""

    def __init__(self, min_translation: float = 0.1, min_rotation_deg: float = 15.0) -> None:
        for name, value in (
            ("min_translation", min_translation),
            ("min_rotation_deg", min_rotation_deg),
        ):
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"keyframe {name}: must be finite and >= 0, got {value}")
        self.min_translation = float(min_translation)
        self.min_rotation = math.radians(min_rotation_deg)
        self._last_keyframe: np.ndarray | None = None

    @property
    def last_keyframe_pose(self) -> np.ndarray | None:
        return None if self._last_keyframe is None else self._last_keyframe.copy()

    def is_keyframe(self, T_world_cam: np.ndarray) -> bool:
        """Whether ``T_world_cam`` (4, 4) moved enough since the last accepted keyframe."""
        if self._last_keyframe is None:
            return True
        if self.min_translation == 0 and self.min_rotation == 0:
            return True
        moved = translation_between(self._last_keyframe, T_world_cam)
        turned = rotation_angle_between(self._last_keyframe, T_world_cam)
        return (self.min_translation > 0 and moved >= self.min_translation) or (
            self.min_rotation > 0 and turned >= self.min_rotation
        )

    def accept(self, T_world_cam: np.ndarray) -> None:
        """Record ``T_world_cam`` as the latest keyframe."""
        self._last_keyframe = np.array(T_world_cam, dtype=np.float64)

    def reset(self) -> None:
        self._last_keyframe = None
