"""The 3D refinement network of the fusion pipeline: a small 3D U-Net that reads blocks of the
fused map (TSDF, weight, label votes) and returns a refined TSDF (noise of the stereo depth
removed, small holes filled), an occupancy probability and per-voxel class logits.

It runs on blocks around chunks that hold fused surface (``core.surface_refiner``), so its cost
follows the surface, not the window volume. Blocks are given gravity-aligned: the last axis is
world up (``canonical_orientation``), the way the training scenes are, so "floor" and "ceiling"
mean something to it whatever the world frame.

ROS-free; shapes (B, C, X, Y, Z).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.core.classes import CLASS_NAMES, IGNORE_LABEL

#: Fusion weight that counts as "well observed" for the weight channel's scale.
WEIGHT_SCALE = 64.0


@dataclass
class RefineNetConfig:
    """Architecture of ``SurfaceRefinerNet``.

    Attributes:
        class_names: classes of the label votes and of the semantic output.
        channels: feature channels at full, 1/2 and 1/4 resolution.
        block: edge of the blocks it is trained on (voxels, a multiple of 4).
    """

    class_names: tuple[str, ...] = field(default_factory=lambda: tuple(CLASS_NAMES))
    channels: tuple[int, int, int] = (12, 24, 32)
    block: int = 32

    def __post_init__(self) -> None:
        self.class_names = tuple(self.class_names)
        self.channels = tuple(int(c) for c in self.channels)
        if len(self.channels) != 3 or min(self.channels) <= 0:
            raise ValueError(f"channels: expected three positive integers, got {self.channels}")
        if self.block <= 0 or self.block % 4:
            raise ValueError(f"block: expected a positive multiple of 4, got {self.block}")
        if not self.class_names:
            raise ValueError("class_names: need at least one class")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def in_channels(self) -> int:
        return 3 + self.num_classes

    def to_dict(self) -> dict:
        values = asdict(self)
        values["class_names"] = list(self.class_names)
        values["channels"] = list(self.channels)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> RefineNetConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def refiner_input(
    tsdf: torch.Tensor,
    weight: torch.Tensor,
    label: torch.Tensor,
    confidence: torch.Tensor,
    num_classes: int,
) -> torch.Tensor:
    """Network input channels of fused map blocks.

    Args:
        tsdf: (B, X, Y, Z) in [-1, 1] (1 where unobserved).
        weight: (B, X, Y, Z) fusion weight (0: unobserved).
        label: (B, X, Y, Z) int class ids (``IGNORE_LABEL`` or >= num_classes: no label).
        confidence: (B, X, Y, Z) share of the votes the label holds.

    Returns:
        (B, 3 + num_classes, X, Y, Z): tsdf (0 where unobserved), observed mask, scaled log
        weight, and the label as a one-hot scaled by its confidence.
    """
    if tsdf.ndim != 4:
        raise ValueError(f"tsdf: expected (B, X, Y, Z), got {tuple(tsdf.shape)}")
    for name, array in (("weight", weight), ("label", label), ("confidence", confidence)):
        if array.shape != tsdf.shape:
            raise ValueError(f"{name}: expected {tuple(tsdf.shape)}, got {tuple(array.shape)}")
    weight = weight.float()
    observed = (weight > 0).float()
    tsdf = tsdf.float().clamp(-1, 1) * observed
    log_weight = torch.log1p(weight) / torch.log1p(torch.tensor(WEIGHT_SCALE))
    label = label.long()
    known = (label >= 0) & (label < num_classes) & (weight > 0)
    one_hot = F.one_hot(torch.where(known, label, 0), num_classes).permute(0, 4, 1, 2, 3)
    votes = one_hot.float() * (confidence.float() * known.float())[:, None]
    return torch.cat([tsdf[:, None], observed[:, None], log_weight[:, None], votes], dim=1)


def _conv(in_ch: int, out_ch: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm3d(out_ch),
        nn.ReLU(inplace=True),
    )


@dataclass
class RefineOutput:
    """Outputs at the input resolution.

    Attributes:
        tsdf: (B, X, Y, Z) refined TSDF in [-1, 1].
        occupancy_logits: (B, X, Y, Z) logit of "within the truncation band of a surface".
        semantic_logits: (B, num_classes, X, Y, Z).
    """

    tsdf: torch.Tensor
    occupancy_logits: torch.Tensor
    semantic_logits: torch.Tensor


class SurfaceRefinerNet(nn.Module):
    """3D U-Net over fused blocks (module docstring); about 0.18 M parameters.

    The TSDF head predicts a correction added to the fused TSDF and starts at zero, so the
    untrained network returns the fused TSDF unchanged.
    """

    def __init__(self, config: RefineNetConfig | None = None) -> None:
        super().__init__()
        self.config = config or RefineNetConfig()
        c0, c1, c2 = self.config.channels
        self.enc0 = nn.Sequential(_conv(self.config.in_channels, c0), _conv(c0, c0))
        self.enc1 = nn.Sequential(_conv(c0, c1, stride=2), _conv(c1, c1))
        self.enc2 = nn.Sequential(_conv(c1, c2, stride=2), _conv(c2, c2), _conv(c2, c2))
        self.dec1 = nn.Sequential(_conv(c2 + c1, c1), _conv(c1, c1))
        self.dec0 = nn.Sequential(_conv(c1 + c0, c0), _conv(c0, c0))
        self.tsdf_head = nn.Conv3d(c0, 1, 1)
        self.occupancy_head = nn.Conv3d(c0, 1, 1)
        self.semantic_head = nn.Conv3d(c0, self.config.num_classes, 1)
        nn.init.zeros_(self.tsdf_head.weight)
        nn.init.zeros_(self.tsdf_head.bias)

    def forward(self, inputs: torch.Tensor) -> RefineOutput:
        """Args: inputs (B, 3 + num_classes, X, Y, Z) from ``refiner_input``; X, Y, Z multiples
        of 4."""
        if inputs.ndim != 5 or inputs.shape[1] != self.config.in_channels:
            raise ValueError(
                f"inputs: expected (B, {self.config.in_channels}, X, Y, Z), got "
                f"{tuple(inputs.shape)}"
            )
        if any(s % 4 for s in inputs.shape[2:]):
            raise ValueError(f"inputs: X, Y, Z must be multiples of 4, got {inputs.shape[2:]}")
        x0 = self.enc0(inputs)
        x1 = self.enc1(x0)
        x2 = self.enc2(x1)
        up = F.interpolate(x2, size=x1.shape[2:], mode="trilinear", align_corners=False)
        u1 = self.dec1(torch.cat([up, x1], dim=1))
        up = F.interpolate(u1, size=x0.shape[2:], mode="trilinear", align_corners=False)
        u0 = self.dec0(torch.cat([up, x0], dim=1))
        fused = inputs[:, 0]
        observed = inputs[:, 1] > 0
        base = torch.where(observed, fused, torch.ones_like(fused))
        tsdf = (base + self.tsdf_head(u0)[:, 0]).clamp(-1.0, 1.0)
        return RefineOutput(tsdf, self.occupancy_head(u0)[:, 0], self.semantic_head(u0))


def canonical_orientation(volume: torch.Tensor, up_axis: int, up_sign: int) -> torch.Tensor:
    """Reorder the last three axes of ``volume`` (..., X, Y, Z) so that world up is the last
    axis, pointing to higher indices (the inverse is ``world_orientation``)."""
    if up_axis not in (0, 1, 2) or up_sign not in (1, -1):
        raise ValueError(f"up axis/sign: expected 0-2 and +-1, got {up_axis}, {up_sign}")
    lead = volume.ndim - 3
    others = [a for a in range(3) if a != up_axis]
    order = list(range(lead)) + [lead + a for a in (*others, up_axis)]
    volume = volume.permute(order)
    return volume.flip(-1) if up_sign < 0 else volume


def world_orientation(volume: torch.Tensor, up_axis: int, up_sign: int) -> torch.Tensor:
    """Inverse of ``canonical_orientation``."""
    if up_axis not in (0, 1, 2) or up_sign not in (1, -1):
        raise ValueError(f"up axis/sign: expected 0-2 and +-1, got {up_axis}, {up_sign}")
    if up_sign < 0:
        volume = volume.flip(-1)
    lead = volume.ndim - 3
    others = [a for a in range(3) if a != up_axis]
    order = (*others, up_axis)
    inverse = [order.index(a) for a in range(3)]
    return volume.permute(list(range(lead)) + [lead + a for a in inverse])


@dataclass
class RefineLossWeights:
    """Weights of the terms of ``refine_losses``."""

    tsdf: float = 1.0
    occupancy: float = 0.5
    semantic: float = 0.5
    semantic_class_weights: torch.Tensor | None = None


def log_transform(tsdf: torch.Tensor) -> torch.Tensor:
    """sign(t) log(1 + |t|): the TSDF scale the Atlas loss compares in."""
    return torch.sign(tsdf) * torch.log1p(tsdf.abs())


def refine_losses(
    output: RefineOutput,
    inputs: torch.Tensor,
    tsdf_gt: torch.Tensor,
    observed_gt: torch.Tensor,
    label_gt: torch.Tensor,
    weights: RefineLossWeights | None = None,
) -> dict[str, torch.Tensor]:
    """Training losses.

    Args:
        output: the network's output for ``inputs`` (B, C, X, Y, Z).
        tsdf_gt: (B, X, Y, Z) ground-truth TSDF in [-1, 1] (truncated as the map's sensor path).
        observed_gt: (B, X, Y, Z) bool, where the ground truth is known.
        label_gt: (B, X, Y, Z) int64 classes (``IGNORE_LABEL`` where none).

    Returns:
        dict with ``tsdf`` (log-L1 near the true or the fused surface), ``occupancy`` (balanced
        binary cross-entropy of |tsdf_gt| < 1: the guard against the all-free collapse),
        ``semantic`` (cross-entropy near the true surface) and ``total``.
    """
    weights = weights or RefineLossWeights()
    if tsdf_gt.shape != output.tsdf.shape:
        raise ValueError(f"tsdf_gt: expected {tuple(output.tsdf.shape)}, got {tsdf_gt.shape}")
    known = observed_gt.bool()
    near_gt = known & (tsdf_gt.abs() < 1.0)
    fused_near = (inputs[:, 1] > 0) & (inputs[:, 0].abs() < 1.0)
    near = near_gt | (known & fused_near)
    count = near.sum().clamp(min=1)
    difference = (log_transform(output.tsdf) - log_transform(tsdf_gt)).abs()
    losses = {"tsdf": (difference * near).sum() / count}
    target = near_gt.float()
    positives = (target * known).sum()
    negatives = known.sum() - positives
    pos_weight = (negatives / positives.clamp(min=1.0)).clamp(1.0, 50.0)
    bce = F.binary_cross_entropy_with_logits(
        output.occupancy_logits, target, pos_weight=pos_weight, reduction="none"
    )
    losses["occupancy"] = (bce * known).sum() / known.sum().clamp(min=1)
    labels = torch.where(near_gt, label_gt.long(), IGNORE_LABEL)
    labels = torch.where(labels < output.semantic_logits.shape[1], labels, IGNORE_LABEL)
    class_weights = weights.semantic_class_weights
    if class_weights is not None:
        class_weights = class_weights.to(output.semantic_logits)
    if bool((labels != IGNORE_LABEL).any()):
        losses["semantic"] = F.cross_entropy(
            output.semantic_logits, labels, weight=class_weights, ignore_index=IGNORE_LABEL
        )
    else:
        losses["semantic"] = output.semantic_logits.sum() * 0.0
    losses["total"] = (
        weights.tsdf * losses["tsdf"]
        + weights.occupancy * losses["occupancy"]
        + weights.semantic * losses["semantic"]
    )
    return losses
