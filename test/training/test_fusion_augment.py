"""TSDF fusion and crop augmentation against references and exact cases."""

import numpy as np
import pytest

from recon_ros.training.augment import (
    atlas_target,
    frame_visibility,
    make_crop,
    resample_ground_truth,
    resample_ground_truth_reference,
)
from recon_ros.training.scenes import GroundTruthArrays
from recon_ros.training.tsdf_fusion import TSDFFusion, fuse_depth_reference

K = np.array([[40.0, 0.0, 15.5], [0.0, 40.0, 11.5], [0.0, 0.0, 1.0]])
#: Intrinsics and a grid origin with no exact ties between voxel centres and pixel edges.
K_ODD = np.array([[41.3, 0.0, 15.27], [0.0, 40.7, 11.61], [0.0, 0.0, 1.0]])


def camera_looking_down_x(x=0.0):
    """Optical frame at (x, 0.3, 0.3) looking along +x (optical z = world x)."""
    T = np.eye(4)
    T[:3, :3] = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    T[:3, 3] = [x, 0.3, 0.3]
    return T


def test_fusion_matches_the_reference_on_a_small_grid():
    rng = np.random.default_rng(0)
    frames = []
    for x in (0.0, -0.1):
        depth = rng.uniform(0.8, 1.2, (24, 32)).astype(np.float32)
        depth[rng.random(depth.shape) < 0.1] = 0.0
        frames.append((depth, K_ODD, camera_looking_down_x(x)))
    origin, voxel, dims, trunc = (0.5013, 0.0071, 0.0033), 0.05, (10, 12, 12), 0.15
    fusion = TSDFFusion(origin, voxel, dims, trunc, max_voxels=500)
    for depth, k, T in frames:
        fusion.integrate(depth, k, T)
    fast = fusion.result()
    slow = fuse_depth_reference(frames, origin, voxel, dims, trunc)
    np.testing.assert_array_equal(fast["observed"], slow["observed"])
    np.testing.assert_allclose(fast["tsdf"], slow["tsdf"], atol=1e-5)
    np.testing.assert_array_equal(fast["weight"], slow["weight"])


def test_fusion_of_a_fronto_parallel_wall_gives_its_tsdf():
    depth = np.full((24, 32), 1.0, np.float32)  # a wall at world x = 1
    fusion = TSDFFusion((0.6013, 0.1, 0.1), 0.04, (20, 6, 6), 0.12, num_classes=3)
    fusion.integrate(depth, K, camera_looking_down_x(), labels=np.full((24, 32), 2, np.uint8))
    out = fusion.result()
    x = 0.6013 + 0.04 * np.arange(20)
    expected = np.clip((1.0 - x) / 0.12, -1, 1)
    seen = x <= 1.0 + 0.12 + 1e-9
    np.testing.assert_allclose(out["tsdf"][seen, 2, 2], expected[seen], atol=1e-5)
    assert not out["observed"][~seen, 2, 2].any()
    near = np.abs(1.0 - x) < 0.12 - 1e-9
    assert np.all(out["labels"][near, 2, 2] == 2)
    assert np.all(out["labels"][~near, 2, 2] == 255)


def test_fusion_rejects_bad_inputs():
    fusion = TSDFFusion((0, 0, 0), 0.1, (2, 2, 2), 0.3)
    with pytest.raises(ValueError, match="depth"):
        fusion.integrate(np.zeros(5), K, np.eye(4))
    with pytest.raises(ValueError, match="labels"):
        fusion.integrate(np.zeros((4, 4)), K, np.eye(4), labels=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="dims"):
        TSDFFusion((0, 0, 0), 0.1, (2, 2), 0.3)


def ground_truth(rng, dims=(12, 10, 8)):
    tsdf = np.clip(rng.normal(0, 0.8, dims), -1, 1).astype(np.float32)
    return GroundTruthArrays(
        origin=np.array([0.2, -0.1, 0.0]),
        voxel_size=0.04,
        truncation=0.12,
        tsdf=tsdf,
        observed=rng.random(dims) < 0.6,
        semantic=rng.integers(0, 9, dims).astype(np.uint8),
    )


