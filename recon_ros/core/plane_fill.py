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

Plain walls often have no matched pixel at all. Their foot does: where a wall meets the floor,
the junction lies on the floor plane, which the floor's texture usually fixes well. Pixels on
the boundary between the floor and wall labels are put on the floor plane, lines are found among
them (RANSAC), and each line with the floor's normal spans a wall plane (walls stand upright on
the floor). The same holds at the ceiling when its plane is known. These wall planes join the
wall's own candidates; the same ``max_change`` rule decides where they apply.

Geometry, not a learned prior: a planar room with upright walls and its labels are all it
assumes, which holds for real rooms as for our renders. Deterministic: RANSAC draws from a
seeded generator.

``fit_planes_reference`` and ``fit_upright_planes_reference`` are slow loops of the same RANSAC,
for tests.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from recon_ros.core.camera import pixel_rays

#: Class names treated as planar room surfaces when none are given.
PLANAR_CLASS_NAMES = ("floor", "wall", "ceiling")


class PlaneFillResult(NamedTuple):
    """depth: (H, W) metres; filled: (H, W) bool, pixels whose depth came from a plane;
    planes: (P, 4) the planes found (n, d with n . x + d = 0 in the camera frame, |n| = 1);
    planes_of: class id -> (P_c, 4) the planes of that class (best supported first)."""

    depth: torch.Tensor
    filled: torch.Tensor
    planes: torch.Tensor
    planes_of: dict


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


def _sequential_ransac(
    points: torch.Tensor,
    hypotheses,
    refit,
    *,
    sample_size: int,
    widen: tuple[float, ...],
    max_planes: int,
    min_support: int,
    tolerance: float,
    iterations: int,
    seed: int,
) -> torch.Tensor:
    """Planes one after another: ``iterations`` hypotheses from ``sample_size``-point draws
    (``hypotheses``: (T, sample_size, 3) -> (T, 4)), the best supported refit by ``refit``
    ((N, 3) -> (4,)) to its support taken at each ``widen`` times ``tolerance`` in turn, then to
    its support at ``tolerance``; its support leaves the points before the next plane."""
    generator = torch.Generator().manual_seed(seed)
    remaining = points
    planes = []
    for _ in range(max_planes):
        if len(remaining) < min_support:
            break
        picks = torch.randint(len(remaining), (iterations, sample_size), generator=generator)
        candidates = hypotheses(remaining[picks.to(remaining.device)])
        counts = _inliers(candidates, remaining, tolerance).sum(dim=1)
        counts[candidates[:, :3].abs().sum(dim=1) == 0] = -1
        best = int(counts.argmax())
        if int(counts[best]) < min_support:
            break
        support = _inliers(candidates[best : best + 1], remaining, tolerance)[0]
        for factor in widen:
            plane = refit(remaining[support])
            support = _inliers(plane[None], remaining, factor * tolerance)[0]
            if int(support.sum()) < min_support:
                break
        if int(support.sum()) < min_support:
            break
        if plane[3] < 0:
            plane = -plane
        planes.append(plane)
        remaining = remaining[~support]
    if not planes:
        return points.new_zeros((0, 4))
    return torch.stack(planes)


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
    return _sequential_ransac(
        points,
        _planes_from_triples,
        _least_squares_plane,
        sample_size=3,
        widen=(1.0,),
        max_planes=max_planes,
        min_support=min_support,
        tolerance=tolerance,
        iterations=iterations,
        seed=seed,
    )


def _plane_basis(up: torch.Tensor) -> torch.Tensor:
    """(3,) unit vector -> (2, 3) orthonormal basis of the plane normal to it."""
    helper = torch.zeros_like(up)
    helper[int(up.abs().argmin())] = 1.0
    first = torch.linalg.cross(up, helper)
    first = first / first.norm()
    return torch.stack([first, torch.linalg.cross(up, first)])


