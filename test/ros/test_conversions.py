"""Message conversions: every image encoding, CameraInfo to K, transforms, PointCloud2, Marker."""

import array
import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Transform
from sensor_msgs.msg import CameraInfo, Image

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.geometry import matrix_to_quaternion, quaternion_to_matrix
from recon_ros.core.mesh import Mesh
from recon_ros.io import (
    camera_info_conversions,
    image_conversions,
    mesh_conversions,
    pointcloud_conversions,
    transform_conversions,
)

STAMP = Time(sec=12, nanosec=500)
RNG = np.random.default_rng(0)


def raw_image(pixels: np.ndarray, encoding: str, pad: int = 0, bigendian=False) -> Image:
    """An Image message built by hand (not through our builder), rows padded by ``pad`` bytes."""
    height, width = pixels.shape[:2]
    data = (
        pixels.astype(pixels.dtype.newbyteorder(">" if bigendian else "<"))
        .reshape(height, -1)
        .view(np.uint8)
    )
    data = np.pad(data, ((0, 0), (0, pad)))
    return Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=data.shape[1],
        data=array.array("B", data.tobytes()),
    )


@pytest.mark.parametrize("pad", [0, 3])
def test_colour_encodings_decode_to_rgb(pad):
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "8UC3": rgb[:, :, ::-1],
        "rgba8": np.dstack([rgb, np.full((5, 7), 9, np.uint8)]),
        "bgra8": np.dstack([rgb[:, :, ::-1], np.full((5, 7), 9, np.uint8)]),
    }
    for encoding, pixels in cases.items():
        np.testing.assert_array_equal(
            image_conversions.image_to_rgb(raw_image(pixels, encoding, pad)), rgb, err_msg=encoding
        )
    gray = rgb[:, :, 0]
    for encoding in ("mono8", "8UC1"):
        np.testing.assert_array_equal(
            image_conversions.image_to_rgb(raw_image(gray, encoding, pad)), np.dstack([gray] * 3)
        )
    mono16 = gray.astype(np.uint16) * 256 + 17
    np.testing.assert_array_equal(
        image_conversions.image_to_rgb(raw_image(mono16, "mono16", pad)), np.dstack([gray] * 3)
    )


@pytest.mark.parametrize("bigendian", [False, True])
def test_depth_encodings(bigendian):
    mm = np.array([[0, 1000], [2500, 65535]], np.uint16)
    np.testing.assert_allclose(
        image_conversions.image_to_depth(raw_image(mm, "16UC1", bigendian=bigendian)),
        mm * 0.001,
        rtol=1e-6,
    )
    metres = np.array([[1.5, np.nan], [np.inf, -1.0]], np.float32)
    np.testing.assert_array_equal(
        image_conversions.image_to_depth(raw_image(metres, "32FC1", bigendian=bigendian)),
        [[1.5, 0], [0, 0]],
    )


def test_builder_round_trip_and_rosbags_messages():
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    for encoding in ("rgb8", "bgr8"):
        msg = image_conversions.rgb_to_image_msg(rgb, STAMP, "cam", encoding)
        assert (msg.header.frame_id, msg.step) == ("cam", 18)
        np.testing.assert_array_equal(image_conversions.image_to_rgb(msg), rgb)
    # the readers are duck-typed: a message deserialised by rosbags decodes the same
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    Header, RosbagsTime = (
        store.types["std_msgs/msg/Header"],
        store.types["builtin_interfaces/msg/Time"],
    )
    RosbagsImage = store.types["sensor_msgs/msg/Image"]
    bag_msg = RosbagsImage(
        header=Header(stamp=RosbagsTime(sec=1, nanosec=0), frame_id="cam"),
        height=4,
        width=6,
        encoding="bgr8",
        is_bigendian=0,
        step=18,
        data=np.ascontiguousarray(rgb[:, :, ::-1]).reshape(-1),
    )
    restored = store.deserialize_cdr(
        store.serialize_cdr(bag_msg, RosbagsImage.__msgtype__), RosbagsImage.__msgtype__
    )
    np.testing.assert_array_equal(image_conversions.image_to_rgb(restored), rgb)


