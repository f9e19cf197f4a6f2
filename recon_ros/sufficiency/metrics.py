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

from recon_ros.core.confusion import (  # noqa: F401 (the one home; re-exported)
    confusion_matrix,
    confusion_matrix_reference,
)


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
