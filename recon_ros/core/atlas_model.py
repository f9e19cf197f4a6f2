"""``AtlasModel``: the 2D backbone, back-projection and the 3D encoder-decoder in one module,
with the metadata a checkpoint carries (class names, voxel size, truncation, image size, widths).

The 3D network's input is the running-average feature volume plus one binary *observed* channel
(1 where at least one frame saw the voxel): averaged features can legitimately be zero, so the
flag is what tells the network "never seen" from "seen, dark". Input channels = C + 1.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from recon_ros.core.backbone import FEATURE_STRIDE, FeatureBackbone2D
from recon_ros.core.backproject import average_features, backproject_batch
from recon_ros.core.classes import CLASS_NAMES
from recon_ros.core.model3d import Atlas3DOutput, AtlasNet3D


@dataclass(frozen=True)
class AtlasModelConfig:
    """Architecture and data conventions of an Atlas model (stored in checkpoints).

    Defaults, chosen for training from scratch and running on a CPU:
        image_size (384, 288): 4:3 like most cameras, multiples of 32; 96x72 feature maps, a
            feature pixel about 3 cm wide at 2.5 m with a 60 degree lens, i.e. about a voxel.
        feature_channels 32: Atlas's value.
        base_channels_3d 16: (16, 32, 64, 128) channels; about 75 GMAC for a 96x96x80 window,
            1.2-2.5 s on 2 CPU cores (Atlas uses wider layers on a GPU).
        voxel_size 0.04 m and truncation 3 voxels: Atlas's 4 cm voxels; the TSDF is normalised by
            ``truncation_voxels * voxel_size`` (the ground truth must use the same).
        max_depth None: Atlas back-projects along the whole ray.
        tsdf_scale 1.0: the TSDF heads give ``tsdf_scale * tanh``; training should use Atlas's
            1.05 (see ``core.model3d``), 1.0 keeps older checkpoints as they were.
    """

    feature_channels: int = 32
    backbone_widths: tuple[int, ...] = (16, 32, 64, 96, 128)
    fpn_channels: int = 64
    merge_channels: int = 32
    base_channels_3d: int = 16
    encoder_blocks: tuple[int, ...] = (1, 2, 3, 4)
    decoder_blocks: tuple[int, ...] = (3, 2, 1)
    clamp_threshold: float = 0.99
    class_names: tuple[str, ...] = CLASS_NAMES
    voxel_size: float = 0.04
    truncation_voxels: float = 3.0
    image_size: tuple[int, int] = (384, 288)  # (width, height)
    max_depth: float | None = None
    tsdf_scale: float = 1.0

    def __post_init__(self) -> None:
        # Lists arrive from JSON; store tuples so the config stays hashable and comparable.
        for name in (
            "backbone_widths",
            "encoder_blocks",
            "decoder_blocks",
            "class_names",
            "image_size",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if len(self.image_size) != 2 or any(s <= 0 or s % 32 for s in self.image_size):
            raise ValueError(f"image_size: (width, height) multiples of 32, got {self.image_size}")
        if not self.voxel_size > 0 or not self.truncation_voxels > 0:
            raise ValueError("voxel_size and truncation_voxels: must be positive")
        if self.max_depth is not None and not self.max_depth > 0:
            raise ValueError(f"max_depth: must be positive or None, got {self.max_depth}")
        if len(self.class_names) > 255:
            raise ValueError("class_names: at most 255 classes (labels are uint8, 255 = none)")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def truncation(self) -> float:
        """Truncation distance in metres."""
        return self.truncation_voxels * self.voxel_size

    def to_dict(self) -> dict:
        """JSON-able dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "AtlasModelConfig":
        """Config from ``to_dict`` output; unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"model config: unknown keys {unknown}")
        return cls(**values)

    @classmethod
    def small(cls, **overrides) -> "AtlasModelConfig":
        """The same layers at half the widths (about 1.65 M parameters, 6.6 MB as float32) for
        plumbing tests and quick runs; the default is 6.6 M parameters (26 MB)."""
        values = {
            "feature_channels": 16,
            "backbone_widths": (8, 16, 32, 48, 64),
            "fpn_channels": 32,
            "merge_channels": 16,
            "base_channels_3d": 8,
        }
        values.update(overrides)
        return cls(**values)


def feature_intrinsics(K: torch.Tensor, stride: int = FEATURE_STRIDE) -> torch.Tensor:
    """Intrinsics ``(..., 3, 3)`` of an image scaled to its stride-``stride`` feature map:
    ``f / stride`` and ``(c + 0.5) / stride - 0.5``."""
    scaled = K.clone()
    scaled[..., 0, 0] = K[..., 0, 0] / stride
    scaled[..., 1, 1] = K[..., 1, 1] / stride
    scaled[..., 0, 2] = (K[..., 0, 2] + 0.5) / stride - 0.5
    scaled[..., 1, 2] = (K[..., 1, 2] + 0.5) / stride - 0.5
    return scaled


def volume_input(feature_sum: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """3D network input ``(B, C + 1, X, Y, Z)`` from feature sums ``(B, C, X, Y, Z)`` and counts
    ``(B, X, Y, Z)``: average features and the observed flag."""
    observed = (count > 0).to(feature_sum.dtype).unsqueeze(1)
    return torch.cat([average_features(feature_sum, count), observed], dim=1)


@dataclass
class AtlasTrainOutput:
    """``Atlas3DOutput`` plus ``observed`` (B, 1, X, Y, Z) bool: voxels any input frame saw."""

    tsdf: list[torch.Tensor]
    clamp_masks: list[torch.Tensor]
    semantic_logits: torch.Tensor | None
    observed: torch.Tensor


class AtlasModel(nn.Module):
    """Backbone + 3D network + metadata (``config``)."""

    def __init__(self, config: AtlasModelConfig | None = None) -> None:
        super().__init__()
        self.config = config or AtlasModelConfig()
        c = self.config
        self.backbone = FeatureBackbone2D(
            c.feature_channels, c.backbone_widths, c.fpn_channels, c.merge_channels
        )
        self.net3d = AtlasNet3D(
            in_channels=c.feature_channels + 1,
            base_channels=c.base_channels_3d,
            num_classes=c.num_classes,
            encoder_blocks=c.encoder_blocks,
            decoder_blocks=c.decoder_blocks,
            clamp_threshold=c.clamp_threshold,
            tsdf_scale=c.tsdf_scale,
        )

    def extract_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> (N, C, H/4, W/4)."""
        return self.backbone(images)

    def forward_volume(self, volume: torch.Tensor) -> Atlas3DOutput:
        """3D network on a ``(B, C + 1, X, Y, Z)`` input (``volume_input``)."""
        return self.net3d(volume)

    def forward_train(
        self,
        images: torch.Tensor,
        K: torch.Tensor,
        T_world_cam: torch.Tensor,
        origin: torch.Tensor,
        voxel_size: float | None = None,
        dims: Sequence[int] = (96, 96, 64),
        max_depth: float | None = None,
    ) -> AtlasTrainOutput:
        """Differentiable forward pass from posed images to multi-scale TSDF and semantics.

        Args:
            images: (B, V, 3, H, W) RGB in [0, 1], H and W multiples of 32.
            K: (B, V, 3, 3) intrinsics of ``images`` (image resolution).
            T_world_cam: (B, V, 4, 4).
            origin: (B, 3) centre of each sample's voxel (0, 0, 0).
            voxel_size: metres (default: ``config.voxel_size``).
            dims: (X, Y, Z), multiples of 8.
            max_depth: back-projection limit (default: ``config.max_depth``).
        """
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"images: expected (B, V, 3, H, W), got {tuple(images.shape)}")
        batch, views = images.shape[:2]
        if K.shape != (batch, views, 3, 3):
            raise ValueError(f"K: expected ({batch}, {views}, 3, 3), got {tuple(K.shape)}")
        features = self.extract_features(images.flatten(0, 1))
        features = features.unflatten(0, (batch, views))
        feature_sum, count = backproject_batch(
            features,
            feature_intrinsics(K),
            T_world_cam,
            origin,
            voxel_size if voxel_size is not None else self.config.voxel_size,
            dims,
            max_depth if max_depth is not None else self.config.max_depth,
        )
        outputs = self.forward_volume(volume_input(feature_sum, count))
        return AtlasTrainOutput(
            tsdf=outputs.tsdf,
            clamp_masks=outputs.clamp_masks,
            semantic_logits=outputs.semantic_logits,
            observed=(count > 0).unsqueeze(1),
        )

    def forward(self, *args, **kwargs) -> AtlasTrainOutput:
        """Same as ``forward_train``."""
        return self.forward_train(*args, **kwargs)
