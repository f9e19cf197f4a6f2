"""2D feature backbone: a small residual encoder to stride 32 with an FPN top-down path and a
Panoptic-FPN style merge to stride 4, trained from scratch.

Atlas uses a pretrained ResNet50-FPN with 32 output channels. We have no pretrained weights and
want live use on a CPU, so the encoder is five times narrower than ResNet18 (widths 16-128, two
basic blocks per stage, about 1.2 M parameters in all): enough capacity for synthetic indoor
scenes, about 0.9 GMAC for a 384x288 image. The output keeps Atlas's 32 channels by default; the
3D network's cost grows with it only in its first convolution.
"""

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

#: The encoder halves the resolution five times, so images must divide by this.
BACKBONE_STRIDE_MULTIPLE = 32
#: Output stride of the feature maps.
FEATURE_STRIDE = 4

# Per-channel statistics of natural images (ImageNet), used only to centre the input.
_RGB_MEAN = (0.485, 0.456, 0.406)
_RGB_STD = (0.229, 0.224, 0.225)


def conv_bn_relu_2d(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock2d(nn.Module):
    """Basic residual block (two 3x3 convolutions); a strided 1x1 projection on the shortcut when
    the shape changes. ``(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)``."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x), inplace=True)


class FeatureBackbone2D(nn.Module):
    """RGB images ``(B, 3, H, W)`` in [0, 1] -> features ``(B, C, H / 4, W / 4)``.

    Args:
        out_channels: ``C``, channels of the output features (back-projected into the volume).
        widths: channels of the stem (stride 2) and of the four stages (strides 4, 8, 16, 32).
        fpn_channels: channels of the FPN lateral and top-down maps.
        merge_channels: channels of the per-level branches summed at stride 4.

    ``H`` and ``W`` must be multiples of 32. Normalisation happens inside.
    """

    def __init__(
        self,
        out_channels: int = 32,
        widths: tuple[int, ...] = (16, 32, 64, 96, 128),
        fpn_channels: int = 64,
        merge_channels: int = 32,
    ) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"widths: expected 5 values (stem + 4 stages), got {widths}")
        if out_channels <= 0 or min(widths) <= 0 or fpn_channels <= 0 or merge_channels <= 0:
            raise ValueError("backbone channels must be positive")
        self.out_channels = out_channels
        self.register_buffer("rgb_mean", torch.tensor(_RGB_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("rgb_std", torch.tensor(_RGB_STD).view(1, 3, 1, 1), False)
        self.stem = conv_bn_relu_2d(3, widths[0], stride=2)
        self.stages = nn.ModuleList(
            nn.Sequential(
                ResidualBlock2d(widths[i], widths[i + 1], stride=2),
                ResidualBlock2d(widths[i + 1], widths[i + 1]),
            )
            for i in range(4)
        )
        self.laterals = nn.ModuleList(nn.Conv2d(w, fpn_channels, 1) for w in widths[1:])
        # Level k (stride 4 * 2^k) gets max(1, k) conv blocks, upsampling x2 after each of the
        # first k, so every branch ends at stride 4 (Panoptic FPN's semantic branch).
        self.merge_branches = nn.ModuleList()
        for level in range(4):
            blocks = [conv_bn_relu_2d(fpn_channels, merge_channels)]
            blocks += [conv_bn_relu_2d(merge_channels, merge_channels) for _ in range(level - 1)]
            self.merge_branches.append(nn.ModuleList(blocks))
        self.head = nn.Conv2d(merge_channels, out_channels, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
        height, width = images.shape[-2:]
        if height % BACKBONE_STRIDE_MULTIPLE or width % BACKBONE_STRIDE_MULTIPLE:
            raise ValueError(
                f"images: height and width must be multiples of {BACKBONE_STRIDE_MULTIPLE}, "
                f"got {width}x{height}; resize with core.camera.resize_image first"
            )
        x = self.stem((images - self.rgb_mean) / self.rgb_std)
        encoded = []
        for stage in self.stages:
            x = stage(x)
            encoded.append(x)
        # FPN top-down path: coarse maps upsampled and added to the lateral of the finer level.
        pyramid = [None] * 4
        top = self.laterals[3](encoded[3])
        pyramid[3] = top
        for level in (2, 1, 0):
            top = self.laterals[level](encoded[level]) + F.interpolate(
                top, scale_factor=2.0, mode="nearest"
            )
            pyramid[level] = top
        merged = 0
        for level, branch in enumerate(self.merge_branches):
            y = pyramid[level]
            for block in branch:
                y = block(y)
                if level > 0:
                    y = F.interpolate(y, scale_factor=2.0, mode="bilinear", align_corners=False)
            merged = merged + y
        return self.head(merged)
