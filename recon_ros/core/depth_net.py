"""Multi-view stereo depth network: depth, confidence and semantic labels for a keyframe from the
keyframe and 1-4 earlier keyframes with known poses.

Geometry before learned priors: the network is built around a classical plane sweep and starts
out as one. At half the input resolution (128x96 for the default 256x192 input),

1. a small shared 2D encoder gives every view matching features; the reference also gets a
   deeper context encoder (strides 4, 8, 16);
2. every source view is warped onto ``planes`` fronto-parallel planes of the reference, evenly
   spaced in inverse depth (``core.plane_sweep``); per plane and pixel the matching evidence is
   the group-wise feature correlation, the grey-level NCC in a 5x5 box (brightness and contrast
   invariant: it carries over to real cameras whose exposure changes between frames) and the
   share of sources that see the point, averaged over the sources;
3. a per-plane 1x1x1 network turns that evidence into a score; a 2D U-Net over the stacked plane
   scores, the raw NCC and the context features adds a correction; the plane logits are
   ``ncc_temperature * NCC + score + correction``. The correction's last layer starts at zero, so
   an untrained network is a winner-take-all NCC sweep, and training learns where to override
   matching (textureless walls, occlusions) rather than learning depth from appearance;
4. depth is read from the plane probabilities around their mode (a sharpened soft-argmax in
   inverse depth: a hedged mean between two modes lands on neither); confidence is the
   probability mass within two planes of the mode.

A semantic head (a light FPN over the reference's context features) gives per-pixel class
logits; it needs no partner views.

Input images are (B, 3, H, W) in [0, 1] with H, W multiples of 16; intrinsics are for that size.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from torch import nn

from recon_ros.core.backbone import ResidualBlock2d, conv_bn_relu_2d
from recon_ros.core.classes import CLASS_NAMES
from recon_ros.core.plane_sweep import (
    depth_of_plane_index,
    inverse_depth_planes,
    local_ncc,
    plane_index_of_depth,
    warp_to_planes,
)

#: Images must divide by this (four halvings in the context encoder).
DEPTH_NET_SIZE_MULTIPLE = 16
#: Half-width (in planes) of the window around the mode used for depth and confidence.
MODE_RADIUS = 1
CONFIDENCE_RADIUS = 2


@dataclass(frozen=True)
class DepthNetConfig:
    """Architecture and sweep of ``MVSDepthNet`` (stored in checkpoints).

    Attributes:
        image_size: (width, height) network input.
        planes, near, far: the sweep (metres; inverse-depth spacing).
        match_channels: channels of the correlated matching features.
        groups: correlation groups (``match_channels`` must divide by it).
        ncc_window: box of the NCC cost.
        widths: channels at strides 2, 4, 8, 16 of the encoders and the cost U-Net.
        class_names: semantic classes of the head.
    """

    image_size: tuple[int, int] = (256, 192)
    planes: int = 64
    near: float = 0.25
    far: float = 6.0
    match_channels: int = 8
    groups: int = 4
    ncc_window: int = 5
    widths: tuple[int, int, int, int] = (32, 48, 64, 96)
    class_names: tuple[str, ...] = CLASS_NAMES

    def __post_init__(self) -> None:
        width, height = (int(s) for s in self.image_size)
        if width % DEPTH_NET_SIZE_MULTIPLE or height % DEPTH_NET_SIZE_MULTIPLE:
            raise ValueError(
                f"image_size: multiples of {DEPTH_NET_SIZE_MULTIPLE}, got {self.image_size}"
            )
        if self.match_channels % self.groups:
            raise ValueError(
                f"match_channels ({self.match_channels}) must divide by groups ({self.groups})"
            )
        if not 0 < self.near < self.far:
            raise ValueError(f"near, far: need 0 < near < far, got {self.near}, {self.far}")
        object.__setattr__(self, "image_size", (width, height))
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> DepthNetConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"depth net config: unknown keys {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


class DepthOutput(NamedTuple):
    """What ``MVSDepthNet`` returns, all at half the input resolution (h = H / 2, w = W / 2).

    Attributes:
        depth: (B, h, w) metres.
        confidence: (B, h, w) in [0, 1].
        plane_logits: (B, D, h, w) (None without partner views).
        semantic_logits: (B, num_classes, h, w).
        ncc: (B, D, h, w) the classical matching score (None without partner views).
    """

    depth: torch.Tensor | None
    confidence: torch.Tensor | None
    plane_logits: torch.Tensor | None
    semantic_logits: torch.Tensor
    ncc: torch.Tensor | None


class EncodedView(NamedTuple):
    """A view encoded once (``MVSDepthNet.encode_view``): ``match`` (B, M, h, w) matching
    features, ``grey`` (B, 1, h, w) grey image, ``features`` (B, C, h, w) stride-2 features."""

    match: torch.Tensor
    grey: torch.Tensor
    features: torch.Tensor


def grey_image(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    weights = images.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def depth_from_logits(
    logits: torch.Tensor, planes: int, near: float, far: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sharpened soft-argmax: expected plane index within ``MODE_RADIUS`` of the most likely
    plane (renormalised), converted to depth; confidence is the probability within
    ``CONFIDENCE_RADIUS`` planes of the mode.

    Args:
        logits: (B, D, h, w).

    Returns:
        depth (B, h, w) metres, confidence (B, h, w).
    """
    if logits.ndim != 4 or logits.shape[1] != planes:
        raise ValueError(f"logits: expected (B, {planes}, h, w), got {tuple(logits.shape)}")
    probabilities = torch.softmax(logits, dim=1)
    mode = probabilities.argmax(dim=1, keepdim=True)
    index = torch.arange(planes, device=logits.device, dtype=logits.dtype).view(1, -1, 1, 1)
    distance = (index - mode).abs()
    near_mode = (distance <= MODE_RADIUS).to(probabilities.dtype)
    mass = (probabilities * near_mode).sum(dim=1).clamp(min=1e-8)
    expected_index = (probabilities * near_mode * index).sum(dim=1) / mass
    confidence = (probabilities * (distance <= CONFIDENCE_RADIUS)).sum(dim=1)
    return depth_of_plane_index(expected_index, planes, near, far), confidence


