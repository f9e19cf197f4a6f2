"""Auxiliary 2D heads of the backbone stage: per-pixel semantic logits and log-depth, predicted
from the backbone's stride-4 features. They give the backbone a cheap 2D training signal (the
Atlas paper starts from an ImageNet-pretrained ResNet50-FPN; we have no pretrained weights) and
are discarded afterwards: only the backbone goes into the Atlas checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.core.backbone import FeatureBackbone2D
from recon_ros.core.classes import IGNORE_LABEL


class AuxiliaryHeads(nn.Module):
    """``(B, C, h, w)`` features -> semantic logits ``(B, K, h, w)`` and log-depth ``(B, h, w)``
    through one shared 3x3 conv + BatchNorm + ReLU and two 1x1 convolutions."""

    def __init__(self, in_channels: int, num_classes: int, hidden: int = 32) -> None:
        super().__init__()
        if in_channels <= 0 or num_classes <= 0 or hidden <= 0:
            raise ValueError("in_channels, num_classes and hidden: must be positive")
        self.shared = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
        )
        self.semantic = nn.Conv2d(hidden, num_classes, 1)
        self.log_depth = nn.Conv2d(hidden, 1, 1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.shared(features)
        return self.semantic(x), self.log_depth(x)[:, 0]


class BackboneWithHeads(nn.Module):
    """The Atlas 2D backbone plus ``AuxiliaryHeads``: ``(B, 3, H, W)`` RGB in [0, 1] ->
    ``(semantic logits (B, K, H/4, W/4), log-depth (B, H/4, W/4), features (B, C, H/4, W/4))``
    (the features are what Atlas back-projects)."""

    def __init__(self, backbone: FeatureBackbone2D, num_classes: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.heads = AuxiliaryHeads(backbone.out_channels, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.backbone(images)
        logits, log_depth = self.heads(features)
        return logits, log_depth, features


def log_depth_l1(prediction: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """Mean ``|prediction - log(depth)|`` over pixels with valid depth (> 0); 0 (attached) when
    none. ``prediction`` and ``depth`` (B, h, w)."""
    if prediction.shape != depth.shape:
        raise ValueError(
            f"prediction/depth: shapes differ: {tuple(prediction.shape)}, {tuple(depth.shape)}"
        )
    valid = depth > 0
    if not bool(valid.any()):
        return prediction.sum() * 0.0
    return (prediction[valid] - torch.log(depth[valid])).abs().mean()


def descriptor_nce(
    features: torch.Tensor,
    grid: torch.Tensor,
    valid: torch.Tensor,
    temperature: float = 0.1,
) -> torch.Tensor:
    """Multi-view descriptor loss (InfoNCE): the features of the same 3D point seen in two
    frames should be closer (cosine) than those of the other sampled points.

    Atlas finds surfaces where the back-projected features of many views agree; features that
    describe a surface point the same way from every view, and differently from its
    neighbours, make that agreement sharp.

    Args:
        features: (B, 2, C, h, w) feature maps of B frame pairs.
        grid: (B, 2, P, 2) ``grid_sample`` coordinates of P matched points in each frame.
        valid: (B, P) bool, the rows that are true matches.

    Returns:
        Mean cross-entropy over valid rows (0, attached, when none).
    """
    if features.ndim != 5 or features.shape[1] != 2:
        raise ValueError(f"features: expected (B, 2, C, h, w), got {tuple(features.shape)}")
    batch = features.shape[0]
    sampled = F.grid_sample(
        features.flatten(0, 1),
        grid.flatten(0, 1)[:, None].to(features.dtype),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )[:, :, 0]  # (2B, C, P)
    sampled = F.normalize(sampled, dim=1).unflatten(0, (batch, 2))  # (B, 2, C, P)
    logits = torch.einsum("bcp,bcq->bpq", sampled[:, 0], sampled[:, 1]) / temperature
    target = torch.arange(logits.shape[-1], device=logits.device).expand(batch, -1)
    loss = F.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
    mask = valid.flatten().to(loss.dtype)
    if float(mask.sum()) == 0:
        return features.sum() * 0.0
    return (loss * mask).sum() / mask.sum()


def weighted_cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of ``(B, K, ...)`` logits against ``(B, ...)`` labels with optional class
    ``weights`` (K,), ignoring ``IGNORE_LABEL``; 0 (attached) when every label is ignored."""
    labels = labels.long()
    if not bool((labels != IGNORE_LABEL).any()):
        return logits.sum() * 0.0
    if weights is not None:
        weights = weights.to(device=logits.device, dtype=logits.dtype)
    return F.cross_entropy(logits, labels, weight=weights, ignore_index=IGNORE_LABEL)
