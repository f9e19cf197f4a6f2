"""A room from a fixed rig (issue 12.1, the API behind rig_node): labels from the masks, the grid
placed by its corner and voxel size, the mesh of the occupied voxels coloured by their classes,
and the checks on bad input."""

import numpy as np
import pytest
import torch

from recon_ros.core.classes import CLASS_IDS, IGNORE_LABEL
from recon_ros.everted.infer import mask_labels, predict_room
from recon_ros.everted.model import MASK_CLASSES, EvertedUNet


def test_mask_labels_take_the_most_likely_mask_above_the_threshold():
    masks = np.zeros((6, 2, 1, 1), np.float32)
    masks[1, 0] = 0.9  # chair, sure
    masks[4, 0] = 0.7  # bag, less sure
    masks[5, 1] = 0.3  # human, below the threshold
    labels = mask_labels(masks, MASK_CLASSES, 0.5)
    assert labels[0, 0, 0] == CLASS_IDS["chair"]
    assert labels[1, 0, 0] == IGNORE_LABEL


def test_predict_room_places_the_grid_and_labels_the_mesh(tiny_everted_config):
    torch.manual_seed(0)
    model = EvertedUNet(tiny_everted_config).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(3)]
    corner, voxel = np.array([-1.0, 2.0, 0.5]), 0.05
    first = predict_room(model, images, corner, voxel)
    assert first.occupancy.shape == (80, 96, 64) and first.masks.shape == (6, 80, 96, 64)
    # an untrained net sits near 0.5: take the median as threshold so about half is occupied
    threshold = float(np.median(first.occupancy))
    result = predict_room(model, images, corner, voxel, occupancy_threshold=threshold)
    occupied = result.occupancy >= threshold
    assert len(result.centres) == occupied.sum() > 0
    high = corner + np.array([80, 96, 64]) * voxel
    assert np.all(result.centres > corner) and np.all(result.centres < high)
    first_index = np.argwhere(occupied)[0]
    np.testing.assert_allclose(result.centres[0], corner + (first_index + 0.5) * voxel, atol=1e-5)
    allowed = {CLASS_IDS[name] for name in MASK_CLASSES} | {IGNORE_LABEL}
    assert set(np.unique(result.labels)) <= allowed
    assert np.all(result.confidence >= threshold)
    mesh = result.mesh
    assert mesh.num_faces > 0
    assert np.all(mesh.vertices >= corner - 1e-4) and np.all(mesh.vertices <= high + 1e-4)
    # every vertex carries the label and probability of an occupied voxel
    assert set(np.unique(mesh.labels)) <= set(np.unique(result.labels))
    assert np.all(mesh.confidence >= threshold)
    with pytest.raises(ValueError, match="one view per rig camera"):
        predict_room(model, [], corner, voxel)
    with pytest.raises(ValueError, match="voxel_size"):
        predict_room(model, images, corner, 0.0)
    with pytest.raises(ValueError, match="mask_threshold"):
        predict_room(model, images, corner, voxel, mask_threshold=1.0)
    with pytest.raises(ValueError, match="image 1"):
        predict_room(model, [images[0], images[1][:, :, 0]], corner, voxel)
