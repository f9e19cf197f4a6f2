"""Samples from sequences: shapes, labels at network size, determinism, cache, augmentation."""

import numpy as np
import pytest

from recon_ros.sufficiency.dataset import (
    SampleConfig,
    SufficiencyDataset,
    make_sample,
    plan_samples,
    split_specs,
)
from recon_ros.sufficiency.frames import get_frame
from recon_ros.sufficiency.intrinsics import resize_nearest
from recon_ros.sufficiency.labels import IGNORE_LABEL, conjugate_pair_labels
from recon_ros.sufficiency.synthetic import ToySequence

CONFIG = SampleConfig(m=3, size=(40, 48), window=4, seed=0)


@pytest.fixture(scope="module")
def seqs():
    return [ToySequence(0, num_frames=10, hw=(60, 80)), ToySequence(1, num_frames=10, hw=(60, 80))]


def test_sample_shapes_and_labels_at_network_size(seqs):
    ds = SufficiencyDataset(seqs, CONFIG)
    assert len(ds) == 2 * (10 - 3)  # references with >= m earlier candidates
    images, labels = ds[0]
    assert images.shape == (4, 40, 48, 3) and str(images.dtype) == "torch.uint8"
    assert labels.shape == (40, 48)
    spec = ds.specs[0]
    assert spec.reference not in spec.partners and len(spec.partners) == 3
    assert all(spec.reference - 4 <= p < spec.reference for p in spec.partners)
    # Labels: full-resolution labels, nearest-downsampled.
    ref = get_frame(seqs[spec.sequence], spec.reference)
    parts = [get_frame(seqs[spec.sequence], i) for i in spec.partners]
    full = conjugate_pair_labels(
        ref.depth,
        ref.K,
        ref.T_world_cam,
        [p.depth for p in parts],
        [p.K for p in parts],
        [p.T_world_cam for p in parts],
    )
    assert np.array_equal(labels.numpy(), resize_nearest(full, (40, 48)))
    assert set(np.unique(labels.numpy())) <= {0, 1, 2, 3, IGNORE_LABEL}


def test_plans_are_deterministic_and_random_mode_differs(seqs):
    assert plan_samples(seqs, CONFIG) == plan_samples(seqs, CONFIG)
    rnd = SampleConfig(m=3, size=(40, 48), window=4, partners="random", draws=2, causal=False)
    a, b = plan_samples(seqs, rnd), plan_samples(seqs, rnd)
    assert a == b and len(a) == 2 * 2 * 10
    assert plan_samples(seqs, SampleConfig(**{**rnd.__dict__, "seed": 1})) != a
    mixed = plan_samples(seqs, SampleConfig(**{**rnd.__dict__, "partners": "mixed"}))
    overlap = plan_samples(seqs, SampleConfig(**{**rnd.__dict__, "partners": "overlap"}))
    assert set(mixed) == set(a) | set(overlap)


def test_cache_round_trip(seqs, tmp_path):
    ds = SufficiencyDataset(seqs, CONFIG, cache_dir=tmp_path)
    ds.prepare(progress=False)
    files = list((tmp_path / "samples").rglob("*.npz"))
    assert len(files) == len(ds) and list(tmp_path.glob("plan_*.json"))
    warm = SufficiencyDataset([_Unreadable(s) for s in seqs], CONFIG, cache_dir=tmp_path)
    for i in (0, len(ds) - 1):
        a, b = ds.load(i), warm.load(i)  # the warm cache never reads a frame
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


class _Unreadable:
    """A sequence whose frames cannot be read, only its metadata (proves the cache is used)."""

    def __init__(self, seq):
        self.name, self._n = seq.name, len(seq)
        self.poses, self.intrinsics = seq.poses, seq.intrinsics
        self.height, self.width = seq.height, seq.width

    def __len__(self):
        return self._n

    def __getitem__(self, i):
        raise AssertionError("frame read despite a warm cache")


