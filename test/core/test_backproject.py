"""Back-projection (Atlas eq. 1-4): fast vs reference, visibility rules, gradients, batching."""

import numpy as np
import pytest
import torch

from recon_ros.core.backproject import (
    average_features,
    backproject_batch,
    backproject_features,
    backproject_features_reference,
)
from recon_ros.core.geometry import look_at_pose

ORIGIN = (-0.1, -0.15, 0.0)
VOXEL_SIZE = 0.08
DIMS = (6, 5, 4)


def two_frames(dtype=torch.float64, seed=0):
    generator = torch.Generator().manual_seed(seed)
    features = torch.rand(2, 5, 9, 12, generator=generator, dtype=dtype)
    # Frame 0 sees most of the volume from outside; frame 1 sits inside it, so some voxels are
    # behind it and some outside its frustum.
    K = torch.tensor([[14.0, 0.0, 5.5], [0.0, 14.0, 4.0], [0.0, 0.0, 1.0]], dtype=dtype)
    K = K.expand(2, 3, 3).clone()
    K[1, 0, 0] = K[1, 1, 1] = 6.0
    poses = np.stack(
        [
            look_at_pose([0.45, -0.4, 0.3], [0.1, 0.0, 0.1]),
            look_at_pose([0.1, 0.1, 0.1], [0.3, 0.3, 0.2]),
        ]
    )
    return features, K, torch.from_numpy(poses).to(dtype)


def test_fast_matches_reference_and_is_partial():
    features, K, T = two_frames()
    fast_sum, fast_count = backproject_features(features, K, T, ORIGIN, VOXEL_SIZE, DIMS)
    ref_sum, ref_count = backproject_features_reference(features, K, T, ORIGIN, VOXEL_SIZE, DIMS)
    torch.testing.assert_close(fast_count, ref_count, atol=0, rtol=0)
    torch.testing.assert_close(fast_sum, ref_sum, atol=1e-10, rtol=0)
    # The test geometry exercises all cases: unseen, seen once, seen by both frames.
    assert {0.0, 1.0, 2.0} <= set(fast_count.unique().tolist())


def test_fast_float32_matches_reference():
    features, K, T = two_frames()
    fast_sum, fast_count = backproject_features(
        features.float(), K.float(), T.float(), ORIGIN, VOXEL_SIZE, DIMS
    )
    ref_sum, ref_count = backproject_features_reference(features, K, T, ORIGIN, VOXEL_SIZE, DIMS)
    torch.testing.assert_close(fast_count.double(), ref_count, atol=0, rtol=0)
    torch.testing.assert_close(fast_sum.double(), ref_sum, atol=1e-5, rtol=0)


def test_max_depth_and_slicing_agree():
    features, K, T = two_frames()
    near_sum, near_count = backproject_features(
        features, K, T, ORIGIN, VOXEL_SIZE, DIMS, max_depth=0.5
    )
    ref_sum, ref_count = backproject_features_reference(
        features, K, T, ORIGIN, VOXEL_SIZE, DIMS, max_depth=0.5
    )
    torch.testing.assert_close(near_count, ref_count, atol=0, rtol=0)
    torch.testing.assert_close(near_sum, ref_sum, atol=1e-10, rtol=0)
    full_sum, full_count = backproject_features(features, K, T, ORIGIN, VOXEL_SIZE, DIMS)
    assert near_count.sum() < full_count.sum()
    # Tiny memory budget: one frame and one x-slice per call; same result.
    sliced_sum, sliced_count = backproject_features(
        features, K, T, ORIGIN, VOXEL_SIZE, DIMS, max_elements=1
    )
    torch.testing.assert_close(sliced_sum, full_sum)
    torch.testing.assert_close(sliced_count, full_count)


def test_voxel_on_optical_axis_gets_principal_point_feature():
    features = torch.arange(3 * 4 * 5, dtype=torch.float64).reshape(1, 3, 4, 5)
    K = torch.tensor([[[4.0, 0.0, 2.0], [0.0, 4.0, 1.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    T = torch.from_numpy(look_at_pose([-1.0, 0.0, 0.0], [0.0, 0.0, 0.0]))[None]
    feature_sum, count = backproject_features(features, K, T, (0.0, 0.0, 0.0), 0.1, (1, 1, 1))
    assert count.item() == 1
    torch.testing.assert_close(feature_sum[:, 0, 0, 0], features[0, :, 1, 2])
    # Behind the camera: not counted.
    T_behind = torch.from_numpy(look_at_pose([-1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]))[None]
    _, count = backproject_features(features, K, T_behind, (0.0, 0.0, 0.0), 0.1, (1, 1, 1))
    assert count.item() == 0


def test_gradient_reaches_features():
    features, K, T = two_frames(torch.float32)
    features.requires_grad_(True)
    feature_sum, count = backproject_features(features, K, T, ORIGIN, VOXEL_SIZE, DIMS)
    feature_sum.sum().backward()
    # Bilinear weights of each sample sum to one, per channel.
    channels = features.shape[1]
    assert features.grad.sum().item() == pytest.approx(count.sum().item() * channels, rel=1e-5)


def test_batch_matches_per_sample_and_average():
    features, K, T = two_frames()
    origins = torch.tensor([ORIGIN, (0.0, 0.0, 0.05)], dtype=torch.float64)
    sums, counts = backproject_batch(
        torch.stack([features, features.flip(0)]),
        torch.stack([K, K.flip(0)]),
        torch.stack([T, T.flip(0)]),
        origins,
        VOXEL_SIZE,
        DIMS,
    )
    single_sum, single_count = backproject_features(features, K, T, ORIGIN, VOXEL_SIZE, DIMS)
    torch.testing.assert_close(sums[0], single_sum)
    torch.testing.assert_close(counts[0], single_count)
    other_sum, _ = backproject_features(
        features.flip(0), K.flip(0), T.flip(0), origins[1], VOXEL_SIZE, DIMS
    )
    torch.testing.assert_close(sums[1], other_sum)
    mean = average_features(sums, counts)
    seen = counts[0] > 0
    torch.testing.assert_close(mean[0][:, seen], (sums[0] / counts[0])[:, seen])
    assert (~seen).any() and mean[0][:, ~seen].abs().sum() == 0


def test_input_validation():
    features, K, T = two_frames()
    bad_T = T.clone()
    bad_T[0, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="T_world_cam: contains NaN"):
        backproject_features(features, K, bad_T, ORIGIN, VOXEL_SIZE, DIMS)
    bad_K = K.clone()
    bad_K[1, 0, 0] = 0.0
    with pytest.raises(ValueError, match="K: focal"):
        backproject_features(features, bad_K, T, ORIGIN, VOXEL_SIZE, DIMS)
    with pytest.raises(ValueError, match="K: expected shape"):
        backproject_features(features, K[:1], T, ORIGIN, VOXEL_SIZE, DIMS)
    with pytest.raises(ValueError, match="features: empty"):
        backproject_features(features[:, :, :0], K, T, ORIGIN, VOXEL_SIZE, DIMS)
    with pytest.raises(ValueError, match="voxel_size"):
        backproject_features(features, K, T, ORIGIN, 0.0, DIMS)
    with pytest.raises(ValueError, match="dims"):
        backproject_features(features, K, T, ORIGIN, VOXEL_SIZE, (4, 4))
    with pytest.raises(ValueError, match="features: expected a floating"):
        backproject_features(features.long(), K, T, ORIGIN, VOXEL_SIZE, DIMS)
