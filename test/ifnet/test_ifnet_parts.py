"""Single-image IF-Net parts (issue 13): voxelisation against its brute-force reference, the
gradient reaching sigma, IF-Net query shapes, and a few training steps lowering the loss."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.ifnet.frustum_grid import FrustumGrid, backproject_depth
from recon_ros.ifnet.ifnet import IFNet, SingleViewConfig, SingleViewIFNet, neighbour_offsets
from recon_ros.ifnet.voxelise import (
    DifferentiableVoxeliser,
    splat_trilinear,
    voxelise_reference,
)

DIMS = (6, 5, 7)  # D, H, W


def _points(seed: int = 0, count: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    scale = torch.tensor([DIMS[2] - 1, DIMS[1] - 1, DIMS[0] - 1], dtype=torch.float32)
    # a few outside the grid too: their corners inside still count
    return torch.rand(count, 3, generator=generator) * (scale + 2.0) - 1.0


@pytest.mark.parametrize("sigma,kernel", [(0.6, 3), (1.3, 5)])
def test_voxelisation_matches_its_reference(sigma, kernel):
    points = _points()
    valid = torch.ones(len(points), dtype=torch.bool)
    valid[3] = False
    voxeliser = DifferentiableVoxeliser(DIMS, sigma=sigma, kernel_size=kernel)
    fast = voxeliser(points[None], valid[None])[0, 0].double()
    slow = voxelise_reference(points, DIMS, sigma, kernel, valid)
    assert fast.shape == slow.shape == DIMS
    assert torch.allclose(fast, slow, atol=1e-5)
    assert fast.max() <= 1.0 and fast.min() >= 0.0


def test_a_point_at_a_voxel_centre_fills_that_voxel():
    splat = splat_trilinear(torch.tensor([[[2.0, 1.0, 3.0]]]), DIMS)
    assert splat.sum() == pytest.approx(1.0) and splat[0, 0, 3, 1, 2] == pytest.approx(1.0)
    with torch.no_grad():
        occupancy = DifferentiableVoxeliser(DIMS, sigma=0.5)(torch.tensor([[[2.0, 1.0, 3.0]]]))
    assert occupancy[0, 0, 3, 1, 2] == pytest.approx(1.0)
    assert occupancy[0, 0, 3, 1, 3] == pytest.approx(float(torch.exp(torch.tensor(-2.0))))


def test_gradients_reach_sigma_and_the_points():
    points = _points(seed=1).requires_grad_(True)
    voxeliser = DifferentiableVoxeliser(DIMS, sigma=0.8)
    target = torch.zeros(1, 1, *DIMS)
    target[..., 2:4, 2:4, 2:5] = 1.0
    loss = F.binary_cross_entropy(voxeliser(points[None]).clamp(1e-4, 1 - 1e-4), target)
    loss.backward()
    assert voxeliser.log_sigma.grad is not None and voxeliser.log_sigma.grad.abs() > 0
    assert points.grad is not None and points.grad.abs().sum() > 0


def test_backprojection_lands_in_the_frustum_grid():
    grid = FrustumGrid.in_front((16, 12, 12), 0.25, near=0.5)
    K = torch.tensor([[[20.0, 0.0, 15.5], [0.0, 20.0, 11.5], [0.0, 0.0, 1.0]]])
    depth = torch.full((1, 24, 32), 2.0)
    depth[0, 0, 0] = 0.0
    points, valid = backproject_depth(depth, K)
    assert points.shape == (1, 24 * 32, 3) and int(valid.sum()) == 24 * 32 - 1
    index = grid.to_grid(points[valid])
    assert torch.allclose(index[:, 2], torch.full_like(index[:, 2], 6.0))  # (2 - 0.5) / 0.25
    # the optical axis runs through the grid's middle column
    centre = grid.to_grid(torch.tensor([0.0, 0.0, 2.0]))
    assert torch.allclose(centre, torch.tensor([5.5, 5.5, 6.0]))
    assert torch.allclose(grid.centres()[6, 5, 5], torch.tensor([-0.125, -0.125, 2.0]))


def test_ifnet_query_shapes_and_neighbours():
    assert torch.equal(neighbour_offsets(0.5)[0], torch.zeros(3))
    assert neighbour_offsets(0.5).abs().sum(dim=1).tolist() == [0.0] + [0.5] * 6
    net = IFNet(channels=(4, 8, 8), hidden=16)
    grid = torch.rand(2, 1, 12, 10, 14)
    features = net.encode(grid)
    assert [f.shape[1] for f in features] == [1, 4, 8, 8]
    assert features[2].shape[-3:] == (6, 5, 7) and features[3].shape[-3:] == (3, 3, 4)
    logits = net(grid, torch.rand(2, 33, 3) * 9)
    assert logits.shape == (2, 33)
    with pytest.raises(ValueError, match="queries"):
        net(grid, torch.rand(2, 33))


def _toy_batch(generator: torch.Generator):
    """A wall at a random depth in front of the camera: its rendered depth, and queries
    labelled occupied behind the wall (inside the solid) and free before it."""
    grid = FrustumGrid.in_front((16, 12, 12), 0.25, near=0.5)
    K = torch.tensor([[20.0, 0.0, 15.5], [0.0, 20.0, 15.5], [0.0, 0.0, 1.0]]).expand(2, 3, 3)
    wall = 1.0 + 2.5 * torch.rand(2, generator=generator)
    depth = wall[:, None, None].expand(2, 32, 32)
    queries = grid.centres().reshape(-1, 3)[None].expand(2, -1, -1)
    pick = torch.randint(queries.shape[1], (2, 256), generator=generator)
    queries = torch.gather(queries, 1, pick[..., None].expand(-1, -1, 3))
    labels = (queries[..., 2] >= wall[:, None]).float()
    images = torch.rand(2, 3, 32, 32, generator=generator)
    return grid, images, K, depth, queries, labels


def test_a_few_training_steps_lower_the_loss(tiny_ifnet_config):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    config = tiny_ifnet_config
    model = SingleViewIFNet(config)
    assert SingleViewConfig.from_dict(config.to_dict()) == config
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    fixed = _toy_batch(generator)
    losses = []
    for _ in range(40):
        _, images, K, depth, queries, labels = fixed
        _, logits = model(images, K, queries, depth=depth)  # the "viability" regime
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses[::10]
    # end to end, the depth U-Net gets a gradient through the voxeliser
    _, images, K, _, queries, labels = fixed
    predicted, logits = model(images, K, queries)
    F.binary_cross_entropy_with_logits(logits, labels).backward()
    assert predicted.shape == (2, 32, 32)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.depth_net.parameters())
