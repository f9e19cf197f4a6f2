"""Plane-sweep warping against its per-pixel reference, and the sweep finding the known depth of
a textured plane."""

import numpy as np
import pytest
import torch

from recon_ros.core.plane_sweep import (
    depth_of_plane_index,
    inverse_depth_planes,
    local_ncc,
    local_ncc_reference,
    plane_index_of_depth,
    warp_to_planes,
    warp_to_planes_reference,
)

K = torch.tensor([[40.0, 0.0, 23.5], [0.0, 40.0, 15.5], [0.0, 0.0, 1.0]])


def pose(tx: float, ty: float = 0.0, yaw: float = 0.0) -> torch.Tensor:
    T = torch.eye(4)
    c, s = np.cos(yaw), np.sin(yaw)
    T[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]], dtype=torch.float32)
    T[:3, 3] = torch.tensor([tx, ty, 0.0])
    return T


def test_warp_matches_reference():
    torch.manual_seed(0)
    source = torch.rand(1, 2, 32, 48)
    depths = inverse_depth_planes(4, 0.5, 4.0)
    T = pose(0.3, 0.02, 0.05)[None]
    fast, valid = warp_to_planes(source, K[None], K[None], T, depths, (16, 24))
    slow, valid_ref = warp_to_planes_reference(source, K[None], K[None], T, depths, (16, 24))
    assert torch.equal(valid, valid_ref)
    torch.testing.assert_close(fast, slow, atol=1e-4, rtol=1e-4)
    assert valid.any() and not valid.all()


def test_plane_index_round_trip():
    depth = torch.tensor([0.25, 0.7, 2.0, 6.0])
    index = plane_index_of_depth(depth, 64, 0.25, 6.0)
    assert index[0] == pytest.approx(0.0) and index[-1] == pytest.approx(63.0)
    torch.testing.assert_close(depth_of_plane_index(index, 64, 0.25, 6.0), depth)


def test_sweep_recovers_the_depth_of_a_textured_plane():
    """A random texture on the plane z = 1.6 m, seen from two cameras 0.2 m apart: the NCC of
    the true plane beats every other plane almost everywhere."""
    rng = np.random.default_rng(1)
    height, width, depth = 32, 48, 1.6
    texture = rng.random((200, 200)).astype(np.float32)

    def render(T_world_cam: np.ndarray) -> torch.Tensor:
        v, u = np.mgrid[0:height, 0:width].astype(np.float64)
        rays = np.stack([(u - 23.5) / 40.0, (v - 15.5) / 40.0, np.ones_like(u)], -1)
        R, t = T_world_cam[:3, :3], T_world_cam[:3, 3]
        d_world = rays @ R.T
        s = (depth - t[2]) / d_world[..., 2]
        hit = t + s[..., None] * d_world
        ix = np.clip(((hit[..., 0] + 2.0) * 50).astype(int), 0, 199)
        iy = np.clip(((hit[..., 1] + 2.0) * 50).astype(int), 0, 199)
        return torch.from_numpy(texture[iy, ix])[None, None].float()

    T_ref, T_src = np.eye(4), np.eye(4)
    T_src[0, 3] = 0.2
    reference, source = render(T_ref), render(T_src)
    planes = inverse_depth_planes(48, 0.5, 6.0)
    T_src_ref = torch.from_numpy(np.linalg.inv(T_src) @ T_ref).float()[None]
    warped, valid = warp_to_planes(source, K[None], K[None], T_src_ref, planes, (height, width))
    ncc = local_ncc(reference, warped, valid, 5)
    best = planes[ncc.argmax(dim=1)][0]
    seen = valid.all(dim=1)[0]
    seen[:, :8] = False  # the left border has no partner pixels at near planes
    error = (best[seen] - depth).abs() / depth
    assert seen.sum() > 200
    assert (error < 0.05).float().mean() > 0.9


def test_ncc_is_invariant_to_gain_and_offset():
    torch.manual_seed(2)
    image = torch.rand(1, 1, 16, 16)
    warped = (0.5 * image + 0.2)[:, :, None].expand(1, 1, 3, 16, 16).contiguous()
    valid = torch.ones(1, 3, 16, 16, dtype=torch.bool)
    ncc = local_ncc(image, warped, valid, 5)
    assert torch.all(ncc[:, :, 2:-2, 2:-2] > 0.99)


def test_ncc_equals_its_reference_with_invalid_samples_and_borders():
    torch.manual_seed(3)
    reference = torch.rand(2, 1, 13, 17)
    warped = torch.rand(2, 1, 5, 13, 17)
    valid = torch.rand(2, 5, 13, 17) > 0.1
    for window in (1, 3, 5, 7):
        fast = local_ncc(reference, warped, valid, window)
        slow = local_ncc_reference(reference, warped, valid, window)
        assert fast.shape == (2, 5, 13, 17)
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)
        assert bool((fast == 0)[~valid].all())  # an invalid sample zeroes its boxes


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="planes"):
        inverse_depth_planes(1, 0.5, 4.0)
    with pytest.raises(ValueError, match="K_src"):
        warp_to_planes(torch.rand(1, 1, 8, 8), K[None], K, pose(0.1)[None], torch.ones(2), (4, 4))
    with pytest.raises(ValueError, match="window"):
        local_ncc(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 2, 4, 4), torch.ones(1, 2, 4, 4) > 0, 4)
    with pytest.raises(ValueError, match="valid"):
        local_ncc(torch.rand(1, 1, 4, 4), torch.rand(1, 1, 2, 4, 4), torch.ones(1, 3, 4, 4) > 0)
