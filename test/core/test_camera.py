"""Pinhole camera: resize maths, projection, validation."""

import numpy as np
import pytest

from recon_ros.core.camera import PinholeCamera, resize_image, validate_intrinsics


def make_camera() -> PinholeCamera:
    return PinholeCamera(fx=525.0, fy=520.0, cx=319.5, cy=239.5, width=640, height=480)


def test_resized_follows_pixel_area_convention():
    camera = make_camera().resized(320, 240)
    assert camera.fx == pytest.approx(262.5)
    assert camera.fy == pytest.approx(260.0)
    # cx' = s (cx + 0.5) - 0.5: the centre of a 640-wide image stays the centre.
    assert camera.cx == pytest.approx(0.5 * 320.0 - 0.5)
    assert camera.cy == pytest.approx(0.5 * 240.0 - 0.5)
    anisotropic = make_camera().resized(384, 288)
    assert anisotropic.fx == pytest.approx(525.0 * 0.6)
    assert anisotropic.cx == pytest.approx(0.6 * 320.0 - 0.5)


def test_resize_keeps_projection_consistent():
    camera = make_camera()
    small = camera.resized(160, 96)
    points = np.array([[0.3, -0.2, 2.0], [-1.0, 0.5, 3.0], [0.0, 0.0, 1.0]])
    pixels, _ = camera.project(points)
    pixels_small, _ = small.project(points)
    # A pixel coordinate u maps to s (u + 0.5) - 0.5 in the resized image.
    scale = np.array([160 / 640, 96 / 480])
    np.testing.assert_allclose(pixels_small, scale * (pixels + 0.5) - 0.5, atol=1e-9)
    # The image edges stay the image edges.
    assert small.contains(np.array([[-0.5, -0.5], [159.5, 95.5]])).all()
    assert not small.contains(np.array([[-0.6, 10.0], [10.0, 95.6]])).any()


def test_project_backproject_round_trip():
    camera = make_camera()
    points = np.array([[0.3, -0.2, 2.0], [-1.0, 0.5, 3.0]])
    pixels, depth = camera.project(points)
    np.testing.assert_allclose(camera.backproject(pixels, depth), points, atol=1e-12)
    behind, _ = camera.project(np.array([[0.0, 0.0, -1.0]]))
    assert np.isnan(behind).all()


def test_resize_image_returns_matching_camera():
    camera = make_camera()
    image = np.zeros((480, 640, 3), np.uint8)
    image[:, 320:] = 200  # right half bright
    resized, small = resize_image(image, camera, 64, 48)
    assert resized.shape == (48, 64, 3) and resized.dtype == np.uint8
    assert small == camera.resized(64, 48)
    assert resized[:, :31].max() == 0 and resized[:, 33:].min() == 200


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fx": 0.0}, "focal"),
        ({"fy": -1.0}, "focal"),
        ({"fx": float("nan")}, "fx"),
        ({"cx": float("inf")}, "cx"),
        ({"width": 0}, "size"),
        ({"height": -5}, "size"),
    ],
)
def test_camera_validation(kwargs, message):
    values = {"fx": 500.0, "fy": 500.0, "cx": 10.0, "cy": 10.0, "width": 20, "height": 20}
    values.update(kwargs)
    with pytest.raises(ValueError, match=message):
        PinholeCamera(**values)


def test_intrinsics_and_image_validation():
    with pytest.raises(ValueError, match="focal"):
        validate_intrinsics(np.diag([0.0, 500.0, 1.0]))
    with pytest.raises(ValueError, match="NaN"):
        validate_intrinsics(np.array([[np.nan, 0, 1], [0, 1, 1], [0, 0, 1]]))
    with pytest.raises(ValueError, match="shape"):
        validate_intrinsics(np.eye(4))
    with pytest.raises(ValueError, match="empty"):
        resize_image(np.zeros((0, 640, 3), np.uint8), make_camera(), 32, 32)
    with pytest.raises(ValueError, match="uint8"):
        resize_image(np.zeros((480, 640, 3), np.float32), make_camera(), 32, 32)
    with pytest.raises(ValueError, match="differs"):
        resize_image(np.zeros((240, 320, 3), np.uint8), make_camera(), 32, 32)
