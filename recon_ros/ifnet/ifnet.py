"""IF-Net (Chibane et al. 2020, as the seed paper uses it, section 2.3): a 3D convolutional
encoder turns the voxelised input into feature grids at several scales; the occupancy of a
query point is decoded by an MLP from the features sampled at the point and at its six
neighbours at distance ``d`` along the axes.

``SingleViewIFNet`` chains the depth U-Net, back-projection, the differentiable voxeliser and
the IF-Net: one RGB image and its intrinsics in, occupancy logits of query points out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.ifnet.depth_unet import DepthUNet
from recon_ros.ifnet.floor_alignment import align_depth_to_floor
from recon_ros.ifnet.floor_prior import floor_channels, floor_channels_of, floor_depth
from recon_ros.ifnet.frustum_grid import FrustumGrid, backproject_depth
from recon_ros.ifnet.voxelise import DifferentiableVoxeliser


def neighbour_offsets(distance: float) -> torch.Tensor:
    """(7, 3) offsets in grid coordinates: the point itself, then +-``distance`` along x, y, z."""
    offsets = [[0.0, 0.0, 0.0]]
    for axis in range(3):
        for sign in (1.0, -1.0):
            offset = [0.0, 0.0, 0.0]
            offset[axis] = sign * distance
            offsets.append(offset)
    return torch.tensor(offsets)


class IFNet(nn.Module):
    """(B, 1, D, H, W) occupancy grid + (B, P, 3) query grid coordinates -> (B, P) logits.

    Args:
        channels: feature channels of the encoder's stages (each after a 2x downscale but the
            first); the input grid itself is the zeroth feature grid, as in IF-Net.
        hidden: width of the decoder MLP.
        distance: neighbour distance ``d`` in voxels of the input grid.
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (16, 32, 64, 64),
        hidden: int = 128,
        distance: float = 1.0,
    ):
        super().__init__()
        if not channels or min(channels) < 1 or hidden < 1 or not distance > 0:
            raise ValueError("IFNet: need channels >= 1, hidden >= 1, distance > 0")
        self.stages = nn.ModuleList()
        previous = 1
        for width in channels:
            self.stages.append(
                nn.Sequential(
                    nn.Conv3d(previous, width, 3, padding=1),
                    nn.ReLU(inplace=True),
                    nn.Conv3d(width, width, 3, padding=1),
                    nn.ReLU(inplace=True),
                    nn.BatchNorm3d(width),
                )
            )
            previous = width
        features = (1 + sum(channels)) * 7
        self.decoder = nn.Sequential(
            nn.Conv1d(features, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv1d(hidden, 1, 1),
        )
        self.register_buffer("offsets", neighbour_offsets(distance), persistent=False)

    def encode(self, grid: torch.Tensor) -> list[torch.Tensor]:
        """The feature grids (input first), each (B, C_k, D_k, H_k, W_k)."""
        if grid.ndim != 5 or grid.shape[1] != 1:
            raise ValueError(f"grid: expected (B, 1, D, H, W), got {tuple(grid.shape)}")
        features = [grid]
        x = grid
        for index, stage in enumerate(self.stages):
            if index > 0:
                x = F.max_pool3d(x, 2, ceil_mode=True)
            x = stage(x)
            features.append(x)
        return features

    def decode(
        self, features: list[torch.Tensor], queries: torch.Tensor, dims: tuple[int, int, int]
    ) -> torch.Tensor:
        """(B, P) logits of (B, P, 3) query grid coordinates of a grid of ``dims``."""
        if queries.ndim != 3 or queries.shape[-1] != 3:
            raise ValueError(f"queries: expected (B, P, 3), got {tuple(queries.shape)}")
        depth, height, width = dims
        size = queries.new_tensor([width - 1, height - 1, depth - 1])
        points = queries[:, :, None, :] + self.offsets.to(queries)  # (B, P, 7, 3)
        normalised = 2.0 * points / size - 1.0
        grid = normalised[:, None]  # (B, 1, P, 7, 3)
        sampled = [
            F.grid_sample(f, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            for f in features
        ]  # each (B, C, 1, P, 7)
        sampled = [s[:, :, 0] for s in sampled]
        stacked = torch.cat(sampled, dim=1)  # (B, C_total, P, 7)
        batch, channels, count, _ = stacked.shape
        stacked = stacked.permute(0, 1, 3, 2).reshape(batch, channels * 7, count)
        return self.decoder(stacked)[:, 0]

    def forward(self, grid: torch.Tensor, queries: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(grid), queries, tuple(grid.shape[-3:]))


@dataclass
class SingleViewConfig:
    """Architecture of ``SingleViewIFNet`` (what a checkpoint needs to rebuild it).

    Attributes:
        grid_dims, voxel_size, near: the ``FrustumGrid.in_front`` reconstructed.
        image_size: the input (width, height), multiples of 2^unet_levels.
        focal_length: the training images' focal length at ``image_size`` (pixels), their
            principal point central; images of other cameras are resampled into that camera
            before the depth U-Net (0: unknown, images are only resized).
        floor_input: the depth U-Net also takes the floor's depth from the camera's height and
            up direction (``floor_prior``; 0 channels when unknown).
        floor_align: with the floor known, the predicted depth is then scaled so that its floor
            meets the prior's (``floor_alignment``); ``floor_snap``: pixels then within that
            fraction of the floor's depth take it exactly (0: none).
        unet_levels, unet_channels, unet_max_channels, min_depth, max_depth: ``DepthUNet``.
        sigma, kernel_size: ``DifferentiableVoxeliser``.
        ifnet_channels, ifnet_hidden, ifnet_distance: ``IFNet``.
    """

    grid_dims: tuple[int, int, int] = (40, 32, 32)
    voxel_size: float = 0.1
    near: float = 0.3
    image_size: tuple[int, int] = (128, 96)
    focal_length: float = 0.0
    floor_input: bool = False
    floor_align: bool = False
    floor_snap: float = 0.0
    unet_levels: int = 5
    unet_channels: int = 16
    unet_max_channels: int = 128
    min_depth: float = 0.2
    max_depth: float = 8.0
    sigma: float = 1.0
    kernel_size: int = 3
    ifnet_channels: tuple[int, ...] = (16, 32, 64, 64)
    ifnet_hidden: int = 128
    ifnet_distance: float = 1.0

    def __post_init__(self) -> None:
        self.grid_dims = tuple(int(d) for d in self.grid_dims)
        self.image_size = tuple(int(d) for d in self.image_size)
        self.ifnet_channels = tuple(int(c) for c in self.ifnet_channels)
        multiple = 2**self.unet_levels
        if len(self.image_size) != 2 or any(d % multiple for d in self.image_size):
            raise ValueError(
                f"image_size: expected (width, height), multiples of {multiple}, got "
                f"{self.image_size}"
            )

    @property
    def grid(self) -> FrustumGrid:
        return FrustumGrid.in_front(self.grid_dims, self.voxel_size, self.near)

    def to_dict(self) -> dict:
        values = asdict(self)
        for key in ("grid_dims", "image_size", "ifnet_channels"):
            values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict) -> SingleViewConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class SingleViewIFNet(nn.Module):
    """One RGB image in front of a ``FrustumGrid`` -> its depth and the occupancy of query points
    (parts and sizes from ``SingleViewConfig``)."""

    def __init__(self, config: SingleViewConfig | None = None):
        super().__init__()
        self.config = config = config or SingleViewConfig()
        self.grid = config.grid
        self.depth_net = DepthUNet(
            config.unet_levels,
            config.unet_channels,
            config.unet_max_channels,
            config.min_depth,
            config.max_depth,
            extra_channels=2 if config.floor_input else 0,
        )
        self.voxeliser = DifferentiableVoxeliser(config.grid_dims, config.sigma, config.kernel_size)
        self.ifnet = IFNet(config.ifnet_channels, config.ifnet_hidden, config.ifnet_distance)

    def voxelise_depth(self, depth: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
        """(B, H, W) depth + (B, 3, 3) intrinsics -> (B, 1, D, H', W') occupancy input."""
        points, valid = backproject_depth(depth, K)
        return self.voxeliser(self.grid.to_grid(points), valid)

    def predict_depth(
        self,
        images: torch.Tensor,
        K: torch.Tensor,
        up: torch.Tensor | None = None,
        height: torch.Tensor | None = None,
        align: bool | None = None,
    ) -> torch.Tensor:
        """(B, H, W) depth of images (B, 3, H, W) with intrinsics K (B, 3, 3); with
        ``floor_input`` the floor prior from ``up`` (B, 3) and ``height`` (B,) (NaN or None:
        unknown) goes in beside the image, and with ``align`` (None: ``config.floor_align``)
        the depth is scaled to meet the floor where the image shows it (and snapped to it,
        ``config.floor_snap``)."""
        if not self.config.floor_input:
            return self.depth_net(images)
        size = tuple(images.shape[-2:])
        if up is None or height is None:
            return self.depth_net(images, floor_channels(K, None, None, size, 0.0).to(images))
        known = floor_depth(K, up, height, size, self.config.max_depth)  # once for both uses
        depth = self.depth_net(images, floor_channels_of(known, height).to(images))
        if self.config.floor_align if align is None else align:
            depth, _ = align_depth_to_floor(depth, known.to(depth), snap=self.config.floor_snap)
        return depth

    def forward(
        self,
        images: torch.Tensor,
        K: torch.Tensor,
        queries: torch.Tensor,
        depth: torch.Tensor | None = None,
        up: torch.Tensor | None = None,
        height: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """images (B, 3, H, W) in [0, 1], K (B, 3, 3) of the images, queries (B, P, 3) camera-frame
        points; ``depth`` (B, H, W) replaces the predicted depth (the paper's "viability" row);
        ``up`` (B, 3) and ``height`` (B,) the floor prior (``predict_depth``).

        Returns:
            depth (B, H, W) as voxelised, and occupancy logits (B, P).
        """
        if depth is None:
            depth = self.predict_depth(images, K, up, height)
        occupancy = self.voxelise_depth(depth, K)
        logits = self.ifnet(occupancy, self.grid.to_grid(queries))
        return depth, logits
