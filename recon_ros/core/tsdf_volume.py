"""The rolling TSDF window: a world-aligned box of fused depth (``core.depth_fusion``) that follows
the camera in whole map chunks, as ``core.volume.RollingFeatureVolume`` does for features.

The window is a cache of the global map: voxels that enter it (a shift, the first placement)
start from what the map holds there (``load``), keyframes are fused into it, and ``snapshot``
hands the map the voxels that changed since the previous snapshot, which the map stores as they
are. So a place seen, left and seen again keeps one running average, not a blend of blends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.depth_fusion import TSDFGrid, fuse_depth_into
from recon_ros.core.volume import (
    checked_origin_index,
    shifted_copy,
    validate_window_shape,
    window_shift_slices,
)


@dataclass(frozen=True)
class TSDFSnapshot:
    """The window's state for the map, as numpy arrays (X, Y, Z) unless noted.

    Attributes:
        origin_index: (3,) int64 voxel index of voxel (0, 0, 0).
        tsdf: float32 in [-1, 1]; weight: float32 confidence sum.
        changed: bool, voxels whose weight changed since the previous snapshot.
        labels: uint8 class with most votes (``IGNORE_LABEL`` without votes);
        confidence: float32 share of the votes that class holds.
        rgb: (X, Y, Z, 3) uint8.
        votes: (C, X, Y, Z) float32.
    """

    origin_index: np.ndarray
    tsdf: np.ndarray
    weight: np.ndarray
    changed: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    rgb: np.ndarray
    votes: np.ndarray


class RollingTSDFVolume:
    """Fused TSDF, colour and label votes over a window of ``dims`` voxels.

    Args:
        dims: (nx, ny, nz), multiples of ``chunk_size``.
        voxel_size: metres; truncation: metres (3 voxels by default in the reconstructor).
        chunk_size: voxels per chunk edge; the origin index stays a multiple of it.
        num_classes: label classes voted (0: none).
        device: where the tensors live.
        max_weight: cap on the per-voxel weight.
        max_depth: depth samples beyond this are not fused (None: no limit).
    """

    def __init__(
        self,
        dims: Sequence[int],
        voxel_size: float,
        truncation: float,
        chunk_size: int,
        num_classes: int,
        device: str | torch.device = "cpu",
        max_weight: float = 64.0,
        max_depth: float | None = None,
        origin_index: Sequence[int] = (0, 0, 0),
    ) -> None:
        self.dims = validate_window_shape(dims, chunk_size)
        if not np.isfinite(voxel_size) or voxel_size <= 0:
            raise ValueError(f"voxel_size: must be positive, got {voxel_size}")
        if not np.isfinite(truncation) or truncation <= 0:
            raise ValueError(f"truncation: must be positive, got {truncation}")
        self.voxel_size = float(voxel_size)
        self.truncation = float(truncation)
        self.chunk_size = int(chunk_size)
        self.num_classes = int(num_classes)
        self.device = torch.device(device)
        self.max_weight = float(max_weight)
        self.max_depth = max_depth
        self._origin_index = self._checked_origin_index(origin_index)
        self.grid = TSDFGrid.empty(self.dims, self.num_classes, self.device)
        self.snapshot_weight = torch.zeros(self.dims, device=self.device)
        self.frames_since_snapshot = 0

    def _checked_origin_index(self, origin_index: Sequence[int]) -> np.ndarray:
        return checked_origin_index(origin_index, self.chunk_size)

    @property
    def origin_index(self) -> np.ndarray:
        return self._origin_index.copy()

    @property
    def origin(self) -> np.ndarray:
        """(3,) world centre of voxel (0, 0, 0), metres."""
        return self._origin_index * self.voxel_size

    def integrate(
        self,
        depth: torch.Tensor,
        K: torch.Tensor,
        T_world_cam: torch.Tensor,
        confidence: torch.Tensor | None = None,
        rgb: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        truncation: float | None = None,
    ) -> int:
        """Fuse one depth map (see ``core.depth_fusion.fuse_depth_into``) with the volume's
        truncation or ``truncation`` (metres: noisier depth averages over a wider band); returns
        the number of voxels updated."""
        updated = fuse_depth_into(
            self.grid,
            torch.as_tensor(self.origin, dtype=torch.float64),
            self.voxel_size,
            self.truncation if truncation is None else float(truncation),
            depth,
            K,
            T_world_cam,
            confidence,
            rgb,
            labels,
            self.max_depth,
            self.max_weight,
        )
        self.frames_since_snapshot += 1
        return updated

    def observed(self) -> torch.Tensor:
        return self.grid.weight > 0

    def snapshot(self, mark_merged: bool = True) -> TSDFSnapshot:
        """Copy the window for the map; with ``mark_merged`` the next snapshot's ``changed``
        holds only later changes."""
        grid = self.grid
        if self.num_classes:
            total = grid.votes.sum(dim=0)
            best, labels = grid.votes.max(dim=0)
            confidence = torch.where(total > 0, best / total.clamp(min=1e-6), 0.0)
            labels = torch.where(total > 0, labels, IGNORE_LABEL)
        else:
            confidence = torch.zeros_like(grid.tsdf)
            labels = torch.full_like(grid.tsdf, IGNORE_LABEL, dtype=torch.long)
        rgb = (grid.color.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0)
        changed = grid.weight != self.snapshot_weight
        snap = TSDFSnapshot(
            origin_index=self.origin_index,
            tsdf=grid.tsdf.cpu().numpy().copy(),
            weight=grid.weight.cpu().numpy().copy(),
            changed=changed.cpu().numpy(),
            labels=labels.to(torch.uint8).cpu().numpy(),
            confidence=confidence.float().cpu().numpy(),
            rgb=rgb.cpu().numpy(),
            votes=grid.votes.cpu().numpy().copy(),
        )
        if mark_merged:
            self.snapshot_weight.copy_(grid.weight)
            self.frames_since_snapshot = 0
        return snap

    def unmerged(self) -> torch.Tensor:
        """(X, Y, Z) bool: voxels changed since the last snapshot."""
        return self.grid.weight != self.snapshot_weight

    def shift_to(self, new_origin_index: Sequence[int]) -> tuple[np.ndarray, int]:
        """Move the window; voxels that stay keep their values, new ones start empty (fill them
        with ``load``).

        Returns:
            (3,) the offset moved (voxels) and the number of voxels with unmerged changes that
            left the window (0 when the caller flushed first).
        """
        new_index = self._checked_origin_index(new_origin_index)
        offset = new_index - self._origin_index
        src, dst = window_shift_slices(self.dims, offset)
        unmerged = self.unmerged()
        dropped = int(unmerged.sum()) - int(unmerged[tuple(src)].sum())
        grid = self.grid
        grid.tsdf = shifted_copy(grid.tsdf, src, dst, fill=1.0)
        for name in ("weight", "color", "color_weight", "votes"):
            setattr(grid, name, shifted_copy(getattr(grid, name), src, dst))
        self.snapshot_weight = shifted_copy(self.snapshot_weight, src, dst)
        self._origin_index = new_index
        return offset, dropped

    def load(self, region: dict[str, np.ndarray]) -> int:
        """Fill voxels the window has not observed from a map region of the window's box
        (``GlobalMap.read_region``: tsdf, weight, label, confidence, rgb). The loaded values count
        as merged. Returns the number of voxels loaded."""
        weight = torch.as_tensor(region["weight"].astype(np.float32), device=self.device)
        take = (weight > 0) & (self.grid.weight == 0)
        count = int(take.sum())
        if count == 0:
            return 0
        grid = self.grid
        tsdf = torch.as_tensor(region["tsdf"].astype(np.float32), device=self.device)
        grid.tsdf[take] = tsdf[take]
        grid.weight[take] = weight[take]
        rgb = torch.as_tensor(region["rgb"], device=self.device).permute(3, 0, 1, 2).float() / 255
        grid.color[:, take] = rgb[:, take]
        grid.color_weight[take] = weight[take]
        if self.num_classes:
            label = torch.as_tensor(region["label"].astype(np.int64), device=self.device)
            confidence = torch.as_tensor(
                region["confidence"].astype(np.float32), device=self.device
            )
            voted = take & (label < self.num_classes)
            where = torch.nonzero(voted, as_tuple=True)
            grid.votes[(label[voted], *where)] = confidence[voted] * weight[voted]
        self.snapshot_weight[take] = weight[take]
        return count

    def reset(self, origin_index: Sequence[int] | None = None) -> None:
        """Empty the window; optionally move it to ``origin_index``."""
        if origin_index is not None:
            self._origin_index = self._checked_origin_index(origin_index)
        self.grid = TSDFGrid.empty(self.dims, self.num_classes, self.device)
        self.snapshot_weight = torch.zeros(self.dims, device=self.device)
        self.frames_since_snapshot = 0
