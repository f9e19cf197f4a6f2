"""Conv-LSTM 3D-R2N2 (issue 12, seed 001): shapes, the neighbourhood variants' parameter counts,
views in any number, a few training steps lowering the loss, IoU on constructed cases."""

import pytest
import torch

from recon_ros.r2n2.model import (
    ConvLSTMR2N2,
    R2N2Config,
    occupancy_iou,
    voxel_cross_entropy,
)


def test_shapes_and_parameter_counts():
    full = ConvLSTMR2N2()
    logits = full(torch.rand(2, 3, 3, 127, 127))
    assert logits.shape == (2, 2, 32, 32, 32)
    coupled = sum(p.numel() for p in full.lstm.hidden_gates.parameters())
    alone = ConvLSTMR2N2(R2N2Config(neighbourhood=1))
    single = sum(p.numel() for p in alone.lstm.hidden_gates.parameters())
    hidden = full.config.hidden
    assert coupled == 3 * hidden * hidden * 27 + 3 * hidden
    assert single == 3 * hidden * hidden + 3 * hidden
    assert R2N2Config.from_dict(full.config.to_dict()) == full.config
    with pytest.raises(ValueError, match="views"):
        full(torch.rand(2, 3, 127, 127))
    with pytest.raises(ValueError, match="neighbourhood"):
        R2N2Config(neighbourhood=2)


def test_views_in_any_number_and_the_state_depends_on_them(tiny_r2n2_config):
    torch.manual_seed(0)
    model = ConvLSTMR2N2(tiny_r2n2_config).eval()
    views = torch.rand(1, 5, 3, 31, 31)
    with torch.no_grad():
        one, five = model(views[:, :1]), model(views)
    assert one.shape == five.shape == (1, 2, 32, 32, 32)
    assert not torch.allclose(one, five)


def test_a_few_training_steps_lower_the_loss(tiny_r2n2_config):
    """Two toy objects told apart by colour: a red view means a cube in one corner, a green view
    a slab at the bottom."""
    torch.manual_seed(0)
    model = ConvLSTMR2N2(tiny_r2n2_config)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    views = torch.zeros(2, 2, 3, 31, 31)
    views[0, :, 0] = 1.0
    views[1, :, 1] = 1.0
    targets = torch.zeros(2, 32, 32, 32)
    targets[0, :12, :12, :12] = 1.0
    targets[1, :, :, :6] = 1.0
    losses = []
    for _ in range(30):
        loss = voxel_cross_entropy(model(views), targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


def test_iou_on_constructed_cases():
    target = torch.zeros(1, 4, 4, 4)
    target[0, :2] = 1.0  # 32 of 64 voxels
    logits = torch.zeros(1, 2, 4, 4, 4)
    logits[0, 0] = 5.0  # free everywhere...
    logits[0, 0, :1] = 0.0
    logits[0, 1, :1] = 5.0  # ...but half of the object
    assert occupancy_iou(logits, target).item() == pytest.approx(0.5)
    free = torch.zeros(1, 2, 4, 4, 4)
    free[0, 0] = 5.0
    assert occupancy_iou(free, torch.zeros(1, 4, 4, 4)).item() == 1.0  # both empty
    # probability 0.5 is above the seed's 0.4 threshold: everything predicted, 32 of 64 right
    assert occupancy_iou(torch.zeros(1, 2, 4, 4, 4), target).item() == pytest.approx(0.5)


def test_occupied_weight_is_a_weighted_mean_of_the_two_classes():
    torch.manual_seed(0)
    logits = torch.randn(2, 2, 4, 4, 4)
    target = (torch.rand(2, 4, 4, 4) < 0.2).float()
    per_voxel = torch.nn.functional.cross_entropy(logits, target.long(), reduction="none")
    occupied = target > 0.5
    weighted = (3 * per_voxel[occupied].sum() + per_voxel[~occupied].sum()) / (
        3 * occupied.sum() + (~occupied).sum()
    )
    assert voxel_cross_entropy(logits, target, 3.0).item() == pytest.approx(weighted.item(), 1e-5)
    assert voxel_cross_entropy(logits, target).item() == pytest.approx(per_voxel.mean().item())
    with pytest.raises(ValueError, match="occupied_weight"):
        voxel_cross_entropy(logits, target, 0.0)
