"""View overlap between posed cameras without depth, and the choice of partner frames: the one
partner-picking implementation, used by the frame-sufficiency estimator (``select_partners``,
overlap only) and by the multi-view depth network (``select_stereo_partners``, overlap and
baseline).

Both see posed RGB only, so overlap is measured on the reference camera's frustum:
a ``grid x grid`` lattice of reference pixels (evenly spread over the image) is placed at each of
several nominal depths (metres along the optical axis), and the overlap with a candidate camera
is the fraction of these sample points that lie in front of the candidate and project inside its
image. Several depths make the score robust to the unknown scene distance: near depths reward
candidates close to the reference, far depths candidates looking the same way. Defaults
``depths = (0.75, 1.5, 3.0)`` (indoor rooms), ``grid = 12``.

The datasets use the same functions as the live estimators so that training pairs look like the
pairs the networks see at run time.

Stereo partners need more than overlap: a partner a few millimetres from the reference (some
consecutive real frames are) gives no depth, one metres away sees the scene differently. They are
chosen by pose baseline, not frame offsets: ``select_stereo_partners`` keeps candidates whose
baseline lies in ``[min_baseline, max_baseline]``, whose optical axis turned at most
``max_angle_deg`` and whose overlap is at least ``min_overlap``, and prefers, among those, the
largest ``overlap * min(baseline / ideal_baseline, 1)``.
"""

from collections.abc import Sequence

import numpy as np

from recon_ros.core.camera import validate_intrinsics

#: Points closer than this to a candidate's image plane do not count as seen (metres).
MIN_DEPTH = 1e-6

DEFAULT_DEPTHS = (0.75, 1.5, 3.0)
DEFAULT_GRID = 12


def frustum_samples(
    K: np.ndarray,
    T_world_cam: np.ndarray,
    hw: tuple[int, int],
    depths: Sequence[float] = DEFAULT_DEPTHS,
    grid: int = DEFAULT_GRID,
) -> np.ndarray:
    """World sample points of a camera's frustum.

    Returns:
        (len(depths) * grid * grid, 3) float64 world points.
    """
    K = validate_intrinsics(K)
    if grid <= 0 or not depths or min(depths) <= 0:
        raise ValueError(f"grid and depths must be positive, got {grid}, {tuple(depths)}")
    H, W = hw
    us = (np.arange(grid) + 0.5) * W / grid - 0.5
    vs = (np.arange(grid) + 0.5) * H / grid - 0.5
    u, v = np.meshgrid(us, vs)
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1) @ np.linalg.inv(K).T
    pts = np.concatenate([rays * d for d in depths], axis=0)
    T = np.asarray(T_world_cam, dtype=np.float64)
    return pts @ T[:3, :3].T + T[:3, 3]


def frustum_overlap(
    K_ref: np.ndarray,
    T_world_ref: np.ndarray,
    hw_ref: tuple[int, int],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    hws: Sequence[tuple[int, int]],
    depths: Sequence[float] = DEFAULT_DEPTHS,
    grid: int = DEFAULT_GRID,
) -> np.ndarray:
    """Overlap of the reference frustum with each candidate camera.

    Args:
        K_ref, T_world_ref, hw_ref: reference intrinsics (3, 3), pose (4, 4), (H, W).
        Ks, T_world_cams, hws: N candidates, same layout.
        depths, grid: the frustum sampling (module docstring).

    Returns:
        (N,) float64 in [0, 1]: fraction of reference sample points the candidate sees.
    """
    if not (len(Ks) == len(T_world_cams) == len(hws)):
        raise ValueError(
            f"Ks, T_world_cams and hws must have equal lengths, got "
            f"{len(Ks)}, {len(T_world_cams)}, {len(hws)}"
        )
    pts = frustum_samples(K_ref, T_world_ref, hw_ref, depths, grid)
    out = np.zeros(len(Ks))
    for j, (K_j, T_j, (H, W)) in enumerate(zip(Ks, T_world_cams, hws, strict=True)):
        K = validate_intrinsics(K_j, f"Ks[{j}]")
        T = np.asarray(T_j, dtype=np.float64)
        p = (pts - T[:3, 3]) @ T[:3, :3]
        z = p[:, 2]
        front = z > MIN_DEPTH
        z = np.where(front, z, 1.0)
        u = K[0, 0] * p[:, 0] / z + K[0, 1] * p[:, 1] / z + K[0, 2]
        v = K[1, 1] * p[:, 1] / z + K[1, 2]
        inside = front & (u >= -0.5) & (u < W - 0.5) & (v >= -0.5) & (v < H - 0.5)
        out[j] = inside.mean()
    return out


