"""The Atlas 3D encoder-decoder (Murez et al. 2020, sections 3.2 and 4).

Four scales (1, 1/2, 1/4, 1/8) with channels doubling at each stride-2 3x3x3 downsampling;
(1, 2, 3, 4) residual 3x3x3 blocks per encoder scale and (3, 2, 1) per decoder scale; decoder
upsampling is trilinear x2 followed by a 1x1x1 convolution that halves the channels; encoder
features are added to the decoder at each scale (additive skips); every convolution is followed
by BatchNorm and ReLU. TSDF heads (1x1x1 conv + tanh) sit at each decoded scale, coarse to fine
1/4, 1/2, 1; a 1x1x1 semantic head gives class logits at full resolution.

Output scale: the heads give ``tsdf_scale * tanh(x)``. Atlas's implementation uses 1.05 ("label
smoothing"): the free-space target +1 is then reached at a finite activation, where tanh still
has a gradient; with 1.0 free space drives the heads into saturation, the coarse scales clamp
every voxel and the finer scales stop learning. In eval mode the output is clipped to [-1, 1],
the range the map and meshing expect (only values beyond the truncation change).

Coarse-to-fine clamping: a voxel whose TSDF at one scale is at or beyond ``clamp_threshold``
(0.99 of the truncation) is clamped at every following scale (its 2x2x2 children, by nearest
upsampling). The paper clamps "to one"; we clamp to the *sign* of the coarse prediction, i.e. +1
in free space (the paper's case) and -1 deep behind surfaces or inside solids, so a clamped
region never invents a zero crossing next to unclamped negative voxels. The clamp masks are
returned so the loss skips those voxels.

Default widths: base 16 -> (16, 32, 64, 128) channels. About 5.4 M parameters, most of them in the
1/8-scale blocks where they cost little compute; the full-resolution convolutions, which dominate
the run time on a CPU, stay at 16 channels (Atlas's GPU model starts at 32).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

#: Number of stride-2 downsamplings; input dims must divide by 2 ** this.
NUM_DOWNSAMPLINGS = 3
DIMS_MULTIPLE = 2**NUM_DOWNSAMPLINGS


def conv_bn_relu_3d(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1
) -> nn.Sequential:
    """Conv3d (padding keeps the size at stride 1) + BatchNorm3d + ReLU."""
    return nn.Sequential(
        nn.Conv3d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        ),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualBlock3d(nn.Module):
    """Two 3x3x3 conv + BatchNorm layers with an identity shortcut; ``(B, C, X, Y, Z)`` in and
    out."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(channels)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + x, inplace=True)


class Upsample3d(nn.Module):
    """Trilinear x2 upsampling then 1x1x1 conv + BatchNorm + ReLU to ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = conv_bn_relu_3d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="trilinear", align_corners=False)
        return self.project(x)


@dataclass
class Atlas3DOutput:
    """Outputs of ``AtlasNet3D``.

    Attributes:
        tsdf: TSDF in [-1, 1], coarse to fine: (B, 1, X/4, Y/4, Z/4), (B, 1, X/2, ...),
            (B, 1, X, Y, Z); clamped voxels hold exactly +1 or -1.
        clamp_masks: bool, same shapes as ``tsdf``: voxels clamped by a coarser scale (all False
            at the coarsest).
        semantic_logits: (B, num_classes, X, Y, Z), or None without a semantic head.
    """

    tsdf: list[torch.Tensor]
    clamp_masks: list[torch.Tensor]
    semantic_logits: torch.Tensor | None


def validate_volume_input(x: torch.Tensor, in_channels: int) -> None:
    """Check ``(B, in_channels, X, Y, Z)`` with X, Y, Z multiples of 8."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"volume: expected (B, C, X, Y, Z), got {shape}")
    if x.shape[1] != in_channels:
        raise ValueError(f"volume: expected {in_channels} channels, got {x.shape[1]}")
    if any(d % DIMS_MULTIPLE or d == 0 for d in x.shape[2:]):
        raise ValueError(
            f"volume: spatial dims {tuple(x.shape[2:])} must be positive multiples of "
            f"{DIMS_MULTIPLE} (three stride-2 downsamplings)"
        )


