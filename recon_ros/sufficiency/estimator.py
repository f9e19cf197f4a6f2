"""The frame-sufficiency estimator the ROS node calls: plain Python, no ROS.

It keeps a bounded window of recent keyframes (image, K, T_world_cam, stamp). For the newest
keyframe (the reference) it picks the ``m`` partners with the largest view overlap among the
others (``core.partners.frustum_overlap``: the fraction of the reference frustum's sample points, at
several nominal depths, that each candidate sees), stacks the images, runs the conjugate-pair
network (with the partners' frustum channels, ``frustum``, and the plane-sweep channels,
``stereo``, when the checkpoint was trained with them: ``inputs``) and summarises the per-pixel
counts:

- ``counts``: (H, W) uint8 predicted count 0..m at network resolution (``counts_at`` /
  ``counts_full`` give it at another size or at the reference image's, nearest-neighbour);
- ``count_fractions``: fraction of pixels per count (m + 1 values, summing to 1);
- ``score``: fraction of pixels seen by at least ``k`` partners;
- ``sufficient``: ``score >= threshold``.

Fields match ``recon_ros/msg/FrameSufficiency.msg``. When there are fewer than ``m + 1``
keyframes (or fewer than ``m`` overlap the reference by ``min_overlap``), :meth:`estimate`
returns None and :attr:`SufficiencyEstimator.reason` says why.
"""

import collections
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from recon_ros.core.device import resolve_device
from recon_ros.core.keyframes import KeyframeGate
from recon_ros.core.partners import (
    DEFAULT_DEPTHS,
    DEFAULT_GRID,
    frustum_overlap,
    select_partners,
)
from recon_ros.sufficiency.checkpoint import load_model
from recon_ros.sufficiency.frustum import frustum_channels
from recon_ros.sufficiency.intrinsics import check_intrinsics, resize_intrinsics, resize_nearest
from recon_ros.sufficiency.linknet import LinkNet
from recon_ros.sufficiency.preprocess import network_input, resize_rgb, uses_frustum, uses_stereo
from recon_ros.sufficiency.stereo import stereo_codes, stereo_sweep


@dataclass
class Keyframe:
    """A keyframe as stored: image resized to the network size with matching intrinsics."""

    image: np.ndarray  # (h, w, 3) uint8 at network size
    K: np.ndarray  # (3, 3) intrinsics of ``image``
    T_world_cam: np.ndarray  # (4, 4)
    stamp: Any
    source_hw: tuple[int, int]  # size of the image as given


@dataclass
class SufficiencyResult:
    """One estimate (module docstring)."""

    counts: np.ndarray
    count_fractions: np.ndarray
    m: int
    k: int
    score: float
    threshold: float
    sufficient: bool
    reference_stamp: Any
    partner_stamps: list[Any]
    partner_overlaps: list[float]
    reference_size: tuple[int, int]
    T_world_cam: np.ndarray | None = None  # (4, 4) the reference's pose
    #: (h, w) metres, the reference's plane-sweep depth (inf: none), with ``keep_depth``
    depth: np.ndarray | None = None
    depth_K: np.ndarray | None = None  # noqa: N815 (K, as everywhere) (3, 3) intrinsics of ``depth``
    timings_ms: dict[str, float] = field(default_factory=dict)

    def counts_at(self, hw: tuple[int, int]) -> np.ndarray:
        """The count map resized (nearest) to ``hw`` = (height, width)."""
        return resize_nearest(self.counts, hw)

    def counts_full(self) -> np.ndarray:
        """The count map at the reference image's resolution."""
        return self.counts_at(self.reference_size)


class SufficiencyEstimator:
    """Windowed keyframes in, per-pixel conjugate-pair counts out.

    Args:
        model: a :class:`LinkNet` (its ``m`` sets the number of partners).
        input_size: network (height, width).
        window: keyframes kept (>= m + 1); the oldest is dropped first.
        k: a pixel counts as covered when seen by at least ``k`` partners (1..m).
        threshold: ``sufficient`` when the covered fraction is at least this.
        device: "cpu", "cuda" or "auto".
        overlap_depths, overlap_grid: frustum sampling of the partner choice.
        min_overlap: partners must see at least this fraction of the reference frustum samples.
        min_translation, min_rotation_deg: :meth:`add_keyframe` keeps a frame only when it
            moved at least ``min_translation`` metres or turned at least ``min_rotation_deg``
            from the newest keyframe; a threshold of 0 disables its criterion, both 0 (default)
            keep every frame. Set them when feeding raw frames rather than keyframes.
        keep_depth: every result carries the reference's plane-sweep depth (``depth``,
            ``depth_K``; ``stereo.stereo_sweep``), as the coverage grid needs; the sweep then
            runs even for a network that does not read it.
    """

    def __init__(
        self,
        model: LinkNet,
        *,
        input_size: tuple[int, int] = (300, 300),
        window: int = 12,
        k: int = 2,
        threshold: float = 0.6,
        device: str | torch.device = "auto",
        overlap_depths: tuple[float, ...] = DEFAULT_DEPTHS,
        overlap_grid: int = DEFAULT_GRID,
        min_overlap: float = 0.05,
        min_translation: float = 0.0,
        min_rotation_deg: float = 0.0,
        keep_depth: bool = False,
    ):
        if not isinstance(model, LinkNet):
            raise ValueError(f"model must be a LinkNet, got {type(model).__name__}")
        self.m = model.m
        if window < self.m + 1:
            raise ValueError(f"window must be >= m + 1 = {self.m + 1}, got {window}")
        if not 1 <= k <= self.m:
            raise ValueError(f"k must lie in [1, m = {self.m}], got {k}")
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must lie in [0, 1], got {threshold}")
        if len(input_size) != 2 or min(input_size) < 8:
            raise ValueError(f"input_size must be (height, width) >= 8, got {input_size}")
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.k = k
        self.threshold = float(threshold)
        self.overlap_depths = tuple(overlap_depths)
        self.overlap_grid = overlap_grid
        self.min_overlap = min_overlap
        self.min_translation = min_translation
        self.min_rotation_deg = min_rotation_deg
        self.keep_depth = bool(keep_depth)
        self.keyframes: collections.deque[Keyframe] = collections.deque(maxlen=window)
        self.reason = "no keyframes yet"

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, device: str | torch.device = "auto", **kwargs: Any
    ) -> "SufficiencyEstimator":
        """An estimator around the network of a checkpoint (input size from its metadata)."""
        dev = resolve_device(device)
        model, meta = load_model(path, dev)
        kwargs.setdefault("input_size", tuple(meta["input_size"]))
        return cls(model, device=dev, **kwargs)

    def reset(self) -> None:
        """Forget all keyframes."""
        self.keyframes.clear()
        self.reason = "no keyframes yet"

    def _moved_enough(self, T: np.ndarray) -> bool:
        """The keyframe gate (``core.keyframes``) against the newest keyframe."""
        gate = KeyframeGate(self.min_translation, self.min_rotation_deg)
        if self.keyframes:
            gate.accept(self.keyframes[-1].T_world_cam)
        return gate.is_keyframe(T)

    def add_keyframe(
        self, image: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, stamp: Any = None
    ) -> bool:
        """Append a keyframe (the newest becomes the next reference).

        Args:
            image: (H, W, 3) uint8 RGB; K: (3, 3) its intrinsics; T_world_cam: (4, 4) optical
                pose; stamp: any timestamp, returned in results.

        Returns:
            False when the frame was skipped for moving too little (``min_translation``).

        Raises:
            ValueError: naming the malformed input.
        """
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
        K = check_intrinsics(K)
        T = np.asarray(T_world_cam, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ValueError(f"T_world_cam must be a finite (4, 4) matrix, got shape {T.shape}")
        if not self._moved_enough(T):
            return False
        hw = image.shape[:2]
        self.keyframes.append(
            Keyframe(
                image=resize_rgb(image, self.input_size),
                K=resize_intrinsics(K, hw, self.input_size),
                T_world_cam=T,
                stamp=stamp,
                source_hw=(int(hw[0]), int(hw[1])),
            )
        )
        return True

    def select_partners(self) -> tuple[list[int], list[float]]:
        """Indices (into :attr:`keyframes`) of the newest keyframe's partners, best first, and
        their overlaps; empty lists when fewer than m qualify."""
        if len(self.keyframes) < self.m + 1:
            return [], []
        ref = self.keyframes[-1]
        cands = list(self.keyframes)[:-1]
        ov = frustum_overlap(
            ref.K,
            ref.T_world_cam,
            self.input_size,
            [c.K for c in cands],
            [c.T_world_cam for c in cands],
            [self.input_size] * len(cands),
            self.overlap_depths,
            self.overlap_grid,
        )
        chosen = select_partners(ov, self.m, self.min_overlap)
        return chosen, [float(ov[i]) for i in chosen]

    @torch.inference_mode()
    def estimate(self) -> SufficiencyResult | None:
        """Counts for the newest keyframe, or None (see :attr:`reason`)."""
        t0 = time.perf_counter()
        n = len(self.keyframes)
        if n < self.m + 1:
            self.reason = f"need {self.m + 1} keyframes, have {n}"
            return None
        partners, overlaps = self.select_partners()
        if not partners:
            self.reason = (
                f"fewer than m = {self.m} of the {n - 1} older keyframes overlap the "
                f"newest by >= {self.min_overlap:g}"
            )
            return None
        ref = self.keyframes[-1]
        frames = [ref, *(self.keyframes[i] for i in partners)]
        stack = torch.from_numpy(np.stack([f.image for f in frames]))[None]
        extras = []
        if uses_frustum(self.model.inputs):
            codes = frustum_channels(
                ref.K,
                ref.T_world_cam,
                self.input_size,
                [f.K for f in frames[1:]],
                [f.T_world_cam for f in frames[1:]],
                [self.input_size] * self.m,
            )
            extras.append(torch.from_numpy(codes)[None].to(self.device))
        sweep_depth = sweep_K = None
        if uses_stereo(self.model.inputs) or self.keep_depth:
            sweep_depth, costs, sweep_K = stereo_sweep(
                np.stack([f.image for f in frames]),
                np.stack([f.K for f in frames]),
                np.stack([f.T_world_cam for f in frames]),
            )
            if uses_stereo(self.model.inputs):
                codes = stereo_codes(sweep_depth, costs, self.input_size)
                extras.append(torch.from_numpy(codes)[None].to(self.device))
        t1 = time.perf_counter()
        logits = self.model(network_input(stack.to(self.device), *extras))
        counts = logits.argmax(1)[0].to(torch.uint8).cpu().numpy()
        t2 = time.perf_counter()
        fractions = np.bincount(counts.ravel(), minlength=self.m + 1)[: self.m + 1] / counts.size
        score = float(fractions[self.k :].sum())
        self.reason = ""
        return SufficiencyResult(
            counts=counts,
            count_fractions=fractions.astype(np.float32),
            m=self.m,
            k=self.k,
            score=score,
            threshold=self.threshold,
            sufficient=score >= self.threshold,
            reference_stamp=ref.stamp,
            partner_stamps=[self.keyframes[i].stamp for i in partners],
            partner_overlaps=overlaps,
            reference_size=ref.source_hw,
            T_world_cam=ref.T_world_cam,
            depth=sweep_depth if self.keep_depth else None,
            depth_K=sweep_K if self.keep_depth else None,
            timings_ms={"select_ms": (t1 - t0) * 1e3, "network_ms": (t2 - t1) * 1e3},
        )

    def update(
        self, image: np.ndarray, K: np.ndarray, T_world_cam: np.ndarray, stamp: Any = None
    ) -> SufficiencyResult | None:
        """:meth:`add_keyframe` then :meth:`estimate` (None as well when the frame was skipped)."""
        if not self.add_keyframe(image, K, T_world_cam, stamp):
            self.reason = "frame skipped: moved too little since the newest keyframe"
            return None
        return self.estimate()
