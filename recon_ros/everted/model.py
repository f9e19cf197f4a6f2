"""Everted U-Net (seed 002, section 3.2): per view, a 2D encoder's features become a coarse
volume (98 channels on 5 x 6 x 4 in the paper); a reconstruction branch of 3D transposed
convolutions (Pix2Vox++ style) up-samples it to the 80 x 96 x 64 occupancy; a segmentation branch
of the same shape does the same for the 6 class masks, each of its layers also reading the
reconstruction branch's output of the same level (the "everted" U-Net skips); the views' volumes
are fused by a context-aware merger (Pix2Vox++): a score per view and voxel from the
reconstruction branch's features one level below the output, softmax over the views, weighted
sum.

The paper's encoder is a frozen ImageNet ResNet-50; none can be fetched here, so ours is a small
CNN trained from scratch. The 2D features become the coarse volume in one of two ways
(``lift``):

- ``"pool"``, as Pix2Vox: the image plane is pooled to the volume's first two axes and the
  channels split into (volume channels, third axis). That ties image columns to the room's x
  and rows to its y, right for an object seen from around it, wrong for a room seen from a
  corner, and one encoder cannot tell its rig's cameras apart.
- ``"camera"`` (the config's default; paper-shaped): each camera of the rig has its own learned
  lift, a matrix from the image's cells and ``lift_groups`` channel groups (depth bins, in
  effect) to the coarse volume's cells; it learns where that camera's rays cross the room. The
  rig has no poses at run time, only a fixed order of its cameras (rig_node's
  ``image_topics``). On our studio data it levelled at IoU 0.05 where ``"pool"`` collapsed.
- ``"rays"``: the rig's calibration (each camera's intrinsics and pose in the room, as a robot
  cell's TF has them) projects every cell of the coarse grid into each image
  (``ray_lift``); the views' features are fused there (mean, variance, coverage, depth) and
  one pass of the branches follows (the views meet before the branches, not in the merger).
  Any rig and any room size, where the learned lifts know one installation only; what
  ``recon-ros train everted-unet`` builds by default and what ships.
Dropout (``Dropout3d`` after every up-sampling), which the paper found to matter most.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.core.depth_net import pointwise_conv3d
from recon_ros.everted.ray_lift import coarse_projections, fuse_lifted, lift_views

#: The paper's object classes, in mask order.
MASK_CLASSES = ("table", "chair", "nightstand", "laptop", "bag", "human")


@dataclass
class EvertedConfig:
    """Architecture of ``EvertedUNet``.

    Attributes:
        image_size: square input side (224).
        encoder_channels: widths of the 2D encoder's stride-2 stages.
        volume_channels: channels of the coarse volume (98 in the paper).
        volume_dims: the coarse volume (5, 6, 4); doubled per branch layer.
        branch_channels: widths of the branches' layers (each doubles the volume).
        classes: mask classes.
        dropout: ``Dropout3d`` probability after each up-sampling.
        lift: ``"camera"``, ``"pool"`` or ``"rays"`` (module docstring).
        ray_channels: features per view that ``"rays"`` lifts (from the stride-8 stage plus
            the last stage's, up-sampled).
        rig_cameras: cameras of the rig (one learned lift each, ``lift="camera"``).
        lift_groups: channel groups per image cell the lift reads.
        masks: ``"independent"`` (the paper: one sigmoid mask per class) or
            ``"given_occupancy"``: a class's mask probability is the occupancy probability
            times a softmax over the classes, so the masks lie inside the occupancy and the
            segmentation branch only has to tell the classes apart (each class fills 0.1-0.3 %
            of the grid; independent masks stayed near empty in our first training).
        last_kernel: kernel of the last (full-resolution) transposed convolutions: 4 as the
            others, or 2 (each output voxel from its parent alone), three times faster to train
            on our CPU, where that layer's backward pass was half of a step.
    """

    image_size: int = 224
    encoder_channels: tuple[int, ...] = (24, 48, 96, 128, 192)
    volume_channels: int = 98
    volume_dims: tuple[int, int, int] = (5, 6, 4)
    branch_channels: tuple[int, ...] = (48, 24, 12, 8)
    classes: tuple[str, ...] = MASK_CLASSES
    dropout: float = 0.2
    lift: str = "camera"
    rig_cameras: int = 3
    lift_groups: int = 8
    ray_channels: int = 24
    masks: str = "independent"
    last_kernel: int = 2

    def __post_init__(self) -> None:
        self.encoder_channels = tuple(int(c) for c in self.encoder_channels)
        self.volume_dims = tuple(int(d) for d in self.volume_dims)
        self.branch_channels = tuple(int(c) for c in self.branch_channels)
        self.classes = tuple(self.classes)
        if len(self.volume_dims) != 3 or min(self.volume_dims) < 1:
            raise ValueError(f"volume_dims: expected three sizes, got {self.volume_dims}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected [0, 1), got {self.dropout}")
        if self.lift not in ("camera", "pool", "rays"):
            raise ValueError(f"lift: expected 'camera', 'pool' or 'rays', got {self.lift!r}")
        if self.lift == "rays" and len(self.encoder_channels) < 4:
            raise ValueError("lift 'rays': needs at least 4 encoder stages (stride 8 and deeper)")
        if self.rig_cameras < 1 or self.lift_groups < 1:
            raise ValueError(
                f"rig_cameras, lift_groups: need at least one, got {self.rig_cameras}, "
                f"{self.lift_groups}"
            )
        if self.masks not in ("independent", "given_occupancy"):
            raise ValueError(
                f"masks: expected 'independent' or 'given_occupancy', got {self.masks!r}"
            )
        if self.last_kernel not in (2, 4):
            raise ValueError(f"last_kernel: expected 2 or 4, got {self.last_kernel}")

    @property
    def output_dims(self) -> tuple[int, int, int]:
        scale = 2 ** len(self.branch_channels)
        return tuple(d * scale for d in self.volume_dims)

    def to_dict(self) -> dict:
        values = asdict(self)
        for key in ("encoder_channels", "volume_dims", "branch_channels", "classes"):
            values[key] = list(values[key])
        return values

    @classmethod
    def from_dict(cls, values: dict) -> EvertedConfig:
        known = {k: v for k, v in values.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class ImageToVolume(nn.Module):
    """(N, 3, S, S) images in [0, 1] and their cameras' indices (N,) -> (N, volume_channels,
    *volume_dims) coarse volumes (module docstring: ``lift``)."""

    def __init__(self, config: EvertedConfig):
        super().__init__()
        layers, previous = [], 3
        cells = config.image_size
        for width in config.encoder_channels:
            layers += [
                nn.Conv2d(previous, width, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
            cells = (cells + 1) // 2
        self.features = nn.Sequential(*layers)
        self.dims = config.volume_dims
        self.channels = config.volume_channels
        self.lift = config.lift
        if self.lift == "rays":
            # features at stride 8 (stage 3) plus the last stage's context, up-sampled
            self.stride8_stage = 3 * 6  # six layers a stage
            self.lateral = nn.Conv2d(config.encoder_channels[2], config.ray_channels, 1)
            self.context = nn.Conv2d(previous, config.ray_channels, 1)
        elif self.lift == "pool":
            self.to_volume = nn.Conv2d(previous, config.volume_channels * self.dims[2], 1)
        else:
            self.groups = config.lift_groups
            self.to_volume = nn.Conv2d(previous, config.volume_channels * self.groups, 1)
            inputs = self.groups * cells * cells
            volume_cells = self.dims[0] * self.dims[1] * self.dims[2]
            # (cameras, volume cells, groups x image cells)
            self.lifts = nn.Parameter(
                torch.randn(config.rig_cameras, volume_cells, inputs) / inputs**0.5
            )

    def ray_features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) -> (N, ray_channels, S / 8, S / 8) features for ``lift="rays"``."""
        x = images * 2.0 - 1.0
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index + 1 == self.stride8_stage:
                fine = self.lateral(x)
        context = F.interpolate(self.context(x), size=fine.shape[-2:], mode="bilinear")
        return torch.relu(fine + context)

    def forward(self, images: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
        x = self.to_volume(self.features(images * 2.0 - 1.0))
        batch = x.shape[0]
        if self.lift == "pool":
            x = F.adaptive_avg_pool2d(x, self.dims[:2])  # (N, C * D2, D0, D1)
            x = x.view(batch, self.channels, self.dims[2], *self.dims[:2])
            return x.permute(0, 1, 3, 4, 2)
        x = x.reshape(batch, self.channels, -1)  # (N, C, groups x cells)
        volume = torch.bmm(x, self.lifts[cameras].transpose(1, 2))  # (N, C, volume cells)
        return volume.view(batch, self.channels, *self.dims)


def _up(in_channels: int, out_channels: int, dropout: float, kernel: int = 4) -> nn.Sequential:
    """Doubles the volume: kernel 4 (padding 1) or 2 (no padding)."""
    padding = 1 if kernel == 4 else 0
    return nn.Sequential(
        nn.ConvTranspose3d(in_channels, out_channels, kernel, 2, padding, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
        nn.Dropout3d(dropout),
    )


class EvertedUNet(nn.Module):
    """(B, V, 3, S, S) views of a fixed rig -> occupancy logits (B, 1, X, Y, Z) and mask logits
    (B, classes, X, Y, Z), fused over the V views (any V >= 1)."""

    def __init__(self, config: EvertedConfig | None = None):
        super().__init__()
        self.config = config = config or EvertedConfig()
        self.encoder = ImageToVolume(config)
        if config.lift == "rays":
            fused = 2 * config.ray_channels + 2
            self.coarse = nn.Sequential(
                nn.Conv3d(fused, config.volume_channels, 3, padding=1, bias=False),
                nn.BatchNorm3d(config.volume_channels),
                nn.ReLU(inplace=True),
                nn.Conv3d(config.volume_channels, config.volume_channels, 3, padding=1, bias=False),
                nn.BatchNorm3d(config.volume_channels),
                nn.ReLU(inplace=True),
            )
        widths = (config.volume_channels, *config.branch_channels)
        layers = len(widths) - 1
        kernels = [4] * (layers - 1) + [config.last_kernel]
        self.reconstruction = nn.ModuleList(
            _up(widths[i], widths[i + 1], config.dropout, kernels[i]) for i in range(layers)
        )
        # each segmentation layer reads its own previous output and the reconstruction's
        self.segmentation = nn.ModuleList(
            _up(widths[i] if i == 0 else 2 * widths[i], widths[i + 1], config.dropout, kernels[i])
            for i in range(layers)
        )
        last = widths[-1]
        # 1x1x1 heads run as matrix products (pointwise_conv3d): oneDNN is slow for them
        self.occupancy_head = nn.Sequential(nn.Conv3d(last, 1, 1))
        self.mask_head = nn.Sequential(nn.Conv3d(2 * last, len(config.classes), 1))
        # the merger scores each view at half the output's resolution, from the reconstruction
        # branch's features there, and repeats each score over its 2x2x2 voxels: the 3x3x3
        # scorer at full resolution was 40 % of a training step's time on our CPU
        self.scorer = nn.Sequential(
            nn.Conv3d(widths[-2], 8, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv3d(8, 1, 3, padding=1),
        )

    def per_view(
        self, images: torch.Tensor, cameras: torch.Tensor | None = None, with_scores: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(N, 3, S, S) images of the rig's cameras ``cameras`` (N,) (default: all camera 0) ->
        occupancy logits (N, 1, X, Y, Z), mask logits (N, C, X, Y, Z) and merger scores
        (N, 1, X, Y, Z) of each view alone (None unless ``with_scores``)."""
        if cameras is None:
            cameras = torch.zeros(images.shape[0], dtype=torch.long, device=images.device)
        return self.decode(self.encoder(images, cameras), with_scores)

    def decode(
        self, volume: torch.Tensor, with_scores: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Coarse volumes (N, volume_channels, *volume_dims) -> occupancy logits, mask logits
        and (``with_scores``) merger scores through the two branches (``per_view``)."""
        reconstruction, segmentation = volume, volume
        scores = None
        last = len(self.reconstruction) - 1
        for index, (rec_layer, seg_layer) in enumerate(
            zip(self.reconstruction, self.segmentation, strict=True)
        ):
            if index == last and with_scores:
                coarse = self.scorer(reconstruction)
                scores = coarse.repeat_interleave(2, 2).repeat_interleave(2, 3)
                scores = scores.repeat_interleave(2, 4)
            seg_input = segmentation if index == 0 else torch.cat([segmentation, reconstruction], 1)
            reconstruction = rec_layer(reconstruction)
            segmentation = seg_layer(seg_input)
        occupancy = pointwise_conv3d(self.occupancy_head, reconstruction)
        masks = pointwise_conv3d(self.mask_head, torch.cat([segmentation, reconstruction], 1))
        if self.config.masks == "given_occupancy":
            masks = masks_given_occupancy(occupancy, masks)
        return occupancy, masks, scores

    def forward(
        self,
        views: torch.Tensor,
        cameras: torch.Tensor | list[int] | None = None,
        projections: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Views (B, V, 3, S, S) of the rig's cameras ``cameras`` (V,) (default 0 .. V - 1, the
        rig's order) -> fused occupancy logits (B, 1, X, Y, Z) and mask logits (B, C, X, Y, Z).
        ``lift="rays"`` needs ``projections`` (B, V, 3, 4): output-grid index -> view pixels
        (``ray_lift.grid_projections``) and ignores ``cameras``."""
        size = self.config.image_size
        if views.ndim != 5 or tuple(views.shape[2:]) != (3, size, size) or views.shape[1] < 1:
            raise ValueError(
                f"views: expected (B, V >= 1, 3, {size}, {size}), got {tuple(views.shape)}"
            )
        batch, count = views.shape[:2]
        if self.config.lift == "rays":
            return self._forward_rays(views, projections)
        if cameras is None:
            cameras = torch.arange(count)
        cameras = torch.as_tensor(cameras, dtype=torch.long, device=views.device)
        lifts = self.config.rig_cameras
        if cameras.shape != (count,) or (self.config.lift == "camera" and cameras.max() >= lifts):
            raise ValueError(
                f"cameras: expected {count} indices below the rig's {lifts} cameras, got "
                f"{cameras.tolist()}"
            )
        # one view: the merger's softmax is 1 everywhere, its scores need not be computed
        occupancy, masks, scores = self.per_view(
            views.flatten(0, 1), cameras.repeat(batch), with_scores=count > 1
        )
        if count == 1:
            return occupancy, masks
        weights = merger_weights(scores.view(batch, count, *scores.shape[1:]))
        fused_occupancy = (weights * occupancy.view(batch, count, *occupancy.shape[1:])).sum(1)
        fused_masks = (weights * masks.view(batch, count, *masks.shape[1:])).sum(1)
        return fused_occupancy, fused_masks

    def _forward_rays(self, views: torch.Tensor, projections: torch.Tensor | None):
        batch, count = views.shape[:2]
        if projections is None or tuple(projections.shape) != (batch, count, 3, 4):
            got = None if projections is None else tuple(projections.shape)
            raise ValueError(f"projections: lift 'rays' needs ({batch}, {count}, 3, 4), got {got}")
        factor = 2 ** len(self.config.branch_channels)
        coarse = coarse_projections(projections.to(views.dtype), factor).flatten(0, 1)
        features = self.encoder.ray_features(views.flatten(0, 1))
        lifted = lift_views(features, coarse, self.config.volume_dims, self.config.image_size)
        fused = fuse_lifted(lifted.view(batch, count, *lifted.shape[1:]))
        occupancy, masks, _ = self.decode(self.coarse(fused))
        return occupancy, masks


def masks_given_occupancy(occupancy: torch.Tensor, class_logits: torch.Tensor) -> torch.Tensor:
    """Occupancy logits (N, 1, X, Y, Z) and class logits (N, C, X, Y, Z) -> mask logits
    (N, C, X, Y, Z) whose probabilities are sigmoid(occupancy) x softmax(classes)."""
    log_p = F.logsigmoid(occupancy) + torch.log_softmax(class_logits, dim=1)
    log_p = log_p.clamp(max=-1e-6)  # p < 1: its logit stays finite
    return log_p - torch.log(-torch.expm1(log_p))


def merger_weights(scores: torch.Tensor) -> torch.Tensor:
    """(B, V, 1, X, Y, Z) scores -> the views' weights, a softmax over V per voxel."""
    if scores.ndim != 6 or scores.shape[2] != 1:
        raise ValueError(f"scores: expected (B, V, 1, X, Y, Z), got {tuple(scores.shape)}")
    return torch.softmax(scores, dim=1)


def everted_losses(
    occupancy_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    occupancy: torch.Tensor,
    masks: torch.Tensor,
    stage: str = "both",
    positive_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """BCE of the occupancy (B, 1, X, Y, Z) and of the masks (B, C, X, Y, Z) against 0/1
    targets of the same shapes; ``stage`` "reconstruction" counts the occupancy alone (the
    paper's first stage), "both" adds the masks. ``positive_weight`` weighs the occupied voxels'
    terms (1: the paper's plain BCE; objects fill about 1 % of the grid, and plain BCE collapsed
    to empty rooms on our first run)."""
    if stage not in ("reconstruction", "both"):
        raise ValueError(f"stage: expected 'reconstruction' or 'both', got {stage!r}")
    if occupancy_logits.shape != occupancy.shape or mask_logits.shape != masks.shape:
        raise ValueError(
            f"logits/targets: shapes differ: {tuple(occupancy_logits.shape)} vs "
            f"{tuple(occupancy.shape)}, {tuple(mask_logits.shape)} vs {tuple(masks.shape)}"
        )
    if positive_weight <= 0:
        raise ValueError(f"positive_weight: must be positive, got {positive_weight}")
    weight = torch.tensor(float(positive_weight), device=occupancy_logits.device)
    rec = F.binary_cross_entropy_with_logits(occupancy_logits, occupancy.float(), pos_weight=weight)
    out = {"reconstruction": rec, "total": rec}
    if stage == "both":
        seg = F.binary_cross_entropy_with_logits(mask_logits, masks.float(), pos_weight=weight)
        out["segmentation"] = seg
        out["total"] = rec + seg
    return out
