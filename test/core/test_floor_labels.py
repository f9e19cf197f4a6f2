"""Floor labels above the floor plane are withdrawn; the rest stays."""

import pytest
import torch

from recon_ros.core.camera import pixel_rays
from recon_ros.core.floor_labels import withdraw_floor_above_plane
from recon_ros.core.plane_fill import plane_depth

K = torch.tensor([[60.0, 0, 39.5], [0, 60.0, 29.5], [0, 0, 1]])
FLOOR, WALL, TABLE = 0, 1, 3
FLOOR_PLANE = torch.tensor([0.0, -1.0, 0.0, 1.2])  # 1.2 m below the camera (y down)


def _floor_with_a_table_top():
    """Depth of a floor 1.2 m below the camera with a table top 0.75 m above it in a patch;
    logits that call every pixel floor, table second."""
    rays = pixel_rays(K, 60, 80)
    depth = plane_depth(FLOOR_PLANE[None], rays)[0]
    top = torch.zeros(60, 80, dtype=torch.bool)
    top[40:50, 20:40] = True
    table_plane = torch.tensor([0.0, -1.0, 0.0, 1.2 - 0.75])
    depth = torch.where(top, plane_depth(table_plane[None], rays)[0], depth)
    logits = torch.zeros(9, 60, 80)
    logits[FLOOR] = 3.0
    logits[TABLE] = 1.0
    return depth, logits, top


def test_table_top_called_floor_takes_its_next_class():
    depth, logits, top = _floor_with_a_table_top()
    valid = depth > 0
    out = withdraw_floor_above_plane(logits, depth, K, FLOOR_PLANE, FLOOR, max_height=0.2)
    labels = out.argmax(dim=0)
    assert torch.all(labels[top] == TABLE)
    assert torch.all(labels[valid & ~top] == FLOOR)
    # a generous height keeps the floor label everywhere; unknown depth is left alone
    kept = withdraw_floor_above_plane(logits, depth, K, FLOOR_PLANE, FLOOR, max_height=1.0)
    assert torch.equal(kept, logits)
    depth[top] = 0
    unknown = withdraw_floor_above_plane(logits, depth, K, FLOOR_PLANE, FLOOR, max_height=0.2)
    assert torch.all(unknown.argmax(dim=0)[top] == FLOOR)
    assert torch.equal(logits[FLOOR], torch.full((60, 80), 3.0))  # input untouched


def test_withdraw_floor_checks_its_inputs():
    depth, logits, _ = _floor_with_a_table_top()
    with pytest.raises(ValueError, match="logits"):
        withdraw_floor_above_plane(logits[:, :10], depth, K, FLOOR_PLANE, FLOOR, 0.2)
    with pytest.raises(ValueError, match="floor_plane"):
        withdraw_floor_above_plane(logits, depth, K, FLOOR_PLANE[:3], FLOOR, 0.2)
    with pytest.raises(ValueError, match="floor_class"):
        withdraw_floor_above_plane(logits, depth, K, FLOOR_PLANE, 9, 0.2)
    with pytest.raises(ValueError, match="max_height"):
        withdraw_floor_above_plane(logits, depth, K, FLOOR_PLANE, FLOOR, 0.0)
