"""The scene in front of one image (issue 13.3, the API behind ifnet_node): the network's camera
follows the resize, the grid's occupancy and depth have their shapes, the mesh lies in the grid
in front of the camera, and bad input is refused."""

import numpy as np
import pytest
import torch

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.meshing import occupancy_surface
from recon_ros.ifnet.ifnet import SingleViewIFNet
from recon_ros.ifnet.infer import complete_scene


def test_complete_scene_from_one_image(tiny_ifnet_config):
    torch.manual_seed(0)
    model = SingleViewIFNet(tiny_ifnet_config).eval()
    camera = PinholeCamera(fx=100.0, fy=100.0, cx=63.5, cy=47.5, width=128, height=96)
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    first = complete_scene(model, rgb, camera)
    assert first.depth.shape == (32, 32) and first.occupancy.shape == (16, 12, 12)
    assert first.camera.width == 32 and first.camera.fx == pytest.approx(25.0)
    assert first.camera.fy == pytest.approx(100.0 / 3)
    # an untrained net sits near 0.5: the median as threshold meshes about half the grid
    threshold = float(np.median(first.occupancy))
    result = complete_scene(model, rgb, camera, threshold)
    grid = model.grid
    low = np.asarray(grid.origin) - 1e-4
    high = np.asarray(grid.origin) + (np.array(grid.dims[::-1]) - 1) * grid.voxel_size + 1e-4
    assert result.mesh.num_faces > 0
    assert np.all(result.mesh.vertices >= low) and np.all(result.mesh.vertices <= high)
    with pytest.raises(ValueError, match="the camera's"):
        complete_scene(model, rgb[:50], camera)
    with pytest.raises(ValueError, match="threshold"):
        complete_scene(model, rgb, camera, 0.0)


def test_open_surface_of_a_scene_cut_by_its_grid():
    """Not closed: a solid half-space leaving the grid gives one plane, not a box."""
    occupancy = np.zeros((6, 6, 6), np.float32)
    occupancy[:, :, :3] = 1.0  # everything below z = 2.5 voxels
    vertices, faces = occupancy_surface(occupancy, 0.5, (0.0, 0.0, 0.0), 1.0, closed=False)
    np.testing.assert_allclose(vertices[:, 2], 2.5)
    corners = vertices[faces].astype(np.float64)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert len(faces) and np.all(normals[:, 2] > 0)  # facing up, out of the solid below
    closed, _ = occupancy_surface(occupancy, 0.5, (0.0, 0.0, 0.0), 1.0)
    assert closed[:, 2].min() < 0 and closed[:, 0].max() > 5  # the box's other faces


def test_images_are_resampled_into_the_training_camera(tiny_ifnet_config):
    """A checkpoint that records its camera sees every image through it: square pixels, central
    principal point; rows that camera sees past the image get no depth."""
    from dataclasses import replace

    torch.manual_seed(0)
    model = SingleViewIFNet(replace(tiny_ifnet_config, focal_length=25.0)).eval()
    camera = PinholeCamera(fx=100.0, fy=100.0, cx=63.5, cy=47.5, width=128, height=96)
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    result = complete_scene(model, rgb, camera)
    assert (result.camera.fx, result.camera.fy) == (25.0, 25.0)
    assert (result.camera.cx, result.camera.cy) == (15.5, 15.5)
    # the image covers 24 of the 32 rows at this focal length: 4 rows above and below are blind
    assert (result.depth[:4] == 0).all() and (result.depth[-4:] == 0).all()
    assert (result.depth[5:-5] > 0).all()