def test_bad_images_raise_with_the_cause():
    good = raw_image(np.zeros((4, 4, 3), np.uint8), "rgb8")
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        image_conversions.image_to_rgb(
            Image(height=4, width=4, encoding="yuv422", step=8, data=array.array("B", bytes(32)))
        )
    with pytest.raises(ValueError, match="not a colour encoding"):
        image_conversions.image_to_rgb(raw_image(np.zeros((2, 2), np.float32), "32FC1"))
    with pytest.raises(ValueError, match="empty image: 0x0"):
        image_conversions.image_to_rgb(Image(height=0, width=0, encoding="rgb8", step=0))
    short = Image(height=4, width=4, encoding="rgb8", step=12, data=good.data[:-5])
    with pytest.raises(ValueError, match="data length 43 disagrees with step x height = 12 x 4"):
        image_conversions.image_to_rgb(short)
    with pytest.raises(ValueError, match="step 10 is smaller"):
        image_conversions.image_to_rgb(
            Image(height=4, width=4, encoding="rgb8", step=10, data=array.array("B", bytes(40)))
        )


def camera_info(k, width=640, height=480, **fields) -> CameraInfo:
    return CameraInfo(width=width, height=height, k=[float(v) for v in k], **fields)


def test_camera_info_to_camera_with_binning_and_roi():
    k = [500, 0, 319.5, 0, 510, 239.5, 0, 0, 1]
    camera = camera_info_conversions.camera_info_to_camera(camera_info(k))
    np.testing.assert_allclose(camera.K, np.reshape(k, (3, 3)))
    assert (camera.width, camera.height) == (640, 480)
    binned = camera_info_conversions.camera_info_to_camera(camera_info(k, binning_x=2, binning_y=2))
    np.testing.assert_allclose(
        [binned.fx, binned.fy, binned.cx, binned.cy], [250, 255, 159.5, 119.5]
    )
    assert (binned.width, binned.height) == (320, 240)
    info = camera_info(k)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 100, 50, 200, 100
    roi = camera_info_conversions.camera_info_to_camera(info)
    assert (roi.cx, roi.cy, roi.width, roi.height) == (219.5, 189.5, 200, 100)
    round_trip = camera_info_conversions.camera_info_to_camera(
        camera_info_conversions.camera_info_msg(camera, STAMP, "cam")
    )
    assert round_trip == camera


def test_absurd_camera_info_raises():
    """The values a hostile or broken driver sent (each was once taken silently)."""
    k = [500, 0, 319.5, 0, 500, 239.5, 0, 0, 1]
    with pytest.raises(ValueError, match="above 65535 px a side"):
        camera_info_conversions.camera_info_to_camera(
            camera_info(k, width=4294967295, height=4294967295)
        )
    info = camera_info(k)
    info.roi.x_offset, info.roi.y_offset, info.roi.width, info.roi.height = 4294967295, 0, 10, 10
    with pytest.raises(ValueError, match=r"region of interest .* outside"):
        camera_info_conversions.camera_info_to_camera(info)
    with pytest.raises(ValueError, match="field of view"):
        camera_info_conversions.camera_info_to_camera(
            camera_info([1e38, 0, 319.5, 0, 1e38, 239.5, 0, 0, 1])
        )
    with pytest.raises(ValueError, match="field of view"):
        camera_info_conversions.camera_info_to_camera(
            camera_info([1, 0, 319.5, 0, 1, 239.5, 0, 0, 1])
        )
    with pytest.raises(ValueError, match="not a pinhole matrix"):
        camera_info_conversions.camera_info_to_camera(
            camera_info([500, 0, 319.5, 0, 500, 239.5, 0, 0, 0])
        )
    with pytest.raises(ValueError, match="skew"):
        camera_info_conversions.camera_info_to_camera(
            camera_info([500, 80, 319.5, 0, 500, 239.5, 0, 0, 1])
        )
    with pytest.raises(ValueError, match="principal point"):
        camera_info_conversions.camera_info_to_camera(
            camera_info([500, 0, -4.3e9, 0, 500, 239.5, 0, 0, 1])
        )
    with pytest.raises(ValueError, match="binning"):
        camera_info_conversions.camera_info_to_camera(camera_info(k, binning_x=1000))
    # a real wide-angle rectified camera and a telephoto still pass
    assert camera_info_conversions.camera_info_to_camera(
        camera_info([120, 0, 319.5, 0, 120, 239.5, 0, 0, 1])
    )
    assert camera_info_conversions.camera_info_to_camera(
        camera_info([60000, 0, 319.5, 0, 60000, 239.5, 0, 0, 1])
    )


