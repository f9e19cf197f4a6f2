"""Camera intrinsics, look-at poses, walks and rigs."""

import numpy as np
import pytest

from recon_ros.scenes.cameras import (
    TrajectoryConfig,
    catmull_rom,
    default_intrinsics,
    look_at,
    make_trajectory,
)


def test_look_at_uses_the_optical_convention():
    T = look_at((0, 0, 1), (5, 0, 1))
    R = T[:3, :3]
    np.testing.assert_allclose(R[:, 2], [1, 0, 0], atol=1e-12)  # z forward
    np.testing.assert_allclose(R[:, 0], [0, -1, 0], atol=1e-12)  # x right (world -y)
    np.testing.assert_allclose(R[:, 1], [0, 0, -1], atol=1e-12)  # y down
    np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    K = default_intrinsics(640, 480)
    # A point above the target images above the centre (smaller v).
    p = np.linalg.inv(T) @ [5, 0, 1.5, 1]
    v = K[1, 1] * p[1] / p[2] + K[1, 2]
    assert v < K[1, 2]
    # straight along up: one defined answer for every caller (the image x across world x)
    for target in ((0, 0, 1), (0, 0, -1)):
        R = look_at((0, 0, 0), target)[:3, :3]
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0) and abs(R[0, 0]) < 1e-12
        np.testing.assert_allclose(R[:, 2], target, atol=1e-12)
    with pytest.raises(ValueError, match="equals target"):
        look_at((0, 0, 0), (0, 0, 0))


def test_default_intrinsics():
    K = default_intrinsics(640, 480)
    np.testing.assert_allclose(K, [[525, 0, 319.5], [0, 525, 239.5], [0, 0, 1]])
    np.testing.assert_allclose(default_intrinsics(320, 240)[0, 0], 262.5)


def test_catmull_rom_passes_through_its_points():
    points = np.array([[0.0, 0, 0], [1, 0, 0], [1, 2, 0], [3, 2, 1]])
    curve, param = catmull_rom(points, samples_per_segment=16)
    for i, p in enumerate(points):
        np.testing.assert_allclose(curve[np.argmin(np.abs(param - i))], p, atol=1e-9)
    assert np.all(np.diff(param) > 0)


def test_walk_stays_clear_smooth_and_on_speed(crowded_scene):
    config = TrajectoryConfig(frames=40, frame_rate=10, speed=0.5)
    trajectory = make_trajectory(crowded_scene, config)
    positions = trajectory.poses[:, :3, 3]
    assert len(trajectory) == 40 and trajectory.continuous
    distance, _ = crowded_scene.sdf(positions)
    assert distance.min() >= 0.4 * config.clearance
    assert positions[:, 2].min() >= config.height[0] - 1e-9
    assert positions[:, 2].max() <= config.height[1] + 1e-9
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    np.testing.assert_allclose(steps, config.speed / config.frame_rate, rtol=0.05)
    forward = trajectory.poses[:, :3, 2]
    turn = np.degrees(np.arccos(np.clip(np.sum(forward[1:] * forward[:-1], axis=1), -1, 1)))
    assert turn.max() * config.frame_rate <= config.max_turn_rate + 1e-6
    np.testing.assert_array_equal(np.diff(trajectory.stamps_ns), 100_000_000)
    again = make_trajectory(crowded_scene, config)
    np.testing.assert_array_equal(again.poses, trajectory.poses)


def test_rig_surrounds_the_room(crowded_scene):
    trajectory = make_trajectory(crowded_scene, TrajectoryConfig(kind="rig", rig_cameras=8))
    assert len(trajectory) == 8 and not trajectory.continuous
    lo, hi = crowded_scene.room.interior
    center = (lo + hi) / 2
    positions = trajectory.poses[:, :3, 3]
    angles = np.sort(np.arctan2(positions[:, 1] - center[1], positions[:, 0] - center[0]))
    gaps = np.diff(np.concatenate([angles, angles[:1] + 2 * np.pi]))
    assert gaps.max() < np.radians(90)
    # Each camera looks towards the middle of the room.
    to_center = center - positions
    assert np.all(np.sum(to_center * trajectory.poses[:, :3, 2], axis=1) > 0)
    assert np.all(crowded_scene.sdf(positions)[0] > 0)


def test_bad_trajectory_configs():
    with pytest.raises(ValueError, match="kind"):
        TrajectoryConfig(kind="fly")
    with pytest.raises(ValueError, match="frames"):
        TrajectoryConfig(frames=0)


def test_a_fixed_rig_is_one_installation_across_scenes():
    """``--studio``: the same room and rig phase in every scene; the cameras stay within their
    mounting tolerance of each other while a drawn rig moves round the room."""
    from recon_ros.scenes.cli import STUDIO_RIG, STUDIO_ROOM
    from recon_ros.scenes.scene import SceneConfig, generate_scene

    config = SceneConfig(room=STUDIO_ROOM)
    scenes = [generate_scene(seed, config) for seed in (3, 4)]
    assert all(np.allclose(s.room.size, (5.0, 6.0, 4.0)) for s in scenes)
    fixed = TrajectoryConfig(kind="rig", **STUDIO_RIG)
    drawn = TrajectoryConfig(kind="rig")
    spread = {}
    for name, trajectory_config in (("fixed", fixed), ("drawn", drawn)):
        rigs = [make_trajectory(s, trajectory_config).poses[:, :3, 3] for s in scenes]
        spread[name] = np.linalg.norm(rigs[0] - rigs[1], axis=1).max()
    assert spread["fixed"] < 0.5 < spread["drawn"], spread
    with pytest.raises(ValueError, match="rig_jitter"):
        TrajectoryConfig(kind="rig", rig_jitter=-1.0)
