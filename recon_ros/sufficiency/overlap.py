"""View overlap between posed cameras without depth, and the choice of partner frames.

The estimator sees posed RGB only, so overlap is measured on the reference camera's frustum:
a ``grid x grid`` lattice of reference pixels (evenly spread over the image) is placed at each of
several nominal depths (metres along the optical axis), and the overlap with a candidate camera
is the fraction of these sample points that lie in front of the candidate and project inside its
image. Several depths make the score robust to the unknown scene distance: near depths reward
candidates close to the reference, far depths candidates looking the same way. Defaults
``depths = (0.75, 1.5, 3.0)`` (indoor rooms), ``grid = 12``.

The dataset uses the same function as the estimator so that training pairs look like the pairs
the network sees at run time.
"""

from collections.abc import Sequence

import numpy as np

from recon_ros.sufficiency.intrinsics import check_intrinsics
from recon_ros.sufficiency.labels import MIN_DEPTH

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
    K = check_intrinsics(K)
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
        K = check_intrinsics(K_j, f"Ks[{j}]")
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
