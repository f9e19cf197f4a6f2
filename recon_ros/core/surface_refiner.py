"""Run the 3D refinement network (``core.refine_net``) where it pays: on map chunks that hold
fused surface, each read with a halo of its neighbours so the network sees context across chunk
borders. ``GlobalMap.chunk_meshes`` calls it for the chunks it remeshes, so the cost follows the
changed surface, not the window volume; the map itself keeps the fused values (a refined TSDF
is never averaged into later fusion).

ROS-free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.refine_net import (
    SurfaceRefinerNet,
    canonical_orientation,
    refiner_input,
    world_orientation,
)

REFINEMENT_MODES = ("labels", "full")


@dataclass(frozen=True)
class RefinedBlock:
    """Refined arrays of one block's centre, ready for meshing (all (N, N, N))."""

    tsdf: np.ndarray
    observed: np.ndarray
    label: np.ndarray
    confidence: np.ndarray


def has_fused_surface(tsdf: np.ndarray, weight: np.ndarray) -> bool:
    """Whether a block holds an observed voxel inside the truncation band."""
    return bool(np.any((weight > 0) & (np.abs(tsdf) < 1.0)))


class SurfaceRefiner:
    """Refines blocks of the fused map with ``SurfaceRefinerNet``.

    Args:
        net: the trained network (eval mode is set here).
        halo: voxels of context read around each chunk on every side; chunk + 2 halo + 1 (the
            meshing apron, rounded up) must be a multiple of 4.
        batch_size: blocks per network call.
        occupancy_threshold: unobserved voxels the network calls occupied above this
            probability are meshed (small holes filled).
        device: torch device of the network.
    """

    def __init__(
        self,
        net: SurfaceRefinerNet,
        halo: int = 4,
        batch_size: int = 8,
        occupancy_threshold: float = 0.5,
        device: str | torch.device = "cpu",
        mode: str = "labels",
    ) -> None:
        if mode not in REFINEMENT_MODES:
            raise ValueError(f"mode: expected one of {REFINEMENT_MODES}, got {mode!r}")
        #: ``"labels"``: the refined labels on the fused surfaces; ``"full"``: the refined TSDF
        #: (surfaces moved, removed, holes filled) and labels.
        self.mode = mode
        if halo < 0:
            raise ValueError(f"halo: must be >= 0, got {halo}")
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        if not 0.0 < occupancy_threshold < 1.0:
            raise ValueError(f"occupancy_threshold: must be in (0, 1), got {occupancy_threshold}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.halo = int(halo)
        self.batch_size = int(batch_size)
        self.occupancy_threshold = float(occupancy_threshold)
        self.up_axis, self.up_sign = 2, 1
        #: Changes whenever the refinement may change (orientation), for mesh caches.
        self.version = 0
        #: Blocks refined in all and by the last call, and that call's seconds.
        self.blocks_refined = 0
        self.last_blocks = 0
        self.last_seconds = 0.0

    @property
    def num_classes(self) -> int:
        return self.net.config.num_classes

    def set_up(self, axis: int, sign: int) -> None:
        """World up of the map (``WindowPolicy``'s estimate); blocks are turned to it."""
        if axis not in (0, 1, 2) or sign not in (1, -1):
            raise ValueError(f"up axis/sign: expected 0-2 and +-1, got {axis}, {sign}")
        if (axis, sign) != (self.up_axis, self.up_sign):
            self.up_axis, self.up_sign = int(axis), int(sign)
            self.version += 1

    def block_edge(self, chunk_size: int) -> int:
        """Edge of the block read for a chunk: chunk, its meshing apron and the halo, padded up
        to a multiple of 4 on the far side."""
        edge = chunk_size + 1 + 2 * self.halo
        return edge + (-edge) % 4

    @torch.inference_mode()
    def refine(self, blocks: list[dict[str, np.ndarray]], keep: int) -> list[RefinedBlock | None]:
        """Refine map blocks.

        Args:
            blocks: ``GlobalMap.read_region`` outputs (``tsdf``, ``weight``, ``label``,
                ``confidence``), each (E, E, E) with E = ``block_edge``; the kept centre starts
                at ``halo``.
            keep: edge of the centre returned (chunk size + 1 for meshing).

        Returns:
            One ``RefinedBlock`` of (keep,)^3 arrays per block, or None for blocks without
            fused surface (nothing to refine: mesh them as they are).
        """
        started = time.perf_counter()
        results: list[RefinedBlock | None] = [None] * len(blocks)
        h = self.halo
        inner = slice(h, h + keep)
        centre = (inner, inner, inner)
        todo = [
            i
            for i, b in enumerate(blocks)
            if has_fused_surface(b["tsdf"][centre], b["weight"][centre])
        ]
        for start in range(0, len(todo), self.batch_size):
            ids = todo[start : start + self.batch_size]

            def stacked(name: str, dtype, ids=ids) -> torch.Tensor:
                array = np.stack([blocks[i][name].astype(dtype) for i in ids])
                tensor = torch.from_numpy(array).to(self.device)
                return canonical_orientation(tensor, self.up_axis, self.up_sign)

            tsdf = stacked("tsdf", np.float32)
            weight = stacked("weight", np.float32)
            label = stacked("label", np.int64)
            confidence = stacked("confidence", np.float32)
            inputs = refiner_input(tsdf, weight, label, confidence, self.num_classes)
            output = self.net(inputs)
            probabilities = torch.softmax(output.semantic_logits.float(), dim=1)
            best, classes = probabilities.max(dim=1)
            occupied = torch.sigmoid(output.occupancy_logits) > self.occupancy_threshold
            observed = (weight > 0) | occupied
            classes = torch.where(observed, classes, IGNORE_LABEL)
            refined = [
                world_orientation(t, self.up_axis, self.up_sign)
                for t in (output.tsdf, observed, classes, best)
            ]
            for row, i in enumerate(ids):
                tsdf_i, observed_i, label_i, conf_i = (
                    t[row][inner, inner, inner].cpu().numpy() for t in refined
                )
                if self.mode == "labels":
                    block = blocks[i]
                    tsdf_i = block["tsdf"][inner, inner, inner]
                    observed_i = block["weight"][inner, inner, inner] > 0
                results[i] = RefinedBlock(
                    tsdf=tsdf_i.astype(np.float32),
                    observed=observed_i.astype(bool),
                    label=label_i.astype(np.uint8),
                    confidence=conf_i.astype(np.float32),
                )
        self.blocks_refined += len(todo)
        self.last_blocks = len(todo)
        self.last_seconds = time.perf_counter() - started
        return results
