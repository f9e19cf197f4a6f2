"""Metrics (fast vs reference confusion matrix, known summaries) and frustum overlap."""

import numpy as np
import pytest
import torch

from recon_ros.core.partners import frustum_overlap, select_partners
from recon_ros.sufficiency.metrics import confusion_matrix, confusion_matrix_reference, summarize
from recon_ros.sufficiency.synthetic import look_at

K = np.array([[50.0, 0.0, 31.5], [0.0, 50.0, 23.5], [0.0, 0.0, 1.0]])
HW = (48, 64)


def test_confusion_fast_matches_reference():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (3, 9, 7), generator=g)
    target = torch.randint(0, 4, (3, 9, 7), generator=g)
    target[0, :3] = 255
    fast = confusion_matrix(pred, target, 4).numpy()
    assert np.array_equal(fast, confusion_matrix_reference(pred.numpy(), target.numpy(), 4))
    assert fast.sum() == target.numel() - 21


def test_summary_of_known_confusion():
    c = np.array([[3, 1], [0, 4]])
    s = summarize(c)
    assert s["pixel_accuracy"] == pytest.approx(7 / 8)
    assert s["iou"] == pytest.approx([3 / 4, 4 / 5])
    assert s["mean_iou"] == pytest.approx((3 / 4 + 4 / 5) / 2)
    assert s["count_mae"] == pytest.approx(1 / 8)
    assert summarize(np.diag([5, 0, 2]))["iou"][1] is None  # absent class has no IoU


def test_overlap_same_view_one_opposite_zero():
    T = look_at(np.zeros(3), np.array([1.0, 0.0, 0.0]))
    back = look_at(np.zeros(3), np.array([-1.0, 0.0, 0.0]))
    side = look_at(np.array([0.0, 0.5, 0.0]), np.array([1.0, 0.5, 0.0]))
    ov = frustum_overlap(K, T, HW, [K, K, K], [T, back, side], [HW] * 3)
    assert ov[0] == pytest.approx(1.0)
    assert ov[1] == 0.0
    assert 0.2 < ov[2] < 1.0


def test_select_partners_orders_and_breaks_ties_by_recency():
    assert select_partners([0.2, 0.9, 0.5, 0.9], 2) == [3, 1]
    assert select_partners([0.2, 0.9, 0.5], 3, min_overlap=0.3) == []
