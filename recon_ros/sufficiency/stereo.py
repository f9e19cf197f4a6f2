"""Plane-sweep stereo cues from the posed images: a depth guess for every reference pixel and how
well each partner agrees with it.

The frustum channels (``frustum``) tell at which depths a partner could see a reference ray; the
label then depends on the pixel's actual depth and on occlusion. Both can be read from the images
themselves once the poses are known: sweeping planes of constant reference depth through the
scene, warping every partner image onto the reference at each plane and comparing colours finds
the depth at which the views agree (plane sweep, Collins 1996). The optional input
``"rgb+frustum+stereo"`` (``SampleConfig.inputs``) adds

- the plane-sweep depth of each reference pixel, encoded as the frustum depths are
  (``frustum.encode_depth``), and
- for each partner, its matching cost at that depth: low where the partner sees the same
  surface, high where it sees another one (occlusion) or where its view ends.

Recipe (``plane_sweep``), on the images at ``1 / factor`` of the network size (``factor = 2``:
150x150 for the 300x300 network):

1. ``planes`` depths evenly spaced in inverse depth over ``[near, far]`` (48 over 0.3-10 m);
2. for each partner and plane, the reference pixels' points at that depth are projected into the
   partner (as ``labels`` projects) and its image is sampled bilinearly there (border pixels
   repeated outside); the cost is the mean absolute RGB difference (intensities in [0, 1]) to the
   reference, averaged over a ``window`` x ``window`` box (5, clipped at the image border); a
   point behind the partner or outside its image has cost ``inf``;
3. per plane the best (smallest) partner cost is the plane's cost (one partner that sees the
   surface suffices, so points seen by few partners still get a depth); the depth is the plane of
   least cost (the nearest of equal ones), ``inf`` where no partner sees any plane;
4. each partner's cost at that plane is its agreement.

Codes (``stereo_channels``, uint8 like the images, nearest-upsampled to the network size):
channel 0 ``round(255 e(depth))`` (255 where no depth was found), channel ``1 + j``
``round(255 c / (c + COST_SCALE))`` for partner ``j``'s cost ``c`` (255 for ``inf``).
``plane_sweep_reference`` is a per-pixel loop of the same recipe, for tests.
"""

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.sufficiency.frustum import encode_depth
from recon_ros.sufficiency.intrinsics import check_intrinsics, resize_intrinsics, resize_nearest
from recon_ros.sufficiency.preprocess import resize_rgb

SWEEP_PLANES = 48
SWEEP_NEAR = 0.3
SWEEP_FAR = 10.0
SWEEP_WINDOW = 5
SWEEP_FACTOR = 2
#: Cost code ``c / (c + COST_SCALE)``: typical matching costs 0.01-0.2 spread over the range.
COST_SCALE = 0.05


def _check(images: np.ndarray, Ks: np.ndarray, poses: np.ndarray) -> tuple:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or len(images) < 2:
        raise ValueError(
            f"images must be (n >= 2, H, W, 3) uint8, got {images.shape} {images.dtype}"
        )
    Ks = np.stack([check_intrinsics(K, f"Ks[{i}]") for i, K in enumerate(Ks)])
    poses = np.asarray(poses, dtype=np.float64)
    if len(Ks) != len(images) or poses.shape != (len(images), 4, 4):
        raise ValueError(
            f"Ks and poses must hold {len(images)} (3, 3) and (4, 4) matrices, got "
            f"{Ks.shape} and {poses.shape}"
        )
    if not np.all(np.isfinite(poses)):
        raise ValueError("poses must be finite")
    return images, Ks, poses


def plane_depths(planes: int = SWEEP_PLANES, near: float = SWEEP_NEAR, far: float = SWEEP_FAR):
    """(planes,) float64 depths evenly spaced in inverse depth, far to near."""
    if planes < 2 or not 0 < near < far:
        raise ValueError(f"need planes >= 2 and 0 < near < far, got {planes}, {near}, {far}")
    return 1.0 / np.linspace(1.0 / far, 1.0 / near, planes)


