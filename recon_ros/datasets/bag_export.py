"""Export any frame sequence as a rosbag2 that recon_ros's nodes and replay tools consume.

Topics (RealSense-style names)::

    /camera/color/image_raw      sensor_msgs/Image rgb8, frame camera_color_optical_frame
    /camera/color/camera_info    sensor_msgs/CameraInfo (plumb_bob, zero distortion)
    /camera/depth/image_raw      sensor_msgs/Image 16UC1 millimetres, frame
                                 camera_depth_optical_frame (0 = no measurement)
    /camera/depth/camera_info
    /tf_static                   world -> odom (a fixed, non-identity offset),
                                 base_link -> camera_link (mounting offset),
                                 camera_link -> camera_color_optical_frame and
                                 camera_link -> camera_depth_optical_frame (REP 103 optical
                                 rotation), offered transient local (latched on replay)
    /tf                          odom -> base_link, at twice the camera rate

The depth camera is registered to the colour camera here (same pose). Image stamps are the
sequence's stamps; messages are recorded ``image_latency_ns`` after their stamp.

TF timing: ``/tf`` samples are stamped a quarter frame interval before and after each image stamp,
never at it, so consumers must interpolate (as tf2's ``lookup_transform`` does, linearly in
translation and by slerp in rotation). The two samples round frame i are the frame's pose moved
back and forward along the camera's local velocity (``smooth``), symmetrically, so interpolating at
the image stamp gives exactly the frame's pose while the stream still moves smoothly. For
sequences that are not one moving camera (rigs) the samples hold the frame's pose (``hold``).
Looking up world <- camera_color_optical_frame at an image stamp therefore returns that frame's
``T_world_cam``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recon_ros.datasets.sequence import FrameSequence
from recon_ros.io.bagfile import BagWriter

WORLD_FRAME = "world"
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
CAMERA_LINK_FRAME = "camera_link"
COLOR_FRAME = "camera_color_optical_frame"
DEPTH_FRAME = "camera_depth_optical_frame"

COLOR_TOPIC = "/camera/color/image_raw"
COLOR_INFO_TOPIC = "/camera/color/camera_info"
DEPTH_TOPIC = "/camera/depth/image_raw"
DEPTH_INFO_TOPIC = "/camera/depth/camera_info"

#: camera_link (x forward, y left, z up) -> optical frame (x right, y down, z forward).
T_LINK_OPTICAL = np.array(
    [[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)


def _yaw_pose(x, y, z, yaw_deg) -> np.ndarray:
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    T[:3, 3] = (x, y, z)
    return T


#: Default world -> odom: where the robot's odometry started, deliberately not the identity.
DEFAULT_T_WORLD_ODOM = _yaw_pose(0.4, -0.25, 0.0, 12.0)
#: Default base_link -> camera_link: a camera 12 cm ahead of and 25 cm above the base.
DEFAULT_T_BASE_CAMERA_LINK = _yaw_pose(0.12, 0.0, 0.25, 0.0)


def _so3_log(R: np.ndarray) -> np.ndarray:
    """Rotation vector (3,) of ``R`` (3, 3)."""
    cos = np.clip((np.trace(R) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-9:
        return np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2
    if np.pi - angle < 1e-6:
        # Near 180 degrees: the axis is the column of R + I with the largest norm.
        M = R + np.eye(3)
        axis = M[:, np.argmax(np.linalg.norm(M, axis=0))]
        return angle * axis / np.linalg.norm(axis)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return angle * w / (2 * np.sin(angle))


def _so3_exp(w: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) of the rotation vector ``w`` (3,) (Rodrigues)."""
    angle = np.linalg.norm(w)
    if angle < 1e-12:
        return np.eye(3)
    k = w / angle
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * Kx + (1 - np.cos(angle)) * Kx @ Kx


