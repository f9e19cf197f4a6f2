"""The refinement network on map chunks: only chunks with fused surface are refined, a refiner
that changes nothing gives the map's own mesh, a neighbour's change or a new world up remeshes,
and a world turned so that up is -y gives the same refinement turned."""

import numpy as np
import pytest
import torch

from recon_ros.core.global_map import GlobalMap
from recon_ros.core.refine_net import RefineNetConfig, SurfaceRefinerNet
from recon_ros.core.surface_refiner import SurfaceRefiner

VOXEL = 0.05
CHUNK = 8
CLASSES = ("floor", "wall", "chair")


def quiet_net(seed: int = 0) -> SurfaceRefinerNet:
    """An untrained network that fills nothing (occupancy bias far negative): its TSDF is the
    fused TSDF."""
    torch.manual_seed(seed)
    net = SurfaceRefinerNet(RefineNetConfig(class_names=CLASSES, channels=(4, 4, 4)))
    with torch.no_grad():
        net.occupancy_head.bias.fill_(-20.0)
    return net.eval()


def floor_map(height: int = 5) -> GlobalMap:
    """A map of a floor-like plane z = height voxels over 3x3x2 chunks."""
    dims = (3 * CHUNK, 3 * CHUNK, 2 * CHUNK)
    z = np.arange(dims[2], dtype=np.float32)
    tsdf = np.clip((z - height) / 3.0, -1, 1) * np.ones(dims, np.float32)
    gmap = GlobalMap(VOXEL, CHUNK, max_chunks=100)
    gmap.merge(
        (0.0, 0.0, 0.0),
        tsdf=tsdf,
        labels=np.zeros(dims, np.uint8),
        confidence=np.full(dims, 0.9, np.float32),
        rgb=np.full((*dims, 3), 128, np.uint8),
        weight=np.ones(dims, np.float32),
    )
    return gmap


def test_identity_refiner_gives_the_fused_mesh_and_skips_empty_chunks():
    gmap = floor_map()
    plain = gmap.mesh()
    refiner = SurfaceRefiner(quiet_net(), halo=4, batch_size=4, mode="full")
    gmap.set_refiner(refiner)
    refined = gmap.mesh()
    assert len(plain.faces) > 0
    assert len(refined.faces) == len(plain.faces)
    np.testing.assert_allclose(
        np.sort(refined.vertices, axis=0), np.sort(plain.vertices, axis=0), atol=1e-5
    )
    # 18 chunks; the upper layer (z voxels 8-15) holds no voxel inside the band: not refined
    assert gmap.num_chunks == 18
    assert refiner.blocks_refined == 9
    assert gmap.chunks_remeshed_last_call == 18
    gmap.mesh()
    assert gmap.chunks_remeshed_last_call == 0  # cached


def test_neighbour_change_and_new_up_remesh():
    gmap = floor_map()
    refiner = SurfaceRefiner(quiet_net(), halo=4)
    gmap.set_refiner(refiner)
    gmap.mesh()
    # one voxel layer of the centre chunk changes: it and the chunks whose meshing apron it is
    # (-x, -y and -x-y of it) are remeshed; the others keep their mesh
    dims = (CHUNK,) * 3
    gmap.merge(
        (CHUNK * VOXEL, CHUNK * VOXEL, 0.0),
        tsdf=np.zeros(dims, np.float32),
        labels=np.zeros(dims, np.uint8),
        confidence=np.zeros(dims, np.float32),
        rgb=np.zeros((*dims, 3), np.uint8),
        weight=np.where(np.arange(CHUNK)[:, None, None] == 0, 1.0, 0.0) * np.ones(dims),
    )
    gmap.mesh()
    assert gmap.chunks_remeshed_last_call == 4
    refiner.set_up(1, -1)
    gmap.mesh()
    assert gmap.chunks_remeshed_last_call == 18
    with pytest.raises(ValueError, match="halo"):
        gmap.set_refiner(SurfaceRefiner(quiet_net(), halo=CHUNK + 4))


def test_refinement_follows_world_up():
    """The same block in a z-up world and in a world where up is -y (a visual-SLAM world) is
    refined alike, up to that turn."""
    torch.manual_seed(3)
    net = SurfaceRefinerNet(RefineNetConfig(class_names=CLASSES, channels=(4, 4, 4))).eval()
    with torch.no_grad():
        net.tsdf_head.weight.normal_(0, 0.3)  # a refiner that does change the TSDF
    edge = 16
    rng = np.random.default_rng(0)
    block = {
        "tsdf": rng.uniform(-1, 1, (edge,) * 3).astype(np.float32),
        "weight": rng.integers(0, 4, (edge,) * 3).astype(np.uint16),
        "label": rng.integers(0, 3, (edge,) * 3).astype(np.uint8),
        "confidence": rng.uniform(0, 1, (edge,) * 3).astype(np.float32),
    }

    def turned(array):  # world (x, y, z) -> (x, -z, y): up +z becomes -y
        return np.ascontiguousarray(np.flip(np.transpose(array, (0, 2, 1)), axis=1))

    z_up = SurfaceRefiner(net, halo=0, mode="full")
    y_down = SurfaceRefiner(net, halo=0, mode="full")
    y_down.set_up(1, -1)
    first = z_up.refine([block], keep=edge)[0]
    second = y_down.refine([{k: turned(v) for k, v in block.items()}], keep=edge)[0]
    np.testing.assert_allclose(turned(first.tsdf), second.tsdf, atol=1e-5)
    np.testing.assert_array_equal(turned(first.label), second.label)
    assert not np.allclose(first.tsdf, block["tsdf"])


def test_labels_mode_keeps_the_fused_surfaces():
    """``mode="labels"``: the network's labels on the fused TSDF, whatever its TSDF says."""
    gmap = floor_map()
    plain = gmap.mesh()
    torch.manual_seed(1)
    net = SurfaceRefinerNet(RefineNetConfig(class_names=CLASSES, channels=(4, 4, 4))).eval()
    with torch.no_grad():
        net.tsdf_head.bias.fill_(2.0)  # a TSDF that would erase every surface
        net.semantic_head.bias.copy_(torch.tensor([0.0, 0.0, 50.0]))  # and call all "chair"
    gmap.set_refiner(SurfaceRefiner(net, halo=4, mode="labels"))
    labelled = gmap.mesh()
    assert len(labelled.faces) == len(plain.faces) > 0
    assert np.all(labelled.labels == 2) and np.all(plain.labels == 0)
    with pytest.raises(ValueError, match="mode"):
        SurfaceRefiner(net, mode="everything")
