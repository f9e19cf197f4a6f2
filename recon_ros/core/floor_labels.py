"""Floor labels only on the floor: pixels labelled floor that stand well above the floor plane
take their next most likely class.

The semantic head calls a fifth of the table tops and chair seats floor on our held-out scenes
(flat, horizontal, often the same colour). Geometry settles it: the keyframe's floor plane
(``core.plane_fill``, fitted to well-matched floor pixels) is known, and a point half a table's
height above it is not floor. Only the floor label is withdrawn; nothing is labelled floor by
height, so objects standing on the floor keep their own labels.
"""

from __future__ import annotations

import torch

from recon_ros.core.camera import pixel_rays


def withdraw_floor_above_plane(
    logits: torch.Tensor,
    depth: torch.Tensor,
    K: torch.Tensor,
    floor_plane: torch.Tensor,
    floor_class: int,
    max_height: float,
) -> torch.Tensor:
    """Class logits with the floor class ruled out where the pixel's point is more than
    ``max_height`` metres above ``floor_plane``.

    Args:
        logits: (C, H, W) class logits.
        depth: (H, W) metres (0: unknown, left as it is).
        K: (3, 3) intrinsics of ``depth``.
        floor_plane: (4,) n, d with n . x + d = 0 in the camera frame, |n| = 1, d > 0 (the
            camera's side of the floor is positive: heights above it).
        floor_class: index of the floor class in ``logits``.
        max_height: metres.

    Returns:
        (C, H, W) logits (a new tensor; the floor logit is -inf where it was withdrawn).
    """
    if logits.ndim != 3 or tuple(logits.shape[1:]) != tuple(depth.shape):
        raise ValueError(
            f"logits/depth: expected (C, H, W) and (H, W), got {tuple(logits.shape)}, "
            f"{tuple(depth.shape)}"
        )
    if tuple(floor_plane.shape) != (4,):
        raise ValueError(f"floor_plane: expected (4,), got {tuple(floor_plane.shape)}")
    if not 0 <= floor_class < logits.shape[0]:
        raise ValueError(f"floor_class: {floor_class} is not one of {logits.shape[0]} classes")
    if max_height <= 0:
        raise ValueError(f"max_height: must be > 0, got {max_height}")
    height, width = depth.shape
    rays = pixel_rays(K.to(depth), height, width)
    points = rays * depth  # (3, H, W)
    above = torch.einsum("c,chw->hw", floor_plane[:3].to(depth), points) + floor_plane[3]
    withdraw = (depth > 0) & (above > max_height)
    out = logits.clone()
    out[floor_class] = torch.where(
        withdraw, torch.full_like(out[floor_class], float("-inf")), out[floor_class]
    )
    return out