def select_partners(overlaps: Sequence[float], m: int, min_overlap: float = 0.0) -> list[int]:
    """Indices of the ``m`` candidates with the largest overlap, best first.

    Ties go to the later candidate (callers list candidates oldest first, so the more recent
    frame wins). Candidates with overlap below ``min_overlap`` are never chosen.

    Returns:
        ``m`` indices into ``overlaps``, or an empty list when fewer than ``m`` qualify.
    """
    if m <= 0:
        raise ValueError(f"m must be positive, got {m}")
    overlaps = np.asarray(overlaps, dtype=np.float64)
    order = np.argsort(-overlaps[::-1], kind="stable")  # newest first among equals
    order = len(overlaps) - 1 - order
    chosen = [int(i) for i in order if overlaps[i] >= min_overlap][:m]
    return chosen if len(chosen) == m else []


def select_stereo_partners(
    K_ref: np.ndarray,
    T_world_ref: np.ndarray,
    hw_ref: tuple[int, int],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    hws: Sequence[tuple[int, int]],
    count: int,
    min_baseline: float = 0.05,
    max_baseline: float = 0.6,
    ideal_baseline: float = 0.2,
    max_angle_deg: float = 40.0,
    min_overlap: float = 0.4,
) -> list[int]:
    """Up to ``count`` stereo partners for a reference view, best first (module docstring).

    Args:
        K_ref, T_world_ref, hw_ref: the reference's intrinsics, pose and (H, W).
        Ks, T_world_cams, hws: the candidates, same layout.

    Returns:
        Indices into the candidates (possibly fewer than ``count``; empty when none qualifies).
        Ties go to the later candidate.
    """
    if count <= 0:
        raise ValueError(f"count: must be positive, got {count}")
    if not 0 <= min_baseline <= max_baseline or ideal_baseline <= 0:
        raise ValueError(
            f"baselines: need 0 <= min <= max and ideal > 0, got {min_baseline}, "
            f"{max_baseline}, {ideal_baseline}"
        )
    if len(Ks) == 0:
        return []
    T_ref = np.asarray(T_world_ref, dtype=np.float64)
    poses = np.asarray(T_world_cams, dtype=np.float64).reshape(-1, 4, 4)
    baselines = np.linalg.norm(poses[:, :3, 3] - T_ref[:3, 3], axis=1)
    cos_axis = np.clip(poses[:, :3, 2] @ T_ref[:3, 2], -1.0, 1.0)
    angles = np.degrees(np.arccos(cos_axis))
    eligible = (baselines >= min_baseline) & (baselines <= max_baseline)
    eligible &= angles <= max_angle_deg
    if not eligible.any():
        return []
    overlaps = np.zeros(len(poses))
    index = np.flatnonzero(eligible)
    overlaps[index] = frustum_overlap(
        K_ref, T_ref, hw_ref, [Ks[i] for i in index], poses[index], [hws[i] for i in index]
    )
    eligible &= overlaps >= min_overlap
    score = np.where(eligible, overlaps * np.minimum(baselines / ideal_baseline, 1.0), -1.0)
    order = len(score) - 1 - np.argsort(-score[::-1], kind="stable")
    return [int(i) for i in order if eligible[i]][:count]
