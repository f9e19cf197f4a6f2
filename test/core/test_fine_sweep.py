"""The fine NCC sweep: against its per-pixel reference, and sharpening a coarse depth of a
textured plane to the true depth where the first estimate was a plane step off."""

import numpy as np
import pytest
import torch

from recon_ros.core.fine_sweep import fine_sweep, fine_sweep_reference, upsample_depth

K = np.array([[60.0, 0.0, 31.5], [0.0, 60.0, 23.5], [0.0, 0.0, 1.0]])


def render_plane(T_world_cam: np.ndarray, depth: float, height=48, width=64, seed=1):
    """Grey image of a random texture on the world plane z = ``depth`` (camera looking +z)."""
    texture = np.random.default_rng(seed).random((300, 300)).astype(np.float32)
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
    d_world = rays @ R.T
    s = (depth - t[2]) / d_world[..., 2]
    hit = t + s[..., None] * d_world
    # Blocks of 5 cm (about 2 px at 1.6 m): texture a box can match, coarser than a pixel.
    ix = np.clip(((hit[..., 0] + 3.0) * 20).astype(int), 0, 299)
    iy = np.clip(((hit[..., 1] + 3.0) * 20).astype(int), 0, 299)
    return torch.from_numpy(texture[iy, ix])[None, None].float()


def stereo_setup(depth: float, offsets=(0.2, -0.15)):
    T_ref = np.eye(4)
    reference = render_plane(T_ref, depth)
    sources, T_src_ref = [], []
    for dx in offsets:
        T_src = np.eye(4)
        T_src[0, 3], T_src[1, 3] = dx, 0.03
        sources.append(render_plane(T_src, depth)[0])
        T_src_ref.append(np.linalg.inv(T_src) @ T_ref)
    K_t = torch.from_numpy(K).float()
    return (
        reference,
        torch.stack(sources)[None],
        K_t[None],
        K_t[None, None].repeat(1, len(offsets), 1, 1),
        torch.from_numpy(np.stack(T_src_ref)).float()[None],
    )


def test_fine_sweep_matches_its_reference():
    reference, sources, K_ref, K_src, T = stereo_setup(1.5)
    # A small crop keeps the per-pixel loop short; intrinsics follow the crop.
    reference = reference[..., 10:22, 20:34].contiguous()
    K_ref = K_ref.clone()
    K_ref[0, 0, 2] -= 20
    K_ref[0, 1, 2] -= 10
    first = torch.full((1, 6, 7), 1.4)
    first[0, 0, 0] = 0.0  # unknown stays unknown
    kwargs = dict(plane_step=0.06, hypotheses=5, span=2.0, window=3, min_score=0.3)
    fast = fine_sweep(first, reference, sources, K_ref, K_src, T, **kwargs)
    slow = fine_sweep_reference(first, reference, sources, K_ref, K_src, T, **kwargs)
    torch.testing.assert_close(fast.score, slow.score, atol=1e-3, rtol=0)  # float32 sums
    assert torch.equal(fast.refined, slow.refined)
    torch.testing.assert_close(fast.depth, slow.depth, atol=1e-3, rtol=1e-3)
    assert fast.depth.shape == (1, 12, 14) and bool(fast.refined.any())
    assert not bool(fast.refined[0, :2, :2].any()) and float(fast.depth[0, 0, 0]) == 0.0


def test_fine_sweep_sharpens_a_coarse_depth():
    true_depth = 1.6
    reference, sources, K_ref, K_src, T = stereo_setup(true_depth)
    # The first estimate a plane step off (inverse-depth step 0.06/m: about 10 % at 1.6 m),
    # at half resolution, as the network gives it.
    first = torch.full((1, 24, 32), 1.0 / (1.0 / true_depth + 0.06))
    result = fine_sweep(first, reference, sources, K_ref, K_src, T, plane_step=0.06)
    inner = result.refined[0, 6:-6, 6:-6]
    assert inner.float().mean() > 0.8
    error = (result.depth[0, 6:-6, 6:-6][inner] - true_depth).abs() / true_depth
    first_error = abs(float(first[0, 0, 0]) - true_depth) / true_depth
    assert first_error > 0.08
    # The renders sample the texture at pixel centres (aliased): about 1 % is what subpixel
    # matching can reach here, against 10 % before.
    assert float(error.median()) < 0.02
    assert (error < 0.03).float().mean() > 0.85
    # Where nothing matches (a flat image), the first estimate stays.
    flat = fine_sweep(first, torch.full_like(reference, 0.5), sources, K_ref, K_src, T,
                      plane_step=0.06)  # fmt: skip
    assert not bool(flat.refined.any())
    torch.testing.assert_close(flat.depth, upsample_depth(first, (48, 64)))


def test_bad_inputs_raise():
    reference, sources, K_ref, K_src, T = stereo_setup(1.5)
    first = torch.ones(1, 24, 32)
    with pytest.raises(ValueError, match="hypotheses"):
        fine_sweep(first, reference, sources, K_ref, K_src, T, plane_step=0.06, hypotheses=4)
    with pytest.raises(ValueError, match="plane_step"):
        fine_sweep(first, reference, sources, K_ref, K_src, T, plane_step=0.0)
    with pytest.raises(ValueError, match="K_src"):
        fine_sweep(first, reference, sources, K_ref, K_src[:, :1], T, plane_step=0.06)
    with pytest.raises(ValueError, match="reference"):
        fine_sweep(first, reference.repeat(1, 3, 1, 1), sources, K_ref, K_src, T, plane_step=0.06)