@pytest.mark.parametrize(
    ("k", "message"),
    [
        ([0, 0, 320, 0, 500, 240, 0, 0, 1], "focal length must be positive"),
        ([500, 0, 320, 0, float("nan"), 240, 0, 0, 1], "not finite"),
    ],
)
def test_bad_camera_info_raises(k, message):
    with pytest.raises(ValueError, match=message):
        camera_info_conversions.camera_info_to_camera(camera_info(k))
    with pytest.raises(ValueError, match="image size is 0x0"):
        camera_info_conversions.camera_info_to_camera(
            camera_info([500, 0, 1, 0, 500, 1, 0, 0, 1], width=0, height=0)
        )


def test_transforms_to_matrices_and_back():
    transform = Transform()
    transform.translation.x, transform.translation.y, transform.translation.z = 1.0, -2.0, 0.5
    angle = math.radians(30)
    transform.rotation.z, transform.rotation.w = math.sin(angle / 2), math.cos(angle / 2)
    T = transform_conversions.transform_to_matrix(transform)
    np.testing.assert_allclose(T[:3, 3], [1, -2, 0.5])
    np.testing.assert_allclose(
        T[:2, :2],
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
        atol=1e-12,
    )
    msg = transform_conversions.matrix_to_transform_stamped(T, STAMP, "world", "cam")
    np.testing.assert_allclose(
        transform_conversions.transform_to_matrix(msg.transform), T, atol=1e-12
    )
    for R in (
        np.diag([1.0, -1, -1]),
        np.diag([-1.0, 1, -1]),
        np.diag([-1.0, -1, 1]),
    ):  # 180-degree turns
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R)), R, atol=1e-12)
    transform.rotation.x = float("nan")
    with pytest.raises(ValueError, match="not finite"):
        transform_conversions.transform_to_matrix(transform)
    transform.rotation.x, transform.rotation.w = 0.0, 0.0
    transform.rotation.z = 0.0
    with pytest.raises(ValueError, match="not unit length"):
        transform_conversions.transform_to_matrix(transform)


def test_pointcloud2_round_trip_with_label_and_confidence():
    xyz = RNG.normal(size=(50, 3)).astype(np.float32)
    rgb = RNG.integers(0, 256, (50, 3), dtype=np.uint8)
    label = RNG.integers(0, 9, 50)
    confidence = RNG.random(50).astype(np.float32)
    cloud = pointcloud_conversions.array_to_pointcloud2(
        pointcloud_conversions.semantic_points_to_array(xyz, rgb, label, confidence), STAMP, "world"
    )
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "rgb", "confidence", "label"]
    assert cloud.point_step == 24 and cloud.width == 50 and cloud.header.frame_id == "world"
    points = pointcloud_conversions.pointcloud2_to_array(cloud)
    np.testing.assert_array_equal(np.stack([points["x"], points["y"], points["z"]], 1), xyz)
    np.testing.assert_array_equal(pointcloud_conversions.unpack_rgb(points["rgb"]), rgb)
    np.testing.assert_array_equal(points["label"], label)
    np.testing.assert_array_equal(points["confidence"], confidence)


def test_marker_triangle_list_has_a_point_and_colour_per_corner():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]], np.uint8)
    marker = mesh_conversions.mesh_to_marker(Mesh(vertices, faces, colors), STAMP, "world")
    assert marker.type == marker.TRIANGLE_LIST and len(marker.points) == 6 == len(marker.colors)
    mesh = mesh_conversions.marker_to_mesh(marker)
    np.testing.assert_allclose(mesh.vertices, vertices[faces.reshape(-1)])
    np.testing.assert_array_equal(mesh.colors, colors[faces.reshape(-1)])
    with pytest.raises(ValueError, match="do not exist"):
        mesh_conversions.mesh_to_marker(
            Mesh(vertices, np.array([[0, 1, 7]]), colors), STAMP, "world"
        )