def pointwise_conv3d(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` for a stack of 1x1x1 ``Conv3d`` and ``ReLU`` layers, as matrix products.

    The same numbers as calling the layers (a test says so) in a fifteenth of the time on our
    CPU: oneDNN's 3D convolution is slow for a handful of channels over a large volume.

    Args:
        layers: ``Conv3d`` layers of kernel 1 (with bias) and ``ReLU``, in any order.
        x: (B, C, D, H, W).

    Returns:
        (B, C_out, D, H, W).
    """
    if x.ndim != 5:
        raise ValueError(f"x: expected (B, C, D, H, W), got {tuple(x.shape)}")
    batch, _, *volume = x.shape
    flat = x.reshape(batch, x.shape[1], -1)
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            flat = torch.relu(flat)
        elif isinstance(layer, nn.Conv3d) and layer.kernel_size == (1, 1, 1):
            weight = layer.weight.view(1, layer.out_channels, layer.in_channels)
            bias = layer.bias.view(1, -1, 1)
            flat = torch.baddbmm(bias, weight.expand(batch, -1, -1), flat)
        else:
            raise ValueError(f"layers: only 1x1x1 Conv3d and ReLU, got {layer}")
    return flat.view(batch, flat.shape[1], *volume)


def winner_take_all_depth(ncc: torch.Tensor, config: DepthNetConfig) -> torch.Tensor:
    """The classical plane sweep's answer: per pixel, the depth of the plane of best NCC.

    Args:
        ncc: (B, D, h, w) matching scores.

    Returns:
        (B, h, w) metres.
    """
    index = ncc.argmax(dim=1).to(ncc.dtype)
    return depth_of_plane_index(index, config.planes, config.near, config.far)


class MVSDepthNet(nn.Module):
    """See the module docstring.

    ``forward(reference, sources, K_ref, K_src, T_src_ref)``:
        reference: (B, 3, H, W) in [0, 1]; sources: (B, S, 3, Hs, Ws) (S >= 0; Hs, Ws even:
        partners may be larger than a reference crop);
        K_ref: (B, 3, 3) at (H, W) and K_src: (B, S, 3, 3) at (Hs, Ws);
        T_src_ref: (B, S, 4, 4) reference optical frame to each source's.
        Returns ``DepthOutput`` at (H / 2, W / 2); with S = 0 only the semantic logits.
    """

    def __init__(self, config: DepthNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DepthNetConfig()
        w2, w4, w8, w16 = config.widths
        planes = config.planes
        self.register_buffer("rgb_mean", torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1), False)
        self.register_buffer("rgb_std", torch.tensor([0.25, 0.25, 0.25]).view(1, 3, 1, 1), False)
        self.register_buffer(
            "plane_depths", inverse_depth_planes(planes, config.near, config.far), False
        )
        # Shared by every view: stride-2 matching features.
        self.encoder_half = nn.Sequential(
            conv_bn_relu_2d(3, 16, stride=2), conv_bn_relu_2d(16, w2), ResidualBlock2d(w2, w2)
        )
        self.match_projection = nn.Conv2d(w2, config.match_channels, 1)
        # Reference only: context at strides 4, 8, 16.
        self.encoder_quarter = ResidualBlock2d(w2, w4, stride=2)
        self.encoder_eighth = ResidualBlock2d(w4, w8, stride=2)
        self.encoder_sixteenth = ResidualBlock2d(w8, w16, stride=2)
        # Per-plane evidence (groups correlations + NCC + validity) -> one score.
        self.plane_scorer = nn.Sequential(
            nn.Conv3d(config.groups + 2, 8, 1), nn.ReLU(inplace=True), nn.Conv3d(8, 1, 1)
        )
        self.ncc_temperature = nn.Parameter(torch.tensor(10.0))
        # Cost U-Net at strides 2..16.
        self.cost_in = nn.Sequential(
            nn.Conv2d(2 * planes + w2, w4, 1, bias=False),
            nn.BatchNorm2d(w4),
            nn.ReLU(inplace=True),
            conv_bn_relu_2d(w4, w4),
        )
        self.cost_down1 = conv_bn_relu_2d(w4, w4, stride=2)
        self.cost_mix1 = conv_bn_relu_2d(w4 + w4, w8)
        self.cost_down2 = conv_bn_relu_2d(w8, w8, stride=2)
        self.cost_mix2 = conv_bn_relu_2d(w8 + w8, w16)
        self.cost_down3 = conv_bn_relu_2d(w16, w16, stride=2)
        self.cost_mix3 = conv_bn_relu_2d(w16 + w16, w16)
        self.cost_up2 = conv_bn_relu_2d(w16 + w16, w8)
        self.cost_up1 = conv_bn_relu_2d(w8 + w8, w4)
        self.cost_up0 = conv_bn_relu_2d(w4 + w4, w4)
        self.correction = nn.Conv2d(w4, planes, 3, padding=1)
        nn.init.zeros_(self.correction.weight)
        nn.init.zeros_(self.correction.bias)
        # Semantic FPN on the reference's context.
        self.sem_lateral16 = nn.Conv2d(w16, 64, 1)
        self.sem_lateral8 = nn.Conv2d(w8, 64, 1)
        self.sem_lateral4 = nn.Conv2d(w4, 64, 1)
        self.sem_lateral2 = nn.Conv2d(w2, 64, 1)
        self.sem_head = nn.Sequential(conv_bn_relu_2d(64, 48), nn.Conv2d(48, config.num_classes, 1))

    # --- pieces --------------------------------------------------------------------------------

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.rgb_mean) / self.rgb_std

    def _check(self, reference, sources, K_ref, K_src, T_src_ref) -> None:
        if reference.ndim != 4 or reference.shape[1] != 3:
            raise ValueError(f"reference: expected (B, 3, H, W), got {tuple(reference.shape)}")
        batch, _, height, width = reference.shape
        if height % DEPTH_NET_SIZE_MULTIPLE or width % DEPTH_NET_SIZE_MULTIPLE:
            raise ValueError(
                f"reference: H and W must be multiples of {DEPTH_NET_SIZE_MULTIPLE}, got "
                f"{width}x{height}"
            )
        if (
            sources.ndim != 5
            or sources.shape[0] != batch
            or sources.shape[2] != 3
            or sources.shape[3] % 2
            or sources.shape[4] % 2
        ):
            raise ValueError(
                f"sources: expected ({batch}, S, 3, Hs, Ws) with even Hs, Ws, got "
                f"{tuple(sources.shape)}"
            )
        count = sources.shape[1]
        for name, tensor, shape in (
            ("K_ref", K_ref, (batch, 3, 3)),
            ("K_src", K_src, (batch, count, 3, 3)),
            ("T_src_ref", T_src_ref, (batch, count, 4, 4)),
        ):
            if tuple(tensor.shape) != shape:
                raise ValueError(f"{name}: expected {shape}, got {tuple(tensor.shape)}")

    @staticmethod
    def _half_intrinsics(K: torch.Tensor) -> torch.Tensor:
        """Intrinsics of an image halved in size (pixel centres at integers)."""
        half = K.clone()
        half[..., 0, 0] = K[..., 0, 0] / 2
        half[..., 1, 1] = K[..., 1, 1] / 2
        half[..., 0, 2] = (K[..., 0, 2] + 0.5) / 2 - 0.5
        half[..., 1, 2] = (K[..., 1, 2] + 0.5) / 2 - 0.5
        return half

    def semantic_logits(self, context: list[torch.Tensor]) -> torch.Tensor:
        f2, f4, f8, f16 = context
        x = self.sem_lateral16(f16)
        for lateral, feature in (
            (self.sem_lateral8, f8),
            (self.sem_lateral4, f4),
            (self.sem_lateral2, f2),
        ):
            x = F.interpolate(x, size=feature.shape[-2:], mode="bilinear", align_corners=False)
            x = x + lateral(feature)
        return self.sem_head(x)

    def matching_evidence(
        self,
        reference_half: torch.Tensor,
        source_half: torch.Tensor,
        grey_ref: torch.Tensor,
        grey_src: torch.Tensor,
        K_ref_half: torch.Tensor,
        K_src_half: torch.Tensor,
        T_src_ref: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-plane score and NCC, averaged over the sources.

        Args:
            reference_half: (B, M, h, w) matching features; source_half: (B, S, M, hs, ws).
            grey_ref: (B, 1, h, w); grey_src: (B, S, 1, hs, ws).
            K_ref_half: (B, 3, 3); K_src_half: (B, S, 3, 3); T_src_ref: (B, S, 4, 4).

        Returns:
            score (B, D, h, w), ncc (B, D, h, w).
        """
        cfg = self.config
        batch, count = source_half.shape[:2]
        height, width = reference_half.shape[-2:]
        group_size = cfg.match_channels // cfg.groups
        ref_groups = reference_half.view(batch, cfg.groups, group_size, 1, height, width)
        evidence_sum = 0.0
        ncc_sum = 0.0
        valid_sum = 0.0
        for s in range(count):
            # Features and grey image share one warp (one sampling grid, one grid_sample).
            warped, valid = warp_to_planes(
                torch.cat([source_half[:, s], grey_src[:, s].to(source_half.dtype)], dim=1),
                K_ref_half,
                K_src_half[:, s],
                T_src_ref[:, s],
                self.plane_depths,
                (height, width),
            )
            features = warped[:, : cfg.match_channels]
            # The grey-level NCC needs no gradient: only the learned features are
            # differentiated through the warp.
            with torch.no_grad():
                ncc = local_ncc(grey_ref, warped[:, cfg.match_channels :].detach(), valid,
                                cfg.ncc_window)  # fmt: skip
            correlation = (
                features.view(batch, cfg.groups, group_size, -1, height, width) * ref_groups
            ).mean(dim=2)
            valid_f = valid.to(features.dtype)
            evidence_sum = evidence_sum + correlation * valid_f[:, None]
            ncc_sum = ncc_sum + ncc
            valid_sum = valid_sum + valid_f
        seen = valid_sum.clamp(min=1.0)
        correlation = evidence_sum / seen[:, None]
        ncc = ncc_sum / seen
        evidence = torch.cat([correlation, ncc[:, None], (valid_sum / count)[:, None]], dim=1)
        score = pointwise_conv3d(self.plane_scorer, evidence)[:, 0]
        return score, ncc

    def semantic_only(self, reference: torch.Tensor) -> torch.Tensor:
        """Semantic logits (B, num_classes, H / 2, W / 2) of (B, 3, H, W) images, without the
        stereo part (RGB-D cameras need labels but not stereo)."""
        if reference.ndim != 4 or reference.shape[1] != 3:
            raise ValueError(f"reference: expected (B, 3, H, W), got {tuple(reference.shape)}")
        encoded = self.encode_view(reference)
        return self.forward_encoded(encoded, None, None, None, None, None).semantic_logits

    # --- forward -------------------------------------------------------------------------------

    def encode_view(self, images: torch.Tensor) -> EncodedView:
        """What a view contributes as a stereo partner, computed once per keyframe: matching
        features ``(B, M, H / 2, W / 2)`` and the grey image at that size ``(B, 1, ...)``."""
        half = self.encoder_half(self._normalise(images))
        return EncodedView(self.match_projection(half), F.avg_pool2d(grey_image(images), 2), half)

    def forward(
        self,
        reference: torch.Tensor,
        sources: torch.Tensor,
        K_ref: torch.Tensor,
        K_src: torch.Tensor,
        T_src_ref: torch.Tensor,
    ) -> DepthOutput:
        self._check(reference, sources, K_ref, K_src, T_src_ref)
        batch, count = sources.shape[:2]
        encoded = self.encode_view(reference)
        if count == 0:
            return self.forward_encoded(encoded, None, None, K_ref, K_src, T_src_ref)
        partners = self.encode_view(sources.flatten(0, 1))
        return self.forward_encoded(
            encoded,
            partners.match.view(batch, count, *partners.match.shape[1:]),
            partners.grey.view(batch, count, *partners.grey.shape[1:]),
            K_ref,
            K_src,
            T_src_ref,
        )

    def forward_encoded(
        self,
        reference: EncodedView,
        source_match: torch.Tensor | None,
        source_grey: torch.Tensor | None,
        K_ref: torch.Tensor,
        K_src: torch.Tensor,
        T_src_ref: torch.Tensor,
    ) -> DepthOutput:
        """``forward`` from encoded views (``encode_view``): the reference's, and the partners'
        matching features ``(B, S, M, hs, ws)`` and grey images ``(B, S, 1, hs, ws)`` (None: no
        partners, semantics only). A live reconstructor encodes each keyframe once and reuses it
        as a partner."""
        cfg = self.config
        f2 = reference.features
        f4 = self.encoder_quarter(f2)
        f8 = self.encoder_eighth(f4)
        f16 = self.encoder_sixteenth(f8)
        semantic = self.semantic_logits([f2, f4, f8, f16])
        if source_match is None or source_match.shape[1] == 0:
            return DepthOutput(None, None, None, semantic, None)
        score, ncc = self.matching_evidence(
            reference.match,
            source_match,
            reference.grey,
            source_grey,
            self._half_intrinsics(K_ref),
            self._half_intrinsics(K_src),
            T_src_ref,
        )
        x0 = self.cost_in(torch.cat([score, ncc, f2], dim=1))
        x1 = self.cost_mix1(torch.cat([self.cost_down1(x0), f4], dim=1))
        x2 = self.cost_mix2(torch.cat([self.cost_down2(x1), f8], dim=1))
        x3 = self.cost_mix3(torch.cat([self.cost_down3(x2), f16], dim=1))

        def up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)

        u2 = self.cost_up2(torch.cat([up(x3, x2), x2], dim=1))
        u1 = self.cost_up1(torch.cat([up(u2, x1), x1], dim=1))
        u0 = self.cost_up0(torch.cat([up(u1, x0), x0], dim=1))
        logits = self.ncc_temperature * ncc + score + self.correction(u0)
        depth, confidence = depth_from_logits(logits, cfg.planes, cfg.near, cfg.far)
        return DepthOutput(depth, confidence, logits, semantic, ncc)


@dataclass
class DepthLossWeights:
    """Weights of the terms of ``depth_losses``."""

    plane: float = 1.0
    log_l1: float = 1.0
    gradient: float = 0.5
    semantic: float = 0.5
    # Per-class weights of the semantic cross-entropy ((classes,) or None: unweighted). Rare
    # classes (small objects) otherwise vanish under floor and wall.
    semantic_class_weights: torch.Tensor | None = None


def depth_losses(
    output: DepthOutput,
    depth_gt: torch.Tensor,
    semantic_gt: torch.Tensor | None,
    config: DepthNetConfig,
    weights: DepthLossWeights | None = None,
    ignore_label: int = 255,
) -> dict[str, torch.Tensor]:
    """Training losses at the output resolution.

    Args:
        output: the network's ``DepthOutput`` (with partner views).
        depth_gt: (B, h, w) metres, 0 where unknown.
        semantic_gt: (B, h, w) int64 class ids (``ignore_label`` where none) or None.

    Returns:
        dict with ``plane`` (cross-entropy against the two planes around the true depth),
        ``log_l1`` (|log d - log d_gt|), ``gradient`` (of log depth, x and y), ``semantic`` and
        ``total``; each averaged over valid pixels.
    """
    weights = weights or DepthLossWeights()
    logits = output.plane_logits
    if logits is None or output.depth is None:
        raise ValueError("output: depth losses need the depth output (partner views)")
    if depth_gt.shape != output.depth.shape:
        raise ValueError(
            f"depth_gt: expected {tuple(output.depth.shape)}, got {tuple(depth_gt.shape)}"
        )
    planes = config.planes
    valid = (depth_gt >= config.near) & (depth_gt <= config.far)
    valid_f = valid.to(logits.dtype)
    count = valid_f.sum().clamp(min=1.0)
    target = plane_index_of_depth(depth_gt, planes, config.near, config.far).clamp(0, planes - 1)
    lower = target.floor().long().clamp(0, planes - 1)
    upper = (lower + 1).clamp(max=planes - 1)
    frac = target - lower.to(target.dtype)
    log_p = torch.log_softmax(logits, dim=1)
    nll = -(
        (1 - frac) * log_p.gather(1, lower[:, None])[:, 0]
        + frac * log_p.gather(1, upper[:, None])[:, 0]
    )
    losses = {"plane": (nll * valid_f).sum() / count}
    log_pred = torch.log(output.depth.clamp(min=1e-3))
    log_gt = torch.log(depth_gt.clamp(min=1e-3))
    losses["log_l1"] = ((log_pred - log_gt).abs() * valid_f).sum() / count
    diff = (log_pred - log_gt) * valid_f
    gx = (diff[..., :, 1:] - diff[..., :, :-1]).abs() * valid_f[..., :, 1:] * valid_f[..., :, :-1]
    gy = (diff[..., 1:, :] - diff[..., :-1, :]).abs() * valid_f[..., 1:, :] * valid_f[..., :-1, :]
    losses["gradient"] = (gx.sum() + gy.sum()) / count
    if semantic_gt is not None:
        class_weights = weights.semantic_class_weights
        if class_weights is not None:
            class_weights = class_weights.to(output.semantic_logits)
        losses["semantic"] = F.cross_entropy(
            output.semantic_logits, semantic_gt, weight=class_weights, ignore_index=ignore_label
        )
        if not torch.isfinite(losses["semantic"]):  # every pixel ignored
            losses["semantic"] = output.semantic_logits.sum() * 0.0
    else:
        losses["semantic"] = logits.new_zeros(())
    losses["total"] = (
        weights.plane * losses["plane"]
        + weights.log_l1 * losses["log_l1"]
        + weights.gradient * losses["gradient"]
        + weights.semantic * losses["semantic"]
    )
    return losses
