"""The TF buffer against hand-composed transforms: interpolation, chains, errors, history."""

import math

import numpy as np
import pytest

from recon_ros.core.geometry import matrix_to_quaternion, quaternion_to_matrix
from recon_ros.io.tf_buffer import (
    ConnectivityError,
    ExtrapolationError,
    FrameNotFoundError,
    TransformBuffer,
)

S = 1_000_000_000  # one second in nanoseconds


def yaw_quaternion(angle):
    return np.array([0.0, 0.0, math.sin(angle / 2), math.cos(angle / 2)])


def matrix(translation, q):
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(np.asarray(q))
    T[:3, 3] = translation
    return T


def test_interpolates_translation_linearly_and_rotation_spherically():
    buffer = TransformBuffer()
    buffer.set_transform("odom", "base", 10 * S, [0, 0, 0], yaw_quaternion(0.0))
    buffer.set_transform("odom", "base", 11 * S, [2, 0, 0], yaw_quaternion(math.pi / 2))
    T = buffer.lookup("odom", "base", 10 * S + S // 4)
    np.testing.assert_allclose(T[:3, 3], [0.5, 0, 0], atol=1e-12)
    np.testing.assert_allclose(
        T[:3, :3], quaternion_to_matrix(yaw_quaternion(math.pi / 8)), atol=1e-9
    )


def test_chain_of_static_and_dynamic_links_matches_manual_composition():
    buffer = TransformBuffer()
    T_world_odom = matrix([1, 2, 0], yaw_quaternion(0.3))
    T_base_cam = matrix([0.1, 0, 0.5], [0.5, -0.5, 0.5, -0.5])  # an optical-frame rotation
    buffer.set_transform(
        "world",
        "odom",
        0,
        T_world_odom[:3, 3],
        matrix_to_quaternion(T_world_odom[:3, :3]),
        static=True,
    )
    buffer.set_transform(
        "base", "cam", 0, T_base_cam[:3, 3], matrix_to_quaternion(T_base_cam[:3, :3]), static=True
    )
    for i, yaw in enumerate([0.0, 0.2, 0.4]):
        buffer.set_transform("odom", "base", (5 + i) * S, [i, 0.5 * i, 0], yaw_quaternion(yaw))
    expected = T_world_odom @ matrix([1, 0.5, 0], yaw_quaternion(0.2)) @ T_base_cam
    np.testing.assert_allclose(buffer.lookup("world", "cam", 6 * S), expected, atol=1e-9)
    # the inverse direction, and a lookup between siblings below the root
    np.testing.assert_allclose(
        buffer.lookup("cam", "world", 6 * S), np.linalg.inv(expected), atol=1e-9
    )
    buffer.set_transform("base", "lidar", 0, [0, 0, 1], [0, 0, 0, 1], static=True)
    T_cam_lidar = buffer.lookup("cam", "lidar", 6 * S)
    np.testing.assert_allclose(
        T_cam_lidar, np.linalg.inv(T_base_cam) @ matrix([0, 0, 1], [0, 0, 0, 1]), atol=1e-9
    )


def test_extrapolation_errors_say_direction_and_distance():
    buffer = TransformBuffer()
    buffer.set_transform("odom", "base", 10 * S, [0, 0, 0], [0, 0, 0, 1])
    buffer.set_transform("odom", "base", 11 * S, [1, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ExtrapolationError, match="future") as future:
        buffer.lookup("odom", "base", 12 * S)
    assert future.value.future and "1.000 s later" in str(future.value)
    with pytest.raises(ExtrapolationError, match="past") as past:
        buffer.lookup("odom", "base", 9 * S)
    assert not past.value.future


def test_static_transforms_hold_at_any_time():
    buffer = TransformBuffer()
    buffer.set_transform("base", "cam", 5 * S, [0, 0, 1], [0, 0, 0, 1], static=True)
    for stamp in (0, 5 * S, 10**6 * S, None):
        np.testing.assert_allclose(buffer.lookup("base", "cam", stamp)[:3, 3], [0, 0, 1])


def test_unknown_and_unconnected_frames():
    buffer = TransformBuffer()
    buffer.set_transform("a", "b", 0, [0, 0, 0], [0, 0, 0, 1], static=True)
    buffer.set_transform("c", "d", 0, [0, 0, 0], [0, 0, 0, 1], static=True)
    with pytest.raises(FrameNotFoundError, match="'nope' does not exist"):
        buffer.lookup("a", "nope", 0)
    with pytest.raises(ConnectivityError, match="unconnected"):
        buffer.lookup("a", "d", 0)


def test_history_is_bounded_by_cache_time_and_entry_count():
    buffer = TransformBuffer(cache_time_s=2.0)
    for i in range(100):
        buffer.set_transform("odom", "base", i * S // 10, [i, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ExtrapolationError, match="past"):
        buffer.lookup("odom", "base", 5 * S)  # older than 2 s behind the newest (9.9 s)
    np.testing.assert_allclose(buffer.lookup("odom", "base", 9 * S)[:3, 3], [90, 0, 0])
    small = TransformBuffer(max_entries_per_frame=3)
    for i in range(10):
        small.set_transform("odom", "base", i * S, [i, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ExtrapolationError):
        small.lookup("odom", "base", 6 * S)
    small.lookup("odom", "base", 7 * S)


def test_latest_common_time_and_reparenting():
    buffer = TransformBuffer()
    buffer.set_transform("map", "odom", 3 * S, [1, 0, 0], [0, 0, 0, 1])
    buffer.set_transform("map", "odom", 4 * S, [2, 0, 0], [0, 0, 0, 1])
    buffer.set_transform("odom", "base", 3 * S, [0, 0, 0], [0, 0, 0, 1])
    buffer.set_transform("odom", "base", 3 * S + S // 2, [0, 1, 0], [0, 0, 0, 1])
    # latest common time is 3.5 s: map->odom interpolated there, odom->base at its newest
    np.testing.assert_allclose(buffer.lookup("map", "base", None)[:3, 3], [1.5, 1, 0])
    buffer.set_transform("world", "base", 3 * S, [5, 5, 5], [0, 0, 0, 1])  # new parent replaces
    np.testing.assert_allclose(buffer.lookup("world", "base", 3 * S)[:3, 3], [5, 5, 5])
    with pytest.raises(ConnectivityError):
        buffer.lookup("map", "base", 3 * S)
    # a transform that would put map under its own descendant is refused (issue 9.2): lookups
    # through the tree keep working
    with pytest.raises(ValueError, match="would close a loop"):
        buffer.set_transform("odom", "map", 4 * S, [0, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ValueError, match="would close a loop"):
        buffer.set_transform("base", "world", 4 * S, [0, 0, 0], [0, 0, 0, 1])
    np.testing.assert_allclose(buffer.lookup("world", "base", 3 * S)[:3, 3], [5, 5, 5])


def test_world_frame_stays_the_root_whichever_comes_first():
    """The fuzz run's case: 'cam' -> 'world' arriving before any good transform once took the
    loop check's side and blocked every later world -> cam (issue 9.2)."""
    buffer = TransformBuffer(root_frame="world")
    with pytest.raises(ValueError, match="world frame 'world' a parent"):
        buffer.set_transform("cam", "world", 1 * S, [0, 0, 0], [0, 0, 0, 1])
    buffer.set_transform("world", "cam", 1 * S, [1, 2, 3], [0, 0, 0, 1])
    np.testing.assert_allclose(buffer.lookup("world", "cam", 1 * S)[:3, 3], [1, 2, 3])
    buffer.set_transform("earth", "world", 0, [0, 0, 0], [0, 0, 0, 1], static=True)  # a static one
    np.testing.assert_allclose(buffer.lookup("earth", "cam", 1 * S)[:3, 3], [1, 2, 3])


def test_rejects_bad_transforms():
    buffer = TransformBuffer()
    with pytest.raises(ValueError, match="not finite"):
        buffer.set_transform("a", "b", 0, [np.nan, 0, 0], [0, 0, 0, 1])
    with pytest.raises(ValueError, match="non-unit quaternion"):
        buffer.set_transform("a", "b", 0, [0, 0, 0], [0, 0, 0, 0])
    with pytest.raises(ValueError, match="itself"):
        buffer.set_transform("a", "a", 0, [0, 0, 0], [0, 0, 0, 1])
