"""Conjugate-pair labels: an analytic plane-and-occluder case, fast vs reference, input checks."""

import numpy as np
import pytest

from recon_ros.sufficiency.intrinsics import resize_intrinsics, resize_nearest
from recon_ros.sufficiency.labels import (
    IGNORE_LABEL,
    conjugate_pair_labels,
    conjugate_pair_labels_reference,
    conjugate_pair_visibility,
)
from recon_ros.sufficiency.synthetic import Box, ToyScene, ToySequence, render

# 64 x 16 pixels, 90 degree horizontal field of view: pixel u sees x / z = (u - 31.5) / 32, so on
# the plane z = 2 the reference pixel u holds the point x = (u - 31.5) / 16.
H, W = 16, 64
K = np.array([[32.0, 0.0, 31.5], [0.0, 32.0, 7.5], [0.0, 0.0, 1.0]])
PLANE = Box((-50.0, -50.0, -50.0), (50.0, 50.0, 2.0), (200, 200, 200))
# A slab between camera A and the plane, outside the reference's field of view.
OCCLUDER = Box((1.0, -50.0, 0.9), (1.5, 50.0, 1.0), (90, 90, 90))


def pose(x: float = 0.0, backwards: bool = False) -> np.ndarray:
    """Camera at (x, 0, 0) looking along +z (optical frame = world axes) or along -z."""
    T = np.eye(4)
    if backwards:
        T[:3, :3] = np.diag([-1.0, 1.0, -1.0])
    T[0, 3] = x
    return T


def plane_case(occluder: bool):
    """Reference at the origin; partners A (x = +2), B (x = -2), C (x = -1), E (facing away)."""
    scene = ToyScene(PLANE, (OCCLUDER,) if occluder else ())
    ref_T = pose()
    partner_Ts = [pose(2.0), pose(-2.0), pose(-1.0), pose(0.0, backwards=True)]
    ref_depth = render(scene, K, ref_T, (H, W))[1]
    depths = [render(scene, K, T, (H, W))[1] for T in partner_Ts]
    return ref_depth, ref_T, depths, partner_Ts


def test_plane_counts_are_analytic():
    ref_depth, ref_T, depths, Ts = plane_case(occluder=False)
    assert np.allclose(ref_depth, 2.0)
    seen = conjugate_pair_visibility(ref_depth, K, ref_T, depths, [K] * 4, Ts)
    u = np.arange(W)
    # A sees plane x in [0, 4]: u >= 32; B sees x in [-4, 0]: u <= 31; C sees x in [-3, 1]:
    # u <= 47; E looks away and sees nothing.
    for j, expected in enumerate([u >= 32, u <= 31, u <= 47, np.zeros(W, bool)]):
        assert np.array_equal(seen[j], np.broadcast_to(expected, (H, W))), f"partner {j}"
    labels = conjugate_pair_labels(ref_depth, K, ref_T, depths, [K] * 4, Ts)
    expected = np.where(u <= 31, 2, np.where(u <= 47, 2, 1))
    assert np.array_equal(labels, np.broadcast_to(expected, (H, W)).astype(np.uint8))


def test_occluder_removes_exactly_one_count():
    ref_depth, ref_T, depths, Ts = plane_case(occluder=True)
    assert np.allclose(ref_depth, 2.0)  # the reference does not see the occluder
    free_depth, _, free_depths, _ = plane_case(occluder=False)
    free = conjugate_pair_labels(free_depth, K, ref_T, free_depths, [K] * 4, Ts)
    labels = conjugate_pair_labels(ref_depth, K, ref_T, depths, [K] * 4, Ts)
    # Rays from A (x = 2) to plane points x in [0, 1] cross the slab: u = 32..47 lose A.
    u = np.arange(W)
    hidden = np.broadcast_to((u >= 32) & (u <= 47), (H, W))
    assert np.array_equal(free.astype(int) - labels.astype(int), hidden.astype(int))
    seen_a = conjugate_pair_visibility(ref_depth, K, ref_T, depths, [K] * 4, Ts)[0]
    assert np.array_equal(seen_a, np.broadcast_to(u >= 48, (H, W)))


