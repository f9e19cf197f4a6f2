"""Frustum intervals: exact versus brute force, consistent with the labels, encoding, mirror
symmetry (the flip augmentation), and the rgb+frustum input through dataset, net and estimator."""

import numpy as np
import pytest
import torch

from recon_ros.sufficiency.checkpoint import model_metadata, save_checkpoint
from recon_ros.sufficiency.dataset import (
    SampleConfig,
    SufficiencyDataset,
    sample_frustum,
)
from recon_ros.sufficiency.estimator import SufficiencyEstimator
from recon_ros.sufficiency.frustum import (
    FRUSTUM_FAR,
    FRUSTUM_NEAR,
    encode_depth,
    frustum_channels,
    frustum_intervals,
    frustum_intervals_reference,
)
from recon_ros.sufficiency.labels import conjugate_pair_visibility
from recon_ros.sufficiency.linknet import LinkNet
from recon_ros.sufficiency.preprocess import network_input
from recon_ros.sufficiency.synthetic import ToySequence


@pytest.fixture(scope="module")
def seq():
    return ToySequence(0, num_frames=10, hw=(24, 32))


def cameras(seq, ref, partners):
    r = seq[ref]
    ps = [seq[i] for i in partners]
    hw = r.rgb.shape[:2]
    return (
        (r.K, r.T_world_cam, hw, [p.K for p in ps], [p.T_world_cam for p in ps], [hw] * len(ps)),
        r,
        ps,
    )


def test_exact_intervals_match_brute_force(seq):
    args, _, _ = cameras(seq, 9, [1, 5, 7, 8])
    exact = frustum_intervals(*args)
    brute = frustum_intervals_reference(*args, samples=4000)
    assert exact.shape == (4, 24, 32, 2)
    empty_e, empty_b = exact[..., 0] > exact[..., 1], brute[..., 0] > brute[..., 1]
    assert 0 < empty_e.mean() < 1  # both cases occur
    assert np.array_equal(empty_e, empty_b)
    # The samples are evenly spaced in inverse depth: compare there, to one spacing.
    step = (1 / FRUSTUM_NEAR - 1 / FRUSTUM_FAR) / 3999
    ok = ~empty_e
    assert np.abs(1 / exact[ok] - 1 / brute[ok]).max() <= step * 1.01
    assert (exact[ok][:, 0] >= FRUSTUM_NEAR).all() and (exact[ok][:, 1] <= FRUSTUM_FAR).all()


def test_every_labelled_sighting_lies_in_its_interval(seq):
    args, ref, ps = cameras(seq, 9, [2, 4, 6, 8])
    iv = frustum_intervals(*args)
    seen = conjugate_pair_visibility(
        ref.depth,
        ref.K,
        ref.T_world_cam,
        [p.depth for p in ps],
        [p.K for p in ps],
        [p.T_world_cam for p in ps],
    )
    inside = (iv[..., 0] <= ref.depth) & (ref.depth <= iv[..., 1])
    assert seen.any() and not (seen & ~inside).any()
    # Where the point is inside the interval and the partner is not occluded, it is seen: most
    # in-interval pixels of this open toy room are sightings.
    assert (seen.sum() / inside.sum()) > 0.8


def test_codes_identity_and_never_seen():
    K = np.array([[20.0, 0.0, 15.5], [0.0, 20.0, 11.5], [0.0, 0.0, 1.0]])
    T = np.eye(4)
    away = np.diag([-1.0, 1.0, -1.0, 1.0])  # turned around: sees nothing of the reference rays
    codes = frustum_channels(K, T, (24, 32), [K, K], [T, away], [(24, 32)] * 2)
    assert codes.shape == (2, 2, 24, 32) and codes.dtype == np.uint8
    near, far = (round(255 * float(encode_depth(t))) for t in (FRUSTUM_NEAR, FRUSTUM_FAR))
    assert (codes[0, 0] == near).all() and (codes[0, 1] == far).all()
    assert (codes[1, 0] == 255).all() and (codes[1, 1] == 0).all()
    assert float(encode_depth(np.inf)) == 1.0 and float(encode_depth(2.0)) == 0.5
    with pytest.raises(ValueError, match="Ks"):
        frustum_intervals(K, T, (24, 32), [K], [T, T], [(24, 32)])
    with pytest.raises(ValueError, match="T_world_ref"):
        frustum_intervals(K, np.eye(3), (24, 32), [K], [T], [(24, 32)])
    with pytest.raises(ValueError, match="near"):
        frustum_intervals(K, T, (24, 32), [K], [T], [(24, 32)], near=2.0, far=1.0)


