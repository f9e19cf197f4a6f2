"""Crops of a scene for training the 3D network, with rotation and translation augmentation.

A crop is an axis-aligned voxel grid in an *augmented* world frame ``A`` that is the scene's world
rotated about the vertical axis by any angle and shifted::

    p_aug = A @ p_world,   A = [[R_z(angle), t], [0, 1]]

The network sees the crop axis-aligned (as it sees the live window) and the cameras at
``A @ T_world_cam``, so the geometry it must reconstruct is the rotated scene. The ground truth
at the crop's voxel centres is resampled from the scene's volume: the TSDF trilinearly, the
observed mask and the labels by nearest voxel; outside the scene's grid the TSDF is +1, nothing is
observed and nothing is labelled. Because crop centres are continuous, the crop lattice also
lands at a random sub-voxel offset from the ground-truth lattice (translation augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.training.scenes import GroundTruthArrays


def rotation_about_z(angle: float, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    """(4, 4) rigid transform: rotation by ``angle`` radians about +z, then ``translation``."""
    c, s = np.cos(angle), np.sin(angle)
    A = np.eye(4)
    A[:2, :2] = [[c, -s], [s, c]]
    A[:3, 3] = np.asarray(translation, dtype=np.float64)
    return A


@dataclass(frozen=True)
class CropGeometry:
    """A crop grid in an augmented frame.

    Attributes:
        A: (4, 4) world -> augmented frame (rotation about z and translation).
        origin: (3,) centre of crop voxel (0, 0, 0) in the augmented frame.
        voxel_size: metres.
        dims: (X, Y, Z) voxels.
    """

    A: np.ndarray
    origin: np.ndarray
    voxel_size: float
    dims: tuple[int, int, int]

    def centres_augmented(self) -> np.ndarray:
        """(X, Y, Z, 3) voxel centres in the augmented frame."""
        axes = [self.origin[a] + np.arange(self.dims[a]) * self.voxel_size for a in range(3)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def to_world(self, points_augmented: np.ndarray) -> np.ndarray:
        """Augmented-frame points (..., 3) -> world points (..., 3)."""
        R, t = self.A[:3, :3], self.A[:3, 3]
        return (np.asarray(points_augmented) - t) @ R  # R^T (p - t), row vectors

    def centres_world(self) -> np.ndarray:
        """(X, Y, Z, 3) voxel centres in the scene's world frame."""
        return self.to_world(self.centres_augmented())

    def corner_lattice_world(self, steps: int = 3) -> np.ndarray:
        """(steps^3, 3) world points on an even lattice spanning the crop (frame selection)."""
        fractions = np.linspace(0.0, 1.0, steps)
        extent = (np.asarray(self.dims) - 1) * self.voxel_size
        grid = np.stack(np.meshgrid(fractions, fractions, fractions, indexing="ij"), -1)
        return self.to_world((self.origin + grid * extent).reshape(-1, 3))

    def poses(self, T_world_cam: np.ndarray) -> np.ndarray:
        """Camera poses (..., 4, 4) in the augmented frame: ``A @ T_world_cam``."""
        return self.A @ np.asarray(T_world_cam, dtype=np.float64)


def make_crop(
    centre_world,
    dims,
    voxel_size: float,
    angle: float = 0.0,
    shift=(0.0, 0.0, 0.0),
) -> CropGeometry:
    """The crop of ``dims`` voxels centred on ``centre_world`` (3,), rotated by ``angle`` about the
    vertical through its centre; ``shift`` (3,) moves the augmented frame (and the crop with it),
    which changes no geometry the network sees.

    The augmented frame is ``p_aug = R (p - c) + c + shift`` for the centre ``c``.
    """
    dims = tuple(int(d) for d in dims)
    if len(dims) != 3 or min(dims) <= 0:
        raise ValueError(f"dims: expected three positive integers, got {dims}")
    if not voxel_size > 0:
        raise ValueError(f"voxel_size: must be positive, got {voxel_size}")
    c = np.asarray(centre_world, dtype=np.float64).reshape(3)
    shift = np.asarray(shift, dtype=np.float64).reshape(3)
    R = rotation_about_z(angle)[:3, :3]
    A = rotation_about_z(angle, c + shift - R @ c)
    origin = c + shift - 0.5 * (np.asarray(dims) - 1) * voxel_size
    return CropGeometry(A=A, origin=origin, voxel_size=float(voxel_size), dims=dims)


def _normalised_grid(gt: GroundTruthArrays, points_world: np.ndarray) -> torch.Tensor:
    """grid_sample coordinates (1, X, Y, Z, 3) of world points (X, Y, Z, 3) in a (X', Y', Z')
    volume laid out as (D, H, W) = (x, y, z), ``align_corners=True``."""
    index = (points_world - gt.origin) / gt.voxel_size
    size = np.asarray(gt.dims, dtype=np.float64)
    normalised = 2.0 * index / np.maximum(size - 1, 1) - 1.0
    # grid_sample wants (W, H, D) = (z, y, x) order in the last dimension.
    return torch.from_numpy(normalised[..., ::-1].astype(np.float32).copy())[None]


