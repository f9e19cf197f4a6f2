"""Everted U-Net (issue 12, seed 002): shapes of the paper's grid, the merger's weights, any
number of views, the everted skips, and a few training steps lowering the loss."""

import pytest
import torch

from recon_ros.everted.model import (
    EvertedConfig,
    EvertedUNet,
    everted_losses,
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
        twice, _ = model(torch.stack([image, image], 1))
    assert single.shape == per_view.shape == scores.shape == (1, 1, 32, 32, 32)
    # one view skips the merger (its weight is 1); two equal views average to the same
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
