"""Plane-sweep stereo cues: fast versus per-pixel reference, depth quality on the toy scene,
codes, and the rgb+frustum+stereo input through dataset, network and estimator."""

import numpy as np
import pytest
import torch

from recon_ros.sufficiency.checkpoint import model_metadata, save_checkpoint
from recon_ros.sufficiency.dataset import SampleConfig, SufficiencyDataset, sample_cameras
from recon_ros.sufficiency.estimator import SufficiencyEstimator
from recon_ros.sufficiency.frustum import encode_depth
from recon_ros.sufficiency.intrinsics import resize_intrinsics
from recon_ros.sufficiency.linknet import LinkNet
from recon_ros.sufficiency.preprocess import network_input, resize_rgb, stack_images
from recon_ros.sufficiency.stereo import (
    COST_SCALE,
    encode_cost,
    plane_depths,
    plane_sweep,
    plane_sweep_reference,
    stereo_channels,
)
from recon_ros.sufficiency.synthetic import ToySequence


def sample(seq, ref, partners, hw):
    r, ps = seq[ref], [seq[i] for i in partners]
    Ks, poses = sample_cameras(r, ps, hw)
    return stack_images([r.rgb, *(p.rgb for p in ps)], hw), Ks, poses, r


def test_plane_sweep_matches_reference():
    images, Ks, poses, _ = sample(ToySequence(0, num_frames=10, hw=(12, 16)), 9, [6, 8], (12, 16))
    depth, costs = plane_sweep(images, Ks, poses, planes=8)
    depth_ref, costs_ref = plane_sweep_reference(images, Ks, poses, planes=8)
    assert depth.shape == (12, 16) and costs.shape == (2, 12, 16)
    assert np.array_equal(depth, depth_ref)
    assert np.array_equal(np.isfinite(costs), np.isfinite(costs_ref))
    finite = np.isfinite(costs)
    assert finite.any() and np.allclose(costs[finite], costs_ref[finite], atol=1e-5)


def test_plane_sweep_finds_the_depth_of_the_toy_room():
    seq = ToySequence(0, num_frames=10, hw=(60, 80))
    images, Ks, poses, ref = sample(seq, 9, [5, 6, 7, 8], (60, 80))
    depth, _ = plane_sweep(images, Ks, poses)
    ok = np.isfinite(depth) & (ref.depth > 0)
    rel = np.abs(depth[ok] - ref.depth[ok]) / ref.depth[ok]
    assert ok.mean() > 0.9 and np.median(rel) < 0.1
    assert (np.diff(plane_depths()) < 0).all()  # far to near


def test_codes_and_input_checks():
    seq = ToySequence(0, num_frames=10, hw=(30, 40))
    images, Ks, poses, _ = sample(seq, 9, [6, 7, 8], (30, 40))
    codes = stereo_channels(images, Ks, poses)
    assert codes.shape == (4, 30, 40) and codes.dtype == np.uint8
    half = np.stack([resize_rgb(im, (15, 20)) for im in images])
    depth, _ = plane_sweep(half, [resize_intrinsics(K, (30, 40), (15, 20)) for K in Ks], poses)
    # Channel 0 at an even pixel is the half-size depth's code (nearest upsampling).
    expected = np.round(255 * np.where(np.isfinite(depth), encode_depth(depth), 1.0))
    assert np.array_equal(codes[0, ::2, ::2], expected.astype(np.uint8))
    assert float(encode_cost(np.inf)) == 1.0 and float(encode_cost(COST_SCALE)) == 0.5
    with pytest.raises(ValueError, match="images"):
        plane_sweep(images[:1], Ks[:1], poses[:1])
    with pytest.raises(ValueError, match="poses"):
        plane_sweep(images, Ks, poses[:2])


CONFIG = SampleConfig(m=3, size=(20, 24), window=4, seed=0, inputs="rgb+frustum+stereo")


def test_dataset_network_estimator_with_stereo(tmp_path):
    seqs = [ToySequence(0, num_frames=8, hw=(30, 40))]
    plain = SufficiencyDataset(seqs, CONFIG, cache_dir=tmp_path)
    images, labels, frustum, stereo = plain[2]
    assert stereo.shape == (4, 20, 24) and stereo.dtype == torch.uint8
    arrays = plain.load_arrays(2)
    assert np.array_equal(
        stereo.numpy(), stereo_channels(arrays["images"], arrays["Ks"], arrays["poses"])
    )
    aug = SufficiencyDataset(seqs, CONFIG, cache_dir=tmp_path, augment=True, specs=plain.specs)
    for epoch in range(4):
        aug.set_epoch(epoch)
        a_images, a_labels, _, a_stereo = (t.numpy() for t in aug[2])
        flipped = not np.array_equal(a_labels, labels.numpy())
        ref_images = arrays["images"][:, :, ::-1] if flipped else arrays["images"]
        ref_stereo = arrays["stereo"][..., ::-1] if flipped else arrays["stereo"]
        assert np.array_equal(a_stereo[0], ref_stereo[0])  # the depth stays the reference's
        for k in range(3):  # each partner keeps its own cost channel
            j = next(j for j in range(3) if np.array_equal(a_images[1 + k], ref_images[1 + j]))
            assert np.array_equal(a_stereo[1 + k], ref_stereo[1 + j])
    net = LinkNet(m=3, width=8, inputs="rgb+frustum+stereo").eval()
    assert net.in_channels == 12 + 6 + 4
    x = network_input(images[None], frustum[None], stereo[None])
    assert net(x).shape == (1, 4, 20, 24)
    with pytest.raises(ValueError, match="stereo needs frustum"):
        network_input(images[None], None, stereo[None])
    path = tmp_path / "s.pt"
    save_checkpoint(path, {"model": net.state_dict(), "metadata": model_metadata(net, (20, 24))})
    est = SufficiencyEstimator.from_checkpoint(path, device="cpu", k=1)
    seq = seqs[0]
    results = [est.update(f.rgb, f.K, f.T_world_cam, f.stamp) for f in (seq[i] for i in range(5))]
    assert results[4] is not None and results[4].counts.shape == (20, 24)
