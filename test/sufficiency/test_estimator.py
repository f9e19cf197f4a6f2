"""SufficiencyEstimator: partner choice by overlap, results, not-ready reasons."""

import numpy as np
import pytest
import torch

from recon_ros.sufficiency.checkpoint import model_metadata, save_checkpoint
from recon_ros.sufficiency.estimator import SufficiencyEstimator
from recon_ros.sufficiency.linknet import LinkNet
from recon_ros.sufficiency.synthetic import look_at

K = np.array([[60.0, 0.0, 39.5], [0.0, 60.0, 29.5], [0.0, 0.0, 1.0]])
IMAGE = np.random.default_rng(0).integers(0, 255, (60, 80, 3), dtype=np.uint8)
FORWARD = np.array([3.0, 0.0, 1.0])  # the reference looks along +x at 1 m height


def v(x: float, y: float, z: float) -> np.ndarray:
    return np.array([x, y, z])


def poses():
    """(name, pose) of six candidates, oldest first, then the reference."""
    o = v(0.0, 0.0, 1.0)
    return [
        ("behind", look_at(o, o - v(3.0, 0.0, 0.0))),
        ("side", look_at(o + v(0, 0.3, 0), FORWARD + v(0, 0.3, 0))),
        ("turned", look_at(o, o + v(3.0, 1.7, 0.0))),
        ("ceiling", look_at(o, o + v(0.1, 0.0, 3.0), up=(1.0, 0.0, 0.0))),
        ("back_step", look_at(o - v(0.2, 0, 0), FORWARD)),
        ("far_away", look_at(o + v(0, 20.0, 0), o + v(0, 25.0, 0))),
        ("reference", look_at(o, FORWARD)),
    ]


def make_estimator(**kwargs):
    torch.manual_seed(0)
    kwargs.setdefault("input_size", (32, 40))
    return SufficiencyEstimator(LinkNet(m=3, width=8), device="cpu", **kwargs)


def test_partners_are_the_overlapping_frames_and_result_is_well_formed():
    est = make_estimator(k=2, threshold=0.5)
    for i, (name, T) in enumerate(poses()):
        est.add_keyframe(IMAGE, K, T, stamp=name)
        if i < 3:
            assert est.estimate() is None and "need 4 keyframes" in est.reason
    result = est.estimate()
    assert result is not None and est.reason == ""
    assert result.reference_stamp == "reference"
    assert result.partner_stamps == ["back_step", "side", "turned"]
    assert result.partner_overlaps == sorted(result.partner_overlaps, reverse=True)
    assert result.counts.shape == (32, 40) and result.counts.dtype == np.uint8
    assert result.counts.max() <= 3
    assert result.count_fractions.shape == (4,)
    assert result.count_fractions.sum() == pytest.approx(1.0)
    assert result.score == pytest.approx(float((result.counts >= 2).mean()))
    assert result.sufficient == (result.score >= 0.5)
    assert result.counts_full().shape == (60, 80)
    assert result.counts_at((16, 20)).shape == (16, 20)


def test_not_enough_overlap_returns_none_with_reason():
    est = make_estimator(min_overlap=0.5)
    for name in ("behind", "ceiling", "far_away", "reference"):
        est.add_keyframe(IMAGE, K, dict(poses())[name], stamp=name)
    assert est.estimate() is None and "overlap" in est.reason


def test_window_motion_gate_and_input_checks():
    est = make_estimator(window=5, min_translation=0.1, min_rotation_deg=5.0)
    T = dict(poses())["reference"]
    assert est.add_keyframe(IMAGE, K, T, 0.0)
    assert not est.add_keyframe(IMAGE, K, T, 0.1)  # did not move
    assert est.update(IMAGE, K, T, 0.2) is None and "moved too little" in est.reason
    for i in range(8):
        T2 = T.copy()
        T2[0, 3] -= 0.2 * (i + 1)
        est.add_keyframe(IMAGE, K, T2, i)
    assert len(est.keyframes) == 5
    only_turns = make_estimator(min_rotation_deg=5.0)
    assert only_turns.add_keyframe(IMAGE, K, T)
    T3 = T.copy()
    T3[0, 3] += 1.0  # moved but did not turn: skipped
    assert not only_turns.add_keyframe(IMAGE, K, T3)
    assert only_turns.add_keyframe(IMAGE, K, dict(poses())["turned"])
    with pytest.raises(ValueError, match="image"):
        est.add_keyframe(IMAGE[..., 0], K, T)
    with pytest.raises(ValueError, match="K"):
        est.add_keyframe(IMAGE, np.eye(4), T)
    with pytest.raises(ValueError, match="T_world_cam"):
        est.add_keyframe(IMAGE, K, np.eye(3))
    with pytest.raises(ValueError, match="window"):
        make_estimator(window=3)


def test_from_checkpoint(tmp_path):
    net = LinkNet(m=3, width=8)
    path = tmp_path / "s.pt"
    save_checkpoint(path, {"model": net.state_dict(), "metadata": model_metadata(net, (24, 32))})
    est = SufficiencyEstimator.from_checkpoint(path, device="auto", k=1)
    assert est.input_size == (24, 32) and est.m == 3
    for name, T in poses():
        est.add_keyframe(IMAGE, K, T, name)
    assert est.estimate().counts.shape == (24, 32)