def test_mirrored_world_gives_flipped_channels(seq):
    """With cx at the image centre, mirroring the world (x -> -x) and every camera (flipping its
    x axis to stay right-handed) flips the channels horizontally: the flip augmentation is
    exact."""
    (K, T, hw, Ks, Ts, hws), _, _ = cameras(seq, 9, [1, 5, 7])
    assert K[0, 2] == (hw[1] - 1) / 2
    S = np.diag([-1.0, 1.0, 1.0, 1.0])

    def mirror(T):
        return S @ T @ S

    a = frustum_channels(K, T, hw, Ks, Ts, hws)
    b = frustum_channels(K, mirror(T), hw, Ks, [mirror(t) for t in Ts], hws)
    assert (np.abs(a[..., ::-1].astype(int) - b.astype(int)) <= 1).all()


CONFIG = SampleConfig(m=3, size=(20, 24), window=4, seed=0, inputs="rgb+frustum")


def test_dataset_gives_frustum_channels_augmented_with_the_images(tmp_path):
    seqs = [ToySequence(0, num_frames=8, hw=(30, 40))]
    plain = SufficiencyDataset(seqs, CONFIG, cache_dir=tmp_path)
    _, labels, frustum = plain[2]
    arrays = plain.load_arrays(2)
    assert frustum.shape == (3, 2, 20, 24) and frustum.dtype == torch.uint8
    assert arrays["Ks"].shape == (4, 3, 3) and arrays["poses"].shape == (4, 4, 4)
    assert np.array_equal(frustum.numpy(), sample_frustum(arrays["Ks"], arrays["poses"], (20, 24)))
    aug = SufficiencyDataset(seqs, CONFIG, cache_dir=tmp_path, augment=True, specs=plain.specs)
    flips = 0
    for epoch in range(6):
        aug.set_epoch(epoch)
        a_images, a_labels, a_frustum = (t.numpy() for t in aug[2])
        flipped = not np.array_equal(a_labels, labels.numpy())
        flips += flipped
        # Each partner image keeps its own channels: find it among the originals.
        ref_images = arrays["images"][:, :, ::-1] if flipped else arrays["images"]
        ref_frustum = arrays["frustum"][..., ::-1] if flipped else arrays["frustum"]
        for k in range(3):
            j = next(j for j in range(3) if np.array_equal(a_images[1 + k], ref_images[1 + j]))
            assert np.array_equal(a_frustum[k], ref_frustum[j])
    assert 0 < flips < 6
    rgb = SufficiencyDataset(seqs, SampleConfig(m=3, size=(20, 24), window=4), cache_dir=tmp_path)
    assert len(rgb[2]) == 2


def test_network_and_estimator_take_frustum_input(tmp_path):
    net = LinkNet(m=3, width=8, inputs="rgb+frustum")
    assert net.in_channels == 12 + 6
    images = torch.zeros(2, 4, 20, 24, 3, dtype=torch.uint8)
    frustum = torch.full((2, 3, 2, 20, 24), 255, dtype=torch.uint8)
    x = network_input(images, frustum)
    assert x.shape == (2, 18, 20, 24) and torch.allclose(x[:, 12:], torch.tensor(2.0))
    assert net.eval()(x).shape == (2, 4, 20, 24)
    with pytest.raises(ValueError, match="frustum"):
        network_input(images, frustum[:, :2])
    with pytest.raises(ValueError, match="inputs"):
        LinkNet(m=3, inputs="depth")
    path = tmp_path / "f.pt"
    save_checkpoint(path, {"model": net.state_dict(), "metadata": model_metadata(net, (20, 24))})
    est = SufficiencyEstimator.from_checkpoint(path, device="cpu", k=1)
    assert est.model.inputs == "rgb+frustum"
    seq = ToySequence(0, num_frames=5, hw=(30, 40))
    results = [est.update(f.rgb, f.K, f.T_world_cam, f.stamp) for f in (seq[i] for i in range(5))]
    assert results[3] is not None and results[4].counts.shape == (20, 24)
