"""The Everted U-Net's ray lift (``lift="rays"``): projections of grid cells, sampling against
the slow reference, fusion of the views, and the model on it."""

import numpy as np
import pytest
import torch

from recon_ros.core.poses import look_at_pose
from recon_ros.everted.model import EvertedConfig, EvertedUNet, everted_losses
from recon_ros.everted.ray_lift import (
    DEPTH_SCALE_M,
    coarse_projections,
    fuse_lifted,
    grid_projections,
    lift_views,
    lift_views_reference,
)

K = np.array([[300.0, 0, 319.5], [0, 300.0, 239.5], [0, 0, 1]])


def test_a_grid_cell_projects_where_the_camera_sees_it():
    pose = look_at_pose(np.array([0.5, -2.0, 1.0]), np.array([1.0, 1.0, 0.5]))
    origin, voxel = np.array([0.1, 0.2, 0.05]), 0.25
    P = grid_projections(K, pose, (480, 640), 112, origin, voxel)
    index = np.array([3.0, 5.0, 2.0])
    world = origin + voxel * index
    camera = np.linalg.inv(pose) @ np.r_[world, 1.0]
    u, v = (K @ camera[:3])[:2] / camera[2]
    uvw = P @ np.r_[index, 1.0]
    assert uvw[2] == pytest.approx(camera[2], rel=1e-5)
    # the image's pixel centre (u, v) in the 112 x 112 resize
    np.testing.assert_allclose(
        uvw[:2] / uvw[2], [(u + 0.5) * 112 / 640 - 0.5, (v + 0.5) * 112 / 480 - 0.5], atol=1e-3
    )
    # a coarse cell is the centre of the fine cells it covers
    coarse = coarse_projections(torch.from_numpy(P)[None].double(), 4)[0].numpy()
    np.testing.assert_allclose(coarse @ np.r_[1.0, 0, 2, 1], P @ np.r_[5.5, 1.5, 9.5, 1], rtol=1e-6)
    with pytest.raises(ValueError, match="K, T_world_cam"):
        grid_projections(K[:2], pose, (480, 640), 112, origin, voxel)


def test_lifting_matches_the_slow_reference():
    torch.manual_seed(0)
    features = torch.randn(2, 5, 8, 8)
    # cameras inside the grid's box: some cells behind them, some beside the image
    poses = [look_at_pose(np.array([0.5, 0.4, 1.0]), np.array([2.0, 2.0, 0.3])),
             look_at_pose(np.array([2.5, 2.0, 1.6]), np.array([0.5, 0.6, 0.2]))]  # fmt: skip
    projections = torch.stack([
        torch.from_numpy(grid_projections(K, p, (480, 640), 32, [0.0, 0.0, 0.0], 0.5))
        for p in poses
    ])  # fmt: skip
    dims = (6, 5, 4)
    fast = lift_views(features, projections, dims, 32)
    slow = lift_views_reference(features, projections, dims, 32)
    assert fast.shape == (2, 7, 6, 5, 4)
    seen = slow[:, 5]
    assert 0 < seen.mean() < 1  # some cells seen, some not: both paths are exercised
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="projections"):
        lift_views(features, projections[:1], dims, 32)


def test_fusion_averages_over_the_views_that_see_a_cell():
    lifted = torch.zeros(1, 3, 3, 1, 1, 2)  # 3 views, 1 feature + seen + depth, 2 cells
    lifted[0, 0, :, 0, 0, 0] = torch.tensor([2.0, 1.0, 1.0 / DEPTH_SCALE_M])
    lifted[0, 1, :, 0, 0, 0] = torch.tensor([4.0, 1.0, 3.0 / DEPTH_SCALE_M])
    # view 2 does not see cell 0; nobody sees cell 1
    fused = fuse_lifted(lifted)[0, :, 0, 0]
    torch.testing.assert_close(fused[:, 0], torch.tensor([3.0, 1.0, 2 / 3, 2.0 / DEPTH_SCALE_M]))
    torch.testing.assert_close(fused[:, 1], torch.zeros(4))


def test_the_model_on_the_rays_lift_learns():
    config = EvertedConfig(image_size=64, encoder_channels=(4, 8, 8, 8), volume_channels=6,
                           volume_dims=(8, 8, 8), branch_channels=(4, 4), ray_channels=4,
                           lift="rays", dropout=0.0)  # fmt: skip
    model = EvertedUNet(config)
    assert config.output_dims == (32, 32, 32)
    poses = [look_at_pose(np.array([x, -1.0, 1.5]), np.array([1.0, 1.0, 0.3])) for x in (0, 2)]
    projections = torch.stack([
        torch.from_numpy(grid_projections(K, p, (480, 640), 64, [0.03] * 3, 0.0625))
        for p in poses
    ])[None]  # fmt: skip
    views = torch.rand(1, 2, 3, 64, 64)
    occupancy = torch.zeros(1, 1, 32, 32, 32)
    occupancy[..., 10:20, 10:20, :6] = 1.0
    masks = torch.zeros(1, 6, 32, 32, 32)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        out = everted_losses(*model(views, None, projections), occupancy, masks, "both", 5.0)
        optimiser.zero_grad()
        out["total"].backward()
        optimiser.step()
        losses.append(out["total"].item())
    assert losses[-1] < 0.7 * losses[0], losses
    with pytest.raises(ValueError, match="projections"):
        model(views)