def test_augmentation_flips_images_and_labels_together(seqs):
    plain = SufficiencyDataset(seqs, CONFIG)
    aug = SufficiencyDataset(seqs, CONFIG, augment=True, specs=plain.specs)
    flips = 0
    for epoch in range(8):
        aug.set_epoch(epoch)
        images, labels = (t.numpy() for t in aug[3])
        ref_images, ref_labels = plain.load(3)
        flipped = not np.array_equal(images[0], ref_images[0])
        flips += flipped
        if flipped:
            ref_images, ref_labels = ref_images[:, :, ::-1], ref_labels[:, ::-1]
        assert np.array_equal(images[0], ref_images[0]) and np.array_equal(labels, ref_labels)
        partners = {x.tobytes() for x in ref_images[1:]}
        assert {x.tobytes() for x in images[1:]} == partners
    aug.set_epoch(2)
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(aug[3], aug[3], strict=True))
    assert 0 < flips < 8  # both branches exercised (fixed by the seed)


def test_depth_at_other_resolution_and_dict_frames():
    seq = ToySequence(0, num_frames=8, hw=(120, 160))
    low = ToySequence(0, num_frames=8, hw=(60, 80))  # the same views, half-resolution depth
    ids = [7, 4, 5, 6]

    def frame(i: int) -> dict:  # a mapping with other accepted field names
        f = seq[i]
        return {"image": f.rgb, "depth": low[i].depth, "intrinsics": f.K, "pose": f.T_world_cam}

    _, full = make_sample(seq[ids[0]], [seq[i] for i in ids[1:]], CONFIG)
    frames = [get_frame([frame(i)], 0) for i in ids]
    _, coarse = make_sample(frames[0], frames[1:], CONFIG)
    # K is rescaled to the depth size: labels agree except near depth edges.
    assert (full == coarse).mean() > 0.93


def test_split_by_sequence_and_bad_config(seqs):
    specs = plan_samples(seqs, CONFIG)
    train, val = split_specs(specs, 0.5, seed=0)
    assert train and val and not {s.sequence for s in train} & {s.sequence for s in val}
    with pytest.raises(ValueError, match="partners"):
        SampleConfig(partners="nearest")
    with pytest.raises(ValueError, match="rgb"):
        get_frame([{"rgb": np.zeros((4, 4)), "depth": None}], 0)


def test_keyframe_and_offset_plans(seqs):
    """``keyframes``: references are the frames the node's gate keeps, partners earlier kept
    frames; ``offsets``: partners at fixed offsets before the reference."""
    from recon_ros.core.keyframes import KeyframeGate

    config = SampleConfig(m=2, size=(40, 48), window=4, partners="keyframes",
                          keyframe_min_translation=0.05, keyframe_min_rotation_deg=5.0)  # fmt: skip
    specs = plan_samples(seqs, config)
    for s, seq in enumerate(seqs):
        gate, kept = KeyframeGate(0.05, 5.0), []
        for i in range(len(seq)):
            T = get_frame(seq, i).T_world_cam
            if gate.is_keyframe(T):
                gate.accept(T)
                kept.append(i)
        mine = [spec for spec in specs if spec.sequence == s]
        assert mine and all(spec.reference in kept for spec in mine)
        for spec in mine:
            earlier = kept[: kept.index(spec.reference)][-4:]
            assert set(spec.partners) <= set(earlier) and len(spec.partners) == 2
    offsets = SampleConfig(m=2, size=(40, 48), window=4, partners="offsets", offsets=(2, 5))
    planned = plan_samples(seqs, offsets)
    assert len(planned) == 2 * (10 - 5)
    assert all(spec.partners == (spec.reference - 2, spec.reference - 5) for spec in planned)
    with pytest.raises(ValueError, match="offsets"):
        SampleConfig(m=2, partners="offsets", offsets=(3,))
