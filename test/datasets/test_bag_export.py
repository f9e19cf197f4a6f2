"""Export of sequences as rosbag2: topics, images, stamps and a TF chain that gives back every
frame's pose when interpolated at the image stamps, as tf2 does."""

import numpy as np
import pytest
from rosbags.interfaces import QosDurability

from recon_ros.core.geometry import matrix_to_quaternion, quaternion_to_matrix
from recon_ros.datasets.bag_export import (
    COLOR_FRAME,
    DEPTH_FRAME,
    export_bag,
    tf_samples,
)
from recon_ros.datasets.sequence import Frame, FrameSequence
from recon_ros.io.bagfile import BagReader
from recon_ros.io.transform_conversions import stamp_to_ns, transform_to_matrix
from recon_ros.scenes.cameras import default_intrinsics, look_at

T0 = 1_700_000_000_000_000_000


class ArraySequence(FrameSequence):
    """An in-memory sequence for the tests."""

    def __init__(self, poses, continuous=True, frame_rate=15.0, size=(32, 24)):
        rng = np.random.default_rng(0)
        self.name = "arrays"
        self.frame_rate = frame_rate
        self.continuous = continuous
        n = len(poses)
        w, h = size
        self._poses = np.asarray(poses)
        self._stamps_ns = T0 + np.round(np.arange(n) * 1e9 / frame_rate).astype(np.int64)
        self._K = np.repeat(default_intrinsics(w, h)[None], n, axis=0)
        self._K_depth = np.repeat(default_intrinsics(w // 2, h // 2)[None], n, axis=0)
        self.rgb = rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
        self.depth = rng.uniform(0.3, 6.0, size=(n, h // 2, w // 2)).astype(np.float32)
        self.depth[:, 0, 0] = 0

    def _load(self, i):
        return Frame(
            i,
            int(self._stamps_ns[i]),
            self.rgb[i],
            self.depth[i],
            self._K[i],
            self._K_depth[i],
            self._poses[i],
        )


def _walk(n=12):
    """A camera circling and bobbing while looking at a moving point: smooth, with rotation."""
    t = np.arange(n) / 15.0
    eyes = np.stack([2 + np.cos(t), 2 + np.sin(1.3 * t), 1.2 + 0.2 * np.sin(3 * t)], axis=1)
    targets = np.stack([4 + 0.5 * t, 1 + t, 0.5 + 0 * t], axis=1)
    return np.stack([look_at(e, g) for e, g in zip(eyes, targets, strict=True)])


def _slerp_lerp(Ta, Tb, w):
    """tf2's interpolation: linear in translation, slerp in rotation."""
    qa, qb = matrix_to_quaternion(Ta[:3, :3]), matrix_to_quaternion(Tb[:3, :3])
    if qa @ qb < 0:
        qb = -qb
    angle = np.arccos(np.clip(qa @ qb, -1, 1))
    if angle < 1e-12:
        q = qa
    else:
        q = (np.sin((1 - w) * angle) * qa + np.sin(w * angle) * qb) / np.sin(angle)
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(q)
    T[:3, 3] = (1 - w) * Ta[:3, 3] + w * Tb[:3, 3]
    return T


def _matrix(transform):
    return transform_to_matrix(transform)


def _read(path):
    static, dynamic, images, infos = {}, [], {}, {}
    with BagReader(path) as bag:
        topics = bag.topics
        qos = bag.offered_qos("/tf_static")
        for topic, _, record_ns, msg in bag.messages():
            if topic == "/tf_static":
                for tf in msg.transforms:
                    static[(tf.header.frame_id, tf.child_frame_id)] = _matrix(tf.transform)
            elif topic == "/tf":
                (tf,) = msg.transforms
                assert (tf.header.frame_id, tf.child_frame_id) == ("odom", "base_link")
                dynamic.append((stamp_to_ns(tf.header.stamp), _matrix(tf.transform)))
            elif topic.endswith("image_raw"):
                images.setdefault(topic, []).append(msg)
                assert record_ns >= stamp_to_ns(msg.header.stamp)
            else:
                infos.setdefault(topic, []).append(msg)
    return topics, qos, static, dynamic, images, infos


def _lookup(static, dynamic, stamp):
    """world <- camera_color_optical_frame at ``stamp`` through the chain."""
    stamps = np.array([s for s, _ in dynamic])
    right = int(np.searchsorted(stamps, stamp))
    assert 0 < right < len(stamps), "image stamp outside the TF stream"
    (sa, Ta), (sb, Tb) = dynamic[right - 1], dynamic[right]
    odom_base = _slerp_lerp(Ta, Tb, (stamp - sa) / (sb - sa))
    return (
        static[("world", "odom")]
        @ odom_base
        @ static[("base_link", "camera_link")]
        @ static[("camera_link", COLOR_FRAME)]
    )


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_export_round_trip(tmp_path, storage):
    poses = _walk()
    seq = ArraySequence(poses)
    export_bag(seq, tmp_path / "bag", storage)
    topics, qos, static, dynamic, images, infos = _read(tmp_path / "bag")

    n = len(seq)
    assert topics["/camera/color/image_raw"] == ("sensor_msgs/msg/Image", n)
    assert topics["/camera/depth/image_raw"].count == n
    assert topics["/camera/color/camera_info"] == ("sensor_msgs/msg/CameraInfo", n)
    assert topics["/tf"] == ("tf2_msgs/msg/TFMessage", 2 * n)
    assert topics["/tf_static"].count == 1
    assert qos and qos[0].durability == QosDurability.TRANSIENT_LOCAL

    # The static offset world -> odom is not the identity; the optical rotation is REP 103's.
    assert not np.allclose(static[("world", "odom")], np.eye(4))
    np.testing.assert_allclose(
        static[("camera_link", COLOR_FRAME)][:3, :3],
        [[0, 0, 1], [-1, 0, 0], [0, -1, 0]],
        atol=1e-12,
    )
    np.testing.assert_allclose(
        static[("camera_link", DEPTH_FRAME)], static[("camera_link", COLOR_FRAME)]
    )

    image_stamps = [stamp_to_ns(m.header.stamp) for m in images["/camera/color/image_raw"]]
    np.testing.assert_array_equal(image_stamps, seq.stamps_ns)
    tf_stamps = np.array([s for s, _ in dynamic])
    assert not set(tf_stamps) & set(image_stamps), (
        "TF must be interpolated, never stamped with images"
    )
    assert np.all(np.diff(tf_stamps) > 0)
    np.testing.assert_allclose(np.median(np.diff(tf_stamps)), 1e9 / 30, rtol=0.01)  # 2 x 15 Hz

    for i, stamp in enumerate(image_stamps):
        np.testing.assert_allclose(_lookup(static, dynamic, stamp), poses[i], atol=1e-9)
        # ... while the nearest sample alone would be off: consumers must interpolate.
    nearest = dynamic[int(np.argmin(np.abs(tf_stamps - image_stamps[5])))][1]
    chain = (
        static[("world", "odom")]
        @ nearest
        @ static[("base_link", "camera_link")]
        @ static[("camera_link", COLOR_FRAME)]
    )
    assert np.abs(chain[:3, 3] - poses[5][:3, 3]).max() > 1e-4

    color = images["/camera/color/image_raw"][3]
    assert (color.encoding, color.header.frame_id) == ("rgb8", COLOR_FRAME)
    np.testing.assert_array_equal(np.asarray(color.data).reshape(24, 32, 3), seq.rgb[3])
    depth = images["/camera/depth/image_raw"][3]
    assert (depth.encoding, depth.header.frame_id, depth.width) == ("16UC1", DEPTH_FRAME, 16)
    depth_mm = np.frombuffer(bytes(depth.data), dtype="<u2").reshape(12, 16)
    np.testing.assert_array_equal(depth_mm, np.round(seq.depth[3] * 1000).astype(np.uint16))
    assert depth_mm[0, 0] == 0
    info = infos["/camera/depth/camera_info"][3]
    np.testing.assert_allclose(np.asarray(info.k).reshape(3, 3), seq._K_depth[3])
    info = infos["/camera/color/camera_info"][3]
    assert (info.width, info.height, info.header.frame_id) == (32, 24, COLOR_FRAME)


def test_rigs_hold_each_pose(tmp_path):
    rng = np.random.default_rng(3)
    poses = np.stack([look_at(rng.uniform(0, 4, 3), rng.uniform(0, 4, 3) + 5) for _ in range(4)])
    seq = ArraySequence(poses, continuous=False)
    export_bag(seq, tmp_path / "bag", "mcap")
    _, _, static, dynamic, images, _ = _read(tmp_path / "bag")
    for i, msg in enumerate(images["/camera/color/image_raw"]):
        np.testing.assert_allclose(
            _lookup(static, dynamic, stamp_to_ns(msg.header.stamp)), poses[i], atol=1e-9
        )


def test_tf_samples_bracket_each_stamp_symmetrically():
    poses = _walk(5)
    stamps = T0 + np.array([0, 66, 100, 133, 200]) * 1_000_000  # uneven spacing
    sample_stamps, samples = tf_samples(poses, stamps)
    assert len(sample_stamps) == 10
    for i, stamp in enumerate(stamps):
        before, after = sample_stamps[2 * i], sample_stamps[2 * i + 1]
        assert before < stamp < after and stamp - before == after - stamp
        np.testing.assert_allclose(
            _slerp_lerp(samples[2 * i], samples[2 * i + 1], 0.5), poses[i], atol=1e-12
        )
    with pytest.raises(ValueError, match="mode"):
        tf_samples(poses, stamps, "cubic")
    with pytest.raises(ValueError, match="stamps_ns"):
        tf_samples(poses, stamps[::-1])
