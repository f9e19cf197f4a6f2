"""Conjugate-pair labels: for every pixel of a reference frame, how many of ``m`` other frames see
the 3D point under it.

This is the label function of the conjugate-pair paper (``A(n1, n2)``: the number of frames among
the ``m`` non-reference images that contain the projection of the reference pixel's scene point),
computed here from depth maps and poses so that it works on any posed RGB-D sequence.

A reference pixel ``(u, v)`` with valid depth ``d`` (finite, > 0) is back-projected to the world
point ``X = T_world_ref @ (d K_ref^-1 [u, v, 1])``. For each partner frame ``j`` it is transformed
into the partner's optical frame, ``(x, y, z) = T_world_j^-1 X``, and counts as *seen* by ``j``
when all of:

1. it lies in front of the camera: ``z > MIN_DEPTH``;
2. it projects inside the image: ``-0.5 <= u' < W_j - 0.5`` and ``-0.5 <= v' < H_j - 0.5`` with
   ``(u', v') = (fx x / z + cx, fy y / z + cy)`` (pixel centres at integer coordinates);
3. it is not occluded: the partner's depth ``d_j`` at the nearest pixel ``(round(u'), round(v'))``
   is valid and agrees with ``z`` within ``abs_tol + rel_tol * z``. A partner pixel without valid
   depth cannot confirm visibility, so it does not count.

The tolerance is relative plus absolute: the relative part covers depth noise growing with range
and the depth change across half a pixel on slanted surfaces (about ``z / f`` per pixel times the
slope); the absolute part covers quantisation (millimetre PNGs) and thin offsets near the camera.
Defaults ``rel_tol = 0.03``, ``abs_tol = 0.02`` m.

The label is the count ``0..m``; pixels without valid reference depth get ``ignore_label`` (255).
"""

from collections.abc import Sequence

import numpy as np

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.sufficiency.intrinsics import check_intrinsics

#: Points closer to a camera than this (metres, along the optical axis) count as behind it.
MIN_DEPTH = 1e-6
DEFAULT_REL_TOL = 0.03
DEFAULT_ABS_TOL = 0.02


def _check_pose(T: np.ndarray, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"{name} must be a finite (4, 4) matrix, got shape {T.shape}")
    return T


