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
    ``"auto"``: decided at the first keyframe by ``resolve_auto_mode``, for worlds whose axes are
    not known in advance (visual SLAM often publishes a world whose z is the first camera's
    optical axis, y down): gravity is estimated from the camera's image-down axis; a world whose
    -z agrees with it within ``AUTO_MAX_TILT_DEG`` slides the window over the floor (at
    ``floor_z`` when the camera height above it is plausible, else at a fixed depth below the
    camera), any other world gets ``"3d"``, so no slice of the scene is silently cut off.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

WINDOW_MODES = ("auto", "floor", "3d")
#: Largest angle between the camera's image-down axis and world -z for a z-up world (degrees).
AUTO_MAX_TILT_DEG = 50.0
#: Camera heights above ``floor_z`` that make the configured floor plausible (metres).
AUTO_CAMERA_HEIGHTS = (0.05, 3.0)
#: Without a plausible floor, the window reaches this far below the camera (metres).
AUTO_DEPTH_BELOW_CAMERA = 1.9


@dataclass(frozen=True)
class WindowPolicyConfig:
    """Placement of the rolling window; distances in metres."""

    mode: str = "floor"
    forward_offset: float = 1.5
    floor_z: float | None = 0.0
    floor_margin: float = 0.1
    vertical_offset: float = 0.0
    hysteresis: float = 0.16
    #: The world axis pointing up (0, 1, 2 = x, y, z) and its sign: ``"floor"`` slides the window
    #: in the plane across it. ``floor_z`` is the floor's height along that up direction
    #: (``up_sign * position[up_axis]``; z in a z-up world).
    up_axis: int = 2
    up_sign: float = 1.0

    def __post_init__(self) -> None:
        if self.up_axis not in (0, 1, 2) or self.up_sign not in (1.0, -1.0):
            raise ValueError(
                f"window up axis: expected 0-2 and +-1, got {self.up_axis}, {self.up_sign}"
            )
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


def up_axis_of(T_world_cam: np.ndarray) -> tuple[int, float, float]:
    """Gravity from a camera's pose: the world axis (0, 1, 2) and sign closest to the camera's
    image-up direction (minus the optical y axis; cameras on robots and in hands are held
    roughly level), and the angle between them in degrees."""
    image_up = -np.asarray(T_world_cam, dtype=np.float64)[:3, 1]
    axis = int(np.argmax(np.abs(image_up)))
    sign = 1.0 if image_up[axis] >= 0 else -1.0
    angle = float(np.degrees(np.arccos(np.clip(abs(image_up[axis]), 0.0, 1.0))))
    return axis, sign, angle


def resolve_auto_mode(
    config: WindowPolicyConfig, T_world_cam: np.ndarray, window_height: float
) -> tuple[WindowPolicyConfig, str]:
    """The concrete placement for ``"auto"`` (module docstring) from the first keyframe's pose,
    and a sentence saying what was decided and why (for the log and the status).

    The window then slides across the world axis nearest to the camera's image-up direction
    (+z in a REP 103 world, -y in a visual-SLAM world); when no world axis is within
    ``AUTO_MAX_TILT_DEG`` of it, it follows the camera in 3D."""
    if config.mode != "auto":
        return config, f"window mode '{config.mode}' (configured)"
    axis, sign, tilt = up_axis_of(T_world_cam)
    name = f"{'+' if sign > 0 else '-'}{'xyz'[axis]}"
    if tilt > AUTO_MAX_TILT_DEG:
        return (
            replace(config, mode="3d"),
            f"window follows the camera in 3D: no world axis is within {AUTO_MAX_TILT_DEG:g} deg "
            f"of the camera's image-up direction (nearest {name}, {tilt:.0f} deg)",
        )
    offset = window_height / 2.0 - AUTO_DEPTH_BELOW_CAMERA
    follow = replace(
        config, mode="floor", up_axis=axis, up_sign=sign, floor_z=None, vertical_offset=offset
    )
    until = (
        f"the window slides across {name} at the camera's height, reaching "
        f"{AUTO_DEPTH_BELOW_CAMERA} m below it, until the floor is found in the depth"
    )
    if axis != 2 or sign < 0:
        return (
            follow,
            f"world up is {name} (the camera's image-up direction is {tilt:.0f} deg from it, as "
            f"in a visual-SLAM world): {until}",
        )
    height = (
        float(np.asarray(T_world_cam)[2, 3] - config.floor_z)
        if config.floor_z is not None
        else None
    )
    low, high = AUTO_CAMERA_HEIGHTS
    if height is not None and low <= height <= high:
        return (
            replace(config, mode="floor"),
            f"world up is +z: the window slides over the floor at z = {config.floor_z:g} m "
            f"(camera {height:.2f} m above it)",
        )
    return (
        follow,
        f"world up is +z, but the camera is not at a camera height above the configured floor: "
        f"{until}",
    )