class AtlasNet3D(nn.Module):
    """Atlas 3D encoder-decoder: ``(B, C_in, X, Y, Z) -> Atlas3DOutput``.

    Args:
        in_channels: channels of the input volume (2D feature channels + 1 observed flag in
            ``AtlasModel``).
        base_channels: channels at full resolution; doubled at each of the three downsamplings.
        num_classes: semantic classes (0: no semantic head).
        encoder_blocks: residual blocks per encoder scale, fine to coarse (paper: 1, 2, 3, 4).
        decoder_blocks: residual blocks per decoder scale, coarse to fine (paper: 3, 2, 1).
        clamp_threshold: |TSDF| at which a voxel is clamped at the finer scales (paper: 0.99).
        tsdf_scale: heads output ``tsdf_scale * tanh(x)`` (Atlas's code: 1.05; see the module
            docstring).
    """

    def __init__(
        self,
        in_channels: int,
        base_channels: int = 16,
        num_classes: int = 9,
        encoder_blocks: Sequence[int] = (1, 2, 3, 4),
        decoder_blocks: Sequence[int] = (3, 2, 1),
        clamp_threshold: float = 0.99,
        tsdf_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if len(encoder_blocks) != NUM_DOWNSAMPLINGS + 1 or len(decoder_blocks) != NUM_DOWNSAMPLINGS:
            raise ValueError(
                f"encoder_blocks/decoder_blocks: expected 4 and 3 values, got "
                f"{tuple(encoder_blocks)} and {tuple(decoder_blocks)}"
            )
        if in_channels <= 0 or base_channels <= 0 or num_classes < 0:
            raise ValueError("in_channels and base_channels must be positive, num_classes >= 0")
        if not 0.0 < clamp_threshold <= 1.0:
            raise ValueError(f"clamp_threshold: must be in (0, 1], got {clamp_threshold}")
        if not 1.0 <= tsdf_scale <= 2.0:
            raise ValueError(f"tsdf_scale: must be in [1, 2], got {tsdf_scale}")
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.clamp_threshold = clamp_threshold
        self.tsdf_scale = float(tsdf_scale)
        channels = [base_channels * 2**s for s in range(NUM_DOWNSAMPLINGS + 1)]
        self.stem = conv_bn_relu_3d(in_channels, channels[0])
        self.down = nn.ModuleList(
            conv_bn_relu_3d(channels[s], channels[s + 1], stride=2)
            for s in range(NUM_DOWNSAMPLINGS)
        )
        self.encoder = nn.ModuleList(
            nn.Sequential(*(ResidualBlock3d(channels[s]) for _ in range(encoder_blocks[s])))
            for s in range(NUM_DOWNSAMPLINGS + 1)
        )
        # Decoder stage d (0: 1/4 scale, 1: 1/2, 2: full) works at scale index 2 - d.
        self.up = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.tsdf_heads = nn.ModuleList()
        for stage in range(NUM_DOWNSAMPLINGS):
            scale = NUM_DOWNSAMPLINGS - 1 - stage
            self.up.append(Upsample3d(channels[scale + 1], channels[scale]))
            self.decoder.append(
                nn.Sequential(
                    *(ResidualBlock3d(channels[scale]) for _ in range(decoder_blocks[stage]))
                )
            )
            self.tsdf_heads.append(nn.Conv3d(channels[scale], 1, 1))
        self.semantic_head = nn.Conv3d(channels[0], num_classes, 1) if num_classes > 0 else None

    def forward(self, x: torch.Tensor) -> Atlas3DOutput:
        validate_volume_input(x, self.in_channels)
        skips = []
        x = self.encoder[0](self.stem(x))
        skips.append(x)
        for s in range(NUM_DOWNSAMPLINGS):
            x = self.encoder[s + 1](self.down[s](x))
            skips.append(x)
        tsdf_outputs, clamp_masks = [], []
        clamp_mask = clamp_value = None
        for stage in range(NUM_DOWNSAMPLINGS):
            scale = NUM_DOWNSAMPLINGS - 1 - stage
            x = self.decoder[stage](self.up[stage](x) + skips[scale])
            tsdf = self.tsdf_scale * torch.tanh(self.tsdf_heads[stage](x))
            if not self.training:
                tsdf = tsdf.clamp(-1.0, 1.0)
            if clamp_mask is None:
                clamp_mask = torch.zeros_like(tsdf, dtype=torch.bool)
            else:
                tsdf = torch.where(clamp_mask, clamp_value, tsdf)
            tsdf_outputs.append(tsdf)
            clamp_masks.append(clamp_mask)
            if scale > 0:
                # Children of a voxel beyond the threshold are clamped to its sign from now on
                # (already-clamped voxels are exactly +-1, so they stay clamped).
                saturated = tsdf.detach().abs() >= self.clamp_threshold
                clamp_mask = F.interpolate(saturated.to(tsdf.dtype), scale_factor=2.0) > 0.5
                clamp_value = F.interpolate(torch.sign(tsdf.detach()), scale_factor=2.0)
        logits = self.semantic_head(x) if self.semantic_head is not None else None
        return Atlas3DOutput(tsdf=tsdf_outputs, clamp_masks=clamp_masks, semantic_logits=logits)
