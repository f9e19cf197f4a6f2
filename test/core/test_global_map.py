"""Global map: merging, label vote, weight cap, eviction, seam-free cached meshing."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from recon_ros.core.global_map import GlobalMap
from recon_ros.core.meshing import extract_mesh

VOXEL = 0.05
CHUNK = 8


def window(dims=(16, 16, 16), tsdf=0.0, label=1, confidence=0.5, rgb=(10, 20, 30), weight=1.0):
    return {
        "tsdf": np.full(dims, tsdf, np.float32),
        "labels": np.full(dims, label, np.uint8),
        "confidence": np.full(dims, confidence, np.float32),
        "rgb": np.broadcast_to(np.asarray(rgb, np.uint8), (*dims, 3)).copy(),
        "weight": np.full(dims, weight, np.float32),
    }


def test_merge_weighted_average_cap_and_unobserved():
    gmap = GlobalMap(VOXEL, CHUNK, max_chunks=100, weight_cap=3)
    first = window(tsdf=0.5, weight=2.0, rgb=(100, 0, 0))
    first["weight"][:8] = 0.0  # the x < 8 half is not observed: no chunks there
    result = gmap.merge((0.0, 0.0, 0.0), **first)
    assert result.chunks_created == 4 and gmap.num_chunks == 4
    result = gmap.merge((0.0, 0.0, 0.0), **window(tsdf=-0.1, weight=1.0, rgb=(40, 0, 0)))
    assert result.chunks_created == 4 and gmap.num_chunks == 8
    region = gmap.read_region((0, 0, 0), (16, 16, 16))
    np.testing.assert_allclose(region["tsdf"][8:], (0.5 * 2 - 0.1) / 3, atol=1e-3)
    np.testing.assert_allclose(region["tsdf"][:8], -0.1, atol=1e-3)
    assert np.all(region["rgb"][8:, ..., 0] == 80) and np.all(region["rgb"][:8, ..., 0] == 40)
    assert np.all(region["weight"][8:] == 3) and np.all(region["weight"][:8] == 1)
    gmap.merge((0.0, 0.0, 0.0), **window(tsdf=1.0, weight=5.0))
    region = gmap.read_region((0, 0, 0), (16, 16, 16))
    assert region["weight"].max() == 3  # capped
    # Capped weight 3 against 5 new: (0.3 * 3 + 1 * 5) / 8.
    np.testing.assert_allclose(region["tsdf"][8:], (0.3 * 3 + 5) / 8, atol=2e-3)


def test_label_vote():
    gmap = GlobalMap(VOXEL, CHUNK)
    gmap.merge((0.0, 0.0, 0.0), **window(label=2, confidence=0.8, weight=4.0))
    gmap.merge((0.0, 0.0, 0.0), **window(label=2, confidence=0.4, weight=4.0))
    region = gmap.read_region((0, 0, 0), (16, 16, 16))
    assert np.all(region["label"] == 2)
    np.testing.assert_allclose(region["confidence"], 0.6, atol=1e-3)
    # Weaker disagreeing evidence (0.9 x 1 < 0.6 x 8): label kept, confidence reduced.
    gmap.merge((0.0, 0.0, 0.0), **window(label=5, confidence=0.9, weight=1.0))
    region = gmap.read_region((0, 0, 0), (16, 16, 16))
    assert np.all(region["label"] == 2)
    np.testing.assert_allclose(region["confidence"], (0.6 * 8 - 0.9) / 9, atol=1e-3)
    # Stronger disagreeing evidence flips the label.
    gmap.merge((0.0, 0.0, 0.0), **window(label=5, confidence=1.0, weight=40.0))
    assert np.all(gmap.read_region((0, 0, 0), (16, 16, 16))["label"] == 5)


def test_merge_validation():
    gmap = GlobalMap(VOXEL, CHUNK)
    with pytest.raises(ValueError, match="chunk lattice"):
        gmap.merge((VOXEL, 0.0, 0.0), **window())
    with pytest.raises(ValueError, match="not a voxel centre"):
        gmap.merge((0.013, 0.0, 0.0), **window())
    bad = window()
    bad["rgb"] = bad["rgb"][..., :2]
    with pytest.raises(ValueError, match="rgb"):
        gmap.merge((0.0, 0.0, 0.0), **bad)
    with pytest.raises(ValueError, match="multiples"):
        gmap.merge((0.0, 0.0, 0.0), **window(dims=(12, 16, 16)))
    with pytest.raises(ValueError, match="weight"):
        gmap.merge((0.0, 0.0, 0.0), **window(weight=-1.0))


def test_eviction_keeps_chunks_near_the_position():
    gmap = GlobalMap(VOXEL, CHUNK, max_chunks=10)
    extent = CHUNK * VOXEL
    for step in range(4):  # 4 windows of 2x2x2 chunks along x
        result = gmap.merge(
            (2 * step * extent, 0.0, 0.0), **window(), keep_near=(2 * step * extent, 0, 0)
        )
    assert gmap.num_chunks == 10
    assert gmap.evictions == 4 * 8 - 10
    assert result.chunks_evicted == 8  # 10 kept + 8 new - 10
    kept_x = sorted({key[0] for key in gmap.chunks})
    assert kept_x[0] >= 2  # the oldest, farthest chunks went first


def plane_tsdf(dims, origin, normal=(0.3, 0.5, 1.0), offset=0.47, truncation=3 * VOXEL):
    centres = np.indices(dims).transpose(1, 2, 3, 0) * VOXEL + origin
    normal = np.asarray(normal) / np.linalg.norm(normal)
    return np.clip((centres @ normal - offset) / truncation, -1, 1).astype(np.float32)


def test_chunked_mesh_is_seam_free_and_cached():
    dims = (24, 24, 24)
    origin = np.array([-8, 0, 8]) * VOXEL
    gmap = GlobalMap(VOXEL, CHUNK)
    data = window(dims)
    data["tsdf"] = plane_tsdf(dims, origin)
    gmap.merge(origin, **data)
    mesh = gmap.mesh()
    assert gmap.chunks_remeshed_last_call == 27
    # Same surface as one marching cubes over the whole window: no missing cells at seams.
    whole = extract_mesh(data["tsdf"], np.ones(dims, bool), origin, VOXEL)
    assert mesh.num_faces == whole.num_faces
    # Welding coincident seam vertices gives one connected surface.
    _, inverse = np.unique(np.round(mesh.vertices, 5), axis=0, return_inverse=True)
    faces = inverse.reshape(-1)[mesh.faces]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    n = inverse.max() + 1
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n))
    assert connected_components(graph, directed=False)[0] == 1
    # Cached: nothing to remesh; touching one chunk remeshes it and the chunks whose apron it is.
    gmap.mesh()
    assert gmap.chunks_remeshed_last_call == 0
    patch = window((8, 8, 8), tsdf=0.2, weight=1.0)
    gmap.merge(origin + np.array([8, 8, 8]) * VOXEL, **patch)  # the centre chunk
    gmap.mesh()
    assert gmap.chunks_remeshed_last_call == 8


def test_arrays_round_trip():
    gmap = GlobalMap(VOXEL, CHUNK)
    data = window()
    data["tsdf"] = plane_tsdf((16, 16, 16), np.zeros(3))
    gmap.merge((0.0, 0.0, 0.0), **data)
    copy = GlobalMap(VOXEL, CHUNK)
    copy.load_arrays(gmap.to_arrays())
    assert sorted(copy.chunks) == sorted(gmap.chunks)
    for name, array in gmap.read_region((0, 0, 0), (16, 16, 16)).items():
        np.testing.assert_array_equal(copy.read_region((0, 0, 0), (16, 16, 16))[name], array)
    np.testing.assert_array_equal(copy.mesh().vertices, gmap.mesh().vertices)
    arrays = gmap.to_arrays()
    arrays["tsdf"] = arrays["tsdf"].astype(np.float32)
    with pytest.raises(ValueError, match="tsdf"):
        copy.load_arrays(arrays)
