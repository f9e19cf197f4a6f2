"""Everted U-Net (issue 12, seed 002): shapes of the paper's grid, the merger's weights, any
number of views, the everted skips, and a few training steps lowering the loss."""

import pytest
import torch

from recon_ros.everted.model import (
    EvertedConfig,
    EvertedUNet,
    everted_losses,
    masks_given_occupancy,
    merger_weights,
)

TINY = dict(image_size=64, encoder_channels=(4, 8, 8), volume_channels=6,
            branch_channels=(6, 4, 4, 4), dropout=0.0)  # fmt: skip
#: a smaller grid (32^3) for the tests that run many passes
SMALL = dict(TINY, volume_dims=(2, 2, 2), branch_channels=(4, 4, 4, 4))


def test_the_papers_grid_from_three_views():
    model = EvertedUNet(EvertedConfig(**{**TINY, "image_size": 224})).eval()
    assert model.config.output_dims == (80, 96, 64)
    with torch.no_grad():
        occupancy, masks = model(torch.rand(1, 2, 3, 224, 224))
    assert occupancy.shape == (1, 1, 80, 96, 64) and masks.shape == (1, 6, 80, 96, 64)
    default = EvertedUNet()
    assert EvertedConfig.from_dict(default.config.to_dict()) == default.config
    assert 1e5 < sum(p.numel() for p in default.parameters()) < 5e6  # sized for a 2-core CPU
    with pytest.raises(ValueError, match="views"):
        model(torch.rand(1, 3, 224, 224))


def test_merger_weights_sum_to_one_and_one_view_works():
    weights = merger_weights(torch.randn(2, 3, 1, 4, 5, 6))
    assert torch.allclose(weights.sum(1), torch.ones(2, 1, 4, 5, 6))
    model = EvertedUNet(EvertedConfig(**SMALL)).eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        single, _ = model(image[None])
        per_view, _, scores = model.per_view(image)
        twice, _ = model(torch.stack([image, image], 1), [0, 0])
    assert single.shape == per_view.shape == scores.shape == (1, 1, 32, 32, 32)
    # one view skips the merger (its weight is 1); two equal views of one camera average to it
    assert torch.equal(single, per_view)
    assert torch.allclose(twice, single, atol=1e-5)


@pytest.mark.parametrize("kernel", [2, 4])
def test_the_last_up_sampling_kernel(kernel):
    model = EvertedUNet(EvertedConfig(**SMALL, last_kernel=kernel)).eval()
    assert model.reconstruction[-1][0].kernel_size == (kernel,) * 3
    assert model.reconstruction[0][0].kernel_size == (4, 4, 4)
    with torch.no_grad():
        occupancy, masks = model(torch.rand(1, 2, 3, 64, 64))
    assert occupancy.shape == (1, 1, 32, 32, 32) and masks.shape == (1, 6, 32, 32, 32)
    with pytest.raises(ValueError, match="last_kernel"):
        EvertedConfig(**SMALL, last_kernel=3)


def test_segmentation_reads_the_reconstruction_branch():
    """The everted skips: the segmentation branch's later layers take twice the channels (its
    own and the reconstruction's)."""
    model = EvertedUNet(EvertedConfig(**TINY))
    first, second = model.segmentation[0][0], model.segmentation[1][0]  # the transposed convs
    assert first.in_channels == TINY["volume_channels"]
    assert second.in_channels == 2 * TINY["branch_channels"][0]


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    model = EvertedUNet(EvertedConfig(**SMALL))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    views = torch.rand(2, 3, 3, 64, 64)
    occupancy = torch.zeros(2, 1, 32, 32, 32)
    occupancy[0, :, :16] = 1.0
    occupancy[1, :, :, :, :4] = 1.0
    masks = torch.zeros(2, 6, 32, 32, 32)
    masks[0, 0, :16] = 1.0
    losses = []
    for step in range(20):
        stage = "reconstruction" if step < 5 else "both"
        out = everted_losses(*model(views), occupancy, masks, stage)
        optimiser.zero_grad()
        out["total"].backward()
        optimiser.step()
        losses.append(out["reconstruction"].item())
    assert losses[-1] < 0.7 * losses[0], losses
    with pytest.raises(ValueError, match="stage"):
        everted_losses(*model(views), occupancy, masks, "masks")


