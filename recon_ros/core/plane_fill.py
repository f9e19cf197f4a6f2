"""Depth for textureless room surfaces from the planes their textured parts define.

Stereo fails where the grey levels do not vary: on plain walls, floors and ceilings the fine
sweep (``core.fine_sweep``) finds no decisive match and the depth network's guess stays, most of
the remaining depth error on our validation scenes. These surfaces are planes, and the same
plane usually has textured parts (a poster, a skirting board, a floor's grain, the border with
furniture) the sweep did refine. For each planar class (floor, wall, ceiling by default), planes
are found among its refined pixels (sequential RANSAC, a few planes per class: a room shows
several walls); an unrefined pixel of that class takes the depth where its ray meets the plane
that agrees best with its first estimate, and only when they agree within ``max_change``
(relative): a mislabelled pixel, or a wall plane extended past its corner, keeps its depth.

Geometry, not a learned prior: a planar room and its labels are all it assumes, which holds for
real rooms as for our renders. Deterministic: RANSAC draws from a seeded generator.

``fit_planes_reference`` is a slow loop of the same RANSAC, for tests.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from recon_ros.core.camera import pixel_rays

#: Class names treated as planar room surfaces when none are given.
PLANAR_CLASS_NAMES = ("floor", "wall", "ceiling")


class PlaneFillResult(NamedTuple):
    """depth: (H, W) metres; filled: (H, W) bool, pixels whose depth came from a plane;
    planes: (P, 4) the planes found (n, d with n . x + d = 0 in the camera frame, |n| = 1)."""

    depth: torch.Tensor
    filled: torch.Tensor
    planes: torch.Tensor


def _planes_from_triples(points: torch.Tensor) -> torch.Tensor:
    """(T, 3, 3) point triples -> (T, 4) planes (n, d), n unit; degenerate triples get n = 0."""
    normal = torch.cross(points[:, 1] - points[:, 0], points[:, 2] - points[:, 0], dim=1)
    length = normal.norm(dim=1, keepdim=True)
    normal = torch.where(length > 1e-9, normal / length.clamp(min=1e-9), torch.zeros_like(normal))
    d = -(normal * points[:, 0]).sum(dim=1, keepdim=True)
    return torch.cat([normal, d], dim=1)


def _least_squares_plane(points: torch.Tensor) -> torch.Tensor:
    """(N, 3) -> (4,) the plane through their centroid normal to their least spread."""
    centre = points.mean(dim=0)
    _, _, vh = torch.linalg.svd(points - centre, full_matrices=False)
    normal = vh[-1]
    return torch.cat([normal, -(normal @ centre)[None]])


def _inliers(planes: torch.Tensor, points: torch.Tensor, tolerance: float) -> torch.Tensor:
    """(P, 4) planes, (N, 3) points -> (P, N) bool: within ``tolerance`` times the point's depth
    (stereo error grows with depth) of the plane."""
    distance = (points @ planes[:, :3].T + planes[:, 3]).abs().T
    return distance <= tolerance * points[:, 2].clamp(min=1e-3)


def fit_planes(
    points: torch.Tensor,
    *,
    max_planes: int = 3,
    min_support: int = 200,
    tolerance: float = 0.01,
    iterations: int = 128,
    seed: int = 0,
) -> torch.Tensor:
    """Sequential RANSAC: up to ``max_planes`` planes, each with at least ``min_support`` of the
    points still unexplained within ``tolerance`` (relative to depth), refit by least squares.

    Args:
        points: (N, 3) camera-frame points.

    Returns:
        (P, 4) planes (n, d), P <= max_planes, normals facing the camera (d > 0).
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected (N, 3), got {tuple(points.shape)}")
    if max_planes < 0 or min_support < 3 or iterations < 1 or tolerance <= 0:
        raise ValueError("fit_planes: need max_planes >= 0, min_support >= 3, iterations >= 1, "
                         "tolerance > 0")  # fmt: skip
    generator = torch.Generator().manual_seed(seed)
    remaining = points
    planes = []
    for _ in range(max_planes):
        if len(remaining) < min_support:
            break
        picks = torch.randint(len(remaining), (iterations, 3), generator=generator)
        candidates = _planes_from_triples(remaining[picks.to(remaining.device)])
        counts = _inliers(candidates, remaining, tolerance).sum(dim=1)
        counts[candidates[:, :3].abs().sum(dim=1) == 0] = -1
        best = int(counts.argmax())
        if int(counts[best]) < min_support:
            break
        support = _inliers(candidates[best : best + 1], remaining, tolerance)[0]
        plane = _least_squares_plane(remaining[support])
        support = _inliers(plane[None], remaining, tolerance)[0]
        if int(support.sum()) < min_support:
            break
        if plane[3] < 0:
            plane = -plane
        planes.append(plane)
        remaining = remaining[~support]
    if not planes:
        return points.new_zeros((0, 4))
    return torch.stack(planes)


