"""The rolling feature volume: a world-aligned window of Atlas running-average features that
follows the camera in whole map chunks.

The window keeps, per voxel, the sum of back-projected features, the sum of back-projected image
colours (3 channels, used to colour meshes) and the number of frames that saw it; the averages are
``sum / count`` (Atlas eq. 3-4). Its origin is held as an integer voxel index that is always a
multiple of ``chunk_size``, so window voxels coincide with global-map voxels and a shift moves
whole chunks; the overlap is copied exactly.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from recon_ros.core.backproject import DEFAULT_MAX_ELEMENTS, backproject_features_into
from recon_ros.core.voxel_grid import VoxelGrid


def validate_window_shape(dims: Sequence[int], chunk_size: int) -> tuple[int, int, int]:
    """Check window dims: three positive multiples of ``chunk_size`` (and so of the 3D network's
    8, as long as ``chunk_size`` is a multiple of 8 - checked by the reconstructor)."""
    if int(chunk_size) != chunk_size or chunk_size <= 0:
        raise ValueError(f"chunk_size: must be a positive integer, got {chunk_size}")
    dims = tuple(int(d) for d in dims)
    if len(dims) != 3 or min(dims) <= 0:
        raise ValueError(f"window dims: expected three positive integers, got {dims}")
    if any(d % chunk_size for d in dims):
        raise ValueError(f"window dims: {dims} must be multiples of chunk_size={chunk_size}")
    return dims  # type: ignore[return-value]


def checked_origin_index(origin_index: Sequence[int], chunk_size: int) -> np.ndarray:
    """A window origin as (3,) int64 voxel index on the chunk lattice, or ValueError."""
    index = np.asarray(origin_index)
    if index.shape != (3,) or not np.issubdtype(index.dtype, np.integer):
        raise ValueError(f"origin_index: expected 3 integers, got {origin_index}")
    if np.any(index % chunk_size):
        raise ValueError(
            f"origin_index: {index.tolist()} is not on the chunk lattice "
            f"(multiples of {chunk_size})"
        )
    return index.astype(np.int64)


def window_shift_slices(
    dims: Sequence[int], offset: Sequence[int]
) -> tuple[list[slice], list[slice]]:
    """Slices of the overlap of a window of ``dims`` and the same window moved by ``offset``
    voxels: new voxel ``i`` is old voxel ``i + offset`` (``src`` in the old window, ``dst`` in
    the new one; empty slices when they do not overlap)."""
    src, dst = [], []
    for n, step in zip(dims, offset, strict=True):
        d = int(step)
        start, stop = max(0, -d), min(n, n - d)
        dst.append(slice(start, max(start, stop)))
        src.append(slice(start + d, max(start, stop) + d))
    return src, dst


def shifted_copy(
    tensor: torch.Tensor, src: list[slice], dst: list[slice], fill: float = 0.0
) -> torch.Tensor:
    """A copy of ``(..., X, Y, Z)`` ``tensor`` after a window shift (``window_shift_slices``):
    the overlap keeps its values exactly, voxels new to the window read ``fill``."""
    new = torch.full_like(tensor, fill)
    new[(..., *dst)] = tensor[(..., *src)]
    return new


@dataclass(frozen=True)
class WindowSnapshot:
    """What ``update`` needs from the window, copied so the 3D CNN can run without the lock.

    Attributes:
        origin_index: (3,) int64 voxel index of voxel (0, 0, 0).
        network_input: (1, C + 1, nx, ny, nz): average features and the observed flag.
        mean_rgb: (3, nx, ny, nz) average image colour in [0, 1].
        new_weight: (nx, ny, nz) frames integrated since the previous snapshot.
        count: (nx, ny, nz) frames that saw each voxel while it was in the window.
    """

    origin_index: np.ndarray
    network_input: torch.Tensor
    mean_rgb: torch.Tensor
    new_weight: torch.Tensor
    count: torch.Tensor


@dataclass(frozen=True)
class ShiftResult:
    """Outcome of a window shift: voxels with observations that left the window, and those of
    them with frames not yet merged into the map (lost unless the caller flushed first)."""

    observed_voxels_dropped: int
    unmerged_voxels_dropped: int


class RollingFeatureVolume:
    """Running-average feature volume over a window of ``dims`` voxels.

    Args:
        dims: (nx, ny, nz), multiples of ``chunk_size``.
        voxel_size: metres.
        chunk_size: voxels per chunk edge; the origin index stays a multiple of it.
        feature_channels: C of the 2D features.
        device, dtype: where and how the sums are stored.
        max_depth: back-projection depth limit in metres (None: none).
        origin_index: initial origin as an integer voxel index (multiple of ``chunk_size``).
    """

    def __init__(
        self,
        dims: Sequence[int],
        voxel_size: float,
        chunk_size: int,
        feature_channels: int,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        max_depth: float | None = None,
        origin_index: Sequence[int] = (0, 0, 0),
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        self.dims = validate_window_shape(dims, chunk_size)
        if not np.isfinite(voxel_size) or voxel_size <= 0:
            raise ValueError(f"voxel_size: must be positive, got {voxel_size}")
        if feature_channels <= 0:
            raise ValueError(f"feature_channels: must be positive, got {feature_channels}")
        self.voxel_size = float(voxel_size)
        self.chunk_size = int(chunk_size)
        self.feature_channels = int(feature_channels)
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_depth = max_depth
        self.max_elements = max_elements
        self._origin_index = self._checked_origin_index(origin_index)
        # Features and colours share one buffer so a frame is projected once for both.
        self.sums = torch.zeros(feature_channels + 3, *self.dims, device=device, dtype=dtype)
        self.count = torch.zeros(self.dims, device=device, dtype=dtype)
        # Count at the last snapshot: the weight a merge gives the window is count - merged_count.
        self.merged_count = torch.zeros(self.dims, device=device, dtype=dtype)
        self.frames_since_snapshot = 0

    def _checked_origin_index(self, origin_index: Sequence[int]) -> np.ndarray:
        return checked_origin_index(origin_index, self.chunk_size)

    @property
    def origin_index(self) -> np.ndarray:
        """(3,) int64 global voxel index of window voxel (0, 0, 0)."""
        return self._origin_index.copy()

    @property
    def origin(self) -> np.ndarray:
        """(3,) world position of the centre of voxel (0, 0, 0), metres."""
        return self._origin_index * self.voxel_size

    @property
    def feature_sum(self) -> torch.Tensor:
        """(C, nx, ny, nz) view: sum of back-projected features."""
        return self.sums[: self.feature_channels]

    @property
    def color_sum(self) -> torch.Tensor:
        """(3, nx, ny, nz) view: sum of back-projected colours in [0, 1]."""
        return self.sums[self.feature_channels :]

    @property
    def grid(self) -> VoxelGrid:
        return VoxelGrid(tuple(self.origin.tolist()), self.voxel_size, self.dims)

    def integrate(
        self,
        features: torch.Tensor,
        rgb: torch.Tensor,
        K: torch.Tensor,
        T_world_cam: torch.Tensor,
    ) -> int:
        """Add frames to the running average.

        Args:
            features: (C, h, w) or (V, C, h, w) feature maps.
            rgb: (3, h, w) or (V, 3, h, w) the images at feature resolution, floats in [0, 1].
            K: (3, 3) or (V, 3, 3) intrinsics at feature resolution.
            T_world_cam: (4, 4) or (V, 4, 4).

        Returns:
            The number of (voxel, frame) pairs in view: voxels seen, for a single frame.
        """
        if features.ndim == 3:
            features, rgb, K, T_world_cam = features[None], rgb[None], K[None], T_world_cam[None]
        if features.ndim != 4 or features.shape[1] != self.feature_channels:
            raise ValueError(
                f"features: expected (V, {self.feature_channels}, h, w), got "
                f"{tuple(features.shape)}"
            )
        if rgb.ndim != 4 or rgb.shape[1] != 3 or rgb.shape[-2:] != features.shape[-2:]:
            raise ValueError(
                f"rgb: expected (V, 3, {features.shape[-2]}, {features.shape[-1]}), got "
                f"{tuple(rgb.shape)}"
            )
        if rgb.shape[0] != features.shape[0]:
            raise ValueError(f"rgb: {rgb.shape[0]} frames, features: {features.shape[0]}")
        stacked = torch.cat([features, rgb], dim=1).to(device=self.device, dtype=self.dtype)
        hits = backproject_features_into(
            stacked,
            K.to(device=self.device, dtype=self.dtype),
            T_world_cam.to(device=self.device, dtype=self.dtype),
            torch.as_tensor(self.origin, dtype=self.dtype, device=self.device),
            self.voxel_size,
            self.sums,
            self.count,
            self.max_depth,
            self.max_elements,
        )
        self.frames_since_snapshot += features.shape[0]
        return hits

    def observed(self) -> torch.Tensor:
        """(nx, ny, nz) bool: voxels seen by at least one frame."""
        return self.count > 0

    def mean_features(self) -> torch.Tensor:
        """(C, nx, ny, nz) running average of the features, 0 where unseen."""
        return self.feature_sum / self.count.clamp(min=1.0)

    def mean_rgb(self) -> torch.Tensor:
        """(3, nx, ny, nz) running average of the image colour in [0, 1], 0 where unseen."""
        return self.color_sum / self.count.clamp(min=1.0)

    def network_input(self) -> torch.Tensor:
        """(1, C + 1, nx, ny, nz): average features plus the binary observed channel."""
        observed = self.observed().to(self.dtype)[None]
        return torch.cat([self.mean_features(), observed], dim=0)[None]

    def snapshot(self, mark_merged: bool = True) -> WindowSnapshot:
        """Copy what ``update`` needs; with ``mark_merged`` the frames so far count as merged, so
        the next snapshot's ``new_weight`` holds only later frames."""
        snap = WindowSnapshot(
            origin_index=self.origin_index,
            network_input=self.network_input(),
            mean_rgb=self.mean_rgb(),
            new_weight=self.count - self.merged_count,
            count=self.count.clone(),
        )
        if mark_merged:
            self.merged_count.copy_(self.count)
            self.frames_since_snapshot = 0
        return snap

    def shift_to(self, new_origin_index: Sequence[int]) -> ShiftResult:
        """Move the window to ``new_origin_index`` (on the chunk lattice).

        Voxels in the overlap of the old and new window keep their values exactly; voxels new to
        the window start at zero; voxels that leave are dropped (flush them into the map before
        shifting: ``unmerged_voxels_dropped`` says how many had unmerged frames).
        """
        new_index = self._checked_origin_index(new_origin_index)
        src, dst = window_shift_slices(self.dims, new_index - self._origin_index)
        # Empty slices (no overlap) make empty views, whose sums are 0.
        overlap_observed = int((self.count[tuple(src)] > 0).sum())
        unmerged = self.count > self.merged_count
        overlap_unmerged = int(unmerged[tuple(src)].sum())
        result = ShiftResult(
            observed_voxels_dropped=int((self.count > 0).sum()) - overlap_observed,
            unmerged_voxels_dropped=int(unmerged.sum()) - overlap_unmerged,
        )
        for name in ("sums", "count", "merged_count"):
            setattr(self, name, shifted_copy(getattr(self, name), src, dst))
        self._origin_index = new_index
        return result

    def reset(self, origin_index: Sequence[int] | None = None) -> None:
        """Zero everything; optionally move to ``origin_index``."""
        if origin_index is not None:
            self._origin_index = self._checked_origin_index(origin_index)
        for tensor in (self.sums, self.count, self.merged_count):
            tensor.zero_()
        self.frames_since_snapshot = 0
