"""Real-camera randomisation: deterministic by seed, changes the image, keeps its type; small
errors in intrinsics and poses."""

import numpy as np

from recon_ros.datasets.randomise import CameraRandomiser


def test_deterministic_and_effective():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    randomiser = CameraRandomiser()
    a = randomiser.image(image, np.random.default_rng(5))
    b = randomiser.image(image, np.random.default_rng(5))
    c = randomiser.image(image, np.random.default_rng(6))
    assert a.dtype == np.uint8 and a.shape == image.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.abs(a.astype(int) - image).mean() > 1.0


def test_geometry_errors_are_small():
    randomiser = CameraRandomiser()
    K = np.array([[200.0, 0, 63.5], [0, 200.0, 47.5], [0, 0, 1]])
    T = np.eye(4)
    rng = np.random.default_rng(1)
    for _ in range(20):
        K2 = randomiser.intrinsics(K, rng)
        T2 = randomiser.pose(T, rng)
        assert abs(K2[0, 0] / 200.0 - 1) < 0.05 and np.abs(K2[:2, 2] - K[:2, 2]).max() < 8
        assert np.linalg.norm(T2[:3, 3]) < 0.05
        np.testing.assert_allclose(T2[:3, :3] @ T2[:3, :3].T, np.eye(3), atol=1e-9)