def _check_depth(depth: np.ndarray, name: str) -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.shape[0] == 0 or depth.shape[1] == 0:
        raise ValueError(f"{name} must have shape (H, W), got {depth.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"{name} must be floating point metres, got dtype {depth.dtype}")
    return depth.astype(np.float64, copy=False)


def _check_inputs(ref_depth, ref_K, ref_T_world_cam, depths, Ks, T_world_cams, rel_tol, abs_tol):
    ref_depth = _check_depth(ref_depth, "ref_depth")
    ref_K = check_intrinsics(ref_K, "ref_K")
    ref_T = _check_pose(ref_T_world_cam, "ref_T_world_cam")
    if not (len(depths) == len(Ks) == len(T_world_cams)):
        raise ValueError(
            "depths, Ks and T_world_cams must have the same length, got "
            f"{len(depths)}, {len(Ks)}, {len(T_world_cams)}"
        )
    if len(depths) > 254:
        raise ValueError(f"at most 254 partner frames fit a uint8 label, got {len(depths)}")
    depths = [_check_depth(d, f"depths[{j}]") for j, d in enumerate(depths)]
    Ks = [check_intrinsics(K, f"Ks[{j}]") for j, K in enumerate(Ks)]
    Ts = [_check_pose(T, f"T_world_cams[{j}]") for j, T in enumerate(T_world_cams)]
    if not (rel_tol >= 0 and abs_tol >= 0):
        raise ValueError(f"rel_tol and abs_tol must be >= 0, got {rel_tol}, {abs_tol}")
    return ref_depth, ref_K, ref_T, depths, Ks, Ts


def _valid_depth(depth: np.ndarray) -> np.ndarray:
    return np.isfinite(depth) & (depth > 0)


def conjugate_pair_visibility(
    ref_depth: np.ndarray,
    ref_K: np.ndarray,
    ref_T_world_cam: np.ndarray,
    depths: Sequence[np.ndarray],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float = DEFAULT_ABS_TOL,
) -> np.ndarray:
    """Which partner frames see each reference pixel's 3D point (vectorised).

    Args:
        ref_depth: (H, W) float reference depth in metres, 0 (or non-finite) where invalid.
        ref_K: (3, 3) reference intrinsics.
        ref_T_world_cam: (4, 4) reference pose, optical frame to world.
        depths: m partner depths, each (H_j, W_j) float metres; sizes may differ.
        Ks: m partner intrinsics (3, 3).
        T_world_cams: m partner poses (4, 4).
        rel_tol: relative depth tolerance of the occlusion test.
        abs_tol: absolute depth tolerance of the occlusion test, metres.

    Returns:
        (m, H, W) bool: ``out[j, v, u]`` is True when partner ``j`` sees the point of reference
        pixel ``(u, v)``; always False where the reference depth is invalid.
    """
    ref_depth, ref_K, ref_T, depths, Ks, Ts = _check_inputs(
        ref_depth, ref_K, ref_T_world_cam, depths, Ks, T_world_cams, rel_tol, abs_tol
    )
    H, W = ref_depth.shape
    out = np.zeros((len(depths), H, W), dtype=bool)
    valid = _valid_depth(ref_depth)
    vs, us = np.nonzero(valid)
    if len(vs) == 0 or not depths:
        return out
    d = ref_depth[vs, us]
    # Back-project to the reference optical frame, then to the world: (N, 3).
    x = (us - ref_K[0, 2] - ref_K[0, 1] * (vs - ref_K[1, 2]) / ref_K[1, 1]) / ref_K[0, 0] * d
    y = (vs - ref_K[1, 2]) / ref_K[1, 1] * d
    p_ref = np.stack([x, y, d], axis=1)
    p_world = p_ref @ ref_T[:3, :3].T + ref_T[:3, 3]
    for j, (depth_j, K_j, T_j) in enumerate(zip(depths, Ks, Ts, strict=True)):
        R, t = T_j[:3, :3], T_j[:3, 3]
        p = (p_world - t) @ R  # R^T (X - t), row-wise
        z = p[:, 2]
        front = z > MIN_DEPTH
        z_safe = np.where(front, z, 1.0)
        u = K_j[0, 0] * p[:, 0] / z_safe + K_j[0, 1] * p[:, 1] / z_safe + K_j[0, 2]
        v = K_j[1, 1] * p[:, 1] / z_safe + K_j[1, 2]
        ui = np.floor(u + 0.5)
        vi = np.floor(v + 0.5)
        Hj, Wj = depth_j.shape
        inside = front & (ui >= 0) & (ui <= Wj - 1) & (vi >= 0) & (vi <= Hj - 1)
        idx = np.nonzero(inside)[0]
        dj = depth_j[vi[idx].astype(np.int64), ui[idx].astype(np.int64)]
        agree = _valid_depth(dj) & (np.abs(dj - z[idx]) <= abs_tol + rel_tol * z[idx])
        hit = idx[agree]
        out[j, vs[hit], us[hit]] = True
    return out


def conjugate_pair_labels(
    ref_depth: np.ndarray,
    ref_K: np.ndarray,
    ref_T_world_cam: np.ndarray,
    depths: Sequence[np.ndarray],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float = DEFAULT_ABS_TOL,
    ignore_label: int = IGNORE_LABEL,
) -> np.ndarray:
    """Per-pixel conjugate-pair count of a reference frame (vectorised).

    Args: as :func:`conjugate_pair_visibility`, plus ``ignore_label`` for pixels without valid
    reference depth (must not be a count, i.e. > m).

    Returns:
        (H, W) uint8 labels: the number ``0..m`` of partner frames that see the pixel's point,
        ``ignore_label`` where the reference depth is invalid.
    """
    if not (len(depths) < ignore_label <= 255):
        raise ValueError(f"ignore_label must lie in (m, 255], got {ignore_label}")
    seen = conjugate_pair_visibility(
        ref_depth, ref_K, ref_T_world_cam, depths, Ks, T_world_cams, rel_tol, abs_tol
    )
    labels = seen.sum(axis=0).astype(np.uint8)
    labels[~_valid_depth(np.asarray(ref_depth))] = ignore_label
    return labels


def conjugate_pair_labels_reference(
    ref_depth: np.ndarray,
    ref_K: np.ndarray,
    ref_T_world_cam: np.ndarray,
    depths: Sequence[np.ndarray],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    rel_tol: float = DEFAULT_REL_TOL,
    abs_tol: float = DEFAULT_ABS_TOL,
    ignore_label: int = IGNORE_LABEL,
) -> np.ndarray:
    """Slow per-pixel loop version of :func:`conjugate_pair_labels`, for tests only."""
    if not (len(depths) < ignore_label <= 255):
        raise ValueError(f"ignore_label must lie in (m, 255], got {ignore_label}")
    ref_depth, ref_K, ref_T, depths, Ks, Ts = _check_inputs(
        ref_depth, ref_K, ref_T_world_cam, depths, Ks, T_world_cams, rel_tol, abs_tol
    )
    K_inv = np.linalg.inv(ref_K)
    T_cams_world = [np.linalg.inv(T) for T in Ts]
    H, W = ref_depth.shape
    labels = np.full((H, W), ignore_label, dtype=np.uint8)
    for v in range(H):
        for u in range(W):
            d = float(ref_depth[v, u])
            if not (np.isfinite(d) and d > 0):
                continue
            X = ref_T @ np.append(d * (K_inv @ np.array([u, v, 1.0])), 1.0)
            count = 0
            for depth_j, K_j, T_cw in zip(depths, Ks, T_cams_world, strict=True):
                p = (T_cw @ X)[:3]
                if p[2] <= MIN_DEPTH:
                    continue
                q = K_j @ (p / p[2])
                uj, vj = int(np.floor(q[0] + 0.5)), int(np.floor(q[1] + 0.5))
                if not (0 <= uj < depth_j.shape[1] and 0 <= vj < depth_j.shape[0]):
                    continue
                dj = float(depth_j[vj, uj])
                if np.isfinite(dj) and dj > 0 and abs(dj - p[2]) <= abs_tol + rel_tol * p[2]:
                    count += 1
            labels[v, u] = count
    return labels
