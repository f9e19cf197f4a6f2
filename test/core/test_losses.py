"""Atlas losses on constructed cases."""

import math

import pytest
import torch

from recon_ros.core.losses import (
    atlas_loss,
    downsample_tsdf_target,
    log_transform,
    multiscale_tsdf_loss,
    semantic_loss,
    tsdf_l1_loss,
    unobserved_column_mask,
)


def floor_target(dims=(8, 8, 8)):
    z = torch.arange(dims[2]).float()
    target = ((z - 3.5) / 2.0).clamp(-1, 1).expand(1, 1, *dims).clone()
    observed = torch.zeros(1, 1, *dims, dtype=torch.bool)
    observed[:, :, :4, :, 1:6] = True  # x < 4 observed in part of each column; x >= 4 never
    return target, observed


def test_log_transform():
    x = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
    expected = torch.tensor([-math.log(2), -math.log(1.5), 0.0, math.log(1.5), math.log(2)])
    torch.testing.assert_close(log_transform(x), expected)


def test_column_rule_marks_exactly_the_all_unobserved_columns():
    observed = torch.zeros(1, 1, 3, 2, 4, dtype=torch.bool)
    observed[0, 0, 0, 0, 2] = True
    observed[0, 0, 2, 1, 0] = True
    mask = unobserved_column_mask(observed)
    for x in range(3):
        for y in range(2):
            column_seen = bool(observed[0, 0, x, y].any())
            assert bool(mask[0, 0, x, y].all()) is (not column_seen)
            assert bool(mask[0, 0, x, y].any()) is (not column_seen)


def test_perfect_prediction_gives_zero():
    target, observed = floor_target()
    coarse = [downsample_tsdf_target(target, observed, f)[0] for f in (4, 2, 1)]
    masks = [torch.zeros_like(c, dtype=torch.bool) for c in coarse]
    total, per_scale = multiscale_tsdf_loss(coarse, masks, target, observed)
    assert total.item() == 0.0 and all(p.item() == 0.0 for p in per_scale)
    logits = torch.full((1, 3, 8, 8, 8), -20.0)
    labels = torch.full((1, 8, 8, 8), 255, dtype=torch.long)
    labels[..., :2] = 1
    logits[:, 1] = 20.0
    assert semantic_loss(logits, labels).item() == pytest.approx(0.0, abs=1e-12)


def test_loss_value_supervised_voxels_and_clamping():
    target, observed = floor_target()
    prediction = target.clone()
    prediction[0, 0, 0, 0, 3] += 0.5  # observed voxel: counts
    prediction[0, 0, 1, 0, 0] += 0.5  # unobserved voxel in an observed column: ignored
    prediction[0, 0, 6, 0, 0] += 0.5  # voxel of an all-unobserved column: counts
    supervised = observed | unobserved_column_mask(observed)
    count = int(supervised.sum())
    error = (log_transform(prediction) - log_transform(target)).abs()
    expected = (error[0, 0, 0, 0, 3] + error[0, 0, 6, 0, 0]) / count
    torch.testing.assert_close(tsdf_l1_loss(prediction, target, observed), expected)
    # A clamped voxel contributes nothing, however wrong.
    clamp = torch.zeros_like(observed)
    clamp[0, 0, 0, 0, 3] = True
    clamped_loss = tsdf_l1_loss(prediction, target, observed, clamp)
    torch.testing.assert_close(clamped_loss, error[0, 0, 6, 0, 0] / (count - 1))
    prediction.requires_grad_(True)
    tsdf_l1_loss(prediction, target, observed, clamp).backward()
    assert prediction.grad[0, 0, 0, 0, 3] == 0 and prediction.grad[0, 0, 6, 0, 0] != 0


def test_downsampling_averages_cells():
    target, observed = floor_target()
    coarse, coarse_observed = downsample_tsdf_target(target, observed, 2)
    assert coarse.shape == (1, 1, 4, 4, 4)
    torch.testing.assert_close(coarse[0, 0, 1, 2, 1], target[0, 0, 2:4, 4:6, 2:4].mean())
    # Observed when any child is: x cells 0-1 (children x < 4) in z cells 0-2 (children 1..5).
    assert coarse_observed[0, 0, :2, :, :3].all() and not coarse_observed[0, 0, 2:].any()
    assert not coarse_observed[0, 0, :, :, 3].any()
    # A cell reads +-1 only if all children are saturated with one sign.
    saturated = coarse.abs() >= 0.99
    for index in saturated.nonzero():
        i, j, k = index[2:].tolist()
        children = target[0, 0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, 2 * k : 2 * k + 2]
        assert bool((children.abs() >= 0.99).all())


def test_semantic_loss_ignores_255_and_atlas_loss_parts():
    logits = torch.zeros(1, 3, 8, 8, 8, requires_grad=True)
    labels = torch.full((1, 8, 8, 8), 255, dtype=torch.long)
    assert semantic_loss(logits, labels).item() == 0.0
    labels[0, 0, 0, 0] = 2
    assert semantic_loss(logits, labels).item() == pytest.approx(math.log(3))
    labels[0, 0, 0, 1] = 7
    with pytest.raises(ValueError, match="labels"):
        semantic_loss(logits, labels)
    target, observed = floor_target()
    predictions = [
        torch.zeros(1, 1, 2, 2, 2),
        torch.zeros(1, 1, 4, 4, 4),
        torch.zeros(1, 1, 8, 8, 8),
    ]
    masks = [torch.zeros_like(p, dtype=torch.bool) for p in predictions]
    labels[0, 0, 0, 1] = 1
    total, parts = atlas_loss(
        predictions, masks, logits, target, observed, labels, semantic_weight=0.5
    )
    assert set(parts) == {"tsdf_scale0", "tsdf_scale1", "tsdf_scale2", "tsdf", "semantic", "total"}
    torch.testing.assert_close(total.detach(), parts["tsdf"] + 0.5 * parts["semantic"])