def test_each_camera_has_its_own_lift():
    """``lift="camera"``: the same image as camera 0 or camera 1 lands in different places of
    the room; the pooling lift ignores the camera; unknown cameras are refused."""
    image = torch.rand(1, 1, 3, 64, 64)
    model = EvertedUNet(EvertedConfig(**SMALL, rig_cameras=2)).eval()
    assert model.encoder.lifts.shape[0] == 2
    with torch.no_grad():
        first, _ = model(image, [0])
        second, _ = model(image, [1])
        swapped, _ = model(torch.cat([image, image * 0.5], 1), [1, 0])
        again, _ = model(torch.cat([image * 0.5, image], 1)[:, [1, 0]], [1, 0])
    assert not torch.allclose(first, second)
    assert torch.allclose(swapped, again)
    with pytest.raises(ValueError, match="cameras"):
        model(image, [2])
    pooled = EvertedUNet(EvertedConfig(**SMALL, lift="pool")).eval()
    with torch.no_grad():
        assert torch.equal(pooled(image, [0])[0], pooled(image, [5])[0])
    with pytest.raises(ValueError, match="lift"):
        EvertedConfig(**SMALL, lift="splat")


def test_the_positive_weight_counts_occupied_voxels_more():
    logits = torch.zeros(1, 1, 4, 4, 4)
    occupancy = torch.zeros(1, 1, 4, 4, 4)
    occupancy[..., 0] = 1.0
    masks_logits, masks = torch.zeros(1, 6, 4, 4, 4), torch.zeros(1, 6, 4, 4, 4)
    plain = everted_losses(logits, masks_logits, occupancy, masks, "reconstruction")
    weighted = everted_losses(logits, masks_logits, occupancy, masks, "reconstruction", 5.0)
    # a quarter of the voxels occupied, each term log 2: (0.25 * 5 + 0.75) log 2
    assert torch.isclose(weighted["total"], torch.tensor(2.0 * 0.6931), atol=1e-3)
    assert torch.isclose(plain["total"], torch.tensor(0.6931), atol=1e-3)
    with pytest.raises(ValueError, match="positive_weight"):
        everted_losses(logits, masks_logits, occupancy, masks, "both", 0.0)


def test_masks_given_occupancy_lie_inside_it():
    """``masks="given_occupancy"``: each mask's probability is the occupancy's times the class's
    softmax, so the masks sum to the occupancy; finite even where the net is certain."""
    torch.manual_seed(0)
    occupancy, classes = torch.randn(2, 1, 3, 4, 5) * 4, torch.randn(2, 6, 3, 4, 5) * 4
    occupancy[0, 0, 0, 0, 0], classes[0, 2, 0, 0, 0] = 60.0, 80.0
    masks = masks_given_occupancy(occupancy, classes)
    assert torch.isfinite(masks).all()
    probabilities = torch.sigmoid(masks)
    torch.testing.assert_close(
        probabilities, torch.sigmoid(occupancy) * torch.softmax(classes, 1), atol=1e-6, rtol=1e-5
    )
    torch.testing.assert_close(probabilities.sum(1, keepdim=True), torch.sigmoid(occupancy))
    model = EvertedUNet(EvertedConfig(**SMALL, masks="given_occupancy")).eval()
    with torch.no_grad():
        occupancy, masks = model(torch.rand(1, 2, 3, 64, 64))
    assert (torch.sigmoid(masks).sum(1) <= torch.sigmoid(occupancy[:, 0]) + 1e-5).all()
    with pytest.raises(ValueError, match="masks"):
        EvertedConfig(**SMALL, masks="joint")
