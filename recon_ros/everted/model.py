"""Everted U-Net (seed 002, section 3.2): per view, a 2D encoder's features become a coarse
volume (98 channels on 5 x 6 x 4 in the paper); a reconstruction branch of 3D transposed
convolutions (Pix2Vox++ style) up-samples it to the 80 x 96 x 64 occupancy; a segmentation branch
of the same shape does the same for the 6 class masks, each of its layers also reading the
reconstruction branch's output of the same level (the "everted" U-Net skips); the views' volumes
are fused by a context-aware merger (Pix2Vox++): a score per view and voxel from the
reconstruction branch's features one level below the output, softmax over the views, weighted
sum.

The paper's encoder is a frozen ImageNet ResNet-50; none can be fetched here, so ours is a small
CNN trained from scratch. The 2D features become the volume as in Pix2Vox: the image plane is
pooled to the volume's first two axes and the channels split into (volume channels, third axis).
Dropout (``Dropout3d`` after every up-sampling), which the paper found to matter most.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.core.depth_net import pointwise_conv3d

#: The paper's object classes, in mask order.
MASK_CLASSES = ("table", "chair", "nightstand", "laptop", "bag", "human")


@dataclass
class EvertedConfig:
    """Architecture of ``EvertedUNet``.

    Attributes:
        image_size: square input side (224).
        encoder_channels: widths of the 2D encoder's stride-2 stages.
        volume_channels: channels of the coarse volume (98 in the paper).
        volume_dims: the coarse volume (5, 6, 4); doubled per branch layer.
        branch_channels: widths of the branches' layers (each doubles the volume).
        classes: mask classes.
        dropout: ``Dropout3d`` probability after each up-sampling.
        last_kernel: kernel of the last (full-resolution) transposed convolutions: 4 as the
            others, or 2 (each output voxel from its parent alone), three times faster to train
            on our CPU, where that layer's backward pass was half of a step.
    """

    image_size: int = 224
    encoder_channels: tuple[int, ...] = (24, 48, 96, 128, 192)
    volume_channels: int = 98
    volume_dims: tuple[int, int, int] = (5, 6, 4)
    branch_channels: tuple[int, ...] = (48, 24, 12, 8)
    classes: tuple[str, ...] = MASK_CLASSES
    dropout: float = 0.2
    last_kernel: int = 2

    def __post_init__(self) -> None:
        self.encoder_channels = tuple(int(c) for c in self.encoder_channels)
        self.volume_dims = tuple(int(d) for d in self.volume_dims)
        self.branch_channels = tuple(int(c) for c in self.branch_channels)
        self.classes = tuple(self.classes)
        if len(self.volume_dims) != 3 or min(self.volume_dims) < 1:
            raise ValueError(f"volume_dims: expected three sizes, got {self.volume_dims}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected [0, 1), got {self.dropout}")
        if self.last_kernel not in (2, 4):
            raise ValueError(f"last_kernel: expected 2 or 4, got {self.last_kernel}")

    @property
    def output_dims(self) -> tuple[int, int, int]:
        scale = 2 ** len(self.branch_channels)
        return tuple(d * scale for d in self.volume_dims)

    def to_dict(self) -> dict:
        values = asdict(self)
        for key in ("encoder_channels", "volume_dims", "branch_channels", "classes"):
            values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict) -> EvertedConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ImageToVolume(nn.Module):
    """(B, 3, S, S) images in [0, 1] -> (B, volume_channels, *volume_dims) coarse volumes."""

    def __init__(self, config: EvertedConfig):
        super().__init__()
        layers, previous = [], 3
        for width in config.encoder_channels:
            layers += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.features = nn.Sequential(*layers)
        self.dims = config.volume_dims
        self.channels = config.volume_channels
        self.to_volume = nn.Conv2d(previous, config.volume_channels * self.dims[2], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.to_volume(self.features(images * 2.0 - 1.0))
        x = F.adaptive_avg_pool2d(x, self.dims[:2])  # (B, C * D2, D0, D1)
        batch = x.shape[0]
        return x.view(batch, self.channels, self.dims[2], *self.dims[:2]).permute(0, 1, 3, 4, 2)


def _up(in_channels: int, out_channels: int, dropout: float, kernel: int = 4) -> nn.Sequential:
    """Doubles the volume: kernel 4 (padding 1) or 2 (no padding)."""
    padding = 1 if kernel == 4 else 0
    return nn.Sequential(
        nn.ConvTranspose3d(in_channels, out_channels, kernel, 2, padding, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Dropout3d(dropout),
    )


class EvertedUNet(nn.Module):
    """(B, V, 3, S, S) views of a fixed rig -> occupancy logits (B, 1, X, Y, Z) and mask logits
    (B, classes, X, Y, Z), fused over the V views (any V >= 1)."""

    def __init__(self, config: EvertedConfig | None = None):
        super().__init__()
        self.config = config = config or EvertedConfig()
        self.encoder = ImageToVolume(config)
        widths = (config.volume_channels, *config.branch_channels)
        layers = len(widths) - 1
        kernels = [4] * (layers - 1) + [config.last_kernel]
        self.reconstruction = nn.ModuleList(
            _up(widths[i], widths[i + 1], config.dropout, kernels[i]) for i in range(layers)
        )
        # each segmentation layer reads its own previous output and the reconstruction's
        self.segmentation = nn.ModuleList(
            _up(widths[i] if i == 0 else 2 * widths[i], widths[i + 1], config.dropout, kernels[i])
            for i in range(layers)
        )
        last = widths[-1]
        # 1x1x1 heads run as matrix products (pointwise_conv3d): oneDNN is slow for them
        self.occupancy_head = nn.Sequential(nn.Conv3d(last, 1, 1))
        self.mask_head = nn.Sequential(nn.Conv3d(2 * last, len(config.classes), 1))
        # the merger scores each view at half the output's resolution, from the reconstruction
        # branch's features there, and repeats each score over its 2x2x2 voxels: the 3x3x3
        # scorer at full resolution was 40 % of a training step's time on our CPU
        self.scorer = nn.Sequential(
            nn.Conv3d(widths[-2], 8, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv3d(8, 1, 3, padding=1),
        )

    def per_view(
        self, images: torch.Tensor, with_scores: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(N, 3, S, S) -> occupancy logits (N, 1, X, Y, Z), mask logits (N, C, X, Y, Z) and
        merger scores (N, 1, X, Y, Z) of each view alone (None unless ``with_scores``)."""
        volume = self.encoder(images)
        reconstruction, segmentation = volume, volume
        scores = None
        last = len(self.reconstruction) - 1
        for index, (rec_layer, seg_layer) in enumerate(
            zip(self.reconstruction, self.segmentation, strict=True)
        ):
            if index == last and with_scores:
                coarse = self.scorer(reconstruction)
                scores = coarse.repeat_interleave(2, 2).repeat_interleave(2, 3)
                scores = scores.repeat_interleave(2, 4)
            seg_input = segmentation if index == 0 else torch.cat([segmentation, reconstruction], 1)
            reconstruction = rec_layer(reconstruction)
            segmentation = seg_layer(seg_input)
        occupancy = pointwise_conv3d(self.occupancy_head, reconstruction)
        masks = pointwise_conv3d(self.mask_head, torch.cat([segmentation, reconstruction], 1))
        return occupancy, masks, scores

    def forward(self, views: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.image_size
        if views.ndim != 5 or tuple(views.shape[2:]) != (3, size, size) or views.shape[1] < 1:
            raise ValueError(
                f"views: expected (B, V >= 1, 3, {size}, {size}), got {tuple(views.shape)}"
            )
        batch, count = views.shape[:2]
        # one view: the merger's softmax is 1 everywhere, its scores need not be computed
        occupancy, masks, scores = self.per_view(views.flatten(0, 1), with_scores=count > 1)
        if count == 1:
            return occupancy, masks
        weights = merger_weights(scores.view(batch, count, *scores.shape[1:]))
        fused_occupancy = (weights * occupancy.view(batch, count, *occupancy.shape[1:])).sum(1)
        fused_masks = (weights * masks.view(batch, count, *masks.shape[1:])).sum(1)
        return fused_occupancy, fused_masks


def merger_weights(scores: torch.Tensor) -> torch.Tensor:
    """(B, V, 1, X, Y, Z) scores -> the views' weights, a softmax over V per voxel."""
    if scores.ndim != 6 or scores.shape[2] != 1:
        raise ValueError(f"scores: expected (B, V, 1, X, Y, Z), got {tuple(scores.shape)}")
    return torch.softmax(scores, dim=1)


def everted_losses(
    occupancy_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    occupancy: torch.Tensor,
    masks: torch.Tensor,
    stage: str = "both",
) -> dict[str, torch.Tensor]:
    """BCE of the occupancy (B, 1, X, Y, Z) and of the masks (B, C, X, Y, Z) against 0/1
    targets of the same shapes; ``stage`` "reconstruction" counts the occupancy alone (the
    paper's first stage), "both" adds the masks."""
    if stage not in ("reconstruction", "both"):
        raise ValueError(f"stage: expected 'reconstruction' or 'both', got {stage!r}")
    if occupancy_logits.shape != occupancy.shape or mask_logits.shape != masks.shape:
        raise ValueError(
            f"logits/targets: shapes differ: {tuple(occupancy_logits.shape)} vs "
            f"{tuple(occupancy.shape)}, {tuple(mask_logits.shape)} vs {tuple(masks.shape)}"
        )
    rec = F.binary_cross_entropy_with_logits(occupancy_logits, occupancy.float())
    out = {"reconstruction": rec, "total": rec}
    if stage == "both":
        seg = F.binary_cross_entropy_with_logits(mask_logits, masks.float())
        out["segmentation"] = seg
        out["total"] = rec + seg
    return out