def test_invalid_depth_gets_ignore_label_and_partner_holes_do_not_count():
    ref_depth, ref_T, depths, Ts = plane_case(occluder=False)
    ref_depth = ref_depth.copy()
    ref_depth[:4, :8] = 0.0
    ref_depth[5, 5] = np.nan
    depths = [d.copy() for d in depths]
    depths[1][:, :] = 0.0  # B has no depth: it cannot confirm anything
    labels = conjugate_pair_labels(ref_depth, K, ref_T, depths, [K] * 4, Ts)
    assert (labels[:4, :8] == IGNORE_LABEL).all() and labels[5, 5] == IGNORE_LABEL
    u = np.arange(W)
    # Without B: u <= 31 only C; 32..47 A and C; u >= 48 only A.
    expected = np.where(u <= 31, 1, np.where(u <= 47, 2, 1))
    mask = labels != IGNORE_LABEL
    assert np.array_equal(labels[mask], np.broadcast_to(expected, (H, W))[mask])


def test_fast_matches_reference_on_toy_scene():
    seq = ToySequence(3, num_frames=8, hw=(24, 32))
    other = ToySequence(3, num_frames=8, hw=(18, 40))  # same scene and path, other resolution
    ref = seq[7]
    partners = [seq[1], seq[4], other[5], other[6]]
    args = (
        ref.depth,
        ref.K,
        ref.T_world_cam,
        [p.depth for p in partners],
        [p.K for p in partners],
        [p.T_world_cam for p in partners],
    )
    fast = conjugate_pair_labels(*args)
    slow = conjugate_pair_labels_reference(*args)
    assert np.array_equal(fast, slow)
    assert len(np.unique(fast)) >= 3  # a non-trivial case


def test_tolerance_controls_agreement():
    ref_depth, ref_T, depths, Ts = plane_case(occluder=False)
    shifted = [d * 1.05 for d in depths]  # partners measure 5 % too far
    strict = conjugate_pair_labels(
        ref_depth, K, ref_T, shifted, [K] * 4, Ts, rel_tol=0.01, abs_tol=0.0
    )
    loose = conjugate_pair_labels(
        ref_depth, K, ref_T, shifted, [K] * 4, Ts, rel_tol=0.06, abs_tol=0.0
    )
    assert (strict == 0).all()
    assert np.array_equal(loose, conjugate_pair_labels(ref_depth, K, ref_T, depths, [K] * 4, Ts))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"ref_depth": np.zeros((4,))}, "ref_depth"),
        ({"ref_depth": np.zeros((4, 4), np.uint16)}, "ref_depth"),
        ({"ref_K": np.eye(4)}, "ref_K"),
        ({"ref_T_world_cam": np.eye(3)}, "ref_T_world_cam"),
        ({"Ks": []}, "Ks"),
    ],
)
def test_bad_inputs_raise_naming_them(kwargs, name):
    base = {
        "ref_depth": np.ones((4, 4), np.float32),
        "ref_K": K,
        "ref_T_world_cam": np.eye(4),
        "depths": [np.ones((4, 4), np.float32)],
        "Ks": [K],
        "T_world_cams": [np.eye(4)],
    }
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        conjugate_pair_labels(**base)


def test_resize_intrinsics_follows_pixel_centre_rule():
    K2 = resize_intrinsics(K, (H, W), (H // 2, W * 2))
    assert np.isclose(K2[0, 0], 64.0) and np.isclose(K2[1, 1], 16.0)
    assert np.isclose(K2[0, 2], 2 * (31.5 + 0.5) - 0.5)
    assert np.isclose(K2[1, 2], 0.5 * (7.5 + 0.5) - 0.5)
    img = np.arange(12).reshape(3, 4)
    assert np.array_equal(resize_nearest(img, (3, 4)), img)
    assert np.array_equal(resize_nearest(img, (6, 8))[::2, ::2], img)
