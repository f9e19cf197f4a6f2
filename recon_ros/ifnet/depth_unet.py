"""The single-image depth regressor (the seed paper's section 2.1): a U-Net whose output goes
through a sigmoid renormalised to the data's depth range.

The paper's has 8 levels on 256x256 inputs padded square; ours is sized for a 2-core CPU
(``levels`` 5 by default) and takes any input whose sides are multiples of 2^levels, so no
square padding is needed and the intrinsics stay those of the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

#: ImageNet-style input normalisation (mean, std per channel) of images in [0, 1].
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DepthUNet(nn.Module):
    """(B, 3, H, W) images in [0, 1] (and (B, extra_channels, H, W) more inputs, e.g. the floor
    prior) -> (B, H, W) depth in [min_depth, max_depth] metres.

    Args:
        levels: down/up-sampling steps (H and W must be multiples of 2^levels).
        base_channels: channels at full resolution, doubled per level up to ``max_channels``.
        min_depth, max_depth: the sigmoid's range.
        extra_channels: input channels beside the image's three.
    """

    def __init__(
        self,
        levels: int = 5,
        base_channels: int = 16,
        max_channels: int = 128,
        min_depth: float = 0.2,
        max_depth: float = 8.0,
        extra_channels: int = 0,
    ):
        super().__init__()
        if levels < 1 or base_channels < 1 or not 0 < min_depth < max_depth:
            raise ValueError("DepthUNet: need levels >= 1, base_channels >= 1, 0 < min < max")
        self.levels = int(levels)
        self.extra_channels = int(extra_channels)
        self.min_depth, self.max_depth = float(min_depth), float(max_depth)
        widths = [min(base_channels * 2**i, max_channels) for i in range(levels + 1)]
        self.stem = _block(3 + self.extra_channels, widths[0])
        self.down = nn.ModuleList(_block(widths[i], widths[i + 1]) for i in range(levels))
        self.up = nn.ModuleList(
            _block(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(levels))
        )
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.register_buffer("mean", torch.tensor(_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
        expected = (images.shape[0], self.extra_channels, *images.shape[2:])
        if self.extra_channels and (extra is None or tuple(extra.shape) != expected):
            got = None if extra is None else tuple(extra.shape)
            raise ValueError(f"extra: expected {expected}, got {got}")
        multiple = 2**self.levels
        if images.shape[2] % multiple or images.shape[3] % multiple:
            raise ValueError(
                f"images: H and W must be multiples of {multiple}, got "
                f"{images.shape[3]}x{images.shape[2]}"
            )
        x = (images - self.mean) / self.std
        x = self.stem(torch.cat([x, extra], dim=1) if self.extra_channels else x)
        skips = [x]
        for down in self.down:
            x = down(F.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up in self.up:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = up(torch.cat([x, skip], dim=1))
        unit = torch.sigmoid(self.head(x))[:, 0]
        return self.min_depth + (self.max_depth - self.min_depth) * unit
