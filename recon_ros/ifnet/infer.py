"""The scene in front of one image, with the trained single-view model (depth U-Net, voxelisation,
IF-Net): the plain Python API behind ifnet_node.

The image is resampled into the camera the network was trained with (its focal length at the
input size, the principal point central: ``core.camera_resample``), so a robot camera with
another field of view gets depth at the right scale; pixels that camera sees past the image get
no depth. Checkpoints that do not record their camera get the image resized instead (each axis
on its own; the intrinsics follow). The depth U-Net predicts its depth, the depth is
back-projected and voxelised into the
``FrustumGrid`` in front of the camera, and the IF-Net gives the occupancy of every voxel
centre. The mesh is the surface at ``threshold`` in the camera's optical frame (x right, y down,
z forward), open where the scene leaves the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.camera_resample import resample_to_camera
from recon_ros.core.mesh import Mesh
from recon_ros.core.meshing import occupancy_surface
from recon_ros.ifnet.ifnet import SingleViewIFNet
from recon_ros.sufficiency.preprocess import resize_rgb

#: Grey of the completed scene's mesh (the model predicts no classes).
MESH_GREY = (170, 175, 185)


@dataclass
class SceneCompletion:
    """``depth`` (h, w) float32 metres at the network's input size with its ``camera``;
    ``occupancy`` (D, H, W) probabilities of the grid (along z, y, x); ``mesh`` in the camera's
    optical frame."""

    depth: np.ndarray
    camera: PinholeCamera
    occupancy: np.ndarray
    mesh: Mesh


@torch.no_grad()
def complete_scene(
    model: SingleViewIFNet,
    rgb: np.ndarray,
    camera: PinholeCamera,
    threshold: float = 0.5,
    up: np.ndarray | None = None,
    height: float | None = None,
) -> SceneCompletion:
    """The scene in front of ``rgb`` ((H, W, 3) uint8 of ``camera``): ``SceneCompletion``.

    ``up`` (3,) (gravity up in the camera's optical frame) and ``height`` (the camera's height
    above the floor, m) give a model trained with the floor prior its metric scale; None: not
    known (the model does without).

    Raises ValueError for an image that does not match the camera, a threshold outside (0, 1) or
    a floor prior that is not finite."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb: expected (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if rgb.shape[:2] != (camera.height, camera.width):
        raise ValueError(
            f"rgb: {rgb.shape[1]}x{rgb.shape[0]} pixels, the camera's are "
            f"{camera.width}x{camera.height}"
        )
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold: expected in (0, 1), got {threshold}")
    floor_up = floor_height = None
    if up is not None and height is not None:
        up = np.asarray(up, dtype=np.float64).reshape(-1)
        if up.shape != (3,) or not np.isfinite(up).all() or np.linalg.norm(up) < 1e-6:
            raise ValueError(f"up: expected a finite non-zero (3,) vector, got {up}")
        if not np.isfinite(height):
            raise ValueError(f"height: expected a finite number, got {height}")
        floor_up = torch.as_tensor(up / np.linalg.norm(up), dtype=torch.float32)[None]
        floor_height = torch.tensor([float(height)])
    width, height = model.config.image_size
    focal = model.config.focal_length
    if focal > 0:
        centre = ((width - 1) / 2, (height - 1) / 2)
        network_camera = PinholeCamera(focal, focal, *centre, width, height)
        network_rgb, seen = resample_to_camera(rgb, camera, network_camera)
    else:
        network_camera = camera.resized(width, height)
        network_rgb = resize_rgb(rgb, (height, width))
        seen = np.ones((height, width), dtype=bool)
    device = next(model.parameters()).device
    image = torch.from_numpy(np.array(network_rgb)).permute(2, 0, 1)
    images = (image.float() / 255.0)[None].to(device)
    K = torch.as_tensor(network_camera.K, dtype=torch.float32)[None].to(device)
    grid = model.grid
    centres = grid.centres().reshape(1, -1, 3).to(device)
    if floor_up is not None:
        floor_up, floor_height = floor_up.to(device), floor_height.to(device)
    depth = model.predict_depth(images, K, floor_up, floor_height)
    depth = depth * torch.from_numpy(seen).to(device)
    depth, logits = model(images, K, centres, depth=depth)
    occupancy = torch.sigmoid(logits).view(grid.dims).cpu().numpy().astype(np.float32)
    # occupancy_surface wants (x, y, z) order; the grid's voxel (k, j, i) sits at origin + (i, j, k)
    vertices, faces = occupancy_surface(
        occupancy.transpose(2, 1, 0), threshold, grid.origin, grid.voxel_size, closed=False
    )
    colors = np.tile(np.array(MESH_GREY, np.uint8), (len(vertices), 1))
    return SceneCompletion(
        depth=depth[0].cpu().numpy().astype(np.float32),
        camera=network_camera,
        occupancy=occupancy,
        mesh=Mesh(vertices=vertices, faces=faces, colors=colors),
    )
