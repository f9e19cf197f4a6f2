"""Training and validation samples of the multi-view depth network from frame sequences.

A sample is a reference frame, 1-4 partner frames chosen by ``core.partners.
select_stereo_partners`` among the sequence's other frames (as the live node picks among its
keyframes, but from the past and the future, with a random pick among the qualified ones for
variety), the reference's depth and semantic labels at the network's output resolution, and the
relative poses. With ``randomise`` every image gets its own draw of the real-camera effects of
``datasets.randomise`` and the partners' intrinsics and poses small errors, as a real rig has.

The reference may be cropped (``crop``: (width, height), multiples of 16) to train faster: the
plane sweep only needs the crop's intrinsics; partners stay whole. Everything random comes from
``numpy.random.default_rng((seed, index))``: the same seed and index give the same sample.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.camera import PinholeCamera, image_to_tensor, resize_image_tensor
from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.geometry import invert_pose
from recon_ros.core.partners import select_stereo_partners
from recon_ros.datasets.layout import SyntheticSequence
from recon_ros.datasets.randomise import CameraRandomiser
from recon_ros.datasets.sequence import FrameSequence
from recon_ros.sufficiency.intrinsics import resize_nearest


def find_scene_folders(roots: Sequence[str | os.PathLike]) -> list[Path]:
    """Scene folders (holding ``scene.json``) directly in or below each root, sorted."""
    folders: list[Path] = []
    for name in roots:
        root = Path(name)
        if (root / "scene.json").is_file():
            folders.append(root)
        else:
            folders.extend(sorted(p.parent for p in root.glob("*/scene.json")))
    return folders


@dataclass
class DepthSample:
    """One sample (tensors on the CPU).

    Attributes:
        reference: (3, H, W) in [0, 1]; sources: (S, 3, Hs, Ws).
        K_ref: (3, 3) at (H, W); K_src: (S, 3, 3) at (Hs, Ws); T_src_ref: (S, 4, 4).
        depth: (H / 2, W / 2) metres (0 unknown); semantic: (H / 2, W / 2) int64.
    """

    reference: torch.Tensor
    sources: torch.Tensor
    K_ref: torch.Tensor
    K_src: torch.Tensor
    T_src_ref: torch.Tensor
    depth: torch.Tensor
    semantic: torch.Tensor


def collate(samples: Sequence):
    """Stack samples (one dataclass of tensors, e.g. ``DepthSample``) with equal shapes into a
    batch of the same class (a leading B on every field)."""
    kind = type(samples[0])
    return kind(
        *(torch.stack([getattr(s, name) for s in samples]) for name in kind.__dataclass_fields__)
    )


def _half_nearest(array: np.ndarray) -> np.ndarray:
    """(H, W) -> (H / 2, W / 2) by picking one pixel per 2x2 block (labels and depth are not
    averaged across edges)."""
    return array[0::2, 0::2]


class StereoDepthDataset:
    """Samples from frame sequences (see the module docstring).

    Args:
        sequences: frame sequences with depth (and semantic labels where known).
        image_size: (width, height) the network sees; frames are resized to it.
        crop: (width, height) of the reference crop, or None for the whole image.
        randomise: apply the real-camera effects.
        seed: base seed.
        partner_counts: the number of partners is drawn from these.
    """

    def __init__(
        self,
        sequences: Sequence[FrameSequence],
        image_size: tuple[int, int] = (256, 192),
        crop: tuple[int, int] | None = None,
        randomise: bool = True,
        seed: int = 0,
        partner_counts: Sequence[int] = (2, 3),
    ) -> None:
        if not sequences:
            raise ValueError("sequences: need at least one")
        self.sequences = list(sequences)
        self.image_size = tuple(int(s) for s in image_size)
        self.crop = None if crop is None else tuple(int(c) for c in crop)
        if self.crop and (self.crop[0] > self.image_size[0] or self.crop[1] > self.image_size[1]):
            raise ValueError(f"crop {self.crop} is larger than image_size {self.image_size}")
        self.randomiser = CameraRandomiser() if randomise else None
        self.seed = int(seed)
        self.partner_counts = tuple(int(c) for c in partner_counts)
        self._frames_per_sequence = [len(s) for s in self.sequences]
        self._offsets = np.cumsum([0, *self._frames_per_sequence])

    @classmethod
    def from_folders(cls, roots: Sequence[str | os.PathLike], **kwargs) -> StereoDepthDataset:
        folders = find_scene_folders(roots)
        if not folders:
            raise ValueError(f"no scene folders (scene.json) under {list(map(str, roots))}")
        return cls([SyntheticSequence(f) for f in folders], **kwargs)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _camera(self, sequence: FrameSequence, index: int, shape: tuple[int, int]):
        height, width = shape
        return PinholeCamera.from_matrix(sequence.intrinsics[index], width, height)

    def _image(self, rgb: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        if self.randomiser is not None:
            rgb = self.randomiser.image(rgb, rng)
        width, height = self.image_size
        return resize_image_tensor(image_to_tensor(rgb), width, height)

    def sample(self, index: int, partners: int | None = None) -> DepthSample | None:
        """Sample ``index`` (a frame of the concatenated sequences) with ``partners`` partner
        views (None: drawn from ``partner_counts``); None when the frame has no partner."""
        rng = np.random.default_rng((self.seed, int(index)))
        count = partners or int(rng.choice(self.partner_counts))
        seq_id = int(np.searchsorted(self._offsets, index, side="right") - 1)
        sequence = self.sequences[seq_id]
        ref_index = int(index - self._offsets[seq_id])
        frame = sequence[ref_index]
        if frame.depth is None:
            raise ValueError(f"{sequence.name}: frame {ref_index} has no depth")
        hw = frame.rgb.shape[:2]
        others = [i for i in range(len(sequence)) if i != ref_index]
        poses = sequence.poses
        Ks = sequence.intrinsics
        chosen = select_stereo_partners(
            Ks[ref_index],
            poses[ref_index],
            hw,
            Ks[others],
            poses[others],
            [hw] * len(others),
            count=max(count, 6),
        )
        if not chosen:
            return None
        picked = rng.permutation(chosen)[: min(count, len(chosen))]
        if len(picked) < count:  # fewer qualified: repeat the best (keeps batch shapes equal)
            picked = np.concatenate([picked, np.resize(picked, count - len(picked))])
        partner_ids = [others[int(i)] for i in picked]
        width, height = self.image_size
        reference = self._image(frame.rgb, rng)
        ref_camera = self._camera(sequence, ref_index, hw).resized(width, height)
        depth = resize_nearest(frame.depth, (height, width))
        semantic = (
            resize_nearest(frame.semantic, (height, width))
            if frame.semantic is not None
            else np.full((height, width), IGNORE_LABEL, np.uint8)
        )
        K_ref = ref_camera.K
        if self.crop is not None:
            crop_w, crop_h = self.crop
            x0 = int(rng.integers(0, (width - crop_w) // 2 + 1)) * 2
            y0 = int(rng.integers(0, (height - crop_h) // 2 + 1)) * 2
            reference = reference[:, y0 : y0 + crop_h, x0 : x0 + crop_w]
            depth = depth[y0 : y0 + crop_h, x0 : x0 + crop_w]
            semantic = semantic[y0 : y0 + crop_h, x0 : x0 + crop_w]
            K_ref = K_ref.copy()
            K_ref[0, 2] -= x0
            K_ref[1, 2] -= y0
        T_world_ref = poses[ref_index]
        sources, K_src, T_src_ref = [], [], []
        for j in partner_ids:
            partner = sequence[j]
            sources.append(self._image(partner.rgb, rng))
            K_j = self._camera(sequence, j, partner.rgb.shape[:2]).resized(width, height).K
            T_world_j = poses[j]
            if self.randomiser is not None:
                K_j = self.randomiser.intrinsics(K_j, rng)
                T_world_j = self.randomiser.pose(T_world_j, rng)
            K_src.append(K_j)
            T_src_ref.append(invert_pose(T_world_j) @ T_world_ref)
        return DepthSample(
            reference=reference.contiguous(),
            sources=torch.stack(sources),
            K_ref=torch.as_tensor(K_ref, dtype=torch.float32),
            K_src=torch.as_tensor(np.stack(K_src), dtype=torch.float32),
            T_src_ref=torch.as_tensor(np.stack(T_src_ref), dtype=torch.float32),
            depth=torch.from_numpy(np.ascontiguousarray(_half_nearest(depth))).float(),
            semantic=torch.from_numpy(
                np.ascontiguousarray(_half_nearest(semantic)).astype(np.int64)
            ),
        )