def floor_from_depth(
    depth: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, up_axis: int, up_sign: float
) -> float | None:
    """The floor's height along world up as one depth map sees it: the 2nd percentile of its
    points' heights (robust to a few outliers), or None with too few points."""
    v, u = np.nonzero(depth > 0)
    if len(v) < 100:
        return None
    z = depth[v, u].astype(np.float64)
    x = (u - K[0, 2]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    T = np.asarray(T_world_cam, dtype=np.float64)
    heights = up_sign * (np.stack([x, y, z], 1) @ T[:3, :3].T[:, up_axis] + T[up_axis, 3])
    return float(np.percentile(heights, 2.0))


def window_dims_for(dims: Sequence[int], config: WindowPolicyConfig) -> tuple[int, int, int]:
    """Window dims with the configured vertical size (the last one) along the up axis."""
    nx, ny, nz = (int(d) for d in dims)
    if config.mode != "floor" or config.up_axis == 2:
        return (nx, ny, nz)
    return (nz, nx, ny) if config.up_axis == 0 else (nx, nz, ny)


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
        up = self.config.up_axis
        if self.config.mode == "floor":
            forward[up] = 0.0
        norm = np.linalg.norm(forward)
        # Looking straight down in floor mode: no horizontal direction, centre on the camera.
        direction = forward / norm if norm > 1e-6 else np.zeros(3)
        centre = position + self.config.forward_offset * direction
        if self.config.mode == "floor" and not self._fixed_floor:
            centre[up] = position[up] + self.config.up_sign * self.config.vertical_offset
        return centre

    @property
    def _fixed_floor(self) -> bool:
        """The vertical placement comes from ``floor_z`` (a floor height along world up)."""
        return self.config.mode == "floor" and self.config.floor_z is not None

    def centre_of(self, origin_index: np.ndarray) -> np.ndarray:
        """(3,) world centre of the window whose voxel (0, 0, 0) has ``origin_index``."""
        return (np.asarray(origin_index) + (self.dims - 1) / 2.0) * self.voxel_size

    def snap(self, centre: np.ndarray) -> np.ndarray:
        """(3,) int64 lattice origin index of the window whose centre is nearest ``centre``."""
        continuous = np.asarray(centre) / self.voxel_size - (self.dims - 1) / 2.0
        index = np.round(continuous / self.chunk_size).astype(np.int64) * self.chunk_size
        if self._fixed_floor:
            cfg = self.config
            up = cfg.up_axis
            # The window's floor side sits ``floor_margin`` below the floor, on the lattice.
            floor_side = cfg.up_sign * (cfg.floor_z - cfg.floor_margin) / self.voxel_size
            if cfg.up_sign > 0:
                index[up] = int(np.floor(floor_side / self.chunk_size)) * self.chunk_size
            else:
                top = int(np.ceil(floor_side / self.chunk_size)) * self.chunk_size
                index[up] = top - int(self.dims[up])
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
        if self._fixed_floor:
            # The vertical placement is fixed; only a changed floor setting moves it.
            up = self.config.up_axis
            deviation[up] = 0.0 if snapped[up] == current[up] else np.inf
        if np.any(deviation > threshold):
            return snapped
        return current
