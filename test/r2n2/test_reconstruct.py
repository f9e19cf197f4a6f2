"""One object from a few views (issue 12.2, the API behind object_node and `recon-ros
reconstruct-object`): the crop against its slow reference, masks, the mesh of the occupancy, and
the checks on bad input."""

import numpy as np
import pytest
import torch

from recon_ros.r2n2.model import ConvLSTMR2N2
from recon_ros.r2n2.reconstruct import (
    occupancy_mesh,
    prepare_view,
    prepare_view_reference,
    reconstruct_object,
    square_crop_box,
)


def test_prepare_view_matches_the_reference_with_and_without_a_mask():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    mask = np.zeros((40, 60), bool)
    mask[30:39, 50:58] = True  # near a corner: the crop reaches past the image's edges
    for m in (None, mask):
        fast = prepare_view(image, m, size=23).numpy()
        slow = prepare_view_reference(image, m, size=23)
        assert fast.shape == (3, 23, 23)
        np.testing.assert_allclose(fast, slow, atol=1e-5)


def test_crop_box_frames_the_mask():
    mask = np.zeros((100, 200), bool)
    mask[20:41, 50:71] = True  # 21 x 21 pixels centred at (30, 60)
    row, col, side = square_crop_box(100, 200, mask)
    assert (row, col) == (30, 60) and side == pytest.approx(21 / 0.7)
    assert square_crop_box(100, 200, None) == (49.5, 99.5, 100.0)
    with pytest.raises(ValueError, match="no pixel"):
        square_crop_box(100, 200, np.zeros((100, 200), bool))
    with pytest.raises(ValueError, match="like its view"):
        square_crop_box(100, 200, np.ones((10, 10), bool))


def test_occupancy_mesh_is_closed_outward_and_scaled():
    occupancy = np.zeros((32, 32, 32), np.float32)
    occupancy[8:24, 8:24, 8:24] = 1.0  # the middle half of the cube on each axis
    mesh = occupancy_mesh(occupancy, 0.5, size_m=2.0)
    # the surface halfway between the last occupied and first free voxel centres
    np.testing.assert_allclose(mesh.vertices.min(axis=0), -0.5, atol=1e-6)
    np.testing.assert_allclose(mesh.vertices.max(axis=0), 0.5, atol=1e-6)
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all(np.sum(normals * v[f].mean(axis=1), axis=1) > 0)  # every face looks outwards
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, uses = np.unique(edges, axis=0, return_counts=True)
    assert np.all(uses == 2)  # closed: every edge shared by two faces
    assert occupancy_mesh(np.zeros((32, 32, 32), np.float32), 0.4, 1.0).num_faces == 0


def test_reconstruct_object_from_views_of_any_size(tiny_r2n2_config):
    torch.manual_seed(0)
    model = ConvLSTMR2N2(tiny_r2n2_config).eval()
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    result = reconstruct_object(model, images)
    assert result.views == 3 and result.occupancy.shape == (32, 32, 32)
    assert result.occupancy.dtype == np.float32
    assert np.all((result.occupancy >= 0) & (result.occupancy <= 1))
    # the same views in the same order give the same grid; the network reads the given order
    again = reconstruct_object(model, images)
    np.testing.assert_array_equal(result.occupancy, again.occupancy)
    masks = [np.ones((48, 64), bool)] * 3
    assert reconstruct_object(model, images, masks).occupancy.shape == (32, 32, 32)
    with pytest.raises(ValueError, match="at least one"):
        reconstruct_object(model, [])
    with pytest.raises(ValueError, match="masks"):
        reconstruct_object(model, images, masks[:2])
    with pytest.raises(ValueError, match="uint8"):
        reconstruct_object(model, [images[0].astype(np.float32)])
    with pytest.raises(ValueError, match="threshold"):
        reconstruct_object(model, images, threshold=1.5)


def test_reconstruct_object_command_writes_the_mesh_and_grid(tmp_path, capsys, tiny_r2n2_config):
    from PIL import Image

    from recon_ros.apps.cli import main
    from recon_ros.io.ply import read_ply
    from recon_ros.r2n2.data import object_sample
    from recon_ros.r2n2.train import load_r2n2, save_r2n2

    torch.manual_seed(0)
    weights = save_r2n2(ConvLSTMR2N2(tiny_r2n2_config), tmp_path / "w.pt", False, "test", {})
    views = object_sample(3, "table", views=2)["images"]
    paths = []
    for index, view in enumerate(views):
        paths.append(tmp_path / f"view_{index}.png")
        Image.fromarray(view).save(paths[-1])
    out, grid = tmp_path / "mesh.ply", tmp_path / "grid.npy"
    argv = ["reconstruct-object", *map(str, paths), "-o", str(out), "--weights", str(weights),
            "--occupancy", str(grid), "--threshold", "0.45"]  # fmt: skip
    assert main(argv) == 0
    model, _ = load_r2n2(weights)
    expected = reconstruct_object(model, list(views), threshold=0.45)
    np.testing.assert_allclose(np.load(grid), expected.occupancy, atol=1e-6)
    assert len(read_ply(out)["faces"]) == expected.mesh.num_faces
    assert "2 views" in capsys.readouterr().out
    # a mask count that does not match, a missing file: an error line and exit 2, no traceback
    assert main([*argv, "--masks", str(paths[0])]) == 2
    assert main(["reconstruct-object", str(tmp_path / "none.png"), "-o", str(out),
                 "--weights", str(weights)]) == 2  # fmt: skip
    assert "reconstruct-object:" in capsys.readouterr().err
