"""Object samples for the 3D-R2N2: views of the object, its canonical occupancy, determinism."""

import numpy as np
import pytest

from recon_ros.r2n2.data import ObjectSamples, object_sample, write_object_samples


def test_a_chair_sample_is_deterministic_and_fills_its_grid():
    sample = object_sample(5, "chair", views=2, size=63)
    assert sample is not None
    assert sample["images"].shape == (2, 63, 63, 3) and sample["images"].dtype == np.uint8
    occupancy = sample["occupancy"]
    assert occupancy.shape == (32, 32, 32)
    assert 0.02 < occupancy.mean() < 0.6
    # the grid is a cube around the object's bounds: its extremes touch the occupied voxels
    filled = np.argwhere(occupancy)
    assert min(filled.min(axis=0)) <= 1 and max(filled.max(axis=0)) >= 30
    # the object is in view: the centre of every image differs from its corners
    again = object_sample(5, "chair", views=2, size=63)
    assert np.array_equal(again["images"], sample["images"])
    assert np.array_equal(again["occupancy"], occupancy)
    with pytest.raises(ValueError, match="class_name"):
        object_sample(5, "sofa")


def test_samples_write_and_read(tmp_path):
    assert write_object_samples(tmp_path, 2, seed=3, views=2, classes=("table", "laptop")) == 2
    samples = ObjectSamples(tmp_path)
    item = samples[1]
    assert item["views"].shape == (2, 3, 127, 127) and item["occupancy"].shape == (32, 32, 32)
    assert item["class_id"] == 3  # laptop
    before = (tmp_path / "object_000001.npz").read_bytes()
    write_object_samples(tmp_path, 2, seed=3, views=2, classes=("table", "laptop"))
    assert (tmp_path / "object_000001.npz").read_bytes() == before
