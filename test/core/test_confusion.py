"""The one confusion matrix and IoU (core.confusion) against its loop reference and by hand."""

import numpy as np
import pytest
import torch

from recon_ros.core.confusion import (
    class_iou,
    confusion_matrix,
    confusion_matrix_reference,
    mean_iou,
)


def test_confusion_matches_the_reference_and_skips_ignored():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 5, 500)
    target = rng.integers(0, 5, 500)
    target[::7] = 255
    fast = confusion_matrix(torch.from_numpy(pred), torch.from_numpy(target), 5).numpy()
    np.testing.assert_array_equal(fast, confusion_matrix_reference(pred, target, 5))
    assert fast.sum() == np.sum(target != 255)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(torch.tensor([0, 7]), torch.tensor([0, 1]), 5)


def test_iou_seen_and_labelled():
    # rows labels, columns predictions; class 2 is predicted once but never labelled, class 3
    # neither labelled nor predicted
    m = np.array([[3, 1, 0, 0], [0, 4, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    iou = class_iou(m)
    np.testing.assert_allclose(iou[:3], [3 / 4, 4 / 6, 0.0])
    assert np.isnan(iou[3])
    assert mean_iou(m) == pytest.approx((3 / 4 + 4 / 6 + 0.0) / 3)
    assert mean_iou(m, over="labelled") == pytest.approx((3 / 4 + 4 / 6) / 2)
    assert np.isnan(mean_iou(np.zeros((2, 2))))
