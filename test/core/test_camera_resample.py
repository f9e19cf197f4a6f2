"""Resampling an image into another pinhole camera: against the per-pixel reference, identity for
the same camera, invalid where the target sees past the source, and bad input refused."""

import numpy as np
import pytest

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.camera_resample import resample_to_camera, resample_to_camera_reference


def _image(width, height, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_the_same_camera_gives_the_same_image():
    camera = PinholeCamera(60.0, 60.0, 39.5, 29.5, 80, 60)
    rgb = _image(80, 60)
    out, valid = resample_to_camera(rgb, camera, camera)
    assert valid.all()
    assert np.abs(out.astype(int) - rgb).max() <= 1


def test_a_longer_focal_length_matches_the_reference():
    """Zooming in (no antialiasing step): every pixel as the per-pixel loop gives it."""
    source = PinholeCamera(50.0, 52.0, 41.0, 28.0, 80, 60)
    target = PinholeCamera(70.0, 70.0, 31.5, 23.5, 64, 48)
    rgb = _image(80, 60, seed=1)
    out, valid = resample_to_camera(rgb, source, target)
    reference, reference_valid = resample_to_camera_reference(rgb, source, target)
    assert np.array_equal(valid, reference_valid)
    assert np.abs(out.astype(float) - np.round(reference)).max() <= 1


def test_a_wider_target_is_invalid_where_it_sees_past_the_source():
    """Zooming out: a border the source never saw is invalid and black, and the rest is the
    reference of the source shrunk (antialiased) to about the target's scale."""
    source = PinholeCamera(200.0, 200.0, 79.5, 59.5, 160, 120)
    target = PinholeCamera(80.0, 80.0, 39.5, 29.5, 80, 60)  # 2.5x shorter: 64 x 48 of source
    rgb = _image(160, 120, seed=2)
    out, valid = resample_to_camera(rgb, source, target)
    assert valid[30, 40] and not valid[0, 0] and not valid[30, 0] and not valid[0, 40]
    assert 0.3 < valid.mean() < 0.8
    assert (out[~valid] == 0).all()
    from recon_ros.core.camera import resize_image

    small, small_camera = resize_image(rgb, source, 64, 48)
    reference, reference_valid = resample_to_camera_reference(small, small_camera, target)
    assert np.array_equal(valid, reference_valid)
    assert np.abs(out[valid].astype(float) - np.round(reference[valid])).max() <= 1


def test_bad_input_is_refused():
    camera = PinholeCamera(60.0, 60.0, 39.5, 29.5, 80, 60)
    with pytest.raises(ValueError, match="source camera"):
        resample_to_camera(_image(40, 30), camera, camera)
    with pytest.raises(ValueError, match="uint8"):
        resample_to_camera(np.zeros((60, 80, 3), np.float32), camera, camera)
