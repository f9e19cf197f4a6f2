"""Per-pixel class labels for a keyframe from its colour and its depth: the network whose labels
vote into the map's voxels.

The depth network's semantic head (``core.depth_net``) sees colour only, through an encoder sized
for matching; on our held-out scenes it labels small objects poorly (tables, chairs, nightstands,
bags: IoU 0.06-0.25), and flat, same-coloured surfaces at different heights (a table top and the
floor) look alike to it. Indoor classes are told apart by geometry as much as by colour: a table
top is horizontal and 0.7 m above the floor, a wall is vertical, a bag sits low. This network
takes the keyframe's depth (the stereo prediction, or a sensor's) and gravity with the colour:

- colour, centred;
- inverse depth and its validity (0 where the depth is unknown);
- the height of each pixel's point above the camera along gravity (metres, 0 where unknown);
- the cosine between each pixel's ray and gravity "up", known without depth (the horizon).

Gravity comes from the world's up axis as the reconstructor settles it for the session (from the
first keyframe's image-up direction, ``core.window_policy``), so any world frame works. Trained
with depth that is dropped, noisy, biased and holed as stereo depth is, it falls back to colour
where depth is missing.

The network is a small residual U-Net (strides 2 to 32, then back to 2); logits come at half the
input size and are upsampled to it. ``(B, 3, H, W)`` colour in [0, 1], ``(B, 1, H, W)`` depth
(metres, 0 unknown), ``(B, 3, 3)`` intrinsics for (H, W), ``(B, 3)`` unit up vectors in the camera
frame -> ``(B, C, H, W)`` logits. H and W must divide by 32.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.core.backbone import ResidualBlock2d, conv_bn_relu_2d
from recon_ros.core.camera import pixel_rays
from recon_ros.core.classes import CLASS_NAMES

#: Images must divide by this (five halvings).
SEMANTIC_NET_SIZE_MULTIPLE = 32
#: Geometry channels after the colour: inverse depth, validity, height above the camera, ray-up
#: cosine.
GEOMETRY_CHANNELS = 4
#: Depths below this (m) count as unknown.
MIN_DEPTH = 0.05


@dataclass(frozen=True)
class SemanticNetConfig:
    """Architecture of ``SemanticNet`` (stored in checkpoints).

    Attributes:
        image_size: (width, height) the network is trained at and fed.
        widths: channels at strides 2, 4, 8, 16, 32.
        decoder_width: channels of the decoder.
        class_names: the classes of the logits.
    """

    image_size: tuple[int, int] = (256, 192)
    widths: tuple[int, int, int, int, int] = (24, 32, 64, 96, 128)
    decoder_width: int = 48
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self) -> None:
        width, height = (int(s) for s in self.image_size)
        if width % SEMANTIC_NET_SIZE_MULTIPLE or height % SEMANTIC_NET_SIZE_MULTIPLE:
            raise ValueError(
                f"image_size: multiples of {SEMANTIC_NET_SIZE_MULTIPLE}, got {self.image_size}"
            )
        if len(self.widths) != 5 or min(self.widths) < 1 or self.decoder_width < 1:
            raise ValueError(f"widths: five positive channel counts, got {self.widths}")
        if len(self.class_names) < 2:
            raise ValueError(f"class_names: at least two, got {self.class_names}")
        object.__setattr__(self, "image_size", (width, height))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> SemanticNetConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        for key in ("image_size", "widths", "class_names"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


def up_in_camera(T_world_cam: np.ndarray, world_up: tuple[int, float] | None = None) -> np.ndarray:
    """(3,) unit gravity-up vector in the camera's optical frame, from its (4, 4) pose.

    Args:
        T_world_cam: (4, 4) the camera's pose.
        world_up: (axis, sign) of up in the world, as the reconstructor settled it for the
            session; None: the world axis nearest to this camera's image-up direction
            (``up_axis_of``; wrong for a camera pitched or rolled more than 45 degrees, so only
            until the session's up is known).
    """
    from recon_ros.core.window_policy import up_axis_of

    T = np.asarray(T_world_cam, dtype=np.float64)
    axis, sign = world_up if world_up is not None else up_axis_of(T)[:2]
    up_world = np.zeros(3)
    up_world[int(axis)] = float(sign)
    return T[:3, :3].T @ up_world


def geometry_channels(depth: torch.Tensor, K: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """The network's geometry input (module docstring).

    Args:
        depth: (B, 1, H, W) metres, <= ``MIN_DEPTH`` unknown.
        K: (B, 3, 3) intrinsics at (H, W).
        up: (B, 3) unit up vectors in the camera frame.

    Returns:
        (B, 4, H, W): inverse depth (1/m, 0 unknown), validity, height of the point above the
        camera along ``up`` (m, 0 unknown), cosine between the pixel's ray and ``up``.
    """
    if depth.ndim != 4 or depth.shape[1] != 1:
        raise ValueError(f"depth: expected (B, 1, H, W), got {tuple(depth.shape)}")
    batch, _, height, width = depth.shape
    if tuple(K.shape) != (batch, 3, 3) or tuple(up.shape) != (batch, 3):
        raise ValueError(
            f"K, up: expected ({batch}, 3, 3) and ({batch}, 3), got {tuple(K.shape)}, "
            f"{tuple(up.shape)}"
        )
    out = []
    for b in range(batch):
        rays = pixel_rays(K[b].to(depth), height, width)  # (3, H, W), z = 1
        d = depth[b, 0]
        valid = d > MIN_DEPTH
        along_up = torch.einsum("c,chw->hw", up[b].to(depth), rays)
        height_above = torch.where(valid, along_up * d, torch.zeros_like(d))
        cosine = along_up / rays.norm(dim=0)
        inverse = torch.where(valid, 1.0 / d.clamp(min=MIN_DEPTH), torch.zeros_like(d))
        out.append(torch.stack([inverse, valid.to(d.dtype), height_above, cosine]))
    return torch.stack(out)


def geometry_channels_reference(depth, K, up) -> np.ndarray:
    """Pixel-by-pixel ``geometry_channels`` (slow; for tests). Same arguments as numpy or torch;
    returns (B, 4, H, W) float64."""
    depth, K, up = (np.asarray(a, dtype=np.float64) for a in (depth, K, up))
    batch, _, height, width = depth.shape
    out = np.zeros((batch, GEOMETRY_CHANNELS, height, width))
    for b in range(batch):
        K_inv = np.linalg.inv(K[b])
        for v in range(height):
            for u in range(width):
                ray = K_inv @ np.array([u, v, 1.0])
                d = depth[b, 0, v, u]
                out[b, 3, v, u] = ray @ up[b] / np.linalg.norm(ray)
                if d > MIN_DEPTH:
                    out[b, 0, v, u] = 1.0 / d
                    out[b, 1, v, u] = 1.0
                    out[b, 2, v, u] = (ray * d) @ up[b]
    return out


class SemanticNet(nn.Module):
    """See the module docstring. ``forward(images, depth, K, up)`` -> (B, C, H, W) logits."""

    def __init__(self, config: SemanticNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SemanticNetConfig()
        w2, w4, w8, w16, w32 = config.widths
        d = config.decoder_width
        self.register_buffer("rgb_mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), False)
        self.register_buffer("rgb_std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1), False)
        self.stem = nn.Sequential(
            conv_bn_relu_2d(3 + GEOMETRY_CHANNELS, w2, stride=2), ResidualBlock2d(w2, w2)
        )
        self.down4 = nn.Sequential(ResidualBlock2d(w2, w4, stride=2), ResidualBlock2d(w4, w4))
        self.down8 = nn.Sequential(ResidualBlock2d(w4, w8, stride=2), ResidualBlock2d(w8, w8))
        self.down16 = nn.Sequential(ResidualBlock2d(w8, w16, stride=2), ResidualBlock2d(w16, w16))
        self.down32 = nn.Sequential(ResidualBlock2d(w16, w32, stride=2), ResidualBlock2d(w32, w32))
        # Whole-image context (how high the camera is, which room parts are in view).
        self.context = nn.Sequential(nn.Conv2d(w32, w32, 1), nn.ReLU(inplace=True))
        self.lateral = nn.ModuleList(nn.Conv2d(w, d, 1) for w in (w2, w4, w8, w16, w32))
        self.smooth = nn.ModuleList(conv_bn_relu_2d(d, d) for _ in range(4))
        self.head = nn.Conv2d(d, config.num_classes, 1)

    def _check(self, images, depth, K, up) -> None:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images: expected (B, 3, H, W), got {tuple(images.shape)}")
        batch, _, height, width = images.shape
        if height % SEMANTIC_NET_SIZE_MULTIPLE or width % SEMANTIC_NET_SIZE_MULTIPLE:
            raise ValueError(
                f"images: H and W must be multiples of {SEMANTIC_NET_SIZE_MULTIPLE}, got "
                f"{width}x{height}"
            )
        if tuple(depth.shape) != (batch, 1, height, width):
            raise ValueError(
                f"depth: expected ({batch}, 1, {height}, {width}), got {tuple(depth.shape)}"
            )

    def forward(
        self, images: torch.Tensor, depth: torch.Tensor, K: torch.Tensor, up: torch.Tensor
    ) -> torch.Tensor:
        self._check(images, depth, K, up)
        colour = (images - self.rgb_mean) / self.rgb_std
        x = torch.cat([colour, geometry_channels(depth, K, up)], dim=1)
        f2 = self.stem(x)
        f4 = self.down4(f2)
        f8 = self.down8(f4)
        f16 = self.down16(f8)
        f32 = self.down32(f16)
        f32 = f32 + self.context(f32.mean(dim=(2, 3), keepdim=True))
        y = self.lateral[4](f32)
        for level, feature in zip((3, 2, 1, 0), (f16, f8, f4, f2), strict=True):
            y = F.interpolate(y, size=feature.shape[-2:], mode="bilinear", align_corners=False)
            y = self.smooth[level](y + self.lateral[level](feature))
        logits = self.head(y)
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)


SEMANTIC_CHECKPOINT_FORMAT = "recon_ros.semantic"


def save_semantic_net(
    model: SemanticNet, path, trained: bool, recipe: str = "", extra: dict | None = None
):
    """Write the network to ``path`` atomically (``core.checkpoint`` layout, its own format
    tag)."""
    from recon_ros.core.checkpoint import save_checkpoint

    return save_checkpoint(model, path, trained, recipe, extra, SEMANTIC_CHECKPOINT_FORMAT)


def load_semantic_net(path, device: str | torch.device = "cpu") -> tuple[SemanticNet, dict]:
    """The network a checkpoint describes, on ``device``, in eval mode, with its metadata.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a semantic-network checkpoint, or weights that do not fit its config.
    """
    from recon_ros.core.checkpoint import load_model

    return load_model(path, device, SEMANTIC_CHECKPOINT_FORMAT, SemanticNetConfig, SemanticNet)
