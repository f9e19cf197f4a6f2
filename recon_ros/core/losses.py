"""Atlas training losses (Murez et al. 2020, section 4).

TSDF: L1 between log-transformed prediction and target, ``sign(x) log(|x| + 1)`` (after Dai et
al., ScanComplete, Atlas's ref. [14]), at every decoded scale, on voxels observed in the ground
truth plus voxels whose whole vertical (z) column is unobserved (probably outside the room: this
stops the network hallucinating geometry there), never on voxels clamped by a coarser scale.

Ground truth at the coarser scales (``downsample_tsdf_target``): coarse voxel ``I`` is the cell
of its 2^s children ``2^s I .. 2^s I + 2^s - 1`` along each axis (the convention of the decoder's
trilinear ``align_corners=False`` upsampling and of the nearest upsampling of clamp masks). Its
TSDF is the mean of the children's (same truncation distance in metres at every scale), so it
reads +-1 only when all children lie beyond the truncation with one sign - exactly the case in
which clamping the children at the next scale is right. It is observed when any child is.

Semantics: cross-entropy on the full-resolution logits, ignoring ``IGNORE_LABEL`` (255).
"""

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.classes import IGNORE_LABEL


def log_transform(tsdf: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log(|x| + 1)``, elementwise."""
    return torch.sign(tsdf) * torch.log1p(tsdf.abs())


def unobserved_column_mask(observed: torch.Tensor) -> torch.Tensor:
    """Voxels whose entire vertical column is unobserved.

    Args:
        observed: (B, 1, X, Y, Z) or (B, X, Y, Z) bool.

    Returns:
        Bool tensor of the same shape: True where no voxel of the (x, y) column is observed.
    """
    if observed.dtype != torch.bool:
        raise ValueError(f"observed: expected a bool tensor, got {observed.dtype}")
    column_observed = observed.any(dim=-1, keepdim=True)
    return (~column_observed).expand_as(observed)


def downsample_tsdf_target(
    tsdf: torch.Tensor, observed: torch.Tensor, factor: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth at a coarser scale (see the module docstring).

    Args:
        tsdf: (B, 1, X, Y, Z) target TSDF in [-1, 1].
        observed: (B, 1, X, Y, Z) bool.
        factor: 1, 2, 4, ... dividing X, Y and Z.

    Returns:
        tsdf (B, 1, X/f, Y/f, Z/f) as the mean over each cell, observed as any over each cell.
    """
    if tsdf.ndim != 5 or observed.shape != tsdf.shape:
        raise ValueError(
            f"tsdf/observed: expected matching (B, 1, X, Y, Z), got {tuple(tsdf.shape)} and "
            f"{tuple(observed.shape)}"
        )
    if factor < 1 or any(d % factor for d in tsdf.shape[2:]):
        raise ValueError(
            f"factor: {factor} must be >= 1 and divide the dims {tuple(tsdf.shape[2:])}"
        )
    if factor == 1:
        return tsdf, observed
    coarse_tsdf = F.avg_pool3d(tsdf, factor)
    coarse_observed = F.max_pool3d(observed.to(tsdf.dtype), factor) > 0.5
    return coarse_tsdf, coarse_observed


def tsdf_l1_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    observed: torch.Tensor,
    clamp_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean log-L1 TSDF loss of one scale over the supervised voxels.

    Args:
        prediction, target: (B, 1, X, Y, Z).
        observed: (B, 1, X, Y, Z) bool, voxels observed in the ground truth.
        clamp_mask: (B, 1, X, Y, Z) bool, voxels clamped by a coarser scale (skipped).

    Returns:
        Scalar; 0 (still attached to the graph) when no voxel is supervised.
    """
    if prediction.shape != target.shape or observed.shape != target.shape:
        raise ValueError(
            f"prediction/target/observed: shapes differ: {tuple(prediction.shape)}, "
            f"{tuple(target.shape)}, {tuple(observed.shape)}"
        )
    supervised = observed | unobserved_column_mask(observed)
    if clamp_mask is not None:
        supervised = supervised & ~clamp_mask
    error = (log_transform(prediction) - log_transform(target)).abs()
    count = supervised.sum()
    if int(count) == 0:
        return prediction.sum() * 0.0
    return (error * supervised).sum() / count


def multiscale_tsdf_loss(
    predictions: Sequence[torch.Tensor],
    clamp_masks: Sequence[torch.Tensor],
    target: torch.Tensor,
    observed: torch.Tensor,
    scale_weights: Sequence[float] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sum over scales of ``tsdf_l1_loss``; the full-resolution target is downsampled to each
    prediction's size.

    Args:
        predictions: TSDF per scale, coarse to fine, the last at the target's resolution.
        clamp_masks: matching bool masks (``Atlas3DOutput.clamp_masks``).
        target: (B, 1, X, Y, Z); observed: same shape, bool.
        scale_weights: per-scale weights (default 1 each).

    Returns:
        The weighted sum and the per-scale losses.
    """
    if len(predictions) != len(clamp_masks):
        raise ValueError("predictions and clamp_masks: different number of scales")
    weights = list(scale_weights) if scale_weights is not None else [1.0] * len(predictions)
    if len(weights) != len(predictions):
        raise ValueError(f"scale_weights: expected {len(predictions)} values, got {len(weights)}")
    per_scale = []
    for prediction, clamp_mask in zip(predictions, clamp_masks, strict=True):
        factor = target.shape[-1] // prediction.shape[-1]
        if prediction.shape[2:] != tuple(d // factor for d in target.shape[2:]):
            raise ValueError(
                f"predictions: shape {tuple(prediction.shape)} is not the target "
                f"{tuple(target.shape)} divided by a power of two"
            )
        scaled_target, scaled_observed = downsample_tsdf_target(target, observed, factor)
        per_scale.append(tsdf_l1_loss(prediction, scaled_target, scaled_observed, clamp_mask))
    total = sum(w * loss for w, loss in zip(weights, per_scale, strict=True))
    return total, per_scale


def semantic_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of (B, K, X, Y, Z) logits against (B, X, Y, Z) integer labels, ignoring
    ``IGNORE_LABEL``; 0 (attached) when every voxel is ignored."""
    if labels.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(
            f"labels: expected shape {tuple(logits.shape[:1] + logits.shape[2:])}, got "
            f"{tuple(labels.shape)}"
        )
    labels = labels.long()
    valid = labels != IGNORE_LABEL
    if not bool(valid.any()):
        return logits.sum() * 0.0
    if bool((labels[valid] >= logits.shape[1]).any()) or bool((labels[valid] < 0).any()):
        raise ValueError(f"labels: values must be in [0, {logits.shape[1]}) or {IGNORE_LABEL}")
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_LABEL)


def atlas_loss(
    tsdf_predictions: Sequence[torch.Tensor],
    clamp_masks: Sequence[torch.Tensor],
    semantic_logits: torch.Tensor | None,
    target_tsdf: torch.Tensor,
    target_observed: torch.Tensor,
    target_labels: torch.Tensor | None = None,
    semantic_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total Atlas loss = multi-scale TSDF loss + ``semantic_weight`` x semantic loss.

    Returns:
        The total and its parts: ``tsdf_scale0`` (coarsest) ... , ``tsdf``, ``semantic``.
    """
    total, per_scale = multiscale_tsdf_loss(
        tsdf_predictions, clamp_masks, target_tsdf, target_observed
    )
    parts = {f"tsdf_scale{i}": loss.detach() for i, loss in enumerate(per_scale)}
    parts["tsdf"] = total.detach()
    if semantic_logits is not None and target_labels is not None:
        semantic = semantic_loss(semantic_logits, target_labels)
        parts["semantic"] = semantic.detach()
        total = total + semantic_weight * semantic
    parts["total"] = total.detach()
    return total, parts
