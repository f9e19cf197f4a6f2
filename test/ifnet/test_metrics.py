"""The single-view metrics on constructed fields: a plane against itself, shifted, turned."""

import numpy as np
import pytest

from recon_ros.ifnet.frustum_grid import FrustumGrid
from recon_ros.ifnet.metrics import occupancy_field, occupancy_iou, surface_metrics

GRID = FrustumGrid.in_front((20, 16, 16), 0.1, near=0.5)


def _plane_field(axis: int, position: float) -> np.ndarray:
    """Signed distance / 0.3 (clipped) of the half-space beyond ``position`` along camera axis
    ``axis`` (0 x, 1 y, 2 z): positive (free) before it."""
    centres = GRID.centres().numpy()
    return np.clip((position - centres[..., axis]) / 0.3, -1.0, 1.0)


def test_iou():
    a = np.zeros((4, 4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4, 4), bool)
    b[1:3] = True
    assert occupancy_iou(a, b) == pytest.approx(1 / 3)
    assert occupancy_iou(a, a) == 1.0 and occupancy_iou(~a & a, ~a & a) == 1.0
    with pytest.raises(ValueError, match="shapes"):
        occupancy_iou(a, b[:2])


def test_surface_metrics_of_planes():
    wall = _plane_field(2, 1.55)
    same = surface_metrics(wall, wall, GRID)
    assert same["chamfer_l2"] == pytest.approx(0.0, abs=1e-12)
    assert same["normal_consistency"] == pytest.approx(1.0)
    shifted = surface_metrics(_plane_field(2, 1.75), wall, GRID)
    # every face 0.2 m from the other surface, except near the grid's rim
    assert 0.03 < shifted["chamfer_l2"] < 0.045 and shifted["normal_consistency"] > 0.99
    turned = surface_metrics(_plane_field(0, 0.05), wall, GRID)
    assert turned["normal_consistency"] < 0.2
    empty = surface_metrics(np.ones(GRID.dims), wall, GRID)
    assert np.isnan(empty["chamfer_l2"])
    # an occupancy probability of the wall's solid gives the same surface
    probability = (wall < 0).astype(np.float32)
    assert surface_metrics(occupancy_field(probability), wall, GRID)["chamfer_l2"] < 0.003
