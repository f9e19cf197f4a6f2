"""Per-pixel frustum intervals: the depths at which each partner camera could see a reference ray.

The network of the paper sees the images only and must find out from their content which parts
of the reference view the partners cover. The poses are known at run time (the estimator gets
them with every keyframe), and they already say most of it: a reference pixel's point at depth
``t`` (metres along the reference optical axis) lies in partner ``j``'s view exactly when ``t``
falls in an interval ``[lo_j, hi_j]`` that depends on the pixel and the two cameras only. Whether
the point is really seen then depends on its unknown depth (and on occlusion), which the network
estimates from the images. The optional input ``"rgb+frustum"`` (``SampleConfig.inputs``) adds
these intervals as two channels per partner.

Derivation. A reference pixel ``(u, v)`` has the ray ``r = K_ref^-1 [u, v, 1]`` (``r_z = 1``, so
the ray parameter is the depth ``t``); its world point is ``X(t) = c_ref + t R_ref r``. In the
partner's optical frame ``p(t) = R_j^T (X(t) - c_j) = a + t b`` with ``a = R_j^T (c_ref - c_j)``
and ``b = R_j^T R_ref r``. The point is in front of the partner (``p_z > 0``) and projects inside
its image (``-0.5 <= u' < W - 0.5``, ``-0.5 <= v' < H - 0.5``, ``u' = (fx p_x + s p_y) / p_z + cx``,
``v' = fy p_y / p_z + cy``: the bounds of ``labels``) exactly when five linear functionals of
``p`` are non-negative: ``p_z``, ``fx p_x + s p_y + (cx + 0.5) p_z``,
``(W - 0.5 - cx) p_z - fx p_x - s p_y``, ``fy p_y + (cy + 0.5) p_z``,
``(H - 0.5 - cy) p_z - fy p_y`` (the image bounds multiplied by ``p_z > 0``). Each is
``alpha + beta t >= 0``, so the visible depths form one interval, cut to ``[near, far]``.
Boundaries (strict or not) are ignored: they have measure zero.

Encoding (``frustum_channels``): ``e(t) = t / (t + scale)`` maps ``[0, inf)`` to ``[0, 1)``
(``scale = 2`` m spreads indoor depths: 0.5 m -> 0.2, 2 m -> 0.5, 8 m -> 0.8); partner ``j``
gets the pair ``(e(lo_j), e(hi_j))``, a ray the partner never sees ``(1, 0)`` (an empty
interval, hi < lo). The values are stored like image intensities, as uint8 ``round(255 e)``
(about 3 cm of depth at 2 m): the dataset caches them and the estimator computes the same codes,
and ``preprocess.network_input`` normalises both kinds of channel alike.

A horizontal flip of the images flips these channels too when ``cx`` is the image centre
(``cx = (W - 1) / 2``): the mirrored world seen by mirrored cameras has the same intervals at the
mirrored pixels. The dataset's flip augmentation relies on it.
"""

from collections.abc import Sequence

import numpy as np

from recon_ros.sufficiency.intrinsics import check_intrinsics

#: Depth range (metres) the intervals are cut to; ``far`` is the scene engine's ``max_depth``.
FRUSTUM_NEAR = 0.1
FRUSTUM_FAR = 20.0
#: ``e(t) = t / (t + FRUSTUM_SCALE)``.
FRUSTUM_SCALE = 2.0


def _check_pose(T: np.ndarray, name: str) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise ValueError(f"{name} must be a finite (4, 4) matrix, got shape {T.shape}")
    return T


def _check(K_ref, T_ref, hw_ref, Ks, Ts, hws, near, far):
    K_ref = check_intrinsics(K_ref, "K_ref")
    T_ref = _check_pose(T_ref, "T_world_ref")
    if len(hw_ref) != 2 or min(hw_ref) <= 0:
        raise ValueError(f"hw_ref must be a positive (H, W), got {tuple(hw_ref)}")
    if not (len(Ks) == len(Ts) == len(hws)):
        raise ValueError(
            f"Ks, T_world_cams and hws must have equal lengths, got {len(Ks)}, {len(Ts)}, "
            f"{len(hws)}"
        )
    if not 0 < near < far:
        raise ValueError(f"near and far must satisfy 0 < near < far, got {near}, {far}")
    Ks = [check_intrinsics(K, f"Ks[{j}]") for j, K in enumerate(Ks)]
    Ts = [_check_pose(T, f"T_world_cams[{j}]") for j, T in enumerate(Ts)]
    for j, hw in enumerate(hws):
        if len(hw) != 2 or min(hw) <= 0:
            raise ValueError(f"hws[{j}] must be a positive (H, W), got {tuple(hw)}")
    return K_ref, T_ref, Ks, Ts


