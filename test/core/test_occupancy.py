"""The 2D occupancy slice of the TSDF map (core.occupancy): a constructed room, the slow
reference, a world whose up is -y, and the GlobalMap entry point."""

import numpy as np
import pytest

from recon_ros.core.global_map import GlobalMap
from recon_ros.core.occupancy import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    grid_axes,
    occupancy_slice,
    occupancy_slice_reference,
)

VOXEL = 0.1
SIZE = 8


def wall_chunks(rotation: np.ndarray | None = None):
    """Chunks of a TSDF seen from x < 1 m: free space for x < 1 m, a wall surface at x = 1 m,
    observed 0.3 m behind it; heights 0-2.3 m along z, y from -0.8 to 0.7 m. With ``rotation``
    (a signed permutation, world-from-z-up) the same scene in another world frame."""
    R = np.eye(3) if rotation is None else rotation
    chunks = {}
    for kx in range(0, 2):
        for ky in range(-1, 1):
            for kz in range(0, 3):
                index = np.stack(
                    np.meshgrid(*(np.arange(SIZE) + k * SIZE for k in (kx, ky, kz)), indexing="ij"),
                    axis=-1,
                )
                x = index[..., 0] * VOXEL
                sdf = (1.0 - x) / 0.3  # positive in front of the wall
                weight = np.where(x <= 1.3 + 1e-9, 5, 0).astype(np.uint16)
                tsdf = np.clip(sdf, -1, 1).astype(np.float32)
                # move into the other frame: world index = R @ z-up index
                key = tuple(int(v) for v in R @ np.array([kx, ky, kz]))
                perm = [int(np.flatnonzero(R[i])[0]) for i in range(3)]
                flips = [R[i, perm[i]] < 0 for i in range(3)]

                def move(array, perm=perm, flips=flips):
                    array = np.transpose(array, perm)
                    for axis, flip in enumerate(flips):
                        if flip:
                            array = np.flip(array, axis)
                    return array

                # a flipped axis: chunk k covers -(k*S + S-1) .. -(k*S); re-key to its lowest
                key = tuple(
                    (-key[i] - 1) if flips[i] else key[i] for i in range(3)
                )  # fmt: skip
                chunks[key] = (move(tsdf).copy(), move(weight).copy())
    return chunks


def test_a_wall_seen_from_one_side():
    result = occupancy_slice(wall_chunks(), SIZE, VOXEL, low_m=0.1, high_m=1.5)
    cells = result.cells
    assert cells.shape == (16, 16)  # rows: y (2 chunks), columns: x (2 chunks)
    np.testing.assert_allclose(result.origin, [-0.05, -0.85, 0.1])
    np.testing.assert_allclose(result.rotation, np.eye(3))
    x = np.arange(16) * VOXEL
    assert np.all(cells[:, x < 1.0 - 1e-9] == FREE)
    assert np.all(cells[:, (x > 1.0 + 1e-9) & (x <= 1.3 + 1e-9)] == OCCUPIED)
    assert np.all(cells[:, x > 1.3 + 1e-9] == UNKNOWN)
    # a band no chunk reaches
    assert occupancy_slice(wall_chunks(), SIZE, VOXEL, low_m=5.0, high_m=6.0).cells.size == 0
    with pytest.raises(ValueError, match="below"):
        occupancy_slice(wall_chunks(), SIZE, VOXEL, low_m=1.0, high_m=0.5)


def test_band_leaves_out_what_is_above_and_below():
    chunks = wall_chunks()
    for key, (tsdf, _) in chunks.items():  # a table top at 0.7-0.8 m, in front of the wall
        z = (np.arange(SIZE) + key[2] * SIZE) * VOXEL
        x = (np.arange(SIZE) + key[0] * SIZE) * VOXEL
        top = (np.abs(z - 0.75) < 0.06)[None, None, :] & (np.abs(x - 0.4) < 0.11)[:, None, None]
        tsdf[np.broadcast_to(top, tsdf.shape)] = -0.5
    under = occupancy_slice(chunks, SIZE, VOXEL, low_m=0.1, high_m=0.5).cells
    across = occupancy_slice(chunks, SIZE, VOXEL, low_m=0.1, high_m=1.0).cells
    columns = np.abs(np.arange(16) * VOXEL - 0.4) < 0.11
    assert np.all(under[:, columns] == FREE)  # a robot lower than the table passes under it
    assert np.all(across[:, columns] == OCCUPIED)


@pytest.mark.parametrize("up", [(2, 1.0), (1, -1.0), (0, 1.0), (2, -1.0)])
def test_matches_the_reference_in_any_world_frame(up):
    axis, sign = up
    _, _, _, rotation = grid_axes(axis, sign)
    # the z-up scene moved so that its up is the world's up: world = rotation @ (a, b, up)
    chunks = wall_chunks(rotation)
    fast = occupancy_slice(chunks, SIZE, VOXEL, axis, sign, 0.0, 0.1, 1.5)
    slow = occupancy_slice_reference(chunks, SIZE, VOXEL, axis, sign, 0.0, 0.1, 1.5)
    np.testing.assert_allclose(fast.rotation, rotation)
    offset = np.round((fast.rotation.T @ (slow.origin - fast.origin))[:2] / VOXEL).astype(int)
    rows, cols = slow.cells.shape
    window = fast.cells[offset[1] : offset[1] + rows, offset[0] : offset[0] + cols]
    np.testing.assert_array_equal(window, slow.cells)
    assert (fast.cells != UNKNOWN).sum() == (slow.cells != UNKNOWN).sum()
    # the same room in every frame: 11 free (x = 0 to 1 m, the surface itself), 3 occupied columns
    assert (slow.cells == OCCUPIED).sum() == 3 * 16 and (slow.cells == FREE).sum() == 11 * 16


def test_global_map_entry_point_counts_low_weight_as_unseen():
    chunks = wall_chunks()
    keys = sorted(chunks)
    n, shape = len(keys), (len(keys), SIZE, SIZE, SIZE)
    gmap = GlobalMap(VOXEL, SIZE, min_mesh_weight=3)
    gmap.load_arrays(
        {
            "keys": np.asarray(keys, np.int64),
            "tsdf": np.stack([chunks[k][0] for k in keys]).astype(np.float16),
            # y < 0 seen twice only: under min_mesh_weight, so unobserved
            "weight": np.stack([np.minimum(chunks[k][1], 2 if k[1] < 0 else 5) for k in keys]),
            "label": np.zeros(shape, np.uint8),
            "confidence": np.zeros(shape, np.float16),
            "rgb": np.zeros((*shape, 3), np.uint8),
        }
    )
    assert gmap.num_chunks == n
    cells = gmap.occupancy_slice(2, 1.0, 0.0, 0.1, 1.5).cells
    assert cells.shape == (16, 16)
    assert np.all(cells[:8] == UNKNOWN) and np.sum(cells[8:] == OCCUPIED) == 3 * 8