def plane_depth(planes: torch.Tensor, rays: torch.Tensor) -> torch.Tensor:
    """(P, 4) planes, (3, H, W) rays with z = 1 -> (P, H, W) depth where each ray meets each
    plane (0 where it meets it behind the camera or runs parallel)."""
    along = torch.einsum("pc,chw->phw", planes[:, :3], rays)
    safe = torch.where(along.abs() > 1e-6, along, torch.ones_like(along))
    depth = -planes[:, 3, None, None] / safe
    return torch.where((along.abs() > 1e-6) & (depth > 0), depth, torch.zeros_like(depth))


def plane_fill(
    depth: torch.Tensor,
    refined: torch.Tensor,
    labels: torch.Tensor,
    K: torch.Tensor,
    planar_classes: tuple[int, ...],
    *,
    max_change: float = 0.2,
    max_planes: int = 3,
    min_support: int = 200,
    tolerance: float = 0.01,
    seed: int = 0,
) -> PlaneFillResult:
    """Unrefined pixels of planar classes take their plane's depth (module docstring).

    Args:
        depth: (H, W) metres, 0 unknown (left unknown).
        refined: (H, W) bool, pixels whose depth stereo matching confirmed (the planes' support).
        labels: (H, W) int class per pixel.
        K: (3, 3) intrinsics of ``depth``.
        planar_classes: class ids of planar surfaces.
        max_change: a pixel takes a plane's depth only within this relative change of its own.
        max_planes, min_support, tolerance: ``fit_planes`` settings, per class.
        seed: RANSAC seed.

    Returns:
        ``PlaneFillResult``.
    """
    if depth.ndim != 2:
        raise ValueError(f"depth: expected (H, W), got {tuple(depth.shape)}")
    for name, tensor in (("refined", refined), ("labels", labels)):
        if tuple(tensor.shape) != tuple(depth.shape):
            raise ValueError(f"{name}: expected {tuple(depth.shape)}, got {tuple(tensor.shape)}")
    if tuple(K.shape) != (3, 3):
        raise ValueError(f"K: expected (3, 3), got {tuple(K.shape)}")
    if max_change <= 0:
        raise ValueError(f"max_change: must be > 0, got {max_change}")
    height, width = depth.shape
    rays = pixel_rays(K.to(depth), height, width)
    points = (rays * depth).permute(1, 2, 0)  # (H, W, 3)
    known = depth > 0
    out = depth.clone()
    filled = torch.zeros_like(known)
    found = []
    for offset, cls in enumerate(planar_classes):
        of_class = labels == cls
        planes = fit_planes(
            points[of_class & refined & known],
            max_planes=max_planes,
            min_support=min_support,
            tolerance=tolerance,
            seed=seed + offset,
        )
        if len(planes) == 0:
            continue
        found.append(planes)
        targets = of_class & known & ~refined
        candidate = plane_depth(planes, rays)  # (P, H, W)
        change = (candidate - depth).abs() / depth.clamp(min=1e-6)
        change = torch.where(candidate > 0, change, torch.full_like(change, float("inf")))
        best_change, best = change.min(dim=0)
        take = targets & (best_change <= max_change)
        out = torch.where(take, candidate.gather(0, best[None])[0], out)
        filled |= take
    planes = torch.cat(found) if found else depth.new_zeros((0, 4))
    return PlaneFillResult(out, filled, planes)


def fit_planes_reference(
    points: torch.Tensor,
    *,
    max_planes: int = 3,
    min_support: int = 200,
    tolerance: float = 0.01,
    iterations: int = 128,
    seed: int = 0,
) -> torch.Tensor:
    """``fit_planes`` one hypothesis and one point at a time (same arguments, draws and result),
    for tests."""
    generator = torch.Generator().manual_seed(seed)
    remaining = [p for p in points.double()]
    planes = []

    def close(plane, p) -> bool:
        return abs(float(plane[:3] @ p + plane[3])) <= tolerance * max(float(p[2]), 1e-3)

    for _ in range(max_planes):
        if len(remaining) < min_support:
            break
        picks = torch.randint(len(remaining), (iterations, 3), generator=generator)
        best_plane, best_count = None, -1
        for a, b, c in picks.tolist():
            normal = torch.linalg.cross(remaining[b] - remaining[a], remaining[c] - remaining[a])
            if float(normal.norm()) <= 1e-9:
                continue
            normal = normal / normal.norm()
            plane = torch.cat([normal, -(normal @ remaining[a])[None]])
            count = sum(close(plane, p) for p in remaining)
            if count > best_count:
                best_plane, best_count = plane, count
        if best_plane is None or best_count < min_support:
            break
        support = torch.stack([p for p in remaining if close(best_plane, p)])
        centre = support.mean(dim=0)
        normal = torch.linalg.svd(support - centre)[2][-1]
        plane = torch.cat([normal, -(normal @ centre)[None]])
        kept = [p for p in remaining if not close(plane, p)]
        if len(remaining) - len(kept) < min_support:
            break
        planes.append(-plane if plane[3] < 0 else plane)
        remaining = kept
    if not planes:
        return points.new_zeros((0, 4))
    return torch.stack(planes).to(points.dtype)
