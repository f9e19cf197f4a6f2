"""Confidence-weighted projective TSDF fusion of one depth map into a dense voxel grid, with colour
and semantic label votes (Curless and Levoy 1996; labels voted per voxel as Kimera-Semantics does).

Every voxel centre is moved into the camera frame and projected to its nearest pixel. Where that
pixel has a depth ``d > 0`` and the voxel lies at depth ``z`` (along the optical axis), the
signed distance is ``sdf = d - z``. Voxels with ``sdf >= -truncation`` (in front of the surface,
or at most one truncation behind it) take the sample ``min(sdf / truncation, 1)`` into a weighted
running average with the pixel's confidence as weight; voxels farther behind are occluded and
left alone. Voxels in the surface band ``|sdf| < truncation`` also take the pixel's colour into a
weighted colour average and add the confidence to the vote of the pixel's class.

``fuse_depth_into`` updates the grid's tensors in place; ``fuse_depth_reference`` is a loop over
voxels of the same rule, for tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.geometry import invert_rigid_tensor

#: Voxels closer to the image plane than this (metres) are not projected.
MIN_FUSION_DEPTH = 1e-3


@dataclass
class TSDFGrid:
    """Dense fusion state, all on one device.

    Attributes:
        tsdf: (X, Y, Z) float32 running average in [-1, 1] (1: free or unknown).
        weight: (X, Y, Z) float32 sum of confidences.
        color: (3, X, Y, Z) float32 running average colour in [0, 1].
        color_weight: (X, Y, Z) float32.
        votes: (C, X, Y, Z) float32 confidence-weighted class votes (C may be 0).
    """

    tsdf: torch.Tensor
    weight: torch.Tensor
    color: torch.Tensor
    color_weight: torch.Tensor
    votes: torch.Tensor

    @classmethod
    def empty(cls, dims: Sequence[int], num_classes: int, device="cpu") -> TSDFGrid:
        dims = tuple(int(d) for d in dims)
        return cls(
            tsdf=torch.ones(dims, device=device),
            weight=torch.zeros(dims, device=device),
            color=torch.zeros(3, *dims, device=device),
            color_weight=torch.zeros(dims, device=device),
            votes=torch.zeros(num_classes, *dims, device=device),
        )

    @property
    def dims(self) -> tuple[int, int, int]:
        return tuple(self.tsdf.shape)  # type: ignore[return-value]

    def tensors(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _check(grid: TSDFGrid, depth, confidence, rgb, labels, K, T_world_cam) -> None:
    if depth.ndim != 2:
        raise ValueError(f"depth: expected (H, W), got {tuple(depth.shape)}")
    hw = tuple(depth.shape)
    if confidence is not None and tuple(confidence.shape) != hw:
        raise ValueError(f"confidence: expected {hw}, got {tuple(confidence.shape)}")
    if rgb is not None and tuple(rgb.shape) != (3, *hw):
        raise ValueError(f"rgb: expected (3, {hw[0]}, {hw[1]}), got {tuple(rgb.shape)}")
    if labels is not None and tuple(labels.shape) != hw:
        raise ValueError(f"labels: expected {hw}, got {tuple(labels.shape)}")
    if tuple(K.shape) != (3, 3) or tuple(T_world_cam.shape) != (4, 4):
        raise ValueError(
            f"K, T_world_cam: expected (3, 3) and (4, 4), got {tuple(K.shape)}, "
            f"{tuple(T_world_cam.shape)}"
        )


def fuse_depth_into(
    grid: TSDFGrid,
    origin: torch.Tensor,
    voxel_size: float,
    truncation: float,
    depth: torch.Tensor,
    K: torch.Tensor,
    T_world_cam: torch.Tensor,
    confidence: torch.Tensor | None = None,
    rgb: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
    max_depth: float | None = None,
    max_weight: float = float("inf"),
) -> int:
    """Fuse one depth map into ``grid`` (module docstring).

    Args:
        grid: the state, updated in place.
        origin: (3,) world centre of voxel (0, 0, 0).
        voxel_size, truncation: metres.
        depth: (H, W) metres, 0 where unknown.
        K: (3, 3) intrinsics of ``depth``; T_world_cam: (4, 4).
        confidence: (H, W) weights in [0, 1] (None: 1 where depth is known).
        rgb: (3, H, W) colour in [0, 1] or None.
        labels: (H, W) int64 class ids (``IGNORE_LABEL`` none) or None.
        max_depth: depth samples beyond this are ignored (None: no limit).
        max_weight: cap on the per-voxel weight (keeps the map able to follow later frames).

    Returns:
        The number of voxels updated.
    """
    _check(grid, depth, confidence, rgb, labels, K, T_world_cam)
    device = grid.tsdf.device
    dims = grid.dims
    height, width = depth.shape
    T_cam_world = invert_rigid_tensor(T_world_cam.to(device, torch.float64))
    axes = [torch.arange(n, device=device, dtype=torch.float64) * voxel_size for n in dims]
    # Camera coordinates of every voxel centre: separable in (i, j, k), so no N x 3 grid is built.
    rotation = T_cam_world[:3, :3]
    base = rotation @ origin.to(device, torch.float64) + T_cam_world[:3, 3]
    cam = (
        base.view(3, 1, 1, 1)
        + rotation[:, 0].view(3, 1, 1, 1) * axes[0].view(1, -1, 1, 1)
        + rotation[:, 1].view(3, 1, 1, 1) * axes[1].view(1, 1, -1, 1)
        + rotation[:, 2].view(3, 1, 1, 1) * axes[2].view(1, 1, 1, -1)
    ).to(torch.float32)
    x, y, z = cam[0], cam[1], cam[2]
    in_front = z > MIN_FUSION_DEPTH
    safe_z = torch.where(in_front, z, torch.ones_like(z))
    K = K.to(device, torch.float32)
    u = torch.round(K[0, 0] * x / safe_z + K[0, 1] * y / safe_z + K[0, 2])
    v = torch.round(K[1, 1] * y / safe_z + K[1, 2])
    inside = in_front & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    index = torch.nonzero(inside.reshape(-1), as_tuple=True)[0]
    if index.numel() == 0:
        return 0
    pixel = (v.reshape(-1)[index] * width + u.reshape(-1)[index]).long()
    d = depth.to(device, torch.float32).reshape(-1)[pixel]
    w = (
        confidence.to(device, torch.float32).reshape(-1)[pixel]
        if confidence is not None
        else torch.ones_like(d)
    )
    voxel_z = z.reshape(-1)[index]
    sdf = d - voxel_z
    usable = (d > 0) & (w > 0) & (sdf >= -truncation)
    if max_depth is not None:
        usable &= d <= max_depth
    index, pixel, sdf, w = index[usable], pixel[usable], sdf[usable], w[usable]
    if index.numel() == 0:
        return 0
    sample = (sdf / truncation).clamp(max=1.0)
    tsdf, weight = grid.tsdf.view(-1), grid.weight.view(-1)
    old_w = weight[index]
    total = old_w + w
    tsdf[index] = (tsdf[index] * old_w + sample * w) / total
    weight[index] = total.clamp(max=max_weight)
    band = sdf.abs() < truncation
    if band.any():
        b_index, b_pixel, b_w = index[band], pixel[band], w[band]
        if rgb is not None:
            color = grid.color.view(3, -1)
            color_weight = grid.color_weight.view(-1)
            sample_rgb = rgb.to(device, torch.float32).reshape(3, -1)[:, b_pixel]
            old_cw = color_weight[b_index]
            total_cw = old_cw + b_w
            color[:, b_index] = (color[:, b_index] * old_cw + sample_rgb * b_w) / total_cw
            color_weight[b_index] = total_cw.clamp(max=max_weight)
        if labels is not None and grid.votes.shape[0] > 0:
            label = labels.to(device).reshape(-1)[b_pixel].long()
            known = (label != IGNORE_LABEL) & (label < grid.votes.shape[0])
            votes = grid.votes.view(grid.votes.shape[0], -1)
            votes.index_put_((label[known], b_index[known]), b_w[known], accumulate=True)
    return int(index.numel())


def fuse_depth_reference(
    grid: TSDFGrid,
    origin: np.ndarray,
    voxel_size: float,
    truncation: float,
    depth: np.ndarray,
    K: np.ndarray,
    T_world_cam: np.ndarray,
    confidence: np.ndarray | None = None,
    rgb: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> int:
    """Per-voxel loop of ``fuse_depth_into`` (no ``max_depth`` / ``max_weight``), for tests."""
    height, width = depth.shape
    T_cam_world = np.linalg.inv(np.asarray(T_world_cam, dtype=np.float64))
    updated = 0
    for i, j, k in np.ndindex(*grid.dims):
        centre = np.asarray(origin, dtype=np.float64) + voxel_size * np.array([i, j, k])
        x, y, z = T_cam_world[:3, :3] @ centre + T_cam_world[:3, 3]
        if z <= MIN_FUSION_DEPTH:
            continue
        u = round(float(K[0, 0] * x / z + K[0, 1] * y / z + K[0, 2]))
        v = round(float(K[1, 1] * y / z + K[1, 2]))
        if not (0 <= u <= width - 1 and 0 <= v <= height - 1):
            continue
        d = float(depth[v, u])
        w = 1.0 if confidence is None else float(confidence[v, u])
        sdf = d - z
        if d <= 0 or w <= 0 or sdf < -truncation:
            continue
        updated += 1
        old = float(grid.weight[i, j, k])
        grid.tsdf[i, j, k] = (grid.tsdf[i, j, k] * old + min(sdf / truncation, 1.0) * w) / (old + w)
        grid.weight[i, j, k] = old + w
        if abs(sdf) < truncation:
            if rgb is not None:
                old_c = float(grid.color_weight[i, j, k])
                grid.color[:, i, j, k] = (
                    grid.color[:, i, j, k] * old_c + torch.as_tensor(rgb[:, v, u]) * w
                ) / (old_c + w)
                grid.color_weight[i, j, k] = old_c + w
            if labels is not None and labels[v, u] != IGNORE_LABEL:
                grid.votes[int(labels[v, u]), i, j, k] += w
    return updated
