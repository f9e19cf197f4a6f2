"""Round trips through recon_ros.io.bagfile in both rosbag2 storages."""

import numpy as np
import pytest
from rosbags.interfaces import QosDurability

from recon_ros.core.geometry import quaternion_to_matrix
from recon_ros.io.bagfile import BagReader, BagWriter, detect_storage
from recon_ros.io.transform_conversions import stamp_to_ns, transform_to_matrix

T0 = 1_700_000_000_000_000_000


def _decode_image(msg) -> np.ndarray:
    """Minimal decoder for the test (recon_ros.io.image_conversions owns the real one)."""
    dtypes = {"rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "mono8": (np.uint8, 1)}
    dtypes |= {"16UC1": (np.dtype("<u2"), 1), "32FC1": (np.dtype("<f4"), 1)}
    dtype, channels = dtypes[msg.encoding]
    raw = np.frombuffer(bytes(msg.data), dtype=dtype)
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return raw.reshape(shape)


def _random_pose(rng) -> np.ndarray:
    q = rng.normal(size=4)
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(q)
    T[:3, 3] = rng.uniform(-3, 3, size=3)
    return T


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_round_trip(tmp_path, storage):
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    mono = rng.integers(0, 256, size=(6, 8), dtype=np.uint8)
    depth_mm = rng.integers(0, 65535, size=(6, 8), dtype=np.uint16)
    depth_m = rng.uniform(0, 5, size=(6, 8)).astype(np.float32)
    K = np.array([[525.0, 0, 319.5], [0, 524.0, 239.5], [0, 0, 1]])
    poses = [_random_pose(rng) for _ in range(3)]
    static_pose = _random_pose(rng)

    path = tmp_path / "bag"
    with BagWriter(path, storage=storage) as bag:
        bag.write_transforms([("world", "odom", static_pose)], T0, static=True)
        for i, T in enumerate(poses):
            stamp = T0 + i * 33_333_333
            bag.write_camera_info("/cam/info", K, 8, 6, stamp, frame_id="cam")
            bag.write_image("/cam/rgb", rgb, stamp, "cam")
            bag.write_image("/cam/bgr", rgb[..., ::-1], stamp, "cam", encoding="bgr8")
            bag.write_image("/cam/mono", mono, stamp, "cam")
            bag.write_image("/cam/depth_mm", depth_mm, stamp, "cam")
            bag.write_image("/cam/depth_m", depth_m, stamp, "cam", record_ns=stamp + 5)
            bag.write_transforms([("odom", "cam", T)], stamp + 1000)
        point_type = "geometry_msgs/msg/PointStamped"
        point = bag.message_class(point_type)(
            header=bag.header(T0, "world"),
            point=bag.message_class("geometry_msgs/msg/Point")(x=1.0, y=2.0, z=3.0),
        )
        bag.write("/point", point_type, T0 + 7, point)
    assert not list(tmp_path.glob(".bag*")), "temporary folder left behind"
    assert detect_storage(path) == storage

    with BagReader(path) as bag:
        assert bag.storage == storage
        topics = bag.topics
        assert topics["/cam/rgb"].msgtype == "sensor_msgs/msg/Image"
        assert topics["/cam/rgb"].count == 3
        assert topics["/tf_static"].count == 1
        assert topics["/tf"].msgtype == "tf2_msgs/msg/TFMessage"
        static_qos = bag.offered_qos("/tf_static")
        assert static_qos and static_qos[0].durability == QosDurability.TRANSIENT_LOCAL
        assert static_qos[0].depth == 1
        assert bag.offered_qos("/tf")[0].durability == QosDurability.VOLATILE

        images: dict[str, list] = {}
        tf_poses, record_times = [], []
        for topic, msgtype, stamp_ns, msg in bag.messages():
            record_times.append(stamp_ns)
            if msgtype == "sensor_msgs/msg/Image":
                images.setdefault(topic, []).append(msg)
            elif topic == "/cam/info":
                np.testing.assert_array_equal(np.asarray(msg.k).reshape(3, 3), K)
                assert (msg.width, msg.height, msg.distortion_model) == (8, 6, "plumb_bob")
                np.testing.assert_array_equal(msg.d, np.zeros(5))
            elif topic == "/tf_static":
                (tf,) = msg.transforms
                assert (tf.header.frame_id, tf.child_frame_id) == ("world", "odom")
                np.testing.assert_allclose(
                    transform_to_matrix(tf.transform), static_pose, atol=1e-12
                )
            elif topic == "/tf":
                (tf,) = msg.transforms
                tf_poses.append(transform_to_matrix(tf.transform))
                assert stamp_to_ns(tf.header.stamp) == stamp_ns
            elif topic == "/point":
                assert (msg.point.x, msg.point.y, msg.point.z) == (1.0, 2.0, 3.0)
        assert record_times == sorted(record_times)
        for i, msg in enumerate(images["/cam/rgb"]):
            assert msg.encoding == "rgb8"
            assert stamp_to_ns(msg.header.stamp) == T0 + i * 33_333_333
            np.testing.assert_array_equal(_decode_image(msg), rgb)
        np.testing.assert_array_equal(_decode_image(images["/cam/bgr"][0]), rgb[..., ::-1])
        np.testing.assert_array_equal(_decode_image(images["/cam/mono"][0]), mono)
        np.testing.assert_array_equal(_decode_image(images["/cam/depth_mm"][0]), depth_mm)
        np.testing.assert_array_equal(_decode_image(images["/cam/depth_m"][0]), depth_m)
        for read, written in zip(tf_poses, poses, strict=True):
            np.testing.assert_allclose(read, written, atol=1e-12)

        only_rgb = list(bag.messages(["/cam/rgb"]))
        assert [m.topic for m in only_rgb] == ["/cam/rgb"] * 3
        assert list(bag.messages(["/missing"])) == []


def test_writer_refuses_existing_path_and_aborts_cleanly(tmp_path):
    path = tmp_path / "bag"
    path.mkdir()
    with pytest.raises(ValueError, match="path"):
        BagWriter(path)
    other = tmp_path / "other"
    with pytest.raises(RuntimeError), BagWriter(other) as bag:
        bag.write_image("/img", np.zeros((2, 2), np.uint8), T0, "cam")
        raise RuntimeError("boom")
    assert not other.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_bad_inputs(tmp_path):
    with BagWriter(tmp_path / "bag") as bag:
        with pytest.raises(ValueError, match="encoding"):
            bag.image_message(np.zeros((2, 2), np.uint8), T0, "cam", encoding="yuv422")
        with pytest.raises(ValueError, match="image"):
            bag.image_message(np.zeros((2, 2), np.float64), T0, "cam")
        with pytest.raises(ValueError, match="image"):
            bag.image_message(np.zeros((2, 2), np.uint8), T0, "cam", encoding="rgb8")
        with pytest.raises(ValueError, match="K"):
            bag.camera_info_message(np.eye(4), 4, 4, T0, "cam")
        with pytest.raises(ValueError, match="topic"):
            bag.add_topic("no_slash", "sensor_msgs/msg/Image")
    with pytest.raises(ValueError, match="storage"):
        BagWriter(tmp_path / "x", storage="rosbag1")
