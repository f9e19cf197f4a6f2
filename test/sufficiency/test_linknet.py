"""The three-block LinkNet: shapes for sizes that are not powers of two, size, trainability."""

import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from recon_ros.sufficiency.linknet import LinkNet, count_parameters


def test_paper_sized_model_at_300():
    torch.manual_seed(0)
    net = LinkNet(m=4).eval()
    assert net.in_channels == 15 and net.num_classes == 5
    assert abs(count_parameters(net) - 3.0e6) / 3.0e6 < 0.1
    with torch.inference_mode():
        out = net(torch.randn(1, 15, 300, 300))
    assert out.shape == (1, 5, 300, 300)


@pytest.mark.parametrize("hw", [(17, 23), (64, 64), (75, 149), (1, 1)])
def test_output_matches_input_size(hw):
    net = LinkNet(m=2, width=8).eval()
    with torch.inference_mode():
        assert net(torch.randn(2, 9, *hw)).shape == (2, 3, *hw)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="x must have shape"):
        LinkNet(m=2, width=8)(torch.randn(1, 15, 16, 16))
    with pytest.raises(ValueError, match="m must be"):
        LinkNet(m=0)
    with pytest.raises(ValueError, match="width"):
        LinkNet(width=6)


def test_adam_steps_lower_the_loss():
    torch.manual_seed(0)
    net = LinkNet(m=4)
    x = torch.randn(2, 15, 32, 32)
    y = torch.randint(0, 5, (2, 32, 32))
    y[:, :4] = 255  # ignored rows
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(net(x), y, ignore_index=255)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