def _upright_planes_from_pairs(pairs: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(T, 2, 3) point pairs -> (T, 4) planes containing both points and the ``up`` direction;
    pairs along ``up`` (or coincident) get n = 0."""
    normal = torch.cross(pairs[:, 1] - pairs[:, 0], up.expand(len(pairs), 3), dim=1)
    length = normal.norm(dim=1, keepdim=True)
    normal = torch.where(length > 1e-9, normal / length.clamp(min=1e-9), torch.zeros_like(normal))
    d = -(normal * pairs[:, 0]).sum(dim=1, keepdim=True)
    return torch.cat([normal, d], dim=1)


def _least_squares_upright_plane(points: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(N, 3) points, (3,) unit up -> (4,) the plane containing ``up`` nearest the points (a
    line fit in the plane normal to ``up``)."""
    basis = _plane_basis(up)
    centre = points.mean(dim=0)
    flat = (points - centre) @ basis.T  # (N, 2)
    _, _, vh = torch.linalg.svd(flat, full_matrices=False)
    normal = vh[-1] @ basis
    return torch.cat([normal, -(normal @ centre)[None]])


def fit_upright_planes(
    points: torch.Tensor,
    up: torch.Tensor,
    *,
    max_planes: int = 4,
    min_support: int = 40,
    tolerance: float = 0.015,
    iterations: int = 128,
    seed: int = 0,
) -> torch.Tensor:
    """Sequential RANSAC for planes that contain the direction ``up`` (walls standing on a
    floor whose normal is ``up``): two points fix each hypothesis.

    Args:
        points: (N, 3) camera-frame points (here: wall feet on the floor plane).
        up: (3,) the floor's normal in the camera frame (its length does not matter).
        max_planes, min_support, iterations, seed: as ``fit_planes``.
        tolerance: inlier distance relative to the point's depth.

    Returns:
        (P, 4) planes (n, d), n normal to ``up``, facing the camera (d > 0).
    """
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points: expected (N, 3), got {tuple(points.shape)}")
    if tuple(up.shape) != (3,) or float(up.norm()) <= 1e-9:
        raise ValueError(f"up: expected a non-zero (3,) vector, got {tuple(up.shape)}")
    if max_planes < 0 or min_support < 2 or iterations < 1 or tolerance <= 0:
        raise ValueError("fit_upright_planes: need max_planes >= 0, min_support >= 2, "
                         "iterations >= 1, tolerance > 0")  # fmt: skip
    up = (up / up.norm()).to(points)
    # A two-point hypothesis across a band of boundary pixels is tilted; refitting to a wider
    # support first turns it to the band's own direction.
    return _sequential_ransac(
        points,
        lambda pairs: _upright_planes_from_pairs(pairs, up),
        lambda support: _least_squares_upright_plane(support, up),
        sample_size=2,
        widen=(2.0, 1.0, 1.0),
        max_planes=max_planes,
        min_support=min_support,
        tolerance=tolerance,
        iterations=iterations,
        seed=seed,
    )


def wall_feet(
    labels: torch.Tensor,
    rays: torch.Tensor,
    base_plane: torch.Tensor,
    base_class: int,
    wall_class: int,
) -> torch.Tensor:
    """(N, 3) points where walls meet a known plane: for each pair of side-by-side or stacked
    pixels labelled ``base_class`` (floor or ceiling) and ``wall_class``, the ray between them
    (rays (3, H, W), z = 1) put on ``base_plane`` (4,). Between the pixels, not on either: the
    junction lies there, and a pixel's own ray would put it half a pixel off, which grows as
    the square of the distance."""
    base, wall = labels == base_class, labels == wall_class
    middles = []
    for axis in (1, 2):  # image rows, then columns, of the (3, H, W) rays
        first = [slice(None)] * 2
        second = [slice(None)] * 2
        first[axis - 1], second[axis - 1] = slice(None, -1), slice(1, None)
        meet = (base[tuple(first)] & wall[tuple(second)]) | (
            wall[tuple(first)] & base[tuple(second)]
        )
        middle = 0.5 * (rays[(slice(None), *first)] + rays[(slice(None), *second)])
        middles.append(middle[:, meet].T)
    middle_rays = torch.cat(middles)  # (N, 3), z = 1
    along = middle_rays @ base_plane[:3]
    safe = torch.where(along.abs() > 1e-6, along, torch.ones_like(along))
    depth = -base_plane[3] / safe
    keep = (along.abs() > 1e-6) & (depth > 0)
    return middle_rays[keep] * depth[keep, None]


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
    wall_class: int | None = None,
    base_classes: tuple[int, ...] = (),
    feet_min_support: int = 40,
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
        wall_class: the class of upright walls (one of ``planar_classes``), or None: no planes
            from the walls' feet.
        base_classes: classes whose planes walls stand on or reach up to (floor, ceiling); the
            best-supported plane of each gives wall planes through its boundary with the walls
            (``wall_feet``, ``fit_upright_planes``).
        feet_min_support: boundary pixels a wall plane from the feet needs.

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
    planes_of = {}
    for offset, cls in enumerate(planar_classes):
        planes_of[cls] = fit_planes(
            points[(labels == cls) & refined & known],
            max_planes=max_planes,
            min_support=min_support,
            tolerance=tolerance,
            seed=seed + offset,
        )
    if wall_class is not None and wall_class in planes_of:
        extra = [planes_of[wall_class]]
        for offset, base in enumerate(base_classes):
            if len(planes_of.get(base, ())) == 0:
                continue
            base_plane = planes_of[base][0]
            extra.append(
                fit_upright_planes(
                    wall_feet(labels, rays, base_plane, base, wall_class),
                    base_plane[:3],
                    min_support=feet_min_support,
                    tolerance=1.5 * tolerance,
                    seed=seed + len(planar_classes) + offset,
                )
            )
        planes_of[wall_class] = torch.cat(extra)
    out = depth.clone()
    filled = torch.zeros_like(known)
    found = []
    for cls, planes in planes_of.items():
        if len(planes) == 0:
            continue
        found.append(planes)
        targets = (labels == cls) & known & ~refined
        candidate = plane_depth(planes, rays)  # (P, H, W)
        change = (candidate - depth).abs() / depth.clamp(min=1e-6)
        change = torch.where(candidate > 0, change, torch.full_like(change, float("inf")))
        best_change, best = change.min(dim=0)
        take = targets & (best_change <= max_change)
        out = torch.where(take, candidate.gather(0, best[None])[0], out)
        filled |= take
    planes = torch.cat(found) if found else depth.new_zeros((0, 4))
    return PlaneFillResult(out, filled, planes, planes_of)


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


def fit_upright_planes_reference(
    points: torch.Tensor,
    up: torch.Tensor,
    *,
    max_planes: int = 4,
    min_support: int = 40,
    tolerance: float = 0.015,
    iterations: int = 128,
    seed: int = 0,
) -> torch.Tensor:
    """``fit_upright_planes`` one hypothesis and one point at a time (same arguments, draws and
    result), for tests: lines fitted in 2D coordinates of the plane normal to ``up``."""
    up = (up / up.norm()).double()
    basis = _plane_basis(up)
    generator = torch.Generator().manual_seed(seed)
    remaining = [p for p in points.double()]

    def close(plane, p, widen=1.0) -> bool:
        return abs(float(plane[:3] @ p + plane[3])) <= widen * tolerance * max(float(p[2]), 1e-3)

    def upright_fit(chosen) -> torch.Tensor:
        centre = torch.stack(chosen).mean(dim=0)
        flat = torch.stack([basis @ (p - centre) for p in chosen])  # (N, 2)
        direction_2d = torch.linalg.svd(flat, full_matrices=False)[2][-1]
        normal = direction_2d @ basis
        return torch.cat([normal, -(normal @ centre)[None]])

    planes = []
    for _ in range(max_planes):
        if len(remaining) < min_support:
            break
        picks = torch.randint(len(remaining), (iterations, 2), generator=generator)
        best_plane, best_count = None, -1
        for a, b in picks.tolist():
            normal = torch.linalg.cross(remaining[b] - remaining[a], up)
            if float(normal.norm()) <= 1e-9:
                continue
            normal = normal / normal.norm()
            plane = torch.cat([normal, -(normal @ remaining[a])[None]])
            count = sum(close(plane, p) for p in remaining)
            if count > best_count:
                best_plane, best_count = plane, count
        if best_plane is None or best_count < min_support:
            break
        support = [p for p in remaining if close(best_plane, p)]
        for widen in (2.0, 1.0, 1.0):
            plane = upright_fit(support)
            support = [p for p in remaining if close(plane, p, widen)]
            if len(support) < min_support:
                break
        if len(support) < min_support:
            break
        kept = [p for p in remaining if not close(plane, p)]
        planes.append(-plane if plane[3] < 0 else plane)
        remaining = kept
    if not planes:
        return points.new_zeros((0, 4))
    return torch.stack(planes).to(points.dtype)