def _functionals(K: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(5, 3): rows ``l`` with ``l . p >= 0`` for all five visibility conditions."""
    (fx, s, cx), (_, fy, cy) = K[0], K[1]
    H, W = hw
    return np.array(
        [
            [0.0, 0.0, 1.0],
            [fx, s, cx + 0.5],
            [-fx, -s, W - 0.5 - cx],
            [0.0, fy, cy + 0.5],
            [0.0, -fy, H - 0.5 - cy],
        ]
    )


def frustum_intervals(
    K_ref: np.ndarray,
    T_world_ref: np.ndarray,
    hw_ref: tuple[int, int],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    hws: Sequence[tuple[int, int]],
    near: float = FRUSTUM_NEAR,
    far: float = FRUSTUM_FAR,
) -> np.ndarray:
    """Depth intervals in which each partner sees each reference ray (vectorised).

    Args:
        K_ref, T_world_ref, hw_ref: reference intrinsics (3, 3), pose (4, 4), (H, W).
        Ks, T_world_cams, hws: m partners, same layout.
        near, far: the depth range the intervals are cut to (metres).

    Returns:
        (m, H, W, 2) float64 ``[lo, hi]`` depths (metres along the reference optical axis);
        ``lo > hi`` (``(inf, -inf)``) where the partner sees no depth of the ray.
    """
    K_ref, T_ref, Ks, Ts = _check(K_ref, T_world_ref, hw_ref, Ks, T_world_cams, hws, near, far)
    H, W = int(hw_ref[0]), int(hw_ref[1])
    v, u = np.mgrid[0:H, 0:W]
    pix = np.stack([u.ravel(), v.ravel(), np.ones(H * W)], axis=1).astype(np.float64)
    rays = pix @ np.linalg.inv(K_ref).T  # (N, 3), z = 1
    rays_world = rays @ T_ref[:3, :3].T
    out = np.empty((len(Ks), H, W, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, (K, T, hw) in enumerate(zip(Ks, Ts, hws, strict=True)):
            L = _functionals(K, hw)  # (5, 3)
            R = T[:3, :3]
            alpha = L @ (R.T @ (T_ref[:3, 3] - T[:3, 3]))  # (5,)
            beta = rays_world @ R @ L.T  # (N, 5): L R^T d for each ray d
            root = -alpha / beta
            lo = np.max(np.where(beta > 0, root, -np.inf), axis=1, initial=near)
            hi = np.min(np.where(beta < 0, root, np.inf), axis=1, initial=far)
            never = np.any((beta == 0) & (alpha < 0), axis=1) | (lo > hi)
            lo[never], hi[never] = np.inf, -np.inf
            out[j, ..., 0] = lo.reshape(H, W)
            out[j, ..., 1] = hi.reshape(H, W)
    return out


def frustum_intervals_reference(
    K_ref: np.ndarray,
    T_world_ref: np.ndarray,
    hw_ref: tuple[int, int],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    hws: Sequence[tuple[int, int]],
    near: float = FRUSTUM_NEAR,
    far: float = FRUSTUM_FAR,
    samples: int = 4000,
) -> np.ndarray:
    """Slow per-pixel version of :func:`frustum_intervals` by brute force, for tests only: each
    ray is sampled at ``samples`` depths evenly spaced in inverse depth over ``[near, far]``, the
    samples are projected into each partner as ``labels`` does, and the smallest and largest
    visible sample depth are returned (``(inf, -inf)`` when none is visible). Agrees with the
    exact interval up to the sample spacing."""
    K_ref, T_ref, Ks, Ts = _check(K_ref, T_world_ref, hw_ref, Ks, T_world_cams, hws, near, far)
    H, W = int(hw_ref[0]), int(hw_ref[1])
    depths = 1.0 / np.linspace(1.0 / far, 1.0 / near, samples)
    K_inv = np.linalg.inv(K_ref)
    out = np.empty((len(Ks), H, W, 2))
    for j, (K, T, (Hj, Wj)) in enumerate(zip(Ks, Ts, hws, strict=True)):
        T_inv = np.linalg.inv(T)
        for vv in range(H):
            for uu in range(W):
                ray = K_inv @ np.array([uu, vv, 1.0])
                X = (T_ref[:3, :3] @ ray)[None] * depths[:, None] + T_ref[:3, 3]
                p = X @ T_inv[:3, :3].T + T_inv[:3, 3]
                z = p[:, 2]
                zs = np.where(z > 0, z, 1.0)
                up = (K[0, 0] * p[:, 0] + K[0, 1] * p[:, 1]) / zs + K[0, 2]
                vp = K[1, 1] * p[:, 1] / zs + K[1, 2]
                seen = (z > 0) & (up >= -0.5) & (up < Wj - 0.5) & (vp >= -0.5) & (vp < Hj - 0.5)
                hit = depths[seen]
                out[j, vv, uu] = (hit.min(), hit.max()) if hit.size else (np.inf, -np.inf)
    return out


def encode_depth(t: np.ndarray, scale: float = FRUSTUM_SCALE) -> np.ndarray:
    """``t / (t + scale)``: depths ``[0, inf]`` to ``[0, 1]``."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isposinf(t), 1.0, t / (t + scale))


def frustum_channels(
    K_ref: np.ndarray,
    T_world_ref: np.ndarray,
    hw_ref: tuple[int, int],
    Ks: Sequence[np.ndarray],
    T_world_cams: Sequence[np.ndarray],
    hws: Sequence[tuple[int, int]],
) -> np.ndarray:
    """The network's frustum input (module docstring), as uint8 codes.

    Returns:
        (m, 2, H, W) uint8 ``round(255 e)``: ``[j, 0]`` the encoded near end of partner ``j``'s
        interval, ``[j, 1]`` the far end; ``(255, 0)`` where the partner never sees the ray.
    """
    iv = frustum_intervals(K_ref, T_world_ref, hw_ref, Ks, T_world_cams, hws)
    empty = iv[..., 0] > iv[..., 1]
    lo = np.where(empty, 1.0, encode_depth(np.where(empty, 0.0, iv[..., 0])))
    hi = np.where(empty, 0.0, encode_depth(np.where(empty, 0.0, iv[..., 1])))
    return np.round(255.0 * np.stack([lo, hi], axis=1)).astype(np.uint8)