def test_resampling_matches_the_reference():
    rng = np.random.default_rng(4)
    gt = ground_truth(rng)
    centre = gt.origin + np.array([5.3, 4.1, 3.7]) * gt.voxel_size
    crop = make_crop(centre, (16, 16, 8), 0.04, angle=0.83, shift=(0.3, -1.0, 0.2))
    fast, slow = resample_ground_truth(gt, crop), resample_ground_truth_reference(gt, crop)
    np.testing.assert_allclose(fast["tsdf"], slow["tsdf"], atol=1e-5)
    np.testing.assert_array_equal(fast["observed"], slow["observed"])
    np.testing.assert_array_equal(fast["semantic"], slow["semantic"])
    # Well outside the scene's grid: empty, unobserved, unlabelled.
    index = (crop.centres_world() - gt.origin) / gt.voxel_size
    outside = np.any((index < -1) | (index > np.asarray(gt.dims)), axis=-1)
    assert outside.any()
    assert np.all(fast["tsdf"][outside] == 1.0) and not fast["observed"][outside].any()
    assert np.all(fast["semantic"][outside] == 255)


def test_quarter_turn_on_the_lattice_is_an_exact_rotation():
    rng = np.random.default_rng(5)
    gt = ground_truth(rng, (8, 8, 8))
    centre = gt.origin + 3.5 * gt.voxel_size  # the grid's centre: the crop covers the grid
    crop = make_crop(centre, (8, 8, 8), 0.04, angle=np.pi / 2)
    out = resample_ground_truth(gt, crop)
    # Crop voxel (i, j) sits at world (j, 7 - i) after the quarter turn about z.
    expected = np.rot90(gt.tsdf, k=1, axes=(0, 1))
    np.testing.assert_allclose(out["tsdf"], expected, atol=1e-5)
    np.testing.assert_array_equal(out["semantic"], np.rot90(gt.semantic, 1, (0, 1)))


def test_cameras_move_with_the_crop():
    """A world point and a camera, both moved into the augmented frame, give the same pixel."""
    crop = make_crop((1.0, 2.0, 1.2), (16, 16, 16), 0.04, angle=1.1, shift=(0.5, 0.2, -0.3))
    T = camera_looking_down_x(-0.5)
    point = np.array([0.9, 0.35, 0.32])
    aug_T = crop.poses(T)
    aug_point = crop.A[:3, :3] @ point + crop.A[:3, 3]
    cam = np.linalg.inv(T) @ np.append(point, 1)
    aug_cam = np.linalg.inv(aug_T) @ np.append(aug_point, 1)
    np.testing.assert_allclose(cam, aug_cam, atol=1e-12)
    np.testing.assert_allclose(crop.to_world(aug_point), point, atol=1e-12)
    assert np.allclose(np.linalg.det(crop.A[:3, :3]), 1.0) and crop.A[2, 2] == 1.0


def test_frame_visibility_and_targets():
    points = np.array([[1.0, 0.3, 0.3], [1.0, 5.0, 0.3], [-1.0, 0.3, 0.3]])
    poses = np.stack([camera_looking_down_x(), camera_looking_down_x(2.0)])
    np.testing.assert_allclose(frame_visibility(points, poses, K, 32, 24), [1 / 3, 0.0])
    observed = np.zeros((2, 2, 3), bool)
    observed[0, 0, 1] = True
    tsdf = np.full((2, 2, 3), -0.5, np.float32)
    out = atlas_target(tsdf, observed, np.full((2, 2, 3), 4, np.uint8))
    assert np.all(out["tsdf"][0, 0] == -0.5)  # observed column keeps its values
    assert np.all(out["tsdf"][1] == 1.0) and np.all(out["tsdf"][0, 1] == 1.0)
    assert out["semantic"][0, 0, 1] == 4 and (out["semantic"] == 4).sum() == 1
