"""LinkNet for per-pixel conjugate-pair counts, as in the conjugate-pair paper.

LinkNet (Chaurasia and Culurciello, 2017) is an encoder-decoder whose decoder blocks receive the
matching encoder block's output by addition. The paper cuts it to three encoder and three decoder
blocks and replaces the initial 3x3 stride-2 max pooling with a 2x2 stride-1 one, so feature maps
shrink more slowly; the result has about 3 M parameters (the original four-block LinkNet 11.5 M).
Here, with ``width = 64``:

- initial block: 7x7 stride-2 convolution ``in -> 64``, BN, ReLU, 2x2 stride-1 max pooling
  (input padded by one pixel at the right and bottom by replication, so the size is kept);
- encoder block ``i`` (``64 -> 64 -> 128 -> 256``): two residual units of two 3x3 convolutions,
  the first stride 2 with a 1x1 stride-2 projection shortcut (ResNet-18 stages);
- decoder block (``n -> n/4 -> n/4 -> out``): 1x1 convolution, 3x3 stride-2 transposed
  convolution, 1x1 convolution, each with BN and ReLU; decoder 3 output is added to encoder 2's,
  decoder 2 output to encoder 1's, decoder 1 returns to the initial block's resolution;
- final block: 3x3 stride-2 transposed convolution ``64 -> 32``, 3x3 convolution ``32 -> 32``
  (BN, ReLU each) and a 1x1 classifier ``32 -> m + 1``. The original ends with a 2x2 stride-2
  transposed convolution because its initial block divides by four; with the stride-1 pooling
  the network divides by two there, so one upsampling suffices.

The input is the paper's stack of ``m + 1`` RGB images (``inputs = "rgb"``), or that stack plus two
frustum channels per partner (``"rgb+frustum"``, see ``frustum``) and plane-sweep channels
(``"rgb+frustum+stereo"``, see ``stereo``); only the initial convolution's input width differs.

Sizes that are not powers of two (300 = 2^2 * 75): every transposed convolution is given the exact
size of the feature map it mirrors (``output_size``), so the logits always have the input's
height and width, with no padding or cropping of the image.
"""

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.sufficiency.preprocess import check_inputs, input_channels


def _conv_bn_relu(cin: int, cout: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _ResidualUnit(nn.Module):
    """Two 3x3 convolutions with a shortcut (projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + s, inplace=True)


class EncoderBlock(nn.Module):
    """LinkNet encoder block: ``(B, cin, H, W) -> (B, cout, ceil(H/2), ceil(W/2))``."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.units = nn.Sequential(_ResidualUnit(cin, cout, 2), _ResidualUnit(cout, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.units(x)


class DecoderBlock(nn.Module):
    """LinkNet decoder block: ``(B, cin, h, w) -> (B, cout, H, W)`` with ``(H, W)`` given,
    ``H`` in ``{2h - 1, 2h}`` (likewise ``W``)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = max(cin // 4, 1)
        self.reduce = _conv_bn_relu(cin, mid, 1)
        self.up = nn.ConvTranspose2d(mid, mid, 3, 2, 1, bias=False)
        self.up_bn = nn.BatchNorm2d(mid)
        self.expand = _conv_bn_relu(mid, cout, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.reduce(x)
        y = F.relu(self.up_bn(self.up(y, output_size=size)), inplace=True)
        return self.expand(y)


class LinkNet(nn.Module):
    """Three-block LinkNet predicting per-pixel conjugate-pair counts.

    Args:
        m: number of partner frames; input has ``3 (m + 1)`` channels (reference image first),
            output ``m + 1`` class logits (count 0..m).
        width: channels of the initial block (64 in the paper-sized model, ~3.0 M parameters);
            the encoder widths are ``width * (1, 1, 2, 4)``.
        inputs: ``"rgb"`` (the paper), ``"rgb+frustum"`` (``2 m`` more input channels) or
            ``"rgb+frustum+stereo"`` (``3 m + 1`` more).

    Shapes:
        input ``(B, C, H, W)`` float, ``C = preprocess.input_channels(m, inputs)`` (see
        ``preprocess.network_input``), output ``(B, m + 1, H, W)`` logits, for any ``H, W >= 1``.
    """

    def __init__(self, m: int = 4, width: int = 64, inputs: str = "rgb"):
        super().__init__()
        if m < 1:
            raise ValueError(f"m must be >= 1, got {m}")
        if width < 4 or width % 4:
            raise ValueError(f"width must be a positive multiple of 4, got {width}")
        self.m = m
        self.width = width
        self.inputs = check_inputs(inputs)
        self.in_channels = input_channels(m, inputs)
        self.num_classes = m + 1
        w = width
        self.initial = _conv_bn_relu(self.in_channels, w, 7, 2)
        self.enc1 = EncoderBlock(w, w)
        self.enc2 = EncoderBlock(w, 2 * w)
        self.enc3 = EncoderBlock(2 * w, 4 * w)
        self.dec3 = DecoderBlock(4 * w, 2 * w)
        self.dec2 = DecoderBlock(2 * w, w)
        self.dec1 = DecoderBlock(w, w)
        self.final_up = nn.ConvTranspose2d(w, w // 2, 3, 2, 1, bias=False)
        self.final_bn = nn.BatchNorm2d(w // 2)
        self.final_conv = _conv_bn_relu(w // 2, w // 2, 3)
        self.classifier = nn.Conv2d(w // 2, self.num_classes, 1)
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
                if mod.bias is not None:
                    nn.init.zeros_(mod.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        H, W = x.shape[-2:]
        x0 = self.initial(x)
        x0 = F.max_pool2d(F.pad(x0, (0, 1, 0, 1), mode="replicate"), 2, 1)
        e1 = self.enc1(x0)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d3 = self.dec3(e3, e2.shape[-2:]) + e2
        d2 = self.dec2(d3, e1.shape[-2:]) + e1
        d1 = self.dec1(d2, x0.shape[-2:])
        y = F.relu(self.final_bn(self.final_up(d1, output_size=(H, W))), inplace=True)
        return self.classifier(self.final_conv(y))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
