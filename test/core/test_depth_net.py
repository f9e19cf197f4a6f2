"""The multi-view depth network: shapes, size, the classical start (an untrained network is a
winner-take-all NCC sweep), training steps lowering the loss, the semantic-only path and the
checkpoint round trip."""

import numpy as np
import pytest
import torch

from recon_ros.core.depth_checkpoint import load_depth_net, save_depth_net
from recon_ros.core.depth_net import (
    DepthNetConfig,
    MVSDepthNet,
    depth_losses,
    pointwise_conv3d,
    winner_take_all_depth,
)

SMALL = DepthNetConfig(image_size=(64, 48), planes=16, widths=(8, 8, 8, 8))


def textured_pair(batch: int = 2, seed: int = 0):
    """Reference and one source 0.15 m to the right looking at a textured wall at 1.5 m."""
    rng = np.random.default_rng(seed)
    height, width = 48, 64
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    texture = rng.random((400, 400, 3)).astype(np.float32)

    def render(tx: float) -> np.ndarray:
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        x = (u - 31.5) / 50.0 * 1.5 + tx
        y = (v - 23.5) / 50.0 * 1.5
        ix = np.clip(((x + 2) * 100).astype(int), 0, 399)
        iy = np.clip(((y + 2) * 100).astype(int), 0, 399)
        return texture[iy, ix].transpose(2, 0, 1)

    reference = torch.from_numpy(np.stack([render(0.0)] * batch))
    sources = torch.from_numpy(np.stack([render(0.15)] * batch))[:, None]
    T = np.eye(4)
    T[0, 3] = -0.15  # T_src_ref: the reference frame seen from the source
    Ks = torch.tensor(K, dtype=torch.float32)
    return (
        reference,
        sources,
        Ks.expand(batch, 3, 3),
        Ks.expand(batch, 1, 3, 3),
        torch.tensor(T, dtype=torch.float32).expand(batch, 1, 4, 4),
    )


def test_shapes_and_size():
    net = MVSDepthNet()
    parameters = sum(p.numel() for p in net.parameters())
    assert 0.5e6 < parameters < 3e6  # sized for a 2-core CPU (issue: 1-3 M)
    small = MVSDepthNet(SMALL).eval()
    inputs = textured_pair()
    with torch.inference_mode():
        out = small(*inputs)
    assert out.depth.shape == (2, 24, 32) and out.confidence.shape == (2, 24, 32)
    assert out.plane_logits.shape == (2, 16, 24, 32)
    assert out.semantic_logits.shape == (2, 9, 24, 32)
    assert small.semantic_only(inputs[0]).shape == (2, 9, 24, 32)
    assert torch.all((out.confidence >= 0) & (out.confidence <= 1.0 + 1e-6))


def test_untrained_network_is_the_classical_sweep():
    net = MVSDepthNet(SMALL).eval()
    with torch.inference_mode():
        out = net(*textured_pair())
    wta = winner_take_all_depth(out.ncc, SMALL)
    inner = (slice(None), slice(4, -4), slice(4, -12))  # away from borders the source lacks
    median = out.depth[inner].median()
    assert abs(float(median) - 1.5) < 0.15
    agree = ((out.depth[inner] - wta[inner]).abs() / wta[inner] < 0.1).float().mean()
    assert agree > 0.8


def test_training_steps_lower_the_loss():
    torch.manual_seed(0)
    net = MVSDepthNet(SMALL)
    inputs = textured_pair()
    depth = torch.full((2, 24, 32), 1.5)
    semantic = torch.ones(2, 24, 32, dtype=torch.long)
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = depth_losses(net(*inputs), depth, semantic, SMALL)["total"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.8 * losses[0]


def test_checkpoint_round_trip(tmp_path):
    net = MVSDepthNet(SMALL)
    path = save_depth_net(net, tmp_path / "d.pt", trained=False, recipe="test")
    loaded, metadata = load_depth_net(path)
    assert metadata["trained"] is False and loaded.config == SMALL
    for name, tensor in net.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name])
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match=r"recon_ros\.mvs_depth"):
        load_depth_net(tmp_path / "x.pt")


def test_bad_inputs_raise():
    net = MVSDepthNet(SMALL)
    reference, sources, K_ref, K_src, T = textured_pair()
    with pytest.raises(ValueError, match="multiples of 16"):
        net(reference[..., :40], sources, K_ref, K_src, T)
    with pytest.raises(ValueError, match="T_src_ref"):
        net(reference, sources, K_ref, K_src, T[:, :, :3])


def test_encoded_views_give_the_same_result():
    """A live reconstructor encodes each keyframe once and reuses it as a partner."""
    torch.manual_seed(1)
    net = MVSDepthNet(SMALL).eval()
    reference, sources, K_ref, K_src, T = textured_pair(batch=1)
    with torch.inference_mode():
        direct = net(reference, sources, K_ref, K_src, T)
        partner = net.encode_view(sources[:, 0])
        cached = net.forward_encoded(
            net.encode_view(reference), partner.match[:, None], partner.grey[:, None], K_ref,
            K_src, T,
        )  # fmt: skip
    torch.testing.assert_close(direct.depth, cached.depth)
    torch.testing.assert_close(direct.semantic_logits, cached.semantic_logits)


def test_pointwise_conv3d_equals_the_layers_it_applies():
    torch.manual_seed(4)
    layers = torch.nn.Sequential(
        torch.nn.Conv3d(6, 8, 1), torch.nn.ReLU(), torch.nn.Conv3d(8, 3, 1)
    )
    x = torch.randn(2, 6, 5, 7, 9, requires_grad=True)
    fast = pointwise_conv3d(layers, x)
    torch.testing.assert_close(fast, layers(x), atol=1e-5, rtol=1e-5)
    # Gradients reach the layers' weights as they would through the convolutions.
    fast.square().sum().backward()
    ours = layers[0].weight.grad.clone()
    layers.zero_grad()
    layers(x).square().sum().backward()
    torch.testing.assert_close(ours, layers[0].weight.grad, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="1x1x1"):
        pointwise_conv3d(torch.nn.Sequential(torch.nn.Conv3d(6, 1, 3)), x)
    with pytest.raises(ValueError, match="B, C, D, H, W"):
        pointwise_conv3d(layers, torch.randn(6, 5, 7, 9))
