"""Training and validation samples of the semantic network (``core.semantic_net``).

A sample is one frame of a generated scene: its colour with a draw of the real-camera effects
(``datasets.randomise``), its depth as the live node would have it, its intrinsics, gravity in
the camera frame and its class labels, all at the network's input size.

The depth the node hands the network is either a sensor's or the stereo network's prediction,
and sometimes none (a keyframe without partners). ``corrupt_depth`` draws one of these:

- ``none`` (``p_none``): all unknown;
- ``sensor``: 1 % noise, a few holes;
- ``stereo``: a smooth multiplicative error field (log-std 0.03-0.15, as stereo depth's AbsRel of
  about 0.1), 3 % pixel noise, blobs of unknown depth covering 5-40 % of the image (where the
  stereo confidence is low), and 1 % outliers at random depths.

Everything random comes from ``numpy.random.default_rng((seed, index))``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recon_ros.core.camera import PinholeCamera, image_to_tensor, resize_image_tensor
from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.semantic_net import up_in_camera
from recon_ros.datasets.layout import SyntheticSequence
from recon_ros.datasets.randomise import CameraRandomiser
from recon_ros.datasets.sequence import FrameSequence
from recon_ros.depth.dataset import find_scene_folders
from recon_ros.sufficiency.intrinsics import resize_nearest

DEPTH_KINDS = ("none", "sensor", "stereo")


def smooth_field(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 standard-normal noise on a coarse grid of about ``cells`` cells across,
    bilinearly upsampled: a smooth random field."""
    height, width = shape
    gh = max(2, round(cells * height / max(height, width)))
    gw = max(2, round(cells * width / max(height, width)))
    coarse = torch.from_numpy(rng.standard_normal((1, 1, gh, gw)).astype(np.float32))
    fine = torch.nn.functional.interpolate(
        coarse, size=(height, width), mode="bilinear", align_corners=True
    )
    return fine[0, 0].numpy()


def corrupt_depth(
    depth: np.ndarray, kind: str, rng: np.random.Generator, max_depth: float = 6.0
) -> np.ndarray:
    """``depth`` (H, W) metres (0 unknown) as a ``kind`` source would deliver it (module
    docstring); float32, 0 unknown."""
    if kind not in DEPTH_KINDS:
        raise ValueError(f"kind: expected one of {DEPTH_KINDS}, got {kind!r}")
    depth = np.asarray(depth, dtype=np.float32)
    if kind == "none":
        return np.zeros_like(depth)
    shape = depth.shape
    valid = depth > 0
    if kind == "sensor":
        out = depth * (1.0 + 0.01 * rng.standard_normal(shape).astype(np.float32))
        holes = smooth_field(shape, 24, rng) > 2.0
    else:
        log_std = rng.uniform(0.03, 0.15)
        out = depth * np.exp(log_std * smooth_field(shape, int(rng.integers(3, 12)), rng))
        out *= 1.0 + 0.03 * rng.standard_normal(shape).astype(np.float32)
        share = rng.uniform(0.05, 0.4)
        field = smooth_field(shape, int(rng.integers(6, 20)), rng)
        holes = field > np.quantile(field, 1.0 - share)
        outliers = rng.random(shape) < 0.01
        out = np.where(outliers, rng.uniform(0.3, max_depth, shape).astype(np.float32), out)
    out = np.where(valid & ~holes, out, 0.0)
    return out.astype(np.float32)


@dataclass
class SemanticSample:
    """One sample (CPU tensors): image (3, H, W) in [0, 1]; depth (1, H, W) metres (0 unknown);
    K (3, 3) at (H, W); up (3,); labels (H, W) int64 (``IGNORE_LABEL``: none)."""

    image: torch.Tensor
    depth: torch.Tensor
    K: torch.Tensor
    up: torch.Tensor
    labels: torch.Tensor


class SemanticDataset:
    """Samples from frame sequences with semantic labels (module docstring).

    Args:
        sequences: the sequences.
        image_size: (width, height) of the network input.
        randomise: apply the real-camera effects to the colour.
        depth_kinds: probabilities of ``none``, ``sensor`` and ``stereo`` depth.
        seed: base seed.
        world_up: (axis, sign) of up in the sequences' world (generated scenes: +z).
    """

    def __init__(
        self,
        sequences: Sequence[FrameSequence],
        image_size: tuple[int, int] = (256, 192),
        randomise: bool = True,
        depth_kinds: tuple[float, float, float] = (0.2, 0.25, 0.55),
        seed: int = 0,
        world_up: tuple[int, float] = (2, 1.0),
    ) -> None:
        if not sequences:
            raise ValueError("sequences: need at least one")
        self.world_up = (int(world_up[0]), float(world_up[1]))
        if len(depth_kinds) != 3 or min(depth_kinds) < 0 or sum(depth_kinds) <= 0:
            raise ValueError(f"depth_kinds: three probabilities, got {depth_kinds}")
        self.sequences = list(sequences)
        self.image_size = tuple(int(s) for s in image_size)
        self.randomiser = CameraRandomiser() if randomise else None
        self.depth_kinds = np.asarray(depth_kinds, dtype=np.float64) / float(sum(depth_kinds))
        self.seed = int(seed)
        self._offsets = np.cumsum([0, *(len(s) for s in self.sequences)])

    @classmethod
    def from_folders(cls, roots: Sequence[str | os.PathLike], **kwargs) -> SemanticDataset:
        folders = find_scene_folders(roots)
        if not folders:
            raise ValueError(f"no scene folders (scene.json) under {list(map(str, roots))}")
        return cls([SyntheticSequence(f) for f in folders], **kwargs)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def sample(self, index: int, depth_kind: str | None = None) -> SemanticSample:
        """Sample ``index`` (a frame of the concatenated sequences); ``depth_kind`` fixes the
        depth source (None: drawn)."""
        rng = np.random.default_rng((self.seed, int(index)))
        kind = depth_kind or str(rng.choice(DEPTH_KINDS, p=self.depth_kinds))
        seq_id = int(np.searchsorted(self._offsets, index, side="right") - 1)
        sequence = self.sequences[seq_id]
        frame = sequence[int(index - self._offsets[seq_id])]
        width, height = self.image_size
        rgb = frame.rgb if self.randomiser is None else self.randomiser.image(frame.rgb, rng)
        image = resize_image_tensor(image_to_tensor(rgb), width, height)
        camera = PinholeCamera.from_matrix(frame.K, frame.rgb.shape[1], frame.rgb.shape[0])
        K = camera.resized(width, height).K
        T = np.asarray(frame.T_world_cam, dtype=np.float64)
        if self.randomiser is not None:
            K = self.randomiser.intrinsics(K, rng)
            T = self.randomiser.pose(T, rng)
        depth = np.zeros((height, width), np.float32)
        if frame.depth is not None:
            depth = corrupt_depth(resize_nearest(frame.depth, (height, width)), kind, rng)
        labels = (
            resize_nearest(frame.semantic, (height, width)).astype(np.int64)
            if frame.semantic is not None
            else np.full((height, width), IGNORE_LABEL, np.int64)
        )
        return SemanticSample(
            image=image.contiguous(),
            depth=torch.from_numpy(depth)[None],
            K=torch.as_tensor(K, dtype=torch.float32),
            up=torch.as_tensor(up_in_camera(T, self.world_up), dtype=torch.float32),
            labels=torch.from_numpy(np.ascontiguousarray(labels)),
        )