def test_serialized_markers_make_the_marker_array_rclpy_reads():
    """Markers of every size (so they sit at both offsets modulo 8 and end unaligned) put
    together as bytes deserialise to the same MarkerArray, with the new stamp on each."""
    from rclpy.serialization import deserialize_message
    from visualization_msgs.msg import Marker, MarkerArray

    rng = np.random.default_rng(0)
    markers = []
    for marker_id, triangles in enumerate([3, 1, 2, 5, 0, 4, 1]):
        corners = triangles * 3
        mesh = Mesh(
            rng.random((corners, 3)),
            np.arange(corners).reshape(-1, 3),
            rng.integers(0, 256, (corners, 3)).astype(np.uint8),
        )
        marker = mesh_conversions.mesh_to_marker(
            mesh, Time(sec=5, nanosec=7), "world", "atlas_mesh", marker_id
        )
        marker.ns = "x" * marker_id  # strings of every length shift what follows
        if not triangles:
            marker.action = Marker.DELETE
        markers.append(marker)
    stamp = Time(sec=99, nanosec=12345)
    serialized = [mesh_conversions.SerializedMarker(m) for m in markers]
    for count in range(len(markers) + 1):
        data = mesh_conversions.marker_array_bytes(serialized[:count], stamp)
        back = deserialize_message(data, MarkerArray)
        assert len(back.markers) == count
        for ours, theirs in zip(back.markers, markers, strict=False):
            assert ours.header.stamp == stamp
            assert (ours.ns, ours.id, ours.action) == (theirs.ns, theirs.id, theirs.action)
            assert ours.points == theirs.points
            # Colours are float32 on the wire; the message built in Python held doubles.
            np.testing.assert_allclose(
                np.array([(c.r, c.g, c.b, c.a) for c in ours.colors]).reshape(-1, 4),
                np.array([(c.r, c.g, c.b, c.a) for c in theirs.colors]).reshape(-1, 4),
                atol=1e-6,
            )
            ours.header.stamp, ours.colors = theirs.header.stamp, theirs.colors
            assert ours == theirs
    # Kept as bytes, a corner costs 80 bytes (two copies of 24 + 16), not Python objects.
    assert serialized[3].nbytes < 2 * (40 * 15 + 400)
    with pytest.raises(ValueError, match="aligned"):
        serialized[0].payload(2)


def test_pinhole_camera_is_shared_with_the_core():
    assert isinstance(
        camera_info_conversions.camera_info_to_camera(
            camera_info([500, 0, 320, 0, 500, 240, 0, 0, 1])
        ),
        PinholeCamera,
    )


def test_compressed_images_decode_and_garbage_is_refused():
    rgb = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    png = image_conversions.rgb_to_compressed_msg(rgb, STAMP, "cam", "png")
    np.testing.assert_array_equal(image_conversions.compressed_to_rgb(png), rgb)  # lossless
    jpeg = image_conversions.rgb_to_compressed_msg(
        np.full((24, 32, 3), 90, np.uint8), STAMP, "cam", "jpeg"
    )
    assert np.abs(image_conversions.compressed_to_rgb(jpeg).astype(int) - 90).max() <= 2
    jpeg.data = array.array("B", b"not an image")
    with pytest.raises(ValueError, match="cannot decode compressed image"):
        image_conversions.compressed_to_rgb(jpeg)
    jpeg.data = array.array("B")
    with pytest.raises(ValueError, match="empty compressed image"):
        image_conversions.compressed_to_rgb(jpeg)


def test_oversized_images_are_refused_before_decoding():
    """Issue 9.1: a 20000x20000 PNG header (PIL's decompression bomb) and a raw Image declaring
    more pixels than max_image_pixels raise ValueError (a dropped frame), never anything else."""
    from recon_ros.apps.benchmarks.fuzz import png_declaring
    from recon_ros.io.posed_frames import FrameDropped, decode_rgb

    msg = image_conversions.rgb_to_compressed_msg(
        np.zeros((4, 4, 3), np.uint8), STAMP, "cam", "png"
    )
    msg.data = array.array("B", png_declaring(20000, 20000))
    assert len(msg.data) < 100
    with pytest.raises(ValueError, match="400000000 pixels"):  # PIL or our own check
        image_conversions.compressed_to_rgb(msg)
    msg.data = array.array("B", png_declaring(3000, 2000))
    with pytest.raises(ValueError, match="max_image_pixels = 1000000"):
        image_conversions.compressed_to_rgb(msg, max_pixels=1_000_000)
    raw = Image(height=9216, width=12288, encoding="rgb8", step=3 * 12288)
    with pytest.raises(ValueError, match="12288x9216"):
        image_conversions.image_to_rgb(raw)
    with pytest.raises(FrameDropped, match="more than max_image_pixels") as dropped:
        decode_rgb(raw)
    assert dropped.value.reason == "bad_image"
    tiny = raw_image(np.zeros((3, 4, 3), np.uint8), "rgb8")
    with pytest.raises(FrameDropped, match="4x3 pixels is too small") as dropped:
        decode_rgb(tiny)
    assert dropped.value.reason == "bad_image"