def tf_samples(
    poses: np.ndarray, stamps_ns: np.ndarray, mode: str = "smooth"
) -> tuple[np.ndarray, np.ndarray]:
    """TF sample stamps (2N,) int64 and poses (2N, 4, 4) bracketing each frame (see the module
    docstring).

    Args:
        poses: (N, 4, 4) poses of the moving frame at ``stamps_ns`` (N,), increasing.
        mode: ``"smooth"`` (symmetric samples along the local velocity) or ``"hold"``.
    """
    poses = np.asarray(poses, dtype=np.float64)
    stamps = np.asarray(stamps_ns, dtype=np.int64)
    n = len(poses)
    if poses.shape != (n, 4, 4) or stamps.shape != (n,):
        raise ValueError(
            f"poses, stamps_ns: expected (N, 4, 4) and (N,), got {poses.shape}, {stamps.shape}"
        )
    if mode not in ("smooth", "hold"):
        raise ValueError(f"mode: expected 'smooth' or 'hold', got {mode!r}")
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, 4, 4))
    if np.any(np.diff(stamps) <= 0):
        raise ValueError("stamps_ns: must be strictly increasing")
    gaps = np.diff(stamps)
    default_gap = int(gaps.min()) if n > 1 else 33_333_333
    out_stamps, out_poses = [], []
    for i in range(n):
        before = gaps[i - 1] if i > 0 else default_gap
        after = gaps[i] if i < n - 1 else default_gap
        half = max(int(min(before, after) // 4), 1)  # ns from the image stamp to each sample
        shift = np.zeros(3)
        turn = np.zeros(3)
        if mode == "smooth" and n > 1:
            lo, hi = max(i - 1, 0), min(i + 1, n - 1)
            dt = (stamps[hi] - stamps[lo]) / 1e9
            shift = (poses[hi, :3, 3] - poses[lo, :3, 3]) / dt * (half / 1e9)
            turn = _so3_log(poses[lo, :3, :3].T @ poses[hi, :3, :3]) / dt * (half / 1e9)
        for sign in (-1.0, 1.0):
            T = poses[i].copy()
            T[:3, 3] = poses[i, :3, 3] + sign * shift
            T[:3, :3] = poses[i, :3, :3] @ _so3_exp(sign * turn)
            out_stamps.append(int(stamps[i]) + int(sign) * half)
            out_poses.append(T)
    return np.asarray(out_stamps, dtype=np.int64), np.stack(out_poses)


def export_bag(
    sequence: FrameSequence,
    path: str | os.PathLike,
    storage: str = "mcap",
    *,
    tf_mode: str = "auto",
    include_depth: bool = True,
    T_world_odom: np.ndarray = DEFAULT_T_WORLD_ODOM,
    T_base_camera_link: np.ndarray = DEFAULT_T_BASE_CAMERA_LINK,
    image_latency_ns: int = 8_000_000,
    overwrite: bool = False,
    compression: str | None = None,
    progress=None,
) -> Path:
    """Write ``sequence`` as a rosbag2 at ``path`` (see the module docstring).

    Args:
        storage: ``"mcap"`` or ``"sqlite3"``.
        tf_mode: ``"smooth"``, ``"hold"`` or ``"auto"`` (smooth for continuous sequences).
        include_depth: also write the depth image and its camera info.
        T_world_odom, T_base_camera_link: the static transforms of the chain (4, 4).
        image_latency_ns: record time minus stamp of image and camera-info messages.
        compression: ``None``, ``"storage"`` or ``"message"`` (zstd, see ``BagWriter``).
        progress: optional callable taking the number of frames done.

    Returns:
        ``path``.
    """
    if tf_mode == "auto":
        tf_mode = "smooth" if sequence.continuous else "hold"
    if len(sequence) == 0:
        raise ValueError("sequence: no frames to export")
    stamps = sequence.stamps_ns
    T_world_odom = np.asarray(T_world_odom, dtype=np.float64)
    T_base_link = np.asarray(T_base_camera_link, dtype=np.float64)
    T_base_optical = T_base_link @ T_LINK_OPTICAL
    # odom -> base_link such that world -> odom -> base_link -> optical = T_world_cam.
    base_poses = (
        np.linalg.inv(T_world_odom)[None] @ sequence.poses @ np.linalg.inv(T_base_optical)[None]
    )
    tf_stamps, tf_poses = tf_samples(base_poses, stamps, tf_mode)

    # Events in record-time order: (record_ns, order, kind, index).
    events = [(int(s) + image_latency_ns, 1, "frame", i) for i, s in enumerate(stamps)]
    events += [(int(s), 0, "tf", k) for k, s in enumerate(tf_stamps)]
    events.sort()
    static_stamp = int(min(stamps[0], tf_stamps[0])) - 1_000_000

    with BagWriter(path, storage=storage, overwrite=overwrite, compression=compression) as bag:
        bag.write_transforms(
            [
                (WORLD_FRAME, ODOM_FRAME, T_world_odom),
                (BASE_FRAME, CAMERA_LINK_FRAME, T_base_link),
                (CAMERA_LINK_FRAME, COLOR_FRAME, T_LINK_OPTICAL),
                (CAMERA_LINK_FRAME, DEPTH_FRAME, T_LINK_OPTICAL),
            ],
            static_stamp,
            static=True,
        )
        done = 0
        for record_ns, _, kind, index in events:
            if kind == "tf":
                bag.write_transforms(
                    [(ODOM_FRAME, BASE_FRAME, tf_poses[index])],
                    int(tf_stamps[index]),
                    record_ns=record_ns,
                )
                continue
            frame = sequence[index]
            stamp = int(stamps[index])
            height, width = frame.rgb.shape[:2]
            bag.write_camera_info(
                COLOR_INFO_TOPIC,
                frame.K,
                width,
                height,
                stamp,
                frame_id=COLOR_FRAME,
                record_ns=record_ns,
            )
            bag.write_image(
                COLOR_TOPIC, frame.rgb, stamp, COLOR_FRAME, encoding="rgb8", record_ns=record_ns
            )
            if include_depth and frame.depth is not None:
                depth_mm = np.round(np.asarray(frame.depth, dtype=np.float64) * 1000.0)
                depth_mm[(depth_mm <= 0) | (depth_mm > 65535) | ~np.isfinite(depth_mm)] = 0
                dh, dw = frame.depth.shape
                bag.write_camera_info(
                    DEPTH_INFO_TOPIC,
                    frame.K_depth,
                    dw,
                    dh,
                    stamp,
                    frame_id=DEPTH_FRAME,
                    record_ns=record_ns,
                )
                bag.write_image(
                    DEPTH_TOPIC,
                    depth_mm.astype(np.uint16),
                    stamp,
                    DEPTH_FRAME,
                    encoding="16UC1",
                    record_ns=record_ns,
                )
            done += 1
            if progress is not None:
                progress(done)
    return Path(path)


def rig_image_topic(camera: int) -> str:
    """Image topic of rig camera ``camera`` in a rig bag (rig_node's default ``image_topics``)."""
    return f"/rig/camera_{camera}/image_raw"


def export_rig_bag(
    sequence: FrameSequence,
    path: str | os.PathLike,
    storage: str = "mcap",
    *,
    seconds: float = 5.0,
    rate_hz: float = 2.0,
    room_frame: str = "room",
    overwrite: bool = False,
) -> Path:
    """Write a fixed rig's frames (``sequence``: one frame per camera, as ``--trajectory rig``
    generates) as a rosbag2 of live cameras: each camera's image and CameraInfo on its own topics
    (``rig_image_topic(k)``, ``/rig/camera_k/camera_info``, frame ``rig_camera_k_optical_frame``)
    at ``rate_hz`` for ``seconds``, the cameras' poses on /tf_static (``room_frame`` -> each
    optical frame, the room being the sequence's world). A fixed camera sees the same image
    every frame; a live one would differ only by sensor noise."""
    if len(sequence) == 0:
        raise ValueError("sequence: no frames to export")
    if rate_hz <= 0 or seconds <= 0:
        raise ValueError(f"rate_hz and seconds must be positive, got {rate_hz}, {seconds}")
    frames = [sequence[k] for k in range(len(sequence))]
    optical = [f"rig_camera_{k}_optical_frame" for k in range(len(frames))]
    start = int(sequence.stamps_ns[0])
    period = round(1e9 / rate_hz)
    with BagWriter(path, storage=storage, overwrite=overwrite) as bag:
        bag.write_transforms(
            [(room_frame, optical[k], sequence.poses[k]) for k in range(len(frames))],
            start - 1_000_000,
            static=True,
        )
        for tick in range(max(1, round(seconds * rate_hz))):
            for k, frame in enumerate(frames):
                stamp = start + tick * period + k * 1_000_000  # cameras a millisecond apart
                height, width = frame.rgb.shape[:2]
                bag.write_camera_info(
                    f"/rig/camera_{k}/camera_info", frame.K, width, height, stamp,
                    frame_id=optical[k],
                )  # fmt: skip
                bag.write_image(rig_image_topic(k), frame.rgb, stamp, optical[k], encoding="rgb8")
    return Path(path)