def _project(Ks, poses, depths, H, W, j):
    """Pixel coordinates (D, H, W) in partner j of the reference pixels at each depth, and
    whether they are in front of it and inside its image."""
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    rays = np.stack([u, v, np.ones((H, W))], -1).reshape(-1, 3)
    rays = rays.astype(np.float64) @ np.linalg.inv(Ks[0]).T @ poses[0][:3, :3].T
    R = poses[j][:3, :3]
    a = (poses[0][:3, 3] - poses[j][:3, 3]) @ R
    b = rays @ R
    p = a[None, None] + depths[:, None, None] * b[None]  # (D, N, 3)
    z = p[..., 2]
    front = z > 1e-6
    zs = np.where(front, z, 1.0)
    K = Ks[j]
    u = (K[0, 0] * p[..., 0] + K[0, 1] * p[..., 1]) / zs + K[0, 2]
    v = K[1, 1] * p[..., 1] / zs + K[1, 2]
    inside = front & (u >= -0.5) & (u < W - 0.5) & (v >= -0.5) & (v < H - 0.5)
    shape = (len(depths), H, W)
    return u.reshape(shape), v.reshape(shape), inside.reshape(shape)


def plane_sweep(
    images: np.ndarray,
    Ks: np.ndarray,
    poses: np.ndarray,
    planes: int = SWEEP_PLANES,
    near: float = SWEEP_NEAR,
    far: float = SWEEP_FAR,
    window: int = SWEEP_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Plane-sweep depth of the reference and each partner's cost there (module docstring).

    Args:
        images: (m + 1, H, W, 3) uint8, reference first, all of the same size.
        Ks: (m + 1, 3, 3) intrinsics of the images; poses: (m + 1, 4, 4) ``T_world_cam``.

    Returns:
        depth (H, W) float32 metres (``inf`` where no partner sees any plane) and costs
        (m, H, W) float32 (``inf`` where the partner does not see that depth).
    """
    images, Ks, poses = _check(images, Ks, poses)
    n, H, W, _ = images.shape
    depths = plane_depths(planes, near, far)
    img = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    costs = []
    for j in range(1, n):
        u, v, inside = _project(Ks, poses, depths, H, W, j)
        gx = 2.0 * u / max(W - 1, 1) - 1.0
        gy = 2.0 * v / max(H - 1, 1) - 1.0
        grid = torch.from_numpy(np.stack([gx, gy], -1).astype(np.float32))
        warped = F.grid_sample(
            img[j : j + 1].expand(planes, -1, -1, -1),
            grid,
            mode="bilinear",
            padding_mode="border",
            align_corners=True,
        )
        c = (warped - img[0:1]).abs().mean(1, keepdim=True)
        c = F.avg_pool2d(c, window, 1, window // 2, count_include_pad=False)[:, 0]
        costs.append(torch.where(torch.from_numpy(inside), c, torch.tensor(float("inf"))))
    C = torch.stack(costs)  # (m, D, H, W)
    best = C.min(0).values  # (D, H, W)
    idx = torch.from_numpy(np.argmin(best.numpy(), axis=0))  # first (farthest) of equal ones
    found = torch.isfinite(best.min(0).values)
    per = torch.gather(C, 1, idx[None, None].expand(n - 1, 1, H, W))[:, 0]
    depth = torch.from_numpy(depths.astype(np.float32))[idx]
    depth = torch.where(found, depth, torch.tensor(float("inf")))
    return depth.numpy(), per.numpy()


def _bilinear_border(image: np.ndarray, u: float, v: float) -> np.ndarray:
    H, W = image.shape[:2]
    u, v = min(max(u, 0.0), W - 1.0), min(max(v, 0.0), H - 1.0)
    u0, v0 = int(np.floor(u)), int(np.floor(v))
    u1, v1 = min(u0 + 1, W - 1), min(v0 + 1, H - 1)
    du, dv = u - u0, v - v0
    top = (1 - du) * image[v0, u0] + du * image[v0, u1]
    bottom = (1 - du) * image[v1, u0] + du * image[v1, u1]
    return (1 - dv) * top + dv * bottom


def plane_sweep_reference(
    images: np.ndarray,
    Ks: np.ndarray,
    poses: np.ndarray,
    planes: int = SWEEP_PLANES,
    near: float = SWEEP_NEAR,
    far: float = SWEEP_FAR,
    window: int = SWEEP_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Slow per-pixel loop version of :func:`plane_sweep`, for tests only."""
    images, Ks, poses = _check(images, Ks, poses)
    n, H, W, _ = images.shape
    depths = plane_depths(planes, near, far)
    img = images.astype(np.float64) / 255.0
    r = window // 2
    C = np.full((n - 1, planes, H, W), np.inf)
    for j in range(1, n):
        T_cam_world = np.linalg.inv(poses[j])
        for d, t in enumerate(depths):
            raw = np.zeros((H, W))
            inside = np.zeros((H, W), dtype=bool)
            for y in range(H):
                for x in range(W):
                    X = poses[0] @ np.append(t * np.linalg.inv(Ks[0]) @ [x, y, 1.0], 1.0)
                    p = (T_cam_world @ X)[:3]
                    if p[2] > 1e-6:
                        q = Ks[j] @ (p / p[2])
                        inside[y, x] = -0.5 <= q[0] < W - 0.5 and -0.5 <= q[1] < H - 0.5
                    else:
                        q = np.array([Ks[j][0, 2], Ks[j][1, 2]])  # any: masked below
                    sample = _bilinear_border(img[j], q[0], q[1])
                    raw[y, x] = np.abs(sample - img[0, y, x]).mean()
            for y in range(H):
                for x in range(W):
                    if inside[y, x]:
                        box = raw[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]
                        C[j - 1, d, y, x] = box.mean()
    best = C.min(0)
    idx = np.argmin(best, axis=0)
    found = np.isfinite(best.min(0))
    depth = np.where(found, depths[idx], np.inf).astype(np.float32)
    per = np.take_along_axis(C, idx[None, None].repeat(n - 1, 0), 1)[:, 0].astype(np.float32)
    return depth, per


def encode_cost(cost: np.ndarray) -> np.ndarray:
    """``c / (c + COST_SCALE)``, 1 for ``inf``."""
    cost = np.asarray(cost, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isposinf(cost), 1.0, cost / (cost + COST_SCALE))


def stereo_sweep(
    images: np.ndarray, Ks: np.ndarray, poses: np.ndarray, factor: int = SWEEP_FACTOR
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``plane_sweep`` on the images shrunk by ``factor`` (bilinear, antialiased).

    Args:
        images: (m + 1, H, W, 3) uint8 at the network size, reference first; Ks (m + 1, 3, 3)
            their intrinsics; poses (m + 1, 4, 4).

    Returns:
        depth (h, w) of the reference (``inf`` where none was found), costs (m, h, w), and the
        reference's intrinsics at that size (3, 3).
    """
    images, Ks, poses = _check(images, Ks, poses)
    H, W = images.shape[1:3]
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    hw = (max(H // factor, 1), max(W // factor, 1))
    small = np.stack([resize_rgb(im, hw) for im in images])
    Ks_small = np.stack([resize_intrinsics(K, (H, W), hw) for K in Ks])
    depth, costs = plane_sweep(small, Ks_small, poses)
    return depth, costs, Ks_small[0]


def stereo_codes(depth: np.ndarray, costs: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The codes of a ``stereo_sweep`` result (module docstring) at the network size ``hw``:
    (m + 1, H, W) uint8."""
    found = np.isfinite(depth)
    depth_code = np.where(found, encode_depth(np.where(found, depth, 0.0)), 1.0)
    codes = np.concatenate([depth_code[None], encode_cost(costs)])
    codes = np.round(255.0 * codes).astype(np.uint8)
    return np.ascontiguousarray(resize_nearest(codes.transpose(1, 2, 0), hw).transpose(2, 0, 1))


def stereo_channels(
    images: np.ndarray, Ks: np.ndarray, poses: np.ndarray, factor: int = SWEEP_FACTOR
) -> np.ndarray:
    """The network's stereo input (module docstring), as uint8 codes.

    Args:
        images: (m + 1, H, W, 3) uint8 at the network size, reference first; Ks (m + 1, 3, 3)
            their intrinsics; poses (m + 1, 4, 4).
        factor: the sweep runs on the images shrunk by this factor (bilinear, antialiased).

    Returns:
        (m + 1, H, W) uint8: channel 0 the depth code, ``1 + j`` partner ``j``'s cost code.
    """
    depth, costs, _ = stereo_sweep(images, Ks, poses, factor)
    return stereo_codes(depth, costs, np.asarray(images).shape[1:3])
