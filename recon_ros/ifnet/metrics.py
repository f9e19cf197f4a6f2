"""The seed paper's metrics of a single-view reconstruction (as IF-Net reports them): volumetric
IoU of the occupancy on the grid, Chamfer-L2 between the two surfaces and their normal
consistency.

Surfaces are marching-cubes meshes of the two fields on the ``FrustumGrid`` (the prediction's
occupancy probability at 0.5, the reference's signed distance at 0), compared through their
triangle centres and face normals: Chamfer-L2 is the mean of the squared nearest distances both
ways (metres squared, as IF-Net: not normalised by the scene's size), normal consistency the
mean absolute cosine between each face's normal and its nearest face's on the other surface,
both ways.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from recon_ros.core.meshing import extract_mesh
from recon_ros.ifnet.frustum_grid import FrustumGrid


def occupancy_iou(predicted: np.ndarray, reference: np.ndarray) -> float:
    """IoU of two boolean grids of the same shape (1.0 when both are empty)."""
    predicted, reference = np.asarray(predicted, bool), np.asarray(reference, bool)
    if predicted.shape != reference.shape:
        raise ValueError(f"shapes differ: {predicted.shape}, {reference.shape}")
    union = np.logical_or(predicted, reference).sum()
    return 1.0 if union == 0 else float(np.logical_and(predicted, reference).sum() / union)


def _faces(field: np.ndarray, grid: FrustumGrid) -> tuple[np.ndarray, np.ndarray]:
    """Triangle centres (F, 3) and unit normals (F, 3) of the zero set of a (D, H, W) field that
    is positive in free space and within [-1, 1]."""
    tsdf = np.ascontiguousarray(np.asarray(field, np.float32).transpose(2, 1, 0))  # (x, y, z)
    mesh = extract_mesh(
        tsdf, np.ones(tsdf.shape, bool), np.asarray(grid.origin), grid.voxel_size, saturation=1.01
    )
    if len(mesh.faces) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3))
    corners = np.asarray(mesh.vertices, np.float64)[np.asarray(mesh.faces)]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    keep = length[:, 0] > 1e-12
    return corners.mean(axis=1)[keep], normals[keep] / length[keep]


def surface_metrics(
    predicted_field: np.ndarray, reference_field: np.ndarray, grid: FrustumGrid
) -> dict[str, float]:
    """``chamfer_l2`` and ``normal_consistency`` of two fields (positive free, zero on the
    surface, in [-1, 1]); NaN when either surface is empty."""
    a_points, a_normals = _faces(predicted_field, grid)
    b_points, b_normals = _faces(reference_field, grid)
    if len(a_points) == 0 or len(b_points) == 0:
        return {"chamfer_l2": float("nan"), "normal_consistency": float("nan")}
    a_to_b, a_index = cKDTree(b_points).query(a_points)
    b_to_a, b_index = cKDTree(a_points).query(b_points)
    chamfer = 0.5 * (np.mean(a_to_b**2) + np.mean(b_to_a**2))
    consistency = 0.5 * (
        np.mean(np.abs(np.sum(a_normals * b_normals[a_index], axis=1)))
        + np.mean(np.abs(np.sum(b_normals * a_normals[b_index], axis=1)))
    )
    return {"chamfer_l2": float(chamfer), "normal_consistency": float(consistency)}


def occupancy_field(probability: np.ndarray) -> np.ndarray:
    """Occupancy probability -> a field positive in free space, zero at 0.5, in [-1, 1]."""
    return np.clip(1.0 - 2.0 * np.asarray(probability, np.float32), -1.0, 1.0)
