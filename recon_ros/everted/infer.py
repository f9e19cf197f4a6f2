"""A room seen by a fixed rig of cameras, with the trained Everted U-Net: the plain Python API
behind rig_node.

The views go in the rig's order (the order the model was trained with), each resized to the
network's square input as in training. The grid is placed in the room by its lower corner and
voxel size (the model's output has no placement of its own). A voxel is occupied where the
occupancy probability reaches ``occupancy_threshold``; it is labelled with the most likely of the
six mask classes when that mask's probability reaches ``mask_threshold``, else left unlabelled
(``IGNORE_LABEL``). The mesh is the closed surface of the occupied voxels, each vertex coloured by
the class of the voxel it lies in.

A model with the ``"rays"`` lift also needs the rig's calibration: per camera its intrinsics (of
the image as given) and its pose in the room (``RigCamera``); the learned lifts need none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from recon_ros.core.classes import CLASS_IDS, IGNORE_LABEL, palette
from recon_ros.core.mesh import Mesh
from recon_ros.core.meshing import occupancy_surface
from recon_ros.everted.model import EvertedUNet
from recon_ros.everted.ray_lift import grid_projections
from recon_ros.sufficiency.preprocess import resize_rgb


@dataclass
class RoomPrediction:
    """The occupied voxels: ``centres`` (N, 3) float32 metres, ``labels`` (N,) uint8 project class
    ids (``core.classes``; ``IGNORE_LABEL`` unlabelled), ``confidence`` (N,) float32 occupancy
    probability; ``occupancy`` (X, Y, Z) and ``masks`` (C, X, Y, Z) probabilities; ``mesh``."""

    centres: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    occupancy: np.ndarray
    masks: np.ndarray
    mesh: Mesh


@dataclass
class RigCamera:
    """One calibrated rig camera: ``K`` (3, 3) of its images, ``T_room_cam`` (4, 4) its optical
    frame's pose in the room frame."""

    K: np.ndarray
    T_room_cam: np.ndarray


def mask_labels(masks: np.ndarray, classes: tuple[str, ...], mask_threshold: float) -> np.ndarray:
    """(C, X, Y, Z) mask probabilities -> (X, Y, Z) uint8 project class ids: the most likely mask
    where it reaches ``mask_threshold``, else ``IGNORE_LABEL``."""
    ids = np.array([CLASS_IDS[name] for name in classes], dtype=np.uint8)
    best = masks.argmax(axis=0)
    labels = ids[best]
    labels[masks.max(axis=0) < mask_threshold] = IGNORE_LABEL
    return labels


@torch.no_grad()
def predict_room(
    model: EvertedUNet,
    images: list[np.ndarray],
    grid_corner,
    voxel_size: float,
    occupancy_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    cameras: list[RigCamera] | None = None,
) -> RoomPrediction:
    """``images``: one (H, W, 3) uint8 RGB per rig camera, in the rig's order; ``grid_corner``
    (3,): the room-frame lower corner of the grid (the outer face of voxel (0, 0, 0));
    ``cameras``: the rig's calibration, one per image (needed by the ``"rays"`` lift).

    Raises ValueError for no image, a bad array, thresholds outside (0, 1), a non-positive
    voxel size or a missing calibration."""
    if not images:
        raise ValueError("images: need one view per rig camera")
    for name, value in (("occupancy_threshold", occupancy_threshold),
                        ("mask_threshold", mask_threshold)):  # fmt: skip
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name}: expected in (0, 1), got {value}")
    if not voxel_size > 0:
        raise ValueError(f"voxel_size: expected > 0, got {voxel_size}")
    size = model.config.image_size
    views = []
    for index, given in enumerate(images):
        rgb = np.asarray(given)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"image {index}: expected (H, W, 3) uint8, got {rgb.shape}")
        views.append(torch.from_numpy(np.array(resize_rgb(rgb, (size, size)))).permute(2, 0, 1))
    origin = np.asarray(grid_corner, dtype=np.float64) + voxel_size / 2  # voxel (0, 0, 0) centre
    projections = None
    device = next(model.parameters()).device
    if model.config.lift == "rays":
        if cameras is None or len(cameras) != len(images):
            got = 0 if cameras is None else len(cameras)
            raise ValueError(
                f"cameras: the rays lift needs one calibration per image ({len(images)}), got {got}"
            )
        projections = torch.from_numpy(np.stack([
            grid_projections(c.K, c.T_room_cam, np.asarray(image).shape[:2], size, origin,
                             voxel_size)
            for c, image in zip(cameras, images, strict=True)
        ]))[None].to(device)  # fmt: skip
    batch = (torch.stack(views).float() / 255.0)[None].to(device)
    occupancy_logits, mask_logits = model(batch, None, projections)
    occupancy = torch.sigmoid(occupancy_logits)[0, 0].cpu().numpy()
    masks = torch.sigmoid(mask_logits)[0].cpu().numpy()
    labels = mask_labels(masks, model.config.classes, mask_threshold)
    occupied = occupancy >= occupancy_threshold
    index = np.argwhere(occupied)
    centres = (origin + index * voxel_size).astype(np.float32)
    vertices, faces = occupancy_surface(occupancy, occupancy_threshold, origin, voxel_size)
    # A vertex lies between an occupied voxel and a free one: it takes the label and probability
    # of the occupied voxel nearest to the cell it rounds to.
    cell = np.clip(np.round((vertices - origin) / voxel_size).astype(int), 0,
                   np.array(occupancy.shape) - 1)  # fmt: skip
    if len(cell):
        _, nearest = distance_transform_edt(~occupied, return_indices=True)
        i, j, k = (nearest[a][cell[:, 0], cell[:, 1], cell[:, 2]] for a in range(3))
        vertex_labels, vertex_confidence = labels[i, j, k], occupancy[i, j, k]
    else:
        vertex_labels, vertex_confidence = np.zeros(0, np.uint8), np.zeros(0, np.float32)
    mesh = Mesh(
        vertices=vertices,
        faces=faces,
        colors=palette()[vertex_labels],
        labels=vertex_labels.astype(np.uint8),
        confidence=vertex_confidence.astype(np.float32),
    )
    return RoomPrediction(
        centres=centres,
        labels=labels[occupied],
        confidence=occupancy[occupied].astype(np.float32),
        occupancy=occupancy.astype(np.float32),
        masks=masks.astype(np.float32),
        mesh=mesh,
    )
