"""Rigid transforms: validation, inversion, quaternions, motion between poses."""

import numpy as np
import pytest
import torch

from recon_ros.core.geometry import (
    invert_pose,
    invert_rigid_tensor,
    look_at_pose,
    matrix_to_quaternion,
    pose_from_translation_quaternion,
    quaternion_to_matrix,
    rotation_angle_between,
    translation_between,
    validate_pose,
    validate_pose_tensor,
)


def random_pose(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return pose_from_translation_quaternion(rng.normal(size=3), q)


def test_validate_pose_accepts_rigid_and_names_problems():
    T = random_pose(np.random.default_rng(0))
    np.testing.assert_array_equal(validate_pose(T), T)
    bad = T.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="T_world_cam: contains NaN"):
        validate_pose(bad)
    with pytest.raises(ValueError, match="shape"):
        validate_pose(np.eye(3))
    scaled = T.copy()
    scaled[:3, :3] *= 1.1
    with pytest.raises(ValueError, match="not orthonormal"):
        validate_pose(scaled)
    reflected = T.copy()
    reflected[:3, 0] *= -1
    with pytest.raises(ValueError, match="determinant"):
        validate_pose(reflected)
    last_row = T.copy()
    last_row[3, 0] = 0.5
    with pytest.raises(ValueError, match="last row"):
        validate_pose(last_row, name="pose")
    with pytest.raises(ValueError, match="not orthonormal"):
        validate_pose_tensor(torch.from_numpy(scaled)[None])
    with pytest.raises(ValueError, match="NaN"):
        validate_pose_tensor(torch.from_numpy(bad))


def test_inverse_and_tensor_inverse():
    rng = np.random.default_rng(1)
    T = random_pose(rng)
    np.testing.assert_allclose(invert_pose(T) @ T, np.eye(4), atol=1e-12)
    batch = torch.from_numpy(np.stack([random_pose(rng) for _ in range(3)]))
    np.testing.assert_allclose(
        (invert_rigid_tensor(batch) @ batch).numpy(),
        np.broadcast_to(np.eye(4), (3, 4, 4)),
        atol=1e-12,
    )


def test_quaternion_round_trip_ros_order():
    # 90 degrees about z in ROS order (x, y, z, w).
    R = quaternion_to_matrix([0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)])
    np.testing.assert_allclose(R @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)
    rng = np.random.default_rng(2)
    for _ in range(20):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        q = q if q[3] >= 0 else -q
        np.testing.assert_allclose(matrix_to_quaternion(quaternion_to_matrix(q)), q, atol=1e-9)
    with pytest.raises(ValueError, match="zero norm"):
        quaternion_to_matrix([0, 0, 0, 0])


def test_motion_between_poses():
    T_a = look_at_pose([0, 0, 1], [1, 0, 1])
    T_b = T_a.copy()
    T_b[:3, 3] += [0.3, 0.4, 0.0]
    assert translation_between(T_a, T_b) == pytest.approx(0.5)
    assert rotation_angle_between(T_a, T_b) == pytest.approx(0.0, abs=1e-7)
    T_c = look_at_pose([0, 0, 1], [1, 1, 1])
    assert np.degrees(rotation_angle_between(T_a, T_c)) == pytest.approx(45.0)


def test_look_at_is_optical_frame():
    T = look_at_pose([0.0, 0.0, 1.0], [2.0, 0.0, 1.0])
    validate_pose(T)
    np.testing.assert_allclose(T[:3, 2], [1, 0, 0], atol=1e-12)  # z forward
    np.testing.assert_allclose(T[:3, 1], [0, 0, -1], atol=1e-12)  # y down
    np.testing.assert_allclose(T[:3, 0], [0, -1, 0], atol=1e-12)  # x right
