"""Blocks of prepared scene pairs (``refine.prepare``) for the 3D refinement network: crops
centred near fused or true surface, turned about the vertical and mirrored horizontally (world up
stays the last axis, as ``core.refine_net.canonical_orientation`` gives blocks at run time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.refine.prepare import PAIR_FORMAT

#: Surface voxels kept per scene as crop centres.
MAX_CENTRES = 20000


@dataclass
class RefineBatch:
    """(B, E, E, E) tensors of a batch of blocks."""

    fused_tsdf: torch.Tensor
    fused_weight: torch.Tensor
    fused_label: torch.Tensor
    fused_confidence: torch.Tensor
    gt_tsdf: torch.Tensor
    gt_observed: torch.Tensor
    gt_label: torch.Tensor


_PAD = {
    "fused_tsdf": 1.0,
    "fused_weight": 0,
    "fused_label": IGNORE_LABEL,
    "fused_confidence": 0.0,
    "gt_tsdf": 1.0,
    "gt_observed": False,
    "gt_label": IGNORE_LABEL,
}


class RefineDataset:
    """Prepared pairs held in memory.

    Args:
        paths: ``.npz`` pair files.
        block: crop edge (voxels).
        augment: random turns about the vertical and horizontal mirrors.
    """

    def __init__(self, paths: list[Path], block: int = 32, augment: bool = True) -> None:
        if not paths:
            raise ValueError("refine data: no prepared scene pairs")
        self.block = int(block)
        self.augment = augment
        self.scenes: list[dict[str, np.ndarray]] = []
        self.centres: list[np.ndarray] = []
        self.class_names: list[str] | None = None
        rng = np.random.default_rng(0)
        for path in paths:
            with np.load(path) as data:
                if str(data["format"]) != PAIR_FORMAT:
                    raise ValueError(f"refine data: {path} is not a {PAIR_FORMAT} file")
                scene = {name: data[name] for name in _PAD}
                names = [str(n) for n in data["class_names"]]
            if self.class_names is None:
                self.class_names = names
            elif names != self.class_names:
                raise ValueError(f"refine data: {path} has other classes than {paths[0]}")
            surface = ((scene["fused_weight"] > 0) & (np.abs(scene["fused_tsdf"]) < 1)) | (
                scene["gt_observed"] & (np.abs(scene["gt_tsdf"]) < 1)
            )
            centres = np.argwhere(surface)
            if len(centres) == 0:
                continue
            if len(centres) > MAX_CENTRES:
                centres = centres[rng.choice(len(centres), MAX_CENTRES, replace=False)]
            self.scenes.append(scene)
            self.centres.append(centres)
        if not self.scenes:
            raise ValueError("refine data: no scene holds surface")

    def __len__(self) -> int:
        return len(self.scenes)

    def crop(self, scene_index: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One block around a random surface voxel of a scene, padded outside the grid."""
        scene = self.scenes[scene_index]
        centres = self.centres[scene_index]
        centre = centres[rng.integers(len(centres))]
        size = self.block
        start = centre - size // 2 + rng.integers(-size // 4, size // 4 + 1, size=3)
        dims = np.asarray(scene["fused_tsdf"].shape)
        lo = np.maximum(start, 0)
        hi = np.minimum(start + size, dims)
        src = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        dst = tuple(slice(a - s, b - s) for a, b, s in zip(lo, hi, start, strict=True))
        block = {}
        for name, fill in _PAD.items():
            array = scene[name]
            out = np.full((size,) * 3, fill, dtype=array.dtype)
            if all(b > a for a, b in zip(lo, hi, strict=True)):
                out[dst] = array[src]
            block[name] = out
        if self.augment:
            turns = int(rng.integers(4))
            flip = bool(rng.integers(2))
            for name, array in block.items():
                turned = np.rot90(array, turns, axes=(0, 1))
                block[name] = np.ascontiguousarray(turned[::-1] if flip else turned)
        return block

    def batch(self, size: int, rng: np.random.Generator) -> RefineBatch:
        """``size`` blocks from scenes drawn at random."""
        blocks = [self.crop(int(rng.integers(len(self.scenes))), rng) for _ in range(size)]

        def stacked(name: str, dtype) -> torch.Tensor:
            return torch.from_numpy(np.stack([b[name].astype(dtype) for b in blocks]))

        return RefineBatch(
            fused_tsdf=stacked("fused_tsdf", np.float32),
            fused_weight=stacked("fused_weight", np.float32),
            fused_label=stacked("fused_label", np.int64),
            fused_confidence=stacked("fused_confidence", np.float32),
            gt_tsdf=stacked("gt_tsdf", np.float32),
            gt_observed=stacked("gt_observed", bool),
            gt_label=stacked("gt_label", np.int64),
        )
