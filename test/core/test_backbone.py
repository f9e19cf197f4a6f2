"""2D feature backbone."""

import pytest
import torch

from recon_ros.core.backbone import FeatureBackbone2D


def test_output_shape_size_and_determinism():
    torch.manual_seed(0)
    net = FeatureBackbone2D(out_channels=24).eval()
    parameters = sum(p.numel() for p in net.parameters())
    assert 0.5e6 <= parameters <= 2e6
    images = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        features = net(images)
    assert features.shape == (2, 24, 24, 32)
    assert torch.isfinite(features).all()
    torch.manual_seed(0)
    again = FeatureBackbone2D(out_channels=24).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(images), features, rtol=0, atol=0)


def test_input_checks():
    net = FeatureBackbone2D()
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 100, 128))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        net(torch.rand(1, 1, 96, 128))
    with pytest.raises(ValueError, match="widths"):
        FeatureBackbone2D(widths=(8, 16))
