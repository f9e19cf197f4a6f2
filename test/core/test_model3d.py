"""Atlas 3D encoder-decoder: shapes, coarse-to-fine clamping, trainability."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.losses import atlas_loss
from recon_ros.core.model3d import AtlasNet3D


def tiny_net(**kwargs) -> AtlasNet3D:
    torch.manual_seed(0)
    options = {
        "base_channels": 4,
        "num_classes": 3,
        "encoder_blocks": (1, 1, 1, 1),
        "decoder_blocks": (1, 1, 1),
    }
    options.update(kwargs)
    return AtlasNet3D(5, **options)


def test_output_shapes_and_input_checks():
    net = tiny_net().eval()
    out = net(torch.rand(2, 5, 16, 24, 8))
    assert [tuple(t.shape) for t in out.tsdf] == [
        (2, 1, 4, 6, 2),
        (2, 1, 8, 12, 4),
        (2, 1, 16, 24, 8),
    ]
    assert [m.dtype for m in out.clamp_masks] == [torch.bool] * 3
    assert [m.shape for m in out.clamp_masks] == [t.shape for t in out.tsdf]
    assert not out.clamp_masks[0].any()
    assert out.semantic_logits.shape == (2, 3, 16, 24, 8)
    assert all(t.abs().max() <= 1.0 for t in out.tsdf)
    with pytest.raises(ValueError, match="multiples of 8"):
        net(torch.rand(1, 5, 16, 12, 8))
    with pytest.raises(ValueError, match="channels"):
        net(torch.rand(1, 4, 16, 16, 8))
    paper = AtlasNet3D(33)
    assert [len(stage) for stage in paper.encoder] == [1, 2, 3, 4]
    assert [len(stage) for stage in paper.decoder] == [3, 2, 1]


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_saturated_coarse_scale_clamps_finer_scales_to_its_sign(sign):
    net = tiny_net().eval()
    with torch.no_grad():
        net.tsdf_heads[0].weight.zero_()
        net.tsdf_heads[0].bias.fill_(10.0 * sign)
    out = net(torch.rand(1, 5, 16, 16, 8))
    for tsdf, mask in zip(out.tsdf[1:], out.clamp_masks[1:], strict=True):
        assert mask.all()
        assert torch.equal(tsdf, torch.full_like(tsdf, sign))


def test_clamp_masks_follow_previous_scale():
    net = tiny_net().eval()
    with torch.no_grad():
        net.tsdf_heads[0].weight.mul_(200.0)  # saturate part of the coarse output
    out = net(torch.rand(1, 5, 32, 16, 16))
    coarse = out.tsdf[0]
    saturated = coarse.abs() >= 0.99
    assert 0 < saturated.float().mean() < 1, "test needs a mix of clamped and free voxels"
    for scale in range(2):
        expected_mask = F.interpolate((out.tsdf[scale].abs() >= 0.99).float(), scale_factor=2) > 0.5
        assert torch.equal(out.clamp_masks[scale + 1], expected_mask)
        expected_value = F.interpolate(torch.sign(out.tsdf[scale]), scale_factor=2)
        fine = out.tsdf[scale + 1]
        assert torch.equal(fine[expected_mask], expected_value[expected_mask])
    # Clamping is cumulative: once clamped, clamped at every finer scale.
    inherited = F.interpolate(out.clamp_masks[1].float(), scale_factor=2) > 0.5
    assert bool(out.clamp_masks[2][inherited].all())


def test_few_steps_lower_the_loss_on_a_synthetic_volume():
    torch.manual_seed(0)
    net = tiny_net()
    dims = (16, 16, 8)
    z = torch.arange(dims[2]).float()
    # A floor at z = 3.5 voxels: TSDF over a truncation of 2 voxels; class 0 below, 1 above.
    target = ((z - 3.5) / 2.0).clamp(-1, 1).expand(1, 1, *dims).clone()
    observed = torch.zeros(1, 1, *dims, dtype=torch.bool)
    observed[..., 1:7] = True
    labels = torch.full((1, *dims), 255, dtype=torch.long)
    labels[..., 1:4] = 0
    labels[..., 4:7] = 1
    # Input: noisy features that encode height, plus the observed flag.
    features = torch.randn(1, 4, *dims) * 0.1 + z / dims[2]
    volume = torch.cat([features, observed.float()], 1)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(12):
        out = net(volume)
        loss, _ = atlas_loss(
            out.tsdf, out.clamp_masks, out.semantic_logits, target, observed, labels
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses
