"""Training samples for the conjugate-pair network, built from posed RGB-D sequences.

A sample is a reference frame plus ``m`` partner frames of the same sequence, resized to the
network size, and the reference's conjugate-pair labels at that size. Sequences are anything
``frames.get_frame`` reads (``len(seq)``, ``seq[i]`` with rgb, depth, K, T_world_cam).

Partner choice (``SampleConfig.partners``):

- ``"overlap"`` (default, as the estimator does it): candidates are the frames ``i - k * step``,
  ``k = 1..window`` (``causal``: only earlier frames, like the estimator whose reference is the
  newest keyframe; otherwise both sides); the ``m`` with the largest frustum overlap
  (``core.partners.frustum_overlap``) and at least ``min_overlap`` are taken.
- ``"random"``: ``m`` candidates drawn uniformly from the same candidate set, ``draws`` times per
  reference, which spreads the labels over all counts;
- ``"mixed"``: both, the overlap sample plus ``draws`` random ones per reference: the run-time
  distribution of pairs, and enough low counts that "everything is seen by all" is not the
  answer to every sample;
- ``"keyframes"``: exactly what sufficiency_node does at its defaults: the sequence is first
  gated into keyframes (``core.keyframes.KeyframeGate``: ``keyframe_min_translation`` /
  ``keyframe_min_rotation_deg``), every keyframe is a reference, and its partners are the ``m``
  of the ``window`` previous keyframes with the largest overlap (``reference_stride`` and
  ``step`` do not apply);
- ``"offsets"``: fixed frame offsets before the reference (``offsets``, e.g. 12, 24, 36, 48
  capture frames), the protocol of a recording replayed at its frame rate.

Labels are computed at the reference depth's full resolution (partners at theirs) and then
nearest-downsampled to the network size: each network pixel takes the label of the source pixel
containing its centre, i.e. of an actual surface point, so no label mixes two surfaces. When a
frame's depth has its own intrinsics (``K_depth``, e.g. ScanNet) they are used; otherwise, when
the depth has another size than the image, ``K`` is rescaled to the depth size.

Network input (``SampleConfig.inputs``): ``"rgb"``, the paper's stacked images;
``"rgb+frustum"``, which adds each partner's frustum interval channels
(``frustum.frustum_channels``, computed from the network-size intrinsics and the poses);
``"rgb+frustum+stereo"``, which also adds the plane-sweep channels (``stereo.stereo_channels``,
from the network-size images, intrinsics and poses).

Samples are cached as ``.npz`` files (atomic writes) keyed by the sequence name, the frame indices
and every setting that changes them (images, labels, the network-size intrinsics and poses of
the m + 1 frames, and the frustum and stereo channels when asked for); sample lists are cached
too, so a warm cache never touches the sequences. Everything is deterministic given ``seed``.
"""

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from recon_ros.core.keyframes import KeyframeGate
from recon_ros.core.partners import (
    DEFAULT_DEPTHS,
    DEFAULT_GRID,
    frustum_overlap,
    select_partners,
)
from recon_ros.sufficiency.fileio import atomic_save_npz, atomic_write_text
from recon_ros.sufficiency.frames import Frame, get_frame, sequence_name
from recon_ros.sufficiency.frustum import frustum_channels
from recon_ros.sufficiency.intrinsics import resize_intrinsics, resize_nearest
from recon_ros.sufficiency.labels import (
    DEFAULT_ABS_TOL,
    DEFAULT_REL_TOL,
    IGNORE_LABEL,
    conjugate_pair_labels,
)
from recon_ros.sufficiency.preprocess import check_inputs, stack_images, uses_frustum, uses_stereo
from recon_ros.sufficiency.stereo import stereo_channels

#: Bump when the sample format or label rule changes: invalidates caches.
CACHE_VERSION = 2


@dataclass
class SampleConfig:
    """How samples are drawn from sequences (module docstring)."""

    m: int = 4
    size: tuple[int, int] = (300, 300)
    partners: str = "overlap"
    window: int = 8
    step: int = 1
    causal: bool = True
    min_overlap: float = 0.05
    draws: int = 1
    reference_stride: int = 1
    rel_tol: float = DEFAULT_REL_TOL
    abs_tol: float = DEFAULT_ABS_TOL
    overlap_depths: tuple[float, ...] = DEFAULT_DEPTHS
    overlap_grid: int = DEFAULT_GRID
    seed: int = 0
    inputs: str = "rgb"
    keyframe_min_translation: float = 0.1
    keyframe_min_rotation_deg: float = 15.0
    offsets: tuple[int, ...] = ()

    def __post_init__(self):
        self.size = tuple(int(s) for s in self.size)
        self.overlap_depths = tuple(float(d) for d in self.overlap_depths)
        if self.m < 1:
            raise ValueError(f"m must be >= 1, got {self.m}")
        if len(self.size) != 2 or min(self.size) < 8:
            raise ValueError(f"size must be (height, width) >= 8, got {self.size}")
        check_inputs(self.inputs)
        if self.partners not in PARTNER_MODES:
            raise ValueError(f"partners must be one of {PARTNER_MODES}, got {self.partners!r}")
        self.offsets = tuple(int(o) for o in self.offsets)
        if self.partners == "offsets" and (
            len(self.offsets) != self.m or min(self.offsets, default=0) < 1
        ):
            raise ValueError(
                f"partners 'offsets' needs m = {self.m} positive offsets, got {self.offsets}"
            )
        if self.window < self.m or self.step < 1 or self.draws < 1 or self.reference_stride < 1:
            raise ValueError(
                "window >= m, step >= 1, draws >= 1 and reference_stride >= 1 required, got "
                f"window={self.window}, step={self.step}, draws={self.draws}, "
                f"reference_stride={self.reference_stride}"
            )


PARTNER_MODES = ("overlap", "random", "mixed", "keyframes", "offsets")


@dataclass(frozen=True)
class SampleSpec:
    """One sample: sequence index, reference frame index, partner frame indices."""

    sequence: int
    reference: int
    partners: tuple[int, ...] = field(default_factory=tuple)


def candidate_indices(reference: int, length: int, config: SampleConfig) -> list[int]:
    """Candidate partner frame indices of ``reference``, oldest first."""
    before = [reference - k * config.step for k in range(config.window, 0, -1)]
    after = (
        [] if config.causal else [reference + k * config.step for k in range(1, config.window + 1)]
    )
    return [i for i in (*before, *after) if 0 <= i < length]


def _camera_lookup(seq: Any):
    """``camera(i) -> (K, T_world_cam, (H, W))``: from the sequence's cheap ``poses`` and
    ``intrinsics`` metadata when it has them (image size from ``height`` and ``width``
    attributes, else from frame 0), otherwise from the frames themselves."""
    cams: dict[int, tuple[np.ndarray, np.ndarray, tuple[int, int]]] = {}
    try:
        poses = np.asarray(seq.poses, dtype=np.float64)
        intrinsics = np.asarray(seq.intrinsics, dtype=np.float64)
        fast = poses.shape == (len(seq), 4, 4) and intrinsics.shape == (len(seq), 3, 3)
    except (AttributeError, TypeError, ValueError):
        fast = False
    hw: list[tuple[int, int]] = []
    size = (getattr(seq, "height", None), getattr(seq, "width", None))
    if all(isinstance(x, int | np.integer) and x > 0 for x in size):
        hw.append((int(size[0]), int(size[1])))

    def camera(i: int):
        if fast:
            if not hw:
                hw.append(get_frame(seq, 0).rgb.shape[:2])
            return intrinsics[i], poses[i], hw[0]
        if i not in cams:
            f = get_frame(seq, i)
            cams[i] = (f.K, f.T_world_cam, f.rgb.shape[:2])
        return cams[i]

    return camera


def plan_samples(sequences: Sequence[Any], config: SampleConfig) -> list[SampleSpec]:
    """Choose reference and partner frames for every sequence (deterministic by ``seed``)."""
    specs = []
    for s, seq in enumerate(sequences):
        rng = np.random.default_rng([config.seed, s])
        n = len(seq)
        camera = _camera_lookup(seq)

        if config.partners == "keyframes":
            specs += _keyframe_specs(s, n, camera, config)
            continue
        if config.partners == "offsets":
            specs += [
                SampleSpec(s, ref, tuple(ref - o for o in config.offsets))
                for ref in range(max(config.offsets), n, config.reference_stride)
            ]
            continue
        for ref in range(0, n, config.reference_stride):
            cands = candidate_indices(ref, n, config)
            if len(cands) < config.m:
                continue
            if config.partners in ("overlap", "mixed"):
                K, T, hw = camera(ref)
                c = [camera(i) for i in cands]
                ov = frustum_overlap(
                    K,
                    T,
                    hw,
                    [x[0] for x in c],
                    [x[1] for x in c],
                    [x[2] for x in c],
                    config.overlap_depths,
                    config.overlap_grid,
                )
                chosen = select_partners(ov, config.m, config.min_overlap)
                if chosen:
                    specs.append(SampleSpec(s, ref, tuple(cands[i] for i in chosen)))
            if config.partners in ("random", "mixed"):
                for _ in range(config.draws):
                    pick = rng.choice(len(cands), size=config.m, replace=False)
                    specs.append(SampleSpec(s, ref, tuple(cands[i] for i in sorted(pick))))
    return specs


def _keyframe_specs(sequence: int, length: int, camera, config: SampleConfig) -> list[SampleSpec]:
    """The ``"keyframes"`` plan of one sequence (module docstring)."""
    gate = KeyframeGate(config.keyframe_min_translation, config.keyframe_min_rotation_deg)
    keyframes, specs = [], []
    for index in range(length):
        K, T, hw = camera(index)
        if not gate.is_keyframe(T):
            continue
        gate.accept(T)
        cands = keyframes[-config.window :]
        keyframes.append(index)
        if len(cands) < config.m:
            continue
        c = [camera(i) for i in cands]
        ov = frustum_overlap(
            K, T, hw, [x[0] for x in c], [x[1] for x in c], [x[2] for x in c],
            config.overlap_depths, config.overlap_grid,
        )  # fmt: skip
        chosen = select_partners(ov, config.m, config.min_overlap)
        if chosen:
            specs.append(SampleSpec(sequence, index, tuple(cands[i] for i in chosen)))
    return specs


def _depth_intrinsics(frame: Frame) -> np.ndarray:
    """Intrinsics of the frame's depth map: ``K_depth`` when given, else ``K`` (rescaled when
    depth and image sizes differ)."""
    if frame.K_depth is not None:
        return frame.K_depth
    if frame.depth.shape == frame.rgb.shape[:2]:
        return frame.K
    return resize_intrinsics(frame.K, frame.rgb.shape[:2], frame.depth.shape)


def make_sample(
    reference: Frame, partners: Sequence[Frame], config: SampleConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels of one sample.

    Returns:
        images (m + 1, H, W, 3) uint8 (reference first) and labels (H, W) uint8 (count 0..m,
        255 = no valid reference depth), ``(H, W) = config.size``.
    """
    if len(partners) != config.m:
        raise ValueError(f"partners must hold m = {config.m} frames, got {len(partners)}")
    for name, f in (
        ("reference", reference),
        *((f"partners[{j}]", p) for j, p in enumerate(partners)),
    ):
        if f.depth is None:
            raise ValueError(f"{name} has no depth: labels need RGB-D frames")
    labels = conjugate_pair_labels(
        reference.depth,
        _depth_intrinsics(reference),
        reference.T_world_cam,
        [p.depth for p in partners],
        [_depth_intrinsics(p) for p in partners],
        [p.T_world_cam for p in partners],
        rel_tol=config.rel_tol,
        abs_tol=config.abs_tol,
    )
    labels = resize_nearest(labels, config.size)
    images = stack_images([reference.rgb, *(p.rgb for p in partners)], config.size)
    return images, labels


def sample_cameras(
    reference: Frame, partners: Sequence[Frame], size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Intrinsics of the m + 1 images resized to the network ``size`` and their poses.

    Returns:
        Ks (m + 1, 3, 3) and poses (m + 1, 4, 4) float64, reference first.
    """
    frames = [reference, *partners]
    Ks = np.stack([resize_intrinsics(f.K, f.rgb.shape[:2], size) for f in frames])
    poses = np.stack([np.asarray(f.T_world_cam, dtype=np.float64) for f in frames])
    return Ks, poses


def sample_frustum(Ks: np.ndarray, poses: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(m, 2, H, W) uint8 frustum channels of a sample from :func:`sample_cameras`."""
    return frustum_channels(Ks[0], poses[0], size, Ks[1:], poses[1:], [size] * (len(Ks) - 1))


def _cache_name(index: int, sequence: Any) -> str:
    """The sequence's ``name`` (``sequence<index>`` without one) plus a fingerprint of its length
    and first and last cameras: folder names such as ``scene_0000`` repeat across generated data
    sets, and those must not share cached samples."""
    name = sequence_name(sequence, f"sequence{index}")
    camera = _camera_lookup(sequence)
    h = hashlib.sha1(str(len(sequence)).encode())
    for i in (0, len(sequence) - 1):
        K, T, hw = camera(i)
        h.update(np.ascontiguousarray(K, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(T, dtype=np.float64).tobytes())
        h.update(str(tuple(hw)).encode())
    return f"{name}_{h.hexdigest()[:12]}"


def _key(payload: dict) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


class SufficiencyDataset(Dataset):
    """Conjugate-pair samples of one or more sequences.

    Args:
        sequences: posed RGB-D sequences (``frames`` module).
        config: sampling settings.
        cache_dir: folder for cached samples (None: no cache, samples built on every access).
        augment: random horizontal flip of all images and labels together (a mirrored world has
            the same counts) and random order of the partner slots (the count does not depend on
            it), drawn from ``(seed, epoch, index)`` so runs are reproducible; see
            :meth:`set_epoch`.
        specs: use these samples instead of :func:`plan_samples` (e.g. a train/val split).

    ``dataset[i]`` is ``(images, labels)``: (m + 1, H, W, 3) uint8 and (H, W) uint8 tensors,
    for ``inputs = "rgb+frustum"`` ``(images, labels, frustum)`` with (m, 2, H, W) uint8 frustum
    channels, for ``"rgb+frustum+stereo"`` ``(images, labels, frustum, stereo)`` with
    (m + 1, H, W) uint8 plane-sweep channels (all augmented together with the images).
    """

    def __init__(
        self,
        sequences: Sequence[Any],
        config: SampleConfig,
        cache_dir: str | os.PathLike | None = None,
        augment: bool = False,
        specs: Sequence[SampleSpec] | None = None,
    ):
        self.sequences = list(sequences)
        if not self.sequences:
            raise ValueError("sequences must not be empty")
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.augment = augment
        self.epoch = 0
        self.names = [_cache_name(i, seq) for i, seq in enumerate(self.sequences)]
        self.specs = list(specs) if specs is not None else self._planned_specs()

    def _settings(self) -> dict:
        d = asdict(self.config)
        d["version"] = CACHE_VERSION
        return d

    def _planned_specs(self) -> list[SampleSpec]:
        if self.cache_dir is None:
            return plan_samples(self.sequences, self.config)
        path = self.cache_dir / f"plan_{_key({'names': self.names, **self._settings()})}.json"
        if path.exists():
            return [SampleSpec(s, r, tuple(p)) for s, r, p in json.loads(path.read_text())]
        specs = plan_samples(self.sequences, self.config)
        atomic_write_text(path, json.dumps([[s.sequence, s.reference, s.partners] for s in specs]))
        return specs

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation draw of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.specs)

    def sample_path(self, spec: SampleSpec) -> Path | None:
        if self.cache_dir is None:
            return None
        c = self.config
        payload = {
            "name": self.names[spec.sequence],
            "reference": spec.reference,
            "partners": list(spec.partners),
            "size": list(c.size),
            "rel_tol": c.rel_tol,
            "abs_tol": c.abs_tol,
            "version": CACHE_VERSION,
        }
        if c.inputs != "rgb":
            payload["inputs"] = c.inputs
        folder = re.sub(r"[^A-Za-z0-9_.-]", "_", self.names[spec.sequence])[:80]
        return self.cache_dir / "samples" / folder / f"{_key(payload)}.npz"

    def load_arrays(self, index: int) -> dict[str, np.ndarray]:
        """Un-augmented sample ``index`` as numpy arrays, from the cache if present: ``images``,
        ``labels``, ``Ks`` and ``poses`` (:func:`sample_cameras`), and ``frustum`` and
        ``stereo`` when ``inputs`` has them."""
        spec = self.specs[index]
        path = self.sample_path(spec)
        if path is not None and path.exists():
            with np.load(path) as data:
                return {k: data[k] for k in data.files}
        seq = self.sequences[spec.sequence]
        ref = get_frame(seq, spec.reference)
        partners = [get_frame(seq, i) for i in spec.partners]
        images, labels = make_sample(ref, partners, self.config)
        Ks, poses = sample_cameras(ref, partners, self.config.size)
        arrays = {"images": images, "labels": labels, "Ks": Ks, "poses": poses}
        if uses_frustum(self.config.inputs):
            arrays["frustum"] = sample_frustum(Ks, poses, self.config.size)
        if uses_stereo(self.config.inputs):
            arrays["stereo"] = stereo_channels(images, Ks, poses)
        if path is not None:
            atomic_save_npz(path, **arrays)
        return arrays

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Un-augmented sample ``index`` as numpy (images, labels), from the cache if present."""
        arrays = self.load_arrays(index)
        return arrays["images"], arrays["labels"]

    def prepare(self, progress: bool = True) -> None:
        """Build (and cache) every sample now, with a progress bar."""
        for i in tqdm(range(len(self)), desc="sufficiency samples", disable=not progress):
            self.load(i)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        arrays = self.load_arrays(index)
        images, labels = arrays["images"], arrays["labels"]
        extras = []  # partner-indexed arrays: frustum (m, 2, H, W), stereo (m + 1, H, W)
        if uses_frustum(self.config.inputs):
            extras.append(arrays["frustum"])
        if uses_stereo(self.config.inputs):
            extras.append(arrays["stereo"])
        if self.augment:
            rng = np.random.default_rng([self.config.seed, self.epoch, index])
            perm = rng.permutation(self.config.m)
            order = np.concatenate([[0], 1 + perm])
            images = images[order]
            extras = [e[perm] if e.shape[0] == self.config.m else e[order] for e in extras]
            if rng.random() < 0.5:
                images = images[:, :, ::-1]
                labels = labels[:, ::-1]
                extras = [e[..., ::-1] for e in extras]
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (images, labels, *extras))

    def label_histogram(self) -> np.ndarray:
        """Pixel count per label (m + 1 counts; ignored pixels left out) over all samples."""
        hist = np.zeros(self.config.m + 1, dtype=np.int64)
        for i in range(len(self)):
            labels = self.load(i)[1]
            hist += np.bincount(labels[labels != IGNORE_LABEL], minlength=self.config.m + 1)[
                : self.config.m + 1
            ]
        return hist


def split_specs(
    specs: Sequence[SampleSpec], val_fraction: float, seed: int = 0
) -> tuple[list[SampleSpec], list[SampleSpec]]:
    """Train/validation split without frame sharing where possible.

    With several sequences, whole sequences go to validation (a seeded shuffle, about
    ``val_fraction`` of the samples). With one sequence, the samples whose references come last
    form the validation part (their partners may still be training frames).
    """
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    specs = list(specs)
    if val_fraction == 0 or len(specs) < 2:
        return specs, []
    target = max(1, round(val_fraction * len(specs)))
    seqs = sorted({s.sequence for s in specs})
    if len(seqs) >= 2:
        rng = np.random.default_rng(seed)
        val_seqs: set[int] = set()
        count = 0
        for s in rng.permutation(seqs):
            if count >= target or len(val_seqs) == len(seqs) - 1:
                break
            val_seqs.add(int(s))
            count += sum(1 for x in specs if x.sequence == s)
        return [x for x in specs if x.sequence not in val_seqs], [
            x for x in specs if x.sequence in val_seqs
        ]
    ordered = sorted(specs, key=lambda x: x.reference)
    return ordered[:-target], ordered[-target:]
