"""TSDF fusion of depth maps (Curless and Levoy 1996) on a dense voxel grid, in torch.

Per frame, every voxel centre is projected into the depth map (nearest pixel); with valid depth
``d`` there and the voxel at depth ``z`` along the optical axis, the signed distance along the
ray is ``sdf = d - z``. Voxels with ``sdf >= -truncation`` take the sample
``min(1, sdf / truncation)`` into a running average (weight 1 per frame); voxels farther behind
the surface are left alone. ``observed`` = weight > 0 (the same rule as the scene engine's
``observed`` mask). Optional semantic votes: a voxel within the truncation band
(``|sdf| < truncation``) gets one vote for the label at its pixel; its label is the class with
most votes.

This gives the evaluation's upper-bound row (fusion of the ground-truth depth, as the Atlas
paper's ground truth is made) and the paper's trimming of predicted meshes (their depth rendered
at the input poses, fused again).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from recon_ros.core.classes import IGNORE_LABEL


class TSDFFusion:
    """Running TSDF fusion.

    Args:
        origin: (3,) centre of voxel (0, 0, 0), metres.
        voxel_size: metres.
        dims: (X, Y, Z).
        truncation: metres.
        num_classes: >0 to collect semantic votes for that many classes.
        device: torch device of the volumes.
        max_voxels: voxels processed per slab (memory bound).
    """

    def __init__(
        self,
        origin: Sequence[float],
        voxel_size: float,
        dims: Sequence[int],
        truncation: float,
        num_classes: int = 0,
        device: str | torch.device = "cpu",
        max_voxels: int = 1 << 21,
    ) -> None:
        self.origin = np.asarray(origin, dtype=np.float64).reshape(3)
        self.dims = tuple(int(d) for d in dims)
        if len(self.dims) != 3 or min(self.dims) <= 0:
            raise ValueError(f"dims: expected three positive integers, got {dims}")
        if not voxel_size > 0 or not truncation > 0:
            raise ValueError("voxel_size and truncation: must be positive")
        if num_classes < 0 or num_classes > 255:
            raise ValueError(f"num_classes: must be in [0, 255], got {num_classes}")
        self.voxel_size = float(voxel_size)
        self.truncation = float(truncation)
        self.num_classes = int(num_classes)
        self.device = torch.device(device)
        self.max_voxels = int(max_voxels)
        count = int(np.prod(self.dims))
        self._centre_cache: dict[tuple[int, int], torch.Tensor] = {}
        self.tsdf = torch.ones(count, dtype=torch.float32, device=self.device)
        self.weight = torch.zeros(count, dtype=torch.float32, device=self.device)
        self.votes = (
            torch.zeros(self.num_classes, count, dtype=torch.int32, device=self.device)
            if self.num_classes
            else None
        )

    def _centres(self, start: int, stop: int) -> torch.Tensor:
        """(stop - start, 3) float32 voxel centres relative to the grid origin (cached)."""
        key = (start, stop)
        if key not in self._centre_cache:
            flat = torch.arange(start, stop, device=self.device, dtype=torch.int64)
            _, ny, nz = self.dims
            index = torch.stack([flat // (ny * nz), (flat // nz) % ny, flat % nz], dim=1)
            self._centre_cache[key] = index.to(torch.float32) * self.voxel_size
        return self._centre_cache[key]

    def integrate(
        self,
        depth: np.ndarray | torch.Tensor,
        K: np.ndarray,
        T_world_cam: np.ndarray,
        labels: np.ndarray | None = None,
    ) -> None:
        """Fuse one depth map.

        Args:
            depth: (H, W) metres, 0 where invalid.
            K: (3, 3) intrinsics of ``depth``.
            T_world_cam: (4, 4) pose of the depth camera's optical frame.
            labels: (H, W) class ids (``IGNORE_LABEL`` / >= num_classes: none), registered to
                ``depth``; only with ``num_classes > 0``.
        """
        depth = torch.as_tensor(np.asarray(depth, dtype=np.float32), device=self.device)
        if depth.ndim != 2:
            raise ValueError(f"depth: expected (H, W), got {tuple(depth.shape)}")
        K = np.asarray(K, dtype=np.float64)
        T = np.asarray(T_world_cam, dtype=np.float64)
        if K.shape != (3, 3) or T.shape != (4, 4):
            raise ValueError(
                f"K, T_world_cam: expected (3, 3) and (4, 4), got {K.shape}, {T.shape}"
            )
        if labels is not None:
            if self.votes is None:
                raise ValueError("labels: this fusion collects no votes (num_classes=0)")
            labels = torch.as_tensor(np.asarray(labels).astype(np.int64), device=self.device)
            if labels.shape != depth.shape:
                raise ValueError(f"labels: expected {tuple(depth.shape)}, got {labels.shape}")
        height, width = depth.shape
        # Camera from grid coordinates (centres relative to the origin), in float32.
        T_cam_world = np.linalg.inv(T)
        R = T_cam_world[:3, :3]
        t = R @ self.origin + T_cam_world[:3, 3]
        R = torch.as_tensor(R, dtype=torch.float32, device=self.device)
        t = torch.as_tensor(t, dtype=torch.float32, device=self.device)
        fx, skew, cx, fy, cy = (
            float(K[0, 0]),
            float(K[0, 1]),
            float(K[0, 2]),
            float(K[1, 1]),
            float(K[1, 2]),
        )
        count = self.tsdf.numel()
        for start in range(0, count, self.max_voxels):
            stop = min(count, start + self.max_voxels)
            cam = torch.addmm(t, self._centres(start, stop), R.T)
            z = cam[:, 2]
            front = z > 1e-6
            safe = torch.where(front, z, torch.ones_like(z))
            u = torch.round((fx * cam[:, 0] + skew * cam[:, 1]) / safe + cx)
            v = torch.round(fy * cam[:, 1] / safe + cy)
            inside = front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
            index = inside.nonzero().squeeze(1)
            if index.numel() == 0:
                continue
            pixel = v[index].long() * width + u[index].long()
            d = depth.reshape(-1)[pixel]
            sdf = d - z[index]
            update = (d > 0) & (sdf >= -self.truncation)
            voxel = index[update] + start
            sample = torch.clamp(sdf[update] / self.truncation, max=1.0)
            w = self.weight[voxel]
            self.tsdf[voxel] = (self.tsdf[voxel] * w + sample) / (w + 1.0)
            self.weight[voxel] = w + 1.0
            if labels is not None:
                near = update & (sdf.abs() < self.truncation)
                label = labels.reshape(-1)[pixel[near]]
                voter = index[near] + start
                keep = (label >= 0) & (label < self.num_classes)
                flat = label[keep] * count + voter[keep]
                self.votes.view(-1).index_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))

    def result(self) -> dict[str, np.ndarray]:
        """``tsdf`` (X, Y, Z) float32 (+1 where unobserved), ``weight`` float32, ``observed``
        bool and, with votes, ``labels`` uint8 (``IGNORE_LABEL`` where no vote)."""
        out = {
            "tsdf": self.tsdf.reshape(self.dims).cpu().numpy().copy(),
            "weight": self.weight.reshape(self.dims).cpu().numpy().copy(),
        }
        out["observed"] = out["weight"] > 0
        if self.votes is not None:
            best = self.votes.max(dim=0)
            labels = torch.where(
                best.values > 0, best.indices, torch.full_like(best.indices, IGNORE_LABEL)
            )
            out["labels"] = labels.reshape(self.dims).cpu().numpy().astype(np.uint8)
        return out


def fuse_depth_reference(
    frames: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    origin: Sequence[float],
    voxel_size: float,
    dims: Sequence[int],
    truncation: float,
) -> dict[str, np.ndarray]:
    """Slow reference of ``TSDFFusion`` (no labels): loops over frames and voxels in float64.
    ``frames``: ``(depth (H, W), K (3, 3), T_world_cam (4, 4))``."""
    dims = tuple(int(d) for d in dims)
    tsdf = np.ones(dims)
    weight = np.zeros(dims)
    origin = np.asarray(origin, dtype=np.float64)
    for depth, K, T in frames:
        T_cam_world = np.linalg.inv(T)
        height, width = depth.shape
        for index in np.ndindex(*dims):
            p = origin + np.asarray(index) * voxel_size
            c = T_cam_world[:3, :3] @ p + T_cam_world[:3, 3]
            if c[2] <= 1e-6:
                continue
            u = int(np.round((K[0, 0] * c[0] + K[0, 1] * c[1]) / c[2] + K[0, 2]))
            v = int(np.round(K[1, 1] * c[1] / c[2] + K[1, 2]))
            if not (0 <= u < width and 0 <= v < height):
                continue
            d = float(depth[v, u])
            sdf = d - c[2]
            if d <= 0 or sdf < -truncation:
                continue
            sample = min(1.0, sdf / truncation)
            tsdf[index] = (tsdf[index] * weight[index] + sample) / (weight[index] + 1)
            weight[index] += 1
    return {
        "tsdf": tsdf.astype(np.float32),
        "weight": weight.astype(np.float32),
        "observed": weight > 0,
    }
