"""Rolling feature volume and window placement policy."""

import numpy as np
import pytest
import torch

from recon_ros.core.backproject import backproject_features
from recon_ros.core.geometry import look_at_pose
from recon_ros.core.volume import RollingFeatureVolume
from recon_ros.core.window_policy import WindowPolicy, WindowPolicyConfig

DIMS = (16, 24, 8)
CHUNK = 8
VOXEL = 0.1


def filled_volume(seed: int = 0) -> RollingFeatureVolume:
    volume = RollingFeatureVolume(DIMS, VOXEL, CHUNK, feature_channels=3, origin_index=(8, -16, 0))
    generator = torch.Generator().manual_seed(seed)
    volume.sums = torch.rand(6, *DIMS, generator=generator)
    volume.count = torch.randint(0, 4, DIMS, generator=generator).float()
    volume.merged_count = torch.minimum(volume.count, torch.ones(DIMS))
    return volume


@pytest.mark.parametrize("offset", [(8, 0, 0), (-8, 8, 0), (0, -16, 8), (8, 8, -8), (32, 0, 0)])
def test_shift_keeps_overlap_exactly_and_zeros_the_rest(offset):
    volume = filled_volume()
    before = {n: getattr(volume, n).clone() for n in ("sums", "count", "merged_count")}
    old_origin = volume.origin_index
    result = volume.shift_to(old_origin + np.asarray(offset))
    np.testing.assert_array_equal(volume.origin_index, old_origin + np.asarray(offset))
    kept = 0
    for i, j, k in np.ndindex(*DIMS):
        old = np.array([i, j, k]) + offset  # new voxel (i, j, k) was old voxel old
        inside = all(0 <= o < n for o, n in zip(old, DIMS, strict=True))
        for name, tensor in before.items():
            new_value = getattr(volume, name)[..., i, j, k]
            if inside:
                assert torch.equal(new_value, tensor[..., old[0], old[1], old[2]])  # bit-exact
            else:
                assert torch.all(new_value == 0)
        kept += inside and before["count"][tuple(old)] > 0
    assert result.observed_voxels_dropped == int((before["count"] > 0).sum()) - kept


def test_shift_rejects_off_lattice_and_reports_unmerged():
    volume = filled_volume()
    with pytest.raises(ValueError, match="chunk lattice"):
        volume.shift_to(volume.origin_index + np.array([3, 0, 0]))
    unmerged = int((volume.count > volume.merged_count).sum())
    result = volume.shift_to(volume.origin_index + np.array([1000, 0, 0]) * CHUNK)
    assert result.unmerged_voxels_dropped == unmerged
    assert volume.count.sum() == 0


def test_integrate_is_running_average_and_snapshot_weights():
    volume = RollingFeatureVolume(DIMS, VOXEL, CHUNK, feature_channels=4, origin_index=(0, 0, 0))
    generator = torch.Generator().manual_seed(3)
    K = torch.tensor([[8.0, 0, 7.5], [0, 8.0, 5.5], [0, 0, 1]])
    poses = [look_at_pose([-1.0, 1.2 + 0.3 * i, 0.5], [0.8, 1.2, 0.3]) for i in range(3)]
    features = torch.rand(3, 4, 12, 16, generator=generator)
    rgb = torch.rand(3, 3, 12, 16, generator=generator)
    volume.integrate(features[0], rgb[0], K, torch.tensor(poses[0], dtype=torch.float32))
    first = volume.snapshot()
    assert first.new_weight.sum() == volume.count.sum() > 0
    for i in (1, 2):
        volume.integrate(features[i], rgb[i], K, torch.tensor(poses[i], dtype=torch.float32))
    expected_sum, expected_count = backproject_features(
        torch.cat([features, rgb], 1),
        K.expand(3, 3, 3),
        torch.tensor(np.stack(poses), dtype=torch.float32),
        torch.tensor(volume.origin, dtype=torch.float32),
        VOXEL,
        DIMS,
    )
    torch.testing.assert_close(volume.count, expected_count)
    torch.testing.assert_close(
        volume.mean_features(), expected_sum[:4] / expected_count.clamp(min=1)
    )
    torch.testing.assert_close(volume.mean_rgb(), expected_sum[4:] / expected_count.clamp(min=1))
    snapshot = volume.snapshot()
    torch.testing.assert_close(snapshot.new_weight, expected_count - first.count)
    network_input = snapshot.network_input
    assert network_input.shape == (1, 5, *DIMS)
    torch.testing.assert_close(network_input[0, 4], (expected_count > 0).float())
    assert volume.snapshot().new_weight.sum() == 0  # nothing new since


def test_volume_validation():
    with pytest.raises(ValueError, match="multiples of chunk_size"):
        RollingFeatureVolume((12, 16, 16), VOXEL, CHUNK, 3)
    with pytest.raises(ValueError, match="chunk lattice"):
        RollingFeatureVolume(DIMS, VOXEL, CHUNK, 3, origin_index=(1, 0, 0))
    volume = RollingFeatureVolume(DIMS, VOXEL, CHUNK, 3)
    with pytest.raises(ValueError, match="features"):
        volume.integrate(torch.zeros(4, 5, 5), torch.zeros(3, 5, 5), torch.eye(3), torch.eye(4))


def test_policy_snaps_to_lattice_and_has_hysteresis():
    config = WindowPolicyConfig(mode="3d", forward_offset=1.0, hysteresis=0.2)
    policy = WindowPolicy((32, 32, 16), 0.05, 8, config)
    T = look_at_pose([0.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    origin = policy.next_origin_index(T, None)
    assert np.all(origin % 8 == 0)
    # The snapped window's centre is within half a chunk of the target (1 m ahead).
    assert np.all(np.abs(policy.centre_of(origin) - [1.0, 0.0, 1.0]) <= 0.5 * 8 * 0.05 + 1e-9)
    # The target is at most half a chunk (0.2 m) from the snapped centre, so motions up to the
    # hysteresis (0.2 m) never move the window, in either direction.
    for dx in (0.19, -0.19, 0.1, -0.1, 0.0):
        moved = T.copy()
        moved[0, 3] += dx
        np.testing.assert_array_equal(policy.next_origin_index(moved, origin), origin)
    far = T.copy()
    far[0, 3] += 1.0
    new_origin = policy.next_origin_index(far, origin)
    assert new_origin[0] - origin[0] in (16, 24)  # 1 m = 20 voxels, snapped to chunks of 8
    assert np.all(new_origin % 8 == 0)
    # No jitter: stepping back a little after a move keeps the new window.
    back = far.copy()
    back[0, 3] -= 0.19
    np.testing.assert_array_equal(policy.next_origin_index(back, new_origin), new_origin)


def test_floor_mode_fixes_vertical_placement():
    config = WindowPolicyConfig(mode="floor", forward_offset=1.0, floor_z=0.0, floor_margin=0.1)
    policy = WindowPolicy((32, 32, 16), 0.05, 8, config)
    looking_down = look_at_pose([0.0, 0.0, 1.5], [1.0, 0.0, 0.0])
    origin = policy.next_origin_index(looking_down, None)
    # Bottom voxel centre at or below floor_z - margin, within one chunk.
    assert -0.1 - 8 * 0.05 < origin[2] * 0.05 <= -0.1
    # Floor mode uses the horizontal viewing direction: centre 1 m ahead in x, not down.
    assert policy.target_centre(looking_down)[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mode"):
        WindowPolicyConfig(mode="sideways")
