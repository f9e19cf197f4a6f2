"""Coverage grid: conjugate-pair counts of a constructed scene, put in the world, mark the wall
that one camera saw as not covered and the wall five cameras saw as covered."""

import numpy as np
import pytest

from recon_ros.core.coverage import (
    CoverageGrid,
    counts_for_depth,
    coverage_cells_reference,
    pack_cells,
    unpack_cells,
)
from recon_ros.sufficiency.labels import conjugate_pair_labels

H, W = 30, 40
K = np.array([[30.0, 0.0, 19.5], [0.0, 30.0, 14.5], [0.0, 0.0, 1.0]])


def _pose(x: float, turned: bool) -> np.ndarray:
    """A camera at (x, 0, 0) looking along +z, or along -z when ``turned`` (world = the
    cameras' optical axes: x right, y down)."""
    T = np.eye(4)
    if turned:
        T[:3, :3] = np.diag([-1.0, 1.0, -1.0])
    T[0, 3] = x
    return T


def _scene():
    """Walls at z = 3 (front) and z = -3 (back); five cameras look at the front wall, one at
    the back wall. Every depth map is 3 m (fronto-parallel walls)."""
    front = [_pose(0.1 * i, turned=False) for i in range(5)]
    back = _pose(0.2, turned=True)
    depth = np.full((H, W), 3.0)
    return front, back, depth


def _estimate(reference, partners, depth):
    """The label rule's counts: how many partners see each reference pixel."""
    return conjugate_pair_labels(
        depth, K, reference, [depth] * len(partners), [K] * len(partners), partners
    )


def test_wall_seen_by_one_camera_is_not_covered_and_by_five_is():
    front, back, depth = _scene()
    grid = CoverageGrid(cell_size=0.25, m=4, sufficient_count=2)
    front_counts = _estimate(front[4], front[:4], depth)
    back_counts = _estimate(back, front[:4], depth)
    assert np.median(front_counts) == 4 and np.all(back_counts == 0)
    assert grid.add(front_counts, depth, K, front[4]) > 0
    assert grid.add(back_counts, depth, K, back) > 0
    cells = grid.cells()
    on_front = cells.centres[:, 2] > 0
    assert on_front.any() and (~on_front).any()
    covered = grid.covered()
    # the front wall is covered except along the edges the partners do not reach
    assert covered[on_front].mean() > 0.8
    assert not covered[~on_front].any()
    summary = grid.chunk_summary(1.0)
    back_chunks = [s for s in summary if s[0][2] < 0]
    assert back_chunks and all(lacking == cells for _, cells, lacking in back_chunks)
    assert sum(s[1] for s in summary) == len(grid)


def test_grid_matches_its_per_pixel_reference():
    front, back, depth = _scene()
    rng = np.random.default_rng(0)
    noisy = depth * (1 + 0.05 * rng.standard_normal(depth.shape))
    noisy[0, :5] = 0.0  # no depth
    noisy[1, :5] = np.inf
    observations = [
        (_estimate(front[4], front[:4], depth), noisy, K, front[4]),
        (_estimate(front[3], front[:3] + front[4:], depth), depth, K, front[3]),
        (_estimate(back, front[:4], depth), noisy, K, back),
    ]
    grid = CoverageGrid(cell_size=0.2, m=4, sufficient_count=3)
    for counts, d, k, T in observations:
        grid.add(counts, d, k, T)
    reference = coverage_cells_reference(observations, 0.2, 4)
    cells = grid.cells()
    assert len(cells.keys) == len(reference)
    for index, best, hits in zip(unpack_cells(cells.keys), cells.best, cells.hits, strict=True):
        assert reference[tuple(int(i) for i in index)] == (best, hits)
    assert np.allclose(cells.centres, (unpack_cells(cells.keys) + 0.5) * 0.2)


def test_grid_keeps_the_cells_nearest_the_camera_within_its_bound():
    front, back, depth = _scene()
    grid = CoverageGrid(cell_size=0.1, m=4, sufficient_count=2, max_cells=50)
    grid.add(_estimate(front[4], front[:4], depth), depth, K, front[4])
    assert len(grid) == 50
    grid.add(_estimate(back, front[:4], depth), depth, K, back)
    assert len(grid) == 50
    assert np.all(grid.cells().centres[:, 2] < 0)  # the newest camera's wall


def test_packing_round_trips_and_inputs_are_checked():
    index = np.array([[0, 0, 0], [-5, 7, -(2**20) + 1], [2**20 - 1, -1, 3]])
    assert np.array_equal(unpack_cells(pack_cells(index)), index)
    grid = CoverageGrid(cell_size=0.2, m=4, sufficient_count=2)
    with pytest.raises(ValueError, match="counts/depth"):
        grid.add(np.zeros((H, W)), np.zeros((H, W + 1)), K, np.eye(4))
    with pytest.raises(ValueError, match="finite"):
        grid.add(np.zeros((H, W)), np.ones((H, W)), K, np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="cell_size"):
        CoverageGrid(cell_size=0.0, m=4, sufficient_count=2)
    with pytest.raises(ValueError, match="sufficient_count"):
        CoverageGrid(cell_size=0.2, m=4, sufficient_count=5)
    assert grid.add(np.zeros((H, W)), np.zeros((H, W)), K, np.eye(4)) == 0 and len(grid) == 0


def test_counts_reach_a_depth_image_from_another_optical_frame():
    """A depth camera 5 cm to the right of the colour camera, same intrinsics: each depth pixel
    takes the count of the colour pixel its point falls on; pixels whose points fall outside
    the colour image, or have no depth, take the ignore value, which ``add`` leaves out."""
    counts = np.tile(np.arange(W) % 5, (H, 1)).astype(np.uint8)  # count = column % 5
    depth = np.full((H, W), 2.0)
    depth[0, 0] = 0.0
    T_colour_depth = np.eye(4)
    T_colour_depth[0, 3] = 0.05
    moved = counts_for_depth(counts, K, depth, K, T_colour_depth)
    shift = round(K[0, 0] * 0.05 / 2.0)  # 0.75 px -> 1 column
    assert moved[0, 0] == 255
    assert np.array_equal(moved[1:, : W - shift], counts[1:, shift:])
    assert np.all(moved[:, W - shift :] == 255)
    # registered depth (identity): the counts as they are
    assert np.array_equal(counts_for_depth(counts, K, depth, K, np.eye(4))[1:], counts[1:])
    grid = CoverageGrid(cell_size=0.5, m=4, sufficient_count=2)
    grid.add(moved, depth, K, T_colour_depth)
    reference = coverage_cells_reference([(moved, depth, K, T_colour_depth)], 0.5, 4)
    assert len(grid) == len(reference) > 0
    assert all(reference[tuple(int(i) for i in c)][0] <= 4 for c in unpack_cells(grid.cells().keys))
