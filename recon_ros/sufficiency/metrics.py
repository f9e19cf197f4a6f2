"""Metrics of per-pixel count prediction.

- pixel accuracy, as the paper defines it: correctly classified pixels / valid pixels (pixels
  with an ignore label are left out);
- IoU per count class ``TP / (TP + FP + FN)`` and their mean over the classes that occur in the
  labels or the predictions (a class absent from both has no IoU);
- mean absolute error of the count, ``mean |pred - label|`` over valid pixels: a prediction of
  3 for a true 4 is better than one of 0, which accuracy does not tell.

All are computed from a confusion matrix accumulated over batches (rows = label, columns =
prediction).
"""

import numpy as np
import torch

from recon_ros.sufficiency.labels import IGNORE_LABEL


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_label: int = IGNORE_LABEL
) -> torch.Tensor:
    """Confusion matrix of integer predictions.

    Args:
        pred: (...) integer predictions in ``[0, num_classes)``.
        target: (...) integer labels, same shape; ``ignore_label`` entries are skipped.
        num_classes: number of classes C.

    Returns:
        (C, C) int64 on ``pred``'s device: ``out[label, prediction]`` pixel counts.
    """
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
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


def summarize(confusion: np.ndarray | torch.Tensor) -> dict:
    """Metrics of a (C, C) confusion matrix: ``pixel_accuracy``, ``mean_iou``, ``iou`` (list,
    None for absent classes), ``count_mae``, ``pixels``, ``label_fractions``,
    ``pred_fractions``."""
    c = np.asarray(
        confusion.cpu() if isinstance(confusion, torch.Tensor) else confusion, dtype=np.float64
    )
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"confusion must be square (C, C), got {c.shape}")
    total = c.sum()
    tp = np.diag(c)
    union = c.sum(0) + c.sum(1) - tp
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union, strict=True)]
    present = [x for x in iou if x is not None]
    idx = np.arange(c.shape[0])
    err = np.abs(idx[:, None] - idx[None, :])
    return {
        "pixels": int(total),
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_iou": float(np.mean(present)) if present else float("nan"),
        "iou": iou,
        "count_mae": float((c * err).sum() / total) if total else float("nan"),
        "label_fractions": (c.sum(1) / total).tolist() if total else [],
        "pred_fractions": (c.sum(0) / total).tolist() if total else [],
    }
