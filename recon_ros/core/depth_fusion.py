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


def _frustum_box(depth, K, T_world_cam, origin, voxel_size, truncation, dims, max_depth):
    """Voxel index bounds ``(lo, hi)`` (hi exclusive) of the box holding every voxel the depth
    map can update: the frustum up to its largest depth plus the truncation; None if empty."""
    known = depth[depth > 0]
    if known.numel() == 0:
        return None
    far = float(known.max()) + truncation
    if max_depth is not None:
        far = min(far, float(max_depth) + truncation)
    height, width = depth.shape
    K64 = K.to(torch.float64).cpu()
    corners = torch.tensor(
        [[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]],
        dtype=torch.float64,
    )
    y = (corners[:, 1] - K64[1, 2]) / K64[1, 1]
    x = (corners[:, 0] - K64[0, 2] - K64[0, 1] * y) / K64[0, 0]
    rays = torch.stack([x, y, torch.ones_like(x)], dim=1) * far
    points = torch.cat([torch.zeros(1, 3, dtype=torch.float64), rays])
    T = T_world_cam.cpu()
    world = points @ T[:3, :3].T + T[:3, 3]
    start = (world.min(dim=0).values - origin.cpu()) / voxel_size
    stop = (world.max(dim=0).values - origin.cpu()) / voxel_size
    lo = [max(0, int(np.floor(float(a))) - 1) for a in start]
    hi = [min(n, int(np.ceil(float(b))) + 2) for b, n in zip(stop, dims, strict=True)]
    if any(h <= lo_ for lo_, h in zip(lo, hi, strict=True)):
        return None
    return lo, hi


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
    depth = depth.to(device, torch.float32)
    T64 = T_world_cam.to(device, torch.float64)
    origin64 = origin.to(device, torch.float64)
    box = _frustum_box(depth, K, T64, origin64, voxel_size, truncation, dims, max_depth)
    if box is None:
        return 0
    lo, hi = box
    sub = tuple(int(stop - start) for start, stop in zip(lo, hi, strict=True))
    T_cam_world = invert_rigid_tensor(T64)
    rotation = T_cam_world[:3, :3]
    # Camera coordinates of the sub-box's voxel centres: separable in (i, j, k), so no N x 3 grid
    # is built; the base point in float64 keeps far-from-origin worlds exact.
    corner = origin64 + voxel_size * torch.as_tensor(lo, dtype=torch.float64, device=device)
    base = (rotation @ corner + T_cam_world[:3, 3]).to(torch.float32)
    step = (rotation * voxel_size).to(torch.float32)
    axes = [torch.arange(n, device=device, dtype=torch.float32) for n in sub]
    cam = (
        base.view(3, 1, 1, 1)
        + step[:, 0].view(3, 1, 1, 1) * axes[0].view(1, -1, 1, 1)
        + step[:, 1].view(3, 1, 1, 1) * axes[1].view(1, 1, -1, 1)
        + step[:, 2].view(3, 1, 1, 1) * axes[2].view(1, 1, 1, -1)
    )
    x, y, z = cam[0], cam[1], cam[2]
    in_front = z > MIN_FUSION_DEPTH
    safe_z = torch.where(in_front, z, torch.ones_like(z))
    K = K.to(device, torch.float32)
    u = torch.round(K[0, 0] * x / safe_z + K[0, 1] * y / safe_z + K[0, 2])
    v = torch.round(K[1, 1] * y / safe_z + K[1, 2])
    inside = in_front & (u >= 0) & (u <= width - 1) & (v >= 0) & (v <= height - 1)
    # Dense over the sub-box (one gather of the depth map); only the thin surface band below is
    # indexed voxel by voxel.
    pixel = (v.clamp(0, height - 1) * width + u.clamp(0, width - 1)).long()
    d = depth.reshape(-1).take(pixel)
    w = (
        confidence.to(device, torch.float32).reshape(-1).take(pixel)
        if confidence is not None
        else torch.ones_like(d)
    )
    sdf = d - z
    usable = inside & (d > 0) & (w > 0) & (sdf >= -truncation)
    if max_depth is not None:
        usable &= d <= max_depth
    count = int(usable.sum())
    if count == 0:
        return 0
    w = torch.where(usable, w, torch.zeros_like(w))
    region = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    tsdf, weight = grid.tsdf[region], grid.weight[region]
    total = weight + w
    sample = (sdf / truncation).clamp(max=1.0)
    fused = (tsdf * weight + sample * w) / total.clamp(min=1e-12)
    tsdf.copy_(torch.where(usable, fused, tsdf))
    weight.copy_(total.clamp(max=max_weight))
    band = usable & (sdf.abs() < truncation)
    if (rgb is not None or labels is not None) and bool(band.any()):
        where = torch.nonzero(band, as_tuple=True)
        b_pixel, b_w = pixel[where], w[where]
        if rgb is not None:
            color = grid.color[(slice(None), *region)]
            color_weight = grid.color_weight[region]
            sample_rgb = rgb.to(device, torch.float32).reshape(3, -1)[:, b_pixel]
            old_cw = color_weight[where]
            total_cw = old_cw + b_w
            color[(slice(None), *where)] = (
                color[(slice(None), *where)] * old_cw + sample_rgb * b_w
            ) / total_cw
            color_weight[where] = total_cw.clamp(max=max_weight)
        if labels is not None and grid.votes.shape[0] > 0:
            label = labels.to(device).reshape(-1)[b_pixel].long()
            known = (label != IGNORE_LABEL) & (label < grid.votes.shape[0])
            votes = grid.votes[(slice(None), *region)]
            votes.index_put_(
                (label[known], *(axis[known] for axis in where)), b_w[known], accumulate=True
            )
    return count


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