def resample_ground_truth(gt: GroundTruthArrays, crop: CropGeometry) -> dict[str, np.ndarray]:
    """Ground truth at the crop's voxel centres.

    Returns:
        ``tsdf`` (X, Y, Z) float32 (trilinear; +1 outside the scene's grid), ``observed``
        (X, Y, Z) bool and ``semantic`` (X, Y, Z) uint8 (nearest voxel; False / IGNORE_LABEL
        outside).
    """
    if abs(crop.voxel_size - gt.voxel_size) > 1e-9 and crop.voxel_size <= 0:
        raise ValueError("crop: voxel_size must be positive")
    grid = _normalised_grid(gt, crop.centres_world())
    tsdf = torch.from_numpy(gt.tsdf)[None, None]
    # Sample (tsdf - 1) with zero padding so that outside the grid reads +1.
    sampled = F.grid_sample(tsdf - 1.0, grid, mode="bilinear", align_corners=True) + 1.0
    # Nearest lookups: observed and labels in one float volume, +1 so that padding 0 = nothing.
    codes = torch.from_numpy(gt.lookup_codes())[None, None]
    nearest = F.grid_sample(codes, grid, mode="nearest", align_corners=True)[0, 0].numpy()
    nearest = nearest.round().astype(np.int64)
    inside = nearest > 0
    value = np.maximum(nearest - 1, 0)
    observed = inside & (value >= 256)
    semantic = np.where(inside, value % 256, IGNORE_LABEL).astype(np.uint8)
    return {
        "tsdf": sampled[0, 0].numpy().astype(np.float32),
        "observed": observed,
        "semantic": semantic,
    }


def resample_ground_truth_reference(
    gt: GroundTruthArrays, crop: CropGeometry
) -> dict[str, np.ndarray]:
    """Slow reference of ``resample_ground_truth``: a loop over crop voxels with explicit
    trilinear weights and rounding to the nearest voxel (exact half-voxel ties to even, as
    ``grid_sample`` does)."""
    points = crop.centres_world().reshape(-1, 3)
    dims = np.asarray(gt.dims)
    tsdf = np.ones(len(points), np.float32)
    observed = np.zeros(len(points), bool)
    semantic = np.full(len(points), IGNORE_LABEL, np.uint8)
    for n, p in enumerate(points):
        index = (p - gt.origin) / gt.voxel_size
        base = np.floor(index).astype(int)
        frac = index - base
        value = 0.0
        for corner in np.ndindex(2, 2, 2):
            c = base + corner
            weight = np.prod(np.where(corner, frac, 1 - frac))
            if np.all(c >= 0) and np.all(c < dims):
                value += weight * gt.tsdf[tuple(c)]
            else:
                value += weight * 1.0
        tsdf[n] = value
        nearest = np.rint(index).astype(int)
        if np.all(nearest >= 0) and np.all(nearest < dims):
            observed[n] = gt.observed[tuple(nearest)]
            semantic[n] = gt.semantic[tuple(nearest)]
    shape = crop.dims
    return {
        "tsdf": tsdf.reshape(shape),
        "observed": observed.reshape(shape),
        "semantic": semantic.reshape(shape),
    }


def frame_visibility(
    points_world: np.ndarray,
    poses: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    min_depth: float = 0.05,
) -> np.ndarray:
    """Fraction of ``points_world`` (P, 3) inside each camera's image, ``(N,)`` for ``poses``
    (N, 4, 4) with intrinsics ``K`` (3, 3) of a ``width`` x ``height`` image (no occlusion test:
    Atlas back-projects along whole rays)."""
    poses = np.asarray(poses, dtype=np.float64)
    R = poses[:, :3, :3]
    t = poses[:, :3, 3]
    cam = np.einsum("nji,npj->npi", R, points_world[None] - t[:, None])  # R^T (p - t)
    z = cam[..., 2]
    safe = np.where(z > min_depth, z, 1.0)
    u = K[0, 0] * cam[..., 0] / safe + K[0, 1] * cam[..., 1] / safe + K[0, 2]
    v = K[1, 1] * cam[..., 1] / safe + K[1, 2]
    inside = (z > min_depth) & (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
    return inside.mean(axis=1)


def atlas_target(
    tsdf: np.ndarray, observed: np.ndarray, semantic: np.ndarray
) -> dict[str, np.ndarray]:
    """Training targets from resampled ground truth, following Atlas's fused ground truth:
    voxels whose whole vertical column is unobserved read +1 (empty: Atlas's TSDF fusion leaves
    them at 1, and the loss supervises them so that nothing is hallucinated outside the room);
    labels only on observed voxels."""
    column_unobserved = ~observed.any(axis=-1, keepdims=True)
    target = np.where(np.broadcast_to(column_unobserved, tsdf.shape), 1.0, tsdf)
    labels = np.where(observed, semantic, IGNORE_LABEL).astype(np.uint8)
    return {"tsdf": target.astype(np.float32), "observed": observed, "semantic": labels}
