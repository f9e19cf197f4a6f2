"""Where the rolling window should be: centred ahead of the camera, snapped to the chunk
lattice, with hysteresis so small camera motions do not make it jump back and forth.

Modes:
    ``"floor"``: the window centre is the camera position plus ``forward_offset`` metres along the
    viewing direction projected onto the floor (xy) plane. Vertically the window starts at
    ``floor_z - floor_margin`` (snapped down to the lattice) when ``floor_z`` is given, so floor
    and walls stay in view whatever the camera's tilt; with ``floor_z=None`` the vertical centre
    is the camera height plus ``vertical_offset``.
    ``"3d"``: the centre is the camera position plus ``forward_offset`` along the full 3D viewing
    direction (for cameras that look up and down a lot, e.g. drones).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

WINDOW_MODES = ("floor", "3d")


@dataclass(frozen=True)
class WindowPolicyConfig:
    """Placement of the rolling window; distances in metres."""

    mode: str = "floor"
    forward_offset: float = 1.5
    floor_z: float | None = 0.0
    floor_margin: float = 0.1
    vertical_offset: float = 0.0
    hysteresis: float = 0.16

    def __post_init__(self) -> None:
        if self.mode not in WINDOW_MODES:
            raise ValueError(f"window mode: expected one of {WINDOW_MODES}, got {self.mode!r}")
        values = {
            "forward_offset": self.forward_offset,
            "floor_margin": self.floor_margin,
            "vertical_offset": self.vertical_offset,
            "hysteresis": self.hysteresis,
        }
        if self.floor_z is not None:
            values["floor_z"] = self.floor_z
        for name, value in values.items():
            if not np.isfinite(value):
                raise ValueError(f"window {name}: must be finite, got {value}")
        if self.hysteresis < 0:
            raise ValueError(f"window hysteresis: must be >= 0, got {self.hysteresis}")


class WindowPolicy:
    """Decides the window origin (an integer voxel index on the chunk lattice) for a camera pose.

    Args:
        dims: window size in voxels.
        voxel_size: metres.
        chunk_size: lattice step in voxels.
        config: placement settings.
    """

    def __init__(
        self,
        dims: Sequence[int],
        voxel_size: float,
        chunk_size: int,
        config: WindowPolicyConfig | None = None,
    ) -> None:
        self.dims = np.asarray(dims, dtype=np.int64)
        self.voxel_size = float(voxel_size)
        self.chunk_size = int(chunk_size)
        self.config = config or WindowPolicyConfig()

    def target_centre(self, T_world_cam: np.ndarray) -> np.ndarray:
        """(3,) where the window centre should be for this pose (before snapping)."""
        position = np.asarray(T_world_cam, dtype=np.float64)[:3, 3]
        forward = np.asarray(T_world_cam, dtype=np.float64)[:3, 2].copy()  # optical z axis
        if self.config.mode == "floor":
            forward[2] = 0.0
        norm = np.linalg.norm(forward)
        # Looking straight down in floor mode: no horizontal direction, centre on the camera.
        direction = forward / norm if norm > 1e-6 else np.zeros(3)
        centre = position + self.config.forward_offset * direction
        if self.config.mode == "floor" and self.config.floor_z is None:
            centre[2] = position[2] + self.config.vertical_offset
        return centre

    def centre_of(self, origin_index: np.ndarray) -> np.ndarray:
        """(3,) world centre of the window whose voxel (0, 0, 0) has ``origin_index``."""
        return (np.asarray(origin_index) + (self.dims - 1) / 2.0) * self.voxel_size

    def snap(self, centre: np.ndarray) -> np.ndarray:
        """(3,) int64 lattice origin index of the window whose centre is nearest ``centre``."""
        continuous = np.asarray(centre) / self.voxel_size - (self.dims - 1) / 2.0
        index = np.round(continuous / self.chunk_size).astype(np.int64) * self.chunk_size
        if self.config.mode == "floor" and self.config.floor_z is not None:
            bottom = (self.config.floor_z - self.config.floor_margin) / self.voxel_size
            index[2] = int(np.floor(bottom / self.chunk_size)) * self.chunk_size
        return index

    def next_origin_index(
        self, T_world_cam: np.ndarray, current_origin_index: np.ndarray | None
    ) -> np.ndarray:
        """The origin index the window should have after this pose: the current one unless the
        target centre is more than half a chunk plus ``hysteresis`` away from the current centre
        along some axis."""
        target = self.target_centre(T_world_cam)
        snapped = self.snap(target)
        if current_origin_index is None:
            return snapped
        current = np.asarray(current_origin_index, dtype=np.int64)
        deviation = np.abs(target - self.centre_of(current))
        threshold = 0.5 * self.chunk_size * self.voxel_size + self.config.hysteresis
        if self.config.mode == "floor" and self.config.floor_z is not None:
            # The vertical placement is fixed; only a changed floor setting moves it.
            deviation[2] = 0.0 if snapped[2] == current[2] else np.inf
        if np.any(deviation > threshold):
            return snapped
        return current
