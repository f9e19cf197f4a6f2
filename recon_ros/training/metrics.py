"""The metrics of Table 1 of the Atlas paper and the semantic IoU of its Table 4.

2D, from a predicted depth map ``d`` (rendered from the predicted mesh) and the ground truth
``d*``, over the ``n`` pixels where both are valid::

    AbsRel = mean |d - d*| / d*        AbsDiff = mean |d - d*|       SqRel = mean |d - d*|^2 / d*
    RMSE = sqrt(mean |d - d*|^2)       delta_i = mean(max(d / d*, d* / d) < 1.25^i)
    Comp = share of pixels with valid ground truth that have a prediction

3D, from TSDFs ``t``, ``t*`` and point clouds ``P`` (prediction), ``P*`` (ground truth)::

    L1 = mean over voxels with t* < 1 of |t - t*|       (observed ground-truth voxels only)
    Acc = mean over p in P of min_{p* in P*} |p - p*|    Prec = share of P within 5 cm of P*
    Comp = mean over p* in P* of min_{p in P} |p - p*|   Recall = share of P* within 5 cm of P
    F-score = 2 Prec Recall / (Prec + Recall)

Precision is measured from the prediction (how much of what was predicted is right) and recall
from the ground truth (how much of the truth was found), as Table 1 defines them. Point clouds
are points sampled uniformly on the mesh surfaces (``mesh_surface_points``, 1 cm apart on
average) thinned to one point per 2 cm cell (``voxel_down_sample``, the reference
implementation's ``down_sample=.02`` on mesh vertices), so the metrics do not depend on how a
mesh is tessellated: the reference meshes of generated scenes are exact polygon unions with
large flat faces whose vertices would not cover their surfaces.

Semantics: labels of the predicted mesh are transferred to the ground-truth mesh's vertices by
nearest neighbour; per-class IoU = TP / (TP + FP + FN) over those vertices, mIoU the mean over the
classes present (in the ground truth or the transferred labels).

Each fast implementation has a slow reference beside it (``*_reference``), used by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from recon_ros.core.classes import IGNORE_LABEL

#: Distance threshold of precision, recall and F-score (m): Table 1's 5 cm.
F_SCORE_THRESHOLD = 0.05
#: Cell of the vertex thinning (m).
DOWN_SAMPLE = 0.02


def _points(points, name: str) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{name}: expected (N, 3) points, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return array


# --- point clouds ----------------------------------------------------------------------------


def voxel_down_sample(points: np.ndarray, cell: float = DOWN_SAMPLE) -> np.ndarray:
    """One point per occupied ``cell``-sized cube: the mean of the points in it (open3d's
    ``voxel_down_sample``). ``points`` (N, 3) -> (M, 3) float64, cells in sorted order."""
    points = _points(points, "points")
    if not cell > 0:
        raise ValueError(f"cell: must be positive, got {cell}")
    if len(points) == 0:
        return points
    keys = np.floor(points / cell).astype(np.int64)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    sums = np.zeros((len(counts), 3))
    np.add.at(sums, inverse.reshape(-1), points)
    return sums / counts[:, None]


def mesh_surface_points(
    vertices: np.ndarray,
    faces: np.ndarray,
    spacing: float = 0.01,
    labels: np.ndarray | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Points sampled uniformly on a triangle mesh's surface, one per ``spacing``^2 of area on
    average (triangles drawn in proportion to their area, barycentric coordinates uniform),
    plus every vertex so that small parts are never missed.

    Args:
        vertices: (V, 3); faces: (F, 3) vertex indices.
        labels: (V,) per-vertex labels; a sample takes its triangle's first vertex's label.
        seed: the sampling is deterministic for a seed.

    Returns:
        points (N, 3) float64 and their labels (N,) (None without ``labels``).
    """
    vertices = _points(vertices, "vertices")
    faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if not spacing > 0:
        raise ValueError(f"spacing: must be positive, got {spacing}")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (len(vertices),):
            raise ValueError(f"labels: expected ({len(vertices)},), got {labels.shape}")
    if len(faces) == 0:
        return vertices.copy(), None if labels is None else labels.copy()
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ValueError("faces: vertex index out of range")
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    area = 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)
    total = float(area.sum())
    count = int(np.ceil(total / spacing**2))
    rng = np.random.default_rng(seed)
    samples = np.zeros((0, 3))
    sample_labels = None if labels is None else labels[:0]
    if count > 0 and total > 0:
        chosen = rng.choice(len(faces), size=count, p=area / total)
        r1, r2 = rng.random(count), rng.random(count)
        s = np.sqrt(r1)
        w = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
        samples = w[:, :1] * a[chosen] + w[:, 1:2] * b[chosen] + w[:, 2:] * c[chosen]
        if labels is not None:
            sample_labels = labels[faces[chosen, 0]]
    points = np.concatenate([vertices, samples])
    out_labels = None if labels is None else np.concatenate([labels, sample_labels])
    return points, out_labels


