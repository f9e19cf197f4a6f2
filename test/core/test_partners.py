"""Stereo partner choice: by baseline and view overlap, not by frame offsets."""

import numpy as np

from recon_ros.core.geometry import look_at_pose
from recon_ros.core.partners import select_stereo_partners

K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
HW = (96, 128)


def camera(x: float, target=(0.0, 3.0, 1.0)) -> np.ndarray:
    return look_at_pose([x, 0.0, 1.0], list(target))


def test_partners_need_baseline_and_prefer_more_of_it():
    ref = camera(0.0)
    candidates = [camera(0.004), camera(0.1), camera(0.3), camera(2.0), camera(0.25, (5, 0, 1))]
    chosen = select_stereo_partners(K, ref, HW, [K] * 5, candidates, [HW] * 5, count=3)
    # 4 mm: no depth from it; 2 m: too far; looking elsewhere: no overlap
    assert chosen == [2, 1]


def test_no_candidates():
    assert select_stereo_partners(K, camera(0.0), HW, [], [], [], count=2) == []
