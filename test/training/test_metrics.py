"""The Atlas metrics on constructed cases with known answers, and each against its reference."""

import numpy as np
import pytest

from recon_ros.training.metrics import (
    DepthAccumulator,
    depth_metrics,
    depth_metrics_reference,
    iou_from_confusion,
    mean_of_present,
    mesh_surface_points,
    nearest_distances,
    nearest_distances_reference,
    point_metrics,
    point_metrics_reference,
    semantic_confusion,
    semantic_iou_reference,
    transfer_labels,
    tsdf_l1,
    tsdf_l1_reference,
    voxel_down_sample,
)


def square(size=1.0, spacing=0.005, z=0.0):
    """Points on a size x size square in the plane z, ``spacing`` apart (N, 3)."""
    axis = np.arange(0.0, size + 1e-9, spacing)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    return np.stack([x.ravel(), y.ravel(), np.full(x.size, z)], axis=1)


def test_mesh_against_itself_scores_perfectly():
    points = square()
    m = point_metrics(points, points)
    assert m.prec == m.recall == m.fscore == 1.0
    assert m.acc == m.comp == 0.0


def test_shift_along_the_normal_beyond_the_threshold_finds_nothing():
    m = point_metrics(square(z=0.10), square())
    assert m.prec == m.recall == m.fscore == 0.0
    assert m.acc == pytest.approx(0.10, abs=1e-6)
    near = point_metrics(square(z=0.03), square())
    assert near.fscore == 1.0


def test_in_plane_shift_of_10cm_gives_the_expected_precision():
    """A 1 m square shifted 10 cm along x: the predicted strip 1.0 < x <= 1.1 lies 0-10 cm
    beyond the reference, so the points within 5 cm are 0.95 of the prediction; the same share
    of the reference (its strip 0 <= x < 0.1) is found. Thinning is off to count exactly."""
    reference = square(spacing=0.005)
    predicted = reference + np.array([0.10, 0.0, 0.0])
    m = point_metrics(predicted, reference, down_sample=None)
    assert m.prec == pytest.approx(0.95, abs=0.006)
    assert m.recall == pytest.approx(0.95, abs=0.006)
    assert m.fscore == pytest.approx(0.95, abs=0.006)


def test_precision_and_recall_are_not_swapped():
    """Half of the truth, predicted exactly: everything predicted is right (precision 1) and
    half of the truth is found (recall 0.5). The reference implementation swaps these."""
    reference = square(spacing=0.01)
    predicted = reference[reference[:, 0] < 0.5 - 1e-9]
    m = point_metrics(predicted, reference, threshold=0.005, down_sample=None)
    assert m.prec == 1.0
    assert m.recall == pytest.approx(0.5, abs=0.01)
    assert m.fscore == pytest.approx(2 * 0.5 / 1.5, abs=0.01)
    assert m.acc == 0.0 and m.comp > 0.05


def test_point_metrics_match_the_reference():
    rng = np.random.default_rng(0)
    predicted = rng.uniform(0, 0.5, (150, 3))
    reference = rng.uniform(0, 0.5, (120, 3))
    fast = point_metrics(predicted, reference, down_sample=None).as_dict()
    slow = point_metrics_reference(predicted, reference)
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    np.testing.assert_allclose(
        nearest_distances(predicted, reference), nearest_distances_reference(predicted, reference)
    )


def test_empty_prediction_and_bad_inputs():
    m = point_metrics(np.zeros((0, 3)), square())
    assert m.fscore == 0.0 and m.prec == 0.0 and m.recall == 0.0
    with pytest.raises(ValueError, match="reference"):
        point_metrics(square(), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="predicted"):
        point_metrics(np.zeros((4, 2)), square())


def test_voxel_down_sample_keeps_one_mean_point_per_cell():
    points = np.array([[0.001, 0.001, 0.001], [0.019, 0.001, 0.001], [0.03, 0.0, 0.0]])
    out = voxel_down_sample(points, 0.02)
    np.testing.assert_allclose(out, [[0.01, 0.001, 0.001], [0.03, 0.0, 0.0]])
    np.testing.assert_allclose(voxel_down_sample(out, 0.02), out)


