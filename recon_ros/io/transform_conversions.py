"""Time stamps and geometry_msgs transforms and poses to and from 4x4 matrices.

Readers are duck-typed: they take rclpy messages and the messages ``rosbags`` deserialises from a
bag alike. Builders import the rclpy message classes lazily, so this module imports without
ROS. Readers raise ``ValueError`` saying what is wrong with the input; the nodes log it and
drop the frame.
"""

from __future__ import annotations

import numpy as np

from recon_ros.core.geometry import matrix_to_quaternion, pose_from_translation_quaternion


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time to integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    """Integer nanoseconds to builtin_interfaces/Time."""
    from builtin_interfaces.msg import Time

    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def translation_quaternion(translation, rotation) -> tuple[np.ndarray, np.ndarray]:
    """``(t (3,), q (4,) x y z w normalised)`` of a geometry_msgs Vector3/Point and Quaternion.

    Raises ValueError for non-finite values or a quaternion far from unit length (a common sign of
    an uninitialised pose: all zeros).
    """
    t = np.array([translation.x, translation.y, translation.z], dtype=np.float64)
    q = np.array([rotation.x, rotation.y, rotation.z, rotation.w], dtype=np.float64)
    if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q))):
        raise ValueError(f"pose is not finite: translation {t.tolist()}, quaternion {q.tolist()}")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-2:
        raise ValueError(f"quaternion {q.tolist()} is not unit length (norm {norm:.4f})")
    return t, q / norm


def transform_to_matrix(transform) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Transform (``translation``, ``rotation``)."""
    return pose_from_translation_quaternion(
        *translation_quaternion(transform.translation, transform.rotation)
    )


def pose_to_matrix(pose) -> np.ndarray:
    """4x4 matrix of a geometry_msgs/Pose (``position``, ``orientation``)."""
    return pose_from_translation_quaternion(
        *translation_quaternion(pose.position, pose.orientation)
    )


def matrix_to_transform_stamped(T: np.ndarray, stamp, parent: str, child: str):
    """geometry_msgs/TransformStamped of a 4x4 matrix ``T_parent_child``."""
    from geometry_msgs.msg import TransformStamped

    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    q = matrix_to_quaternion(T[:3, :3])
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in T[:3, 3]
    )
    (
        msg.transform.rotation.x,
        msg.transform.rotation.y,
        msg.transform.rotation.z,
        msg.transform.rotation.w,
    ) = (float(v) for v in q)
    return msg
