"""The 3D refinement network: input channels, shapes, the untrained network leaves the fused TSDF
unchanged, gravity alignment round trips, and a few training steps on a noisy fused wall lower
its loss."""

import numpy as np
import pytest
import torch

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.refine_net import (
    RefineLossWeights,
    RefineNetConfig,
    SurfaceRefinerNet,
    canonical_orientation,
    refine_losses,
    refiner_input,
    world_orientation,
)

CLASSES = ("floor", "wall", "chair")


def wall_pair(batch: int, size: int = 16, seed: int = 0):
    """A wall at x = size / 2 (true TSDF truncated at 3 voxels, labelled 'wall'), and its fused
    estimate: the same wall at a wider truncation, shifted and noisy, with some labels wrong."""
    rng = np.random.default_rng(seed)
    x = np.arange(size, dtype=np.float32)[:, None, None] * np.ones((1, size, size), np.float32)
    truth = np.clip((size / 2 - x) / 3.0, -1, 1)
    fused, labels = [], []
    for _ in range(batch):
        shift = rng.uniform(-1.0, 1.0)
        noisy = np.clip((size / 2 + shift - x) / 8.0, -1, 1)
        noisy = noisy + rng.normal(0, 0.05, noisy.shape).astype(np.float32)
        fused.append(np.clip(noisy, -1, 1))
        label = np.where(rng.random((size,) * 3) < 0.7, 1, 2)
        labels.append(label)
    fused = torch.tensor(np.stack(fused), dtype=torch.float32)
    weight = torch.full_like(fused, 5.0)
    label = torch.tensor(np.stack(labels), dtype=torch.int64)
    confidence = torch.full_like(fused, 0.6)
    gt = torch.tensor(np.stack([truth] * batch))
    gt_label = torch.full(gt.shape, 1, dtype=torch.int64)
    return (fused, weight, label, confidence), gt, torch.ones_like(gt, dtype=torch.bool), gt_label


def test_input_channels_and_checks():
    tsdf = torch.zeros(1, 4, 4, 4)
    tsdf[0, 0] = 0.5
    weight = torch.zeros(1, 4, 4, 4)
    weight[0, 0] = 3.0
    label = torch.full((1, 4, 4, 4), IGNORE_LABEL)
    label[0, 0] = 2
    confidence = torch.full((1, 4, 4, 4), 0.75)
    inputs = refiner_input(tsdf, weight, label, confidence, 3)
    assert inputs.shape == (1, 6, 4, 4, 4)
    assert torch.all(inputs[0, 0, 0] == 0.5) and torch.all(inputs[0, 0, 1:] == 0)
    assert torch.all(inputs[0, 1, 0] == 1) and torch.all(inputs[0, 1, 1:] == 0)
    assert torch.all(inputs[0, 5, 0] == 0.75) and torch.all(inputs[0, 3:5] == 0)
    assert torch.all(inputs[0, 5, 1:] == 0)  # no label where unobserved
    with pytest.raises(ValueError, match="weight"):
        refiner_input(tsdf, weight[:, :2], label, confidence, 3)
    net = SurfaceRefinerNet(RefineNetConfig(class_names=CLASSES))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 6, 6, 8, 8))
    with pytest.raises(ValueError, match="expected"):
        net(torch.zeros(1, 5, 8, 8, 8))


def test_untrained_network_keeps_the_fused_tsdf():
    torch.manual_seed(0)
    net = SurfaceRefinerNet(RefineNetConfig(class_names=CLASSES)).eval()
    (fused, weight, label, confidence), *_ = wall_pair(2)
    weight[:, :, :4] = 0  # a part never observed
    with torch.no_grad():
        out = net(refiner_input(fused, weight, label, confidence, 3))
    assert out.tsdf.shape == (2, 16, 16, 16)
    assert out.occupancy_logits.shape == (2, 16, 16, 16)
    assert out.semantic_logits.shape == (2, 3, 16, 16, 16)
    observed = weight > 0
    torch.testing.assert_close(out.tsdf[observed], fused[observed])
    assert torch.all(out.tsdf[~observed] == 1.0)


@pytest.mark.parametrize("axis,sign", [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)])
def test_gravity_alignment_round_trip(axis, sign):
    volume = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    canonical = canonical_orientation(volume, axis, sign)
    assert canonical.shape[-1] == volume.shape[1 + axis]
    torch.testing.assert_close(world_orientation(canonical, axis, sign), volume)
    # world up in the input becomes "higher last index" in the canonical block
    up = torch.zeros(3, 4, 5)
    index = [slice(None)] * 3
    index[axis] = -1 if sign > 0 else 0
    up[tuple(index)] = 1.0
    assert torch.all(canonical_orientation(up, axis, sign)[..., -1] == 1.0)


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    net = SurfaceRefinerNet(RefineNetConfig(class_names=CLASSES, channels=(8, 12, 16)))
    optimiser = torch.optim.Adam(net.parameters(), lr=5e-3)
    fused_parts, gt, observed, gt_label = wall_pair(4)
    inputs = refiner_input(*fused_parts, 3)
    weights = RefineLossWeights()
    losses = []
    for _ in range(25):
        output = net(inputs)
        loss = refine_losses(output, inputs, gt, observed, gt_label, weights)
        optimiser.zero_grad()
        loss["total"].backward()
        optimiser.step()
        losses.append(float(loss["total"].detach()))
        assert all(torch.isfinite(v) for v in loss.values())
    assert losses[-1] < 0.6 * losses[0], losses
