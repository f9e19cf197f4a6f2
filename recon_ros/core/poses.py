"""Rigid poses as numpy (4, 4) matrices: the one ``invert_pose`` and the one ``look_at_pose``
every part uses (the core, the scene engine, rendering, sufficiency's synthetic views). numpy only,
so the scene engine's workers load no torch; ``core.geometry`` re-exports both beside its torch
helpers.
"""

from __future__ import annotations

import numpy as np


def invert_pose(T: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (4, 4): ``[R^T, -R^T t]``, exact for rigid input."""
    T = np.asarray(T, dtype=np.float64)
    inverse = np.eye(4)
    inverse[:3, :3] = T[:3, :3].T
    inverse[:3, 3] = -T[:3, :3].T @ T[:3, 3]
    return inverse


def look_at_pose(
    camera_position: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0), roll: float = 0.0
) -> np.ndarray:
    """``T_world_cam`` (4, 4) of an optical-frame camera (x right, y down, z forward) at
    ``camera_position`` looking at ``target``, ``up`` (world) pointing up in the image, then
    rolled by ``roll`` radians about the viewing axis.

    Looking straight along ``up`` (a top-down view) leaves the image's up undefined: the image x
    axis is then taken across world x (across world y when looking along x), the same for every
    caller.

    Raises:
        ValueError: the camera sits on its target.
    """
    position = np.asarray(camera_position, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - position
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise ValueError("look_at_pose: camera_position equals target")
    forward = forward / norm
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-6:  # along up
        helper = [1.0, 0.0, 0.0] if abs(forward[0]) < 0.9 else [0.0, 1.0, 0.0]
        right = np.cross(forward, helper)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        right, down = c * right + s * down, -s * right + c * down
    T = np.eye(4)
    T[:3, 0], T[:3, 1], T[:3, 2], T[:3, 3] = right, down, forward, position
    return T
