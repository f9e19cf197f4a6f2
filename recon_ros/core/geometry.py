"""Rigid transforms: pose validation, inversion, quaternions (ROS order x, y, z, w) and the
motion between two poses that keyframe gating looks at.

Poses are ``T_world_cam`` 4x4 matrices (DEVELOPERS.md): ``p_world = T_world_cam @ p_cam``.
The numpy functions work in float64; ``validate_pose_tensor`` and ``invert_rigid_tensor`` are the
batched torch counterparts used by the tensor code.
"""

import numpy as np
import torch

from recon_ros.core.poses import invert_pose, look_at_pose  # noqa: F401 (re-exported)

#: Largest accepted deviation of ``R^T R`` from the identity (max abs element) and of ``det R``
#: from 1. Poses from TF are float64 and far better; float32 round trips stay well below it.
ROTATION_TOLERANCE = 1e-3


def validate_pose(
    T: np.ndarray, name: str = "T_world_cam", tolerance: float = ROTATION_TOLERANCE
) -> np.ndarray:
    """Check a rigid 4x4 transform and return it as a float64 copy.

    Args:
        T: (4, 4) array-like.
        name: how error messages call the input.
        tolerance: accepted deviation of the rotation from orthonormal.

    Raises:
        ValueError: wrong shape, NaN or infinite entries, a last row other than ``0 0 0 1``, or a
            rotation block that is not orthonormal with determinant +1 (scale, shear, reflection).
    """
    try:
        T = np.array(T, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: not a numeric 4x4 matrix ({error})") from error
    if T.shape != (4, 4):
        raise ValueError(f"{name}: expected shape (4, 4), got {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    if not np.allclose(T[3], (0.0, 0.0, 0.0, 1.0), atol=1e-9):
        raise ValueError(f"{name}: last row must be 0 0 0 1, got {T[3].tolist()}")
    R = T[:3, :3]
    deviation = np.abs(R.T @ R - np.eye(3)).max()
    if deviation > tolerance:
        raise ValueError(
            f"{name}: rotation is not orthonormal (max |R^T R - I| = {deviation:.3g} > "
            f"{tolerance:g}); scaled or sheared poses are not rigid"
        )
    determinant = np.linalg.det(R)
    if abs(determinant - 1.0) > tolerance:
        raise ValueError(f"{name}: rotation has determinant {determinant:.3g}, expected +1")
    return T


def validate_pose_tensor(
    T: torch.Tensor, name: str = "T_world_cam", tolerance: float = ROTATION_TOLERANCE
) -> None:
    """Check a batch of rigid transforms ``(..., 4, 4)`` (float tensor); raise ValueError naming
    ``name`` and the first problem found (shape, dtype, NaN, last row, rotation)."""
    if not isinstance(T, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(T).__name__}")
    if T.ndim < 2 or T.shape[-2:] != (4, 4):
        raise ValueError(f"{name}: expected shape (..., 4, 4), got {tuple(T.shape)}")
    if not T.is_floating_point():
        raise ValueError(f"{name}: expected a floating-point tensor, got {T.dtype}")
    T = T.detach()
    if not bool(torch.isfinite(T).all()):
        raise ValueError(f"{name}: contains NaN or infinite values")
    last_row = T.new_tensor([0.0, 0.0, 0.0, 1.0])
    if not bool(torch.allclose(T[..., 3, :], last_row.expand_as(T[..., 3, :]), atol=1e-6)):
        raise ValueError(f"{name}: last row must be 0 0 0 1")
    R = T[..., :3, :3].double()
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    deviation = float((R.transpose(-1, -2) @ R - eye).abs().max()) if R.numel() else 0.0
    if deviation > tolerance:
        raise ValueError(
            f"{name}: rotation is not orthonormal (max |R^T R - I| = {deviation:.3g} > "
            f"{tolerance:g})"
        )
    if R.numel() and float((torch.linalg.det(R) - 1.0).abs().max()) > tolerance:
        raise ValueError(f"{name}: rotation has a determinant other than +1 (a reflection)")


def invert_rigid_tensor(T: torch.Tensor) -> torch.Tensor:
    """Batched rigid inverse ``(..., 4, 4) -> (..., 4, 4)``, differentiable."""
    R_inv = T[..., :3, :3].transpose(-1, -2)
    t_inv = -(R_inv @ T[..., :3, 3:4])
    bottom = T[..., 3:4, :]
    return torch.cat([torch.cat([R_inv, t_inv], dim=-1), bottom], dim=-2)


def quaternion_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) from a quaternion in ROS order ``(x, y, z, w)``; normalises it.

    Raises:
        ValueError: not 4 finite numbers, or (near) zero norm.
    """
    q = np.asarray(q_xyzw, dtype=np.float64)
    if q.shape != (4,):
        raise ValueError(f"quaternion: expected 4 values (x, y, z, w), got shape {q.shape}")
    if not np.all(np.isfinite(q)):
        raise ValueError("quaternion: contains NaN or infinite values")
    norm = np.linalg.norm(q)
    if norm < 1e-9:
        raise ValueError("quaternion: zero norm")
    x, y, z, w = q / norm
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Quaternion ``(x, y, z, w)`` with ``w >= 0`` from a rotation matrix (3, 3) or pose (4, 4)."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape == (4, 4):
        R = R[:3, :3]
    if R.shape != (3, 3):
        raise ValueError(f"rotation: expected shape (3, 3) or (4, 4), got {R.shape}")
    trace = np.trace(R)
    # Branch on the largest diagonal term so the square root never sees a tiny argument.
    if trace > 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s, s / 4]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2])
        q = [s / 4, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s, (R[2, 1] - R[1, 2]) / s]
    elif R[1, 1] > R[2, 2]:
        s = 2.0 * np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2])
        q = [(R[0, 1] + R[1, 0]) / s, s / 4, (R[1, 2] + R[2, 1]) / s, (R[0, 2] - R[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1])
        q = [(R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, s / 4, (R[1, 0] - R[0, 1]) / s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0 else q


def pose_from_translation_quaternion(translation: np.ndarray, q_xyzw: np.ndarray) -> np.ndarray:
    """4x4 pose from a translation (3,) and a quaternion (x, y, z, w), e.g. a ROS Transform."""
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(f"translation: expected 3 finite values, got {t}")
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(q_xyzw)
    T[:3, 3] = t
    return T


def rotation_angle_between(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Angle in radians, in [0, pi], of the relative rotation ``R_a^T R_b`` of two poses."""
    R = np.asarray(T_a, dtype=np.float64)[:3, :3].T @ np.asarray(T_b, dtype=np.float64)[:3, :3]
    cos_angle = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.arccos(cos_angle))


def translation_between(T_a: np.ndarray, T_b: np.ndarray) -> float:
    """Distance in metres between the origins of two poses."""
    return float(np.linalg.norm(np.asarray(T_a)[:3, 3] - np.asarray(T_b)[:3, 3]))


def rotation_about_axis(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3, 3) rotation by ``angle`` radians about ``axis`` (any length > 0; Rodrigues)."""
    axis = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = float(np.linalg.norm(axis))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"axis: must be a finite non-zero vector, got {axis.tolist()}")
    x, y, z = axis / norm
    skew = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + np.sin(angle) * skew + (1.0 - np.cos(angle)) * skew @ skew
