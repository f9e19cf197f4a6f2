"""The floor's depth in an image, from the camera's height above it and the direction of up.

A single image fixes depth only up to scale: the depth U-Net must guess the metres from the sizes
of things it knows, and a few per cent of scale error halves the completed scene's IoU (the
IF-Net's occupancy of 10 cm voxels is that sensitive). A robot knows more: TF gives its camera's
height above the floor and the direction of gravity. Every pixel whose ray points below the
horizon would meet the floor at a depth those two fix; that map goes to the depth U-Net as input
channels (inverse depth, 0 where the ray meets no floor within ``max_depth``, and a channel of
ones saying the floor is known), so the network measures the scene against it instead of
guessing the scale. Without the floor (no TF, a hand-held camera) both channels are 0.

``floor_channels`` is the batched op; ``floor_depth_reference`` the per-pixel loop beside it.
"""

from __future__ import annotations

import numpy as np
import torch

from recon_ros.core.camera import pixel_rays

#: Rays closer to the horizon than this (cosine with down) meet no floor.
MIN_DOWN_COSINE = 1e-3


def floor_depth(
    K: torch.Tensor, up: torch.Tensor, height: torch.Tensor, size: tuple[int, int], max_depth: float
) -> torch.Tensor:
    """(B, H, W) depth (along the optical axis) at which each pixel's ray meets the floor, 0 where
    it meets none within ``max_depth``.

    Args:
        K: (B, 3, 3) intrinsics at ``size`` = (H, W).
        up: (B, 3) unit up vectors in the camera's optical frame.
        height: (B,) the camera's height above the floor (m); NaN: unknown (all 0).
    """
    batch = K.shape[0]
    if tuple(K.shape) != (batch, 3, 3) or tuple(up.shape) != (batch, 3):
        raise ValueError(
            f"K, up: expected (B, 3, 3) and (B, 3), got {tuple(K.shape)}, {tuple(up.shape)}"
        )
    if tuple(height.shape) != (batch,):
        raise ValueError(f"height: expected ({batch},), got {tuple(height.shape)}")
    out = []
    for b in range(batch):
        rays = pixel_rays(K[b].float(), *size)  # (3, H, W) with z = 1: distance along z = t
        down = -torch.einsum("c,chw->hw", up[b].float(), rays)
        depth = height[b].float() / down.clamp(min=MIN_DOWN_COSINE)
        hits = (down > MIN_DOWN_COSINE) & (depth <= max_depth) & torch.isfinite(depth)
        out.append(torch.where(hits, depth, torch.zeros_like(depth)))
    return torch.stack(out)


def floor_channels(
    K: torch.Tensor,
    up: torch.Tensor | None,
    height: torch.Tensor | None,
    size: tuple[int, int],
    max_depth: float,
) -> torch.Tensor:
    """(B, 2, H, W) the depth U-Net's floor input: inverse floor depth (1/m, 0 none) and the
    known flag (1 where the item's floor is known). ``up`` / ``height`` None: no floor at all."""
    batch = K.shape[0]
    if up is None or height is None:
        return torch.zeros(batch, 2, *size, dtype=torch.float32, device=K.device)
    return floor_channels_of(floor_depth(K, up, height, size, max_depth), height)


def floor_channels_of(depth: torch.Tensor, height: torch.Tensor) -> torch.Tensor:
    """``floor_channels`` from the floor's depth (B, H, W) already computed (``floor_depth``)
    and the heights (B,) (NaN: unknown)."""
    batch = depth.shape[0]
    inverse = torch.where(depth > 0, 1.0 / depth.clamp(min=1e-6), torch.zeros_like(depth))
    known = torch.isfinite(height.float()).float().view(batch, 1, 1).expand_as(depth)
    return torch.stack([inverse * known, known], dim=1)


def floor_depth_reference(
    K: np.ndarray, up: np.ndarray, height: float, size: tuple[int, int], max_depth: float
) -> np.ndarray:
    """Slow reference of ``floor_depth`` for one camera: intersect each pixel's ray with the
    plane ``up . p = -height`` (camera at the origin)."""
    rows, cols = size
    out = np.zeros((rows, cols))
    K_inv = np.linalg.inv(np.asarray(K, dtype=np.float64))
    up = np.asarray(up, dtype=np.float64)
    for v in range(rows):
        for u in range(cols):
            ray = K_inv @ np.array([u, v, 1.0])
            denominator = float(up @ ray)
            if denominator >= -MIN_DOWN_COSINE:
                continue  # parallel to the floor or pointing up
            t = -height / denominator
            point = t * ray
            if point[2] <= max_depth:
                out[v, u] = point[2]
    return out