def nearest_distances(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """For each point of ``source`` (N, 3) the distance to the nearest point of ``target``
    (M, 3); ``inf`` when ``target`` is empty."""
    source, target = _points(source, "source"), _points(target, "target")
    if len(target) == 0:
        return np.full(len(source), np.inf)
    if len(source) == 0:
        return np.zeros(0)
    distances, _ = cKDTree(target).query(source, k=1)
    return distances


def nearest_distances_reference(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Slow reference of ``nearest_distances``: all pairwise distances."""
    source, target = _points(source, "source"), _points(target, "target")
    if len(target) == 0:
        return np.full(len(source), np.inf)
    return np.array([np.sqrt(((target - p) ** 2).sum(1)).min() for p in source])


@dataclass(frozen=True)
class PointMetrics:
    """Acc, Comp (metres), Prec, Recall, F-score of two point clouds (see the module doc)."""

    acc: float
    comp: float
    prec: float
    recall: float
    fscore: float
    predicted_points: int
    reference_points: int

    def as_dict(self) -> dict[str, float]:
        return {
            "acc": self.acc,
            "comp": self.comp,
            "prec": self.prec,
            "recall": self.recall,
            "fscore": self.fscore,
        }


def point_metrics(
    predicted: np.ndarray,
    reference: np.ndarray,
    threshold: float = F_SCORE_THRESHOLD,
    down_sample: float | None = DOWN_SAMPLE,
) -> PointMetrics:
    """Table 1's point-cloud metrics of ``predicted`` (N, 3) against ``reference`` (M, 3).

    An empty prediction has precision 0 (nothing right), recall 0 and infinite accuracy; an
    empty reference raises ValueError (nothing to measure against).
    """
    predicted, reference = _points(predicted, "predicted"), _points(reference, "reference")
    if not threshold > 0:
        raise ValueError(f"threshold: must be positive, got {threshold}")
    if down_sample:
        predicted = voxel_down_sample(predicted, down_sample)
        reference = voxel_down_sample(reference, down_sample)
    if len(reference) == 0:
        raise ValueError("reference: no points")
    if len(predicted) == 0:
        return PointMetrics(np.inf, np.inf, 0.0, 0.0, 0.0, 0, len(reference))
    to_reference = nearest_distances(predicted, reference)  # per predicted point
    to_predicted = nearest_distances(reference, predicted)  # per reference point
    prec = float(np.mean(to_reference < threshold))
    recall = float(np.mean(to_predicted < threshold))
    fscore = 2 * prec * recall / (prec + recall) if prec + recall > 0 else 0.0
    return PointMetrics(
        acc=float(to_reference.mean()),
        comp=float(to_predicted.mean()),
        prec=prec,
        recall=recall,
        fscore=float(fscore),
        predicted_points=len(predicted),
        reference_points=len(reference),
    )


def point_metrics_reference(
    predicted: np.ndarray, reference: np.ndarray, threshold: float = F_SCORE_THRESHOLD
) -> dict[str, float]:
    """Slow reference of ``point_metrics`` without thinning, written straight from Table 1."""
    predicted, reference = _points(predicted, "predicted"), _points(reference, "reference")
    d_pred = nearest_distances_reference(predicted, reference)
    d_ref = nearest_distances_reference(reference, predicted)
    prec = sum(1 for d in d_pred if d < threshold) / len(predicted)
    recall = sum(1 for d in d_ref if d < threshold) / len(reference)
    return {
        "acc": float(np.mean(d_pred)),
        "comp": float(np.mean(d_ref)),
        "prec": prec,
        "recall": recall,
        "fscore": 2 * prec * recall / (prec + recall) if prec + recall else 0.0,
    }


# --- TSDF ------------------------------------------------------------------------------------


def tsdf_l1(predicted: np.ndarray, reference: np.ndarray, observed: np.ndarray) -> float:
    """Table 1's L1: mean ``|t - t*|`` over voxels observed in the ground truth with ``t* < 1``.

    Args:
        predicted, reference: (X, Y, Z) TSDFs in [-1, 1] on the same grid.
        observed: (X, Y, Z) bool, the ground truth's observed mask.

    Raises:
        ValueError: shapes differ or no voxel qualifies.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    observed = np.asarray(observed, dtype=bool)
    if predicted.shape != reference.shape or observed.shape != reference.shape:
        raise ValueError(
            f"predicted/reference/observed: shapes differ: {predicted.shape}, {reference.shape}, "
            f"{observed.shape}"
        )
    mask = observed & (reference < 1.0)
    if not mask.any():
        raise ValueError("reference: no observed voxel with t* < 1")
    return float(np.abs(predicted[mask] - reference[mask]).mean())


def tsdf_l1_reference(predicted, reference, observed) -> float:
    """Slow reference of ``tsdf_l1``: a loop over voxels."""
    total, count = 0.0, 0
    for index in np.ndindex(*np.shape(reference)):
        if observed[index] and reference[index] < 1.0:
            total += abs(float(predicted[index]) - float(reference[index]))
            count += 1
    return total / count


# --- depth -----------------------------------------------------------------------------------

DEPTH_KEYS = ("abs_rel", "abs_diff", "sq_rel", "rmse", "delta1", "delta2", "delta3", "comp")


class DepthAccumulator:
    """Table 1's 2D metrics over many depth maps: sums over all valid pixels (each pixel counts
    once, as ``n`` in Table 1), so frames with more valid pixels weigh more."""

    def __init__(self, max_depth: float = 10.0) -> None:
        self.max_depth = float(max_depth)
        self.sums = dict.fromkeys(("abs_rel", "abs_diff", "sq_rel", "sq", "d1", "d2", "d3"), 0.0)
        self.pixels = 0
        self.reference_pixels = 0

    def add(self, predicted: np.ndarray, reference: np.ndarray) -> None:
        """Add one frame: predicted and ground-truth depth (H, W) metres, 0 = invalid."""
        predicted = np.asarray(predicted, dtype=np.float64)
        reference = np.asarray(reference, dtype=np.float64)
        if predicted.shape != reference.shape:
            raise ValueError(
                f"predicted/reference: shapes differ: {predicted.shape}, {reference.shape}"
            )
        has_reference = (reference > 0) & (reference < self.max_depth)
        valid = has_reference & (predicted > 0)
        self.reference_pixels += int(has_reference.sum())
        self.pixels += int(valid.sum())
        d, t = predicted[valid], reference[valid]
        diff = np.abs(d - t)
        ratio = np.maximum(d / t, t / d)
        self.sums["abs_rel"] += float((diff / t).sum())
        self.sums["abs_diff"] += float(diff.sum())
        self.sums["sq_rel"] += float((diff**2 / t).sum())
        self.sums["sq"] += float((diff**2).sum())
        for i in (1, 2, 3):
            self.sums[f"d{i}"] += float((ratio < 1.25**i).sum())

    def result(self) -> dict[str, float]:
        """The metrics (NaN when no pixel was valid in both)."""
        n = self.pixels
        if n == 0:
            values = dict.fromkeys(DEPTH_KEYS, float("nan"))
            values["comp"] = 0.0 if self.reference_pixels else float("nan")
            return values
        return {
            "abs_rel": self.sums["abs_rel"] / n,
            "abs_diff": self.sums["abs_diff"] / n,
            "sq_rel": self.sums["sq_rel"] / n,
            "rmse": float(np.sqrt(self.sums["sq"] / n)),
            "delta1": self.sums["d1"] / n,
            "delta2": self.sums["d2"] / n,
            "delta3": self.sums["d3"] / n,
            "comp": n / self.reference_pixels if self.reference_pixels else float("nan"),
        }


def depth_metrics(predicted: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Table 1's 2D metrics of one depth map (see ``DepthAccumulator``)."""
    accumulator = DepthAccumulator()
    accumulator.add(predicted, reference)
    return accumulator.result()


def depth_metrics_reference(predicted: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Slow reference of ``depth_metrics``: a loop over pixels."""
    pairs, with_reference = [], 0
    for d, t in zip(np.ravel(predicted), np.ravel(reference), strict=True):
        if 0 < t < 10.0:
            with_reference += 1
            if d > 0:
                pairs.append((float(d), float(t)))
    n = len(pairs)
    return {
        "abs_rel": sum(abs(d - t) / t for d, t in pairs) / n,
        "abs_diff": sum(abs(d - t) for d, t in pairs) / n,
        "sq_rel": sum((d - t) ** 2 / t for d, t in pairs) / n,
        "rmse": (sum((d - t) ** 2 for d, t in pairs) / n) ** 0.5,
        "delta1": sum(max(d / t, t / d) < 1.25 for d, t in pairs) / n,
        "delta2": sum(max(d / t, t / d) < 1.25**2 for d, t in pairs) / n,
        "delta3": sum(max(d / t, t / d) < 1.25**3 for d, t in pairs) / n,
        "comp": n / with_reference,
    }


# --- semantics -------------------------------------------------------------------------------


def transfer_labels(
    source_points: np.ndarray, source_labels: np.ndarray, target_points: np.ndarray
) -> np.ndarray:
    """Label of the nearest ``source_points`` vertex for each ``target_points`` vertex (the
    paper's transfer from the predicted mesh to the ground-truth mesh); ``IGNORE_LABEL``
    everywhere when the source is empty."""
    source_points = _points(source_points, "source_points")
    target_points = _points(target_points, "target_points")
    source_labels = np.asarray(source_labels)
    if source_labels.shape != (len(source_points),):
        raise ValueError(
            f"source_labels: expected ({len(source_points)},), got {source_labels.shape}"
        )
    if len(source_points) == 0:
        return np.full(len(target_points), IGNORE_LABEL, np.uint8)
    _, index = cKDTree(source_points).query(target_points, k=1)
    return source_labels[index].astype(np.uint8)


def semantic_confusion(
    predicted: np.ndarray, reference: np.ndarray, num_classes: int
) -> np.ndarray:
    """(K, K + 1) int64 counts over vertices whose reference label is a class: rows are the
    reference class, columns the predicted class, and the last column predictions that are no
    class (``IGNORE_LABEL``: misses, which add to the false negatives and to no false
    positive)."""
    predicted = np.asarray(predicted).astype(np.int64).ravel()
    reference = np.asarray(reference).astype(np.int64).ravel()
    if predicted.shape != reference.shape:
        raise ValueError(
            f"predicted/reference: shapes differ: {predicted.shape}, {reference.shape}"
        )
    valid = reference < num_classes
    predicted, reference = predicted[valid], reference[valid]
    predicted = np.where(predicted < num_classes, predicted, num_classes)
    matrix = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    np.add.at(matrix, (reference, predicted), 1)
    return matrix


def iou_from_confusion(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU (K,) from a ``semantic_confusion`` matrix (K rows, K or K + 1 columns); NaN
    for a class absent from both the reference and the predictions."""
    matrix = np.asarray(matrix, dtype=np.float64)
    k = matrix.shape[0]
    tp = np.diag(matrix[:, :k])
    fn = matrix.sum(1) - tp
    fp = matrix[:, :k].sum(0) - tp
    union = tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def semantic_iou_reference(
    predicted: np.ndarray, reference: np.ndarray, num_classes: int
) -> np.ndarray:
    """Slow reference of ``iou_from_confusion(semantic_confusion(...))``: per class, sets of
    vertex indices."""
    ious = np.full(num_classes, np.nan)
    labelled = [i for i, r in enumerate(reference) if r < num_classes]
    for c in range(num_classes):
        truth = {i for i in labelled if reference[i] == c}
        guess = {i for i in labelled if predicted[i] == c}
        union = truth | guess
        if union:
            ious[c] = len(truth & guess) / len(union)
    return ious


def mean_of_present(values: np.ndarray) -> float:
    """Mean over finite entries (NaN when none)."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")
