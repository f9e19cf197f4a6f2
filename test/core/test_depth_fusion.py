"""TSDF fusion of depth maps: the fast op against its per-voxel reference, the surface of an
analytic scene recovered within half a voxel, and the rolling TSDF window's shift and reload."""

import numpy as np
import torch

from recon_ros.core.depth_fusion import TSDFGrid, fuse_depth_into, fuse_depth_reference
from recon_ros.core.global_map import GlobalMap
from recon_ros.core.meshing import extract_mesh
from recon_ros.core.tsdf_volume import RollingTSDFVolume

K = torch.tensor([[20.0, 0.0, 15.3], [0.0, 20.0, 11.7], [0.0, 0.0, 1.0]], dtype=torch.float64)


def test_fast_fusion_matches_reference():
    torch.manual_seed(0)
    height, width = 24, 32
    depth = 1.0 + 0.1 * torch.rand(height, width)
    depth[0, :5] = 0.0  # unknown pixels
    confidence = torch.rand(height, width)
    rgb = torch.rand(3, height, width)
    labels = torch.randint(0, 3, (height, width))
    labels[3, :] = 255
    origin = torch.tensor([-0.3131, -0.2173, 0.7071], dtype=torch.float64)
    T = torch.eye(4, dtype=torch.float64)
    T[:3, 3] = torch.tensor([0.011, -0.02, 0.0])
    fast, slow = TSDFGrid.empty((8, 6, 10), 3), TSDFGrid.empty((8, 6, 10), 3)
    for step in range(2):  # a second frame exercises the running averages
        T[0, 3] += 0.013 * step
        args = (0.05, 0.15)
        n_fast = fuse_depth_into(fast, origin, *args, depth, K, T, confidence, rgb, labels)
        n_slow = fuse_depth_reference(
            slow, origin.numpy(), *args, depth.numpy(), K.numpy(), T.numpy(),
            confidence.numpy(), rgb.numpy(), labels.numpy(),
        )  # fmt: skip
        assert n_fast == n_slow > 100
    for name in ("tsdf", "weight", "color", "color_weight", "votes"):
        torch.testing.assert_close(getattr(fast, name), getattr(slow, name), atol=1e-5, rtol=1e-5)


def test_exact_depth_of_a_plane_gives_its_surface_within_half_a_voxel():
    """A wall at x = 2.03 m seen by three cameras: the fused mesh lies on it."""
    voxel, truncation = 0.04, 0.12
    origin = torch.tensor([1.0, -0.6, -0.6], dtype=torch.float64)
    grid = TSDFGrid.empty((48, 32, 32), 2)
    height, width = 60, 80
    K_cam = torch.tensor([[60.0, 0.0, 39.5], [0.0, 60.0, 29.5], [0.0, 0.0, 1.0]])
    for y in (-0.1, 0.0, 0.12):
        # optical z along world +x, optical x along world -y, optical y along world -z
        T = torch.eye(4, dtype=torch.float64)
        T[:3, :3] = torch.tensor([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
        T[:3, 3] = torch.tensor([0.0, y, 0.0])
        depth = torch.full((height, width), 2.03)  # a fronto-parallel wall: depth = distance
        labels = torch.ones(height, width, dtype=torch.long)
        fuse_depth_into(grid, origin, voxel, truncation, depth, K_cam, T, labels=labels)
    tsdf = grid.tsdf.numpy()
    observed = grid.weight.numpy() > 0
    mesh = extract_mesh(tsdf, observed, origin.numpy(), voxel)
    assert len(mesh.faces) > 100
    assert np.abs(mesh.vertices[:, 0] - 2.03).max() < 0.5 * voxel
    assert grid.votes[1].sum() > 0 and grid.votes[0].sum() == 0


def test_rolling_window_reloads_what_it_left_from_the_map():
    voxel = 0.05
    volume = RollingTSDFVolume((32, 32, 32), voxel, 0.15, 16, num_classes=2)
    gmap = GlobalMap(voxel, 16, 64)
    T = torch.eye(4, dtype=torch.float64)
    depth = torch.full((24, 32), 1.0)
    volume.integrate(depth, K, T, labels=torch.ones(24, 32, dtype=torch.long))
    before = volume.snapshot()
    assert before.changed.any()
    gmap.merge(
        before.origin_index * voxel, before.tsdf, before.labels, before.confidence, before.rgb,
        np.where(before.changed, before.weight, 0.0), replace=True,
    )  # fmt: skip
    # Away and back: the window forgets, then reloads the map's values.
    volume.shift_to((64, 0, 0))
    assert not volume.observed().any()
    volume.shift_to((0, 0, 0))
    loaded = volume.load(gmap.read_region(volume.origin_index, volume.dims))
    assert loaded == int(before.changed.sum())
    after = volume.snapshot()
    seen = before.weight > 0
    np.testing.assert_allclose(after.tsdf[seen], before.tsdf[seen], atol=1e-3)  # float16 map
    assert not after.changed.any()  # loaded values count as merged
    assert np.array_equal(after.labels[seen], before.labels[seen])