def test_mesh_surface_points_cover_the_triangles_evenly():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], dtype=float)
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    labels = np.array([3, 3, 4, 4], dtype=np.uint8)
    points, point_labels = mesh_surface_points(vertices, faces, spacing=0.02, labels=labels)
    assert len(points) == 4 + 2500
    assert np.all(np.abs(points[:, 2]) < 1e-12)
    assert points[:, :2].min() >= 0 and points[:, :2].max() <= 1
    # Even coverage: every 10 cm cell of the square gets about 25 samples.
    counts = np.histogram2d(points[4:, 0], points[4:, 1], bins=10, range=[[0, 1], [0, 1]])[0]
    assert counts.min() > 5
    assert set(np.unique(point_labels[4:])) == {3}  # both faces start at vertex 0 (label 3)
    np.testing.assert_array_equal(point_labels[:4], labels)
    again, _ = mesh_surface_points(vertices, faces, spacing=0.02, labels=labels)
    np.testing.assert_array_equal(points, again)


def test_tsdf_l1_against_itself_is_zero_and_matches_the_reference():
    rng = np.random.default_rng(1)
    reference = np.clip(rng.normal(0, 1, (6, 5, 4)), -1, 1)
    observed = rng.random((6, 5, 4)) < 0.7
    assert tsdf_l1(reference, reference, observed) == 0.0
    predicted = np.clip(reference + rng.normal(0, 0.3, reference.shape), -1, 1)
    assert tsdf_l1(predicted, reference, observed) == pytest.approx(
        tsdf_l1_reference(predicted, reference, observed)
    )
    # Voxels with t* = 1 or unobserved do not count.
    shifted = reference.copy()
    shifted[reference >= 1.0] = -1.0
    shifted[~observed] = 5.0
    assert tsdf_l1(shifted, reference, observed) == 0.0
    with pytest.raises(ValueError, match="shapes"):
        tsdf_l1(predicted[:2], reference, observed)


def test_depth_metrics_known_values_and_reference():
    reference = np.full((4, 5), 2.0)
    reference[0, 0] = 0.0  # no ground truth: not counted
    predicted = reference * 1.1
    predicted[1, 1] = 0.0  # no prediction: lowers completeness
    m = depth_metrics(predicted, reference)
    assert m["abs_rel"] == pytest.approx(0.1)
    assert m["abs_diff"] == pytest.approx(0.2)
    assert m["sq_rel"] == pytest.approx(0.04 / 2.0)
    assert m["rmse"] == pytest.approx(0.2)
    assert m["delta1"] == 1.0
    assert m["comp"] == pytest.approx(18 / 19)
    rng = np.random.default_rng(2)
    truth = rng.uniform(0.5, 5, (6, 7))
    truth[rng.random(truth.shape) < 0.2] = 0
    guess = truth * rng.uniform(0.6, 1.6, truth.shape)
    guess[rng.random(truth.shape) < 0.2] = 0
    fast, slow = depth_metrics(guess, truth), depth_metrics_reference(guess, truth)
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value), key
    accumulator = DepthAccumulator()
    accumulator.add(guess, truth)
    accumulator.add(guess, truth)
    assert accumulator.result()["abs_rel"] == pytest.approx(slow["abs_rel"])


def test_semantic_iou_known_values_and_reference():
    reference = np.array([0, 0, 1, 1, 2, 255])
    predicted = np.array([0, 1, 1, 1, 255, 0])
    iou = iou_from_confusion(semantic_confusion(predicted, reference, 3))
    # class 0: TP 1, FN 1 (predicted 1), FP 0 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2: miss.
    np.testing.assert_allclose(iou, [0.5, 2 / 3, 0.0])
    assert mean_of_present(iou) == pytest.approx((0.5 + 2 / 3) / 3)
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 5, 300)
    guess = np.where(rng.random(300) < 0.6, truth, rng.integers(0, 5, 300))
    np.testing.assert_allclose(
        iou_from_confusion(semantic_confusion(guess, truth, 6)),
        semantic_iou_reference(guess, truth, 6),
    )


def test_label_transfer_takes_the_nearest_vertex():
    source = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    labels = np.array([4, 7], dtype=np.uint8)
    target = np.array([[0.1, 0, 0], [0.9, 0, 0], [0.4, 0, 0]])
    np.testing.assert_array_equal(transfer_labels(source, labels, target), [4, 7, 4])
    assert np.all(transfer_labels(np.zeros((0, 3)), np.zeros(0), target) == 255)
