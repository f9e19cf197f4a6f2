"""Confusion matrices and IoU: the one implementation every training loop and evaluation uses
(Atlas voxels and pixels, the depth network's semantic head, the 3D refinement network, the
sufficiency counts).
"""

from __future__ import annotations

import numpy as np
import torch

from recon_ros.core.classes import IGNORE_LABEL


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_label: int = IGNORE_LABEL
) -> torch.Tensor:
    """Confusion matrix of integer predictions.

    Args:
        pred: (...) integer predictions in ``[0, num_classes)``.
        target: (...) integer labels, same shape; ``ignore_label`` entries are skipped.
        num_classes: number of classes C.

    Returns:
        (C, C) int64 on ``pred``'s device: ``out[label, prediction]`` counts.

    Raises:
        ValueError: shapes differ, or a label or prediction outside ``[0, C)`` (other than
            ``ignore_label`` among the labels).
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long().to(pred.device)
    keep = target != ignore_label
    pred, target = pred[keep], target[keep]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(
            f"target holds labels outside [0, {num_classes}) other than {ignore_label}"
        )
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"pred holds values outside [0, {num_classes})")
    flat = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def confusion_matrix_reference(pred, target, num_classes, ignore_label=IGNORE_LABEL) -> np.ndarray:
    """Slow loop version of :func:`confusion_matrix`, for tests."""
    out = np.zeros((num_classes, num_classes), dtype=np.int64)
    for p, t in zip(np.asarray(pred).ravel(), np.asarray(target).ravel(), strict=True):
        if t != ignore_label:
            out[int(t), int(p)] += 1
    return out


def class_iou(matrix) -> np.ndarray:
    """Per-class IoU (C,) of a (C, C) confusion matrix (rows labels, columns predictions); NaN
    for a class neither labelled nor predicted."""
    m = np.asarray(matrix.cpu() if isinstance(matrix, torch.Tensor) else matrix, np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C), got {m.shape}")
    tp = np.diag(m)
    union = m.sum(0) + m.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(matrix, over: str = "seen") -> float:
    """Mean of ``class_iou`` over the classes ``over`` names: ``"seen"`` (labelled or predicted:
    a class predicted but never labelled counts as 0) or ``"labelled"`` (labelled only, as the
    depth and refinement networks' validation has always reported it). NaN when there is none."""
    m = np.asarray(matrix.cpu() if isinstance(matrix, torch.Tensor) else matrix, np.float64)
    iou = class_iou(m)
    if over == "seen":
        chosen = ~np.isnan(iou)
    elif over == "labelled":
        chosen = m.sum(1) > 0
    else:
        raise ValueError(f"over: expected 'seen' or 'labelled', got {over!r}")
    return float(np.mean(iou[chosen])) if chosen.any() else float("nan")
