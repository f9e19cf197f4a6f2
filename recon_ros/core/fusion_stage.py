"""The depth-fusion stage of the reconstructor: per keyframe a depth map (the RGB-D sensor's, or
the multi-view stereo network's from the keyframe and earlier keyframes chosen by
``core.partners.select_stereo_partners``), per-pixel class labels (from the semantic network,
``core.semantic_net``, which reads the keyframe's colour with its depth, or else from the depth
network's semantic head), and confidence-weighted TSDF fusion of both into the rolling window
(``core.tsdf_volume``).

What the first keyframes do: stereo needs a partner with enough baseline, so a keyframe with
none is kept as a future partner and not fused (``DepthResult.source == "waiting"``); mapping
starts with the first keyframe that has a partner. Sensor depth is fused from the first frame.

ROS-free; the reconstructor calls it under its locks.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.camera import (
    PinholeCamera,
    image_to_tensor,
    pixel_rays,
    resize_image_tensor,
)
from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.depth_net import MVSDepthNet, grey_image
from recon_ros.core.fine_sweep import fine_sweep
from recon_ros.core.floor_labels import withdraw_floor_above_plane
from recon_ros.core.geometry import invert_pose
from recon_ros.core.partners import select_stereo_partners
from recon_ros.core.plane_fill import PLANAR_CLASS_NAMES, plane_fill
from recon_ros.core.semantic_net import SemanticNet, up_in_camera

DEPTH_SOURCES = ("auto", "mvs", "sensor")
#: Where keyframe labels come from (``ReconstructorConfig.labels_from``).
LABEL_SOURCES = ("combined", "semantic_network", "depth_network")


@dataclass(frozen=True)
class StereoSettings:
    """Partner choice and depth filtering of the stereo path."""

    partners: int = 3
    min_baseline: float = 0.05
    max_baseline: float = 0.6
    ideal_baseline: float = 0.2
    max_angle_deg: float = 40.0
    min_overlap: float = 0.4
    min_confidence: float = 0.5
    history: int = 12
    #: Stereo depth is fused where at least this many earlier keyframes' depths agree with it
    #: (within ``consistency_tolerance``, relative), when any of the partners has a depth.
    min_consistent_views: int = 0
    consistency_tolerance: float = 0.05
    #: > 0: fusion weights fall as (near_weighting_depth / depth)^2 beyond that depth (metres).
    near_weighting_depth: float = 0.0
    #: Refine the network's depth by a narrow NCC sweep at its input size (``core.fine_sweep``):
    #: depth at twice the network's output resolution, sub-plane where matching is decisive.
    fine_sweep: bool = False
    fine_min_ncc: float = 0.2
    fine_hypotheses: int = 17
    fine_span: float = 2.0
    fine_window: int = 7
    #: The fine sweep's image width: the camera's own (capped here, aspect kept) when it is
    #: wider than the network's input; 0: the network's input size.
    fine_max_width: int = 0
    #: Unrefined pixels of planar classes take the depth of the plane their class's refined
    #: pixels define (``core.plane_fill``); needs the fine sweep.
    plane_fill: bool = False
    plane_fill_max_change: float = 0.2
    #: The planes' support: refined pixels of at least this peak NCC (the others are filled).
    plane_fill_min_ncc: float = 0.7
    #: Walls also take planes through their feet: their boundary with the floor's (and the
    #: ceiling's) plane, standing upright on it (``core.plane_fill.wall_feet``).
    plane_fill_wall_feet: bool = False
    #: Fusion weight factor of stereo pixels that neither matching nor a plane explains (the
    #: network's guess): 1 weighs them as their confidence says.
    guess_weight: float = 1.0
    #: > 0: with the plane fill, pixels labelled floor more than this many metres above the
    #: keyframe's floor plane take their next class (``core.floor_labels``).
    floor_label_max_height: float = 0.0


@dataclass
class _Keyframe:
    match: torch.Tensor  # (M, h, w) matching features (``MVSDepthNet.encode_view``)
    grey: torch.Tensor  # (1, h, w)
    K: np.ndarray  # at the network size
    T_world_cam: np.ndarray
    depth: torch.Tensor | None = None  # (h, w) its depth for fusion, once it has one
    K_depth: np.ndarray | None = None
    grey_full: torch.Tensor | None = None  # (1, H, W) for the fine sweep, at ``K_fine``
    K_fine: np.ndarray | None = None


@dataclass(frozen=True)
class DepthResult:
    """A keyframe's depth for fusion (tensors on the stage's device).

    Attributes:
        source: ``"sensor"``, ``"mvs"`` or ``"waiting"`` (no stereo partner yet: nothing to fuse).
        depth: (h, w) metres, 0 where unknown or not confident; K: (3, 3) its intrinsics;
        T_world_depth: (4, 4) pose of the depth map's optical frame.
        confidence: (h, w) fusion weights; rgb: (3, h, w) colour in [0, 1]; labels: (h, w)
        int64 classes (``IGNORE_LABEL`` where unknown); partners: stereo partners used.
    """

    source: str
    depth: torch.Tensor | None = None
    K: np.ndarray | None = None
    T_world_depth: np.ndarray | None = None
    confidence: torch.Tensor | None = None
    rgb: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    partners: int = 0


def _half_camera(camera: PinholeCamera) -> PinholeCamera:
    return camera.resized(camera.width // 2, camera.height // 2)


def _depth_pixels_in(
    depth: torch.Tensor, K_depth: np.ndarray, K_other: np.ndarray, T_other_depth: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where each pixel of a (h, w) depth map lands in another camera: (h * w,) sub-pixel
    column, row and depth there (pixels behind the camera or without depth: meaningless
    coordinates, depth as computed; callers mask them)."""
    height, width = depth.shape
    device = depth.device
    K_d = torch.as_tensor(K_depth, dtype=torch.float32, device=device)
    T = torch.as_tensor(T_other_depth, dtype=torch.float32, device=device)
    points = (pixel_rays(K_d, height, width) * depth).reshape(3, -1)
    cam = T[:3, :3] @ points + T[:3, 3:]
    K_o = torch.as_tensor(K_other, dtype=torch.float32, device=device)
    z = cam[2]
    safe = torch.where(z > 1e-3, z, torch.ones_like(z))
    return K_o[0, 0] * cam[0] / safe + K_o[0, 2], K_o[1, 1] * cam[1] / safe + K_o[1, 2], z


def sample_at_depth_pixels(
    image: torch.Tensor,
    K_image: np.ndarray,
    depth: torch.Tensor,
    K_depth: np.ndarray,
    T_image_depth: np.ndarray,
    mode: str = "bilinear",
) -> torch.Tensor:
    """Colour or labels of a (C, H, W) image at the pixels of a depth map taken by another camera
    (an RGB-D sensor whose depth is not registered to the colour image): each depth pixel is
    back-projected with its depth, moved into the image camera by ``T_image_depth`` and
    sampled there. Pixels without depth or falling outside read 0.

    Returns:
        (C, h, w) like ``depth`` (h, w).
    """
    height, width = depth.shape
    pu, pv, z = _depth_pixels_in(depth, K_depth, K_image, T_image_depth)
    image_h, image_w = image.shape[-2:]
    grid = torch.stack([(2 * pu + 1) / image_w - 1, (2 * pv + 1) / image_h - 1], -1)
    grid = grid.masked_fill(((depth.reshape(-1) <= 0) | (z <= 1e-3))[:, None], -4.0)
    sampled = F.grid_sample(
        image[None].float(), grid.view(1, height, width, 2), mode=mode, align_corners=False
    )
    return sampled[0]


def depth_in_colour_view(
    depth: torch.Tensor, K_depth: np.ndarray, colour: PinholeCamera, T_colour_depth: np.ndarray
) -> torch.Tensor:
    """A depth map taken by another camera (an RGB-D sensor whose depth is not registered to
    the colour image) as the colour camera would see it: every depth pixel is back-projected,
    moved by ``T_colour_depth`` and splatted into the nearest colour pixel, the nearest point
    winning. Colour pixels no point lands on are 0.

    Args:
        depth: (h, w) metres, 0 unknown; K_depth: (3, 3) its intrinsics.
        colour: the colour camera (its size is the output's).
        T_colour_depth: (4, 4) depth optical frame in the colour optical frame.

    Returns:
        (colour.height, colour.width) metres along the colour camera's z, 0 unknown.
    """
    pu, pv, z = _depth_pixels_in(depth, K_depth, colour.K, T_colour_depth)
    pu, pv = torch.round(pu).long(), torch.round(pv).long()
    keep = (
        (depth.reshape(-1) > 0)
        & (z > 1e-3)
        & (pu >= 0)
        & (pu < colour.width)
        & (pv >= 0)
        & (pv < colour.height)
    )
    out = torch.full((colour.height * colour.width,), float("inf"), device=depth.device)
    out.scatter_reduce_(0, (pv * colour.width + pu)[keep], z[keep], reduce="amin")
    out[torch.isinf(out)] = 0.0
    return out.view(colour.height, colour.width)


def depth_in_colour_view_reference(depth, K_depth, colour, T_colour_depth) -> np.ndarray:
    """Point-by-point ``depth_in_colour_view`` (slow; for tests)."""
    depth = np.asarray(depth, dtype=np.float64)
    out = np.full((colour.height, colour.width), np.inf)
    K_inv = np.linalg.inv(np.asarray(K_depth, dtype=np.float64))
    T = np.asarray(T_colour_depth, dtype=np.float64)
    K_c = np.asarray(colour.K, dtype=np.float64)
    for v in range(depth.shape[0]):
        for u in range(depth.shape[1]):
            if depth[v, u] <= 0:
                continue
            point = T[:3, :3] @ (K_inv @ np.array([u, v, 1.0]) * depth[v, u]) + T[:3, 3]
            if point[2] <= 1e-3:
                continue
            pu = int(np.round(K_c[0, 0] * point[0] / point[2] + K_c[0, 2]))
            pv = int(np.round(K_c[1, 1] * point[1] / point[2] + K_c[1, 2]))
            if 0 <= pu < colour.width and 0 <= pv < colour.height:
                out[pv, pu] = min(out[pv, pu], point[2])
    out[np.isinf(out)] = 0.0
    return out


class DepthFusionStage:
    """Depth per keyframe and its fusion inputs (module docstring).

    Args:
        depth_net: the multi-view depth network (with its semantic head), or None: sensor depth
            only, without labels.
        depth_source: ``"auto"`` (sensor depth while it arrives, else stereo), ``"mvs"``,
            ``"sensor"``.
        stereo: partner and filtering settings.
        device: torch device.
        semantic_net: the semantic network (labels from colour and depth), or None: labels from
            the depth network's head.
        combine_labels: with a semantic network, multiply its class probabilities with the
            head's (a product of two experts: one reads geometry, the other matching context);
            False: the semantic network's alone.
    """

    def __init__(
        self,
        depth_net: MVSDepthNet | None,
        depth_source: str = "auto",
        stereo: StereoSettings | None = None,
        device: torch.device | str = "cpu",
        semantic_net: SemanticNet | None = None,
        combine_labels: bool = True,
    ) -> None:
        if depth_source not in DEPTH_SOURCES:
            raise ValueError(f"depth_source: expected one of {DEPTH_SOURCES}, got {depth_source!r}")
        if depth_net is None and depth_source == "mvs":
            raise ValueError("depth_source 'mvs' needs the depth network's weights")
        if (
            semantic_net is not None
            and depth_net is not None
            and tuple(semantic_net.config.class_names) != tuple(depth_net.config.class_names)
        ):
            raise ValueError(
                f"semantic network classes {semantic_net.config.class_names} differ from the "
                f"depth network's {depth_net.config.class_names}"
            )
        self.net = depth_net
        self.semantic_net = semantic_net
        self.combine_labels = bool(combine_labels)
        #: (axis, sign) of world up for the semantic network's gravity input, once the
        #: reconstructor has settled it (``set_up``); until then each keyframe's own guess.
        self.world_up: tuple[int, float] | None = None
        self.depth_source = depth_source
        self.stereo = stereo or StereoSettings()
        self.device = torch.device(device)
        self.history: deque[_Keyframe] = deque(maxlen=self.stereo.history)
        #: The last keyframe's result (for evaluation and diagnostics).
        self.last_result: DepthResult | None = None
        #: Milliseconds of the last keyframe's fine sweep (None: it did not run), part of its depth.
        self.last_fine_sweep_ms: float | None = None
        #: Milliseconds of the last keyframe's plane fill (None: it did not run), part of it too.
        self.last_plane_fill_ms: float | None = None
        #: Milliseconds of the last keyframe's semantic network (None: it did not run), too.
        self.last_semantic_ms: float | None = None

    def reset(self) -> None:
        self.history.clear()
        self.last_result = None

    def set_up(self, axis: int, sign: float) -> None:
        """World up of the session (the reconstructor's window policy)."""
        if axis not in (0, 1, 2) or sign not in (1, -1):
            raise ValueError(f"up axis/sign: expected 0-2 and +-1, got {axis}, {sign}")
        self.world_up = (int(axis), float(sign))

    def _network_view(
        self, image: np.ndarray, camera: PinholeCamera
    ) -> tuple[torch.Tensor, PinholeCamera]:
        width, height = self.net.config.image_size
        tensor = resize_image_tensor(image_to_tensor(image, self.device), width, height)
        return tensor, camera.resized(width, height)

    def _fine_view(
        self,
        image: np.ndarray,
        camera: PinholeCamera,
        network_image: torch.Tensor,
        network_camera: PinholeCamera,
    ) -> tuple[torch.Tensor, PinholeCamera]:
        """The colour (3, H, W) image and camera of the fine sweep: the network's input, or the
        camera's image (at most ``fine_max_width`` wide) where that is wider."""
        limit = self.stereo.fine_max_width
        if limit <= network_camera.width or camera.width <= network_camera.width:
            return network_image, network_camera
        width = min(camera.width, limit)
        height = max(1, round(camera.height * width / camera.width))
        colour = resize_image_tensor(image_to_tensor(image, self.device), width, height)
        return colour, camera.resized(width, height)

    def _partners(
        self, K: np.ndarray, T_world_cam: np.ndarray, hw: tuple[int, int]
    ) -> list[_Keyframe]:
        candidates = list(self.history)
        if not candidates:
            return []
        s = self.stereo
        chosen = select_stereo_partners(
            K,
            T_world_cam,
            hw,
            [c.K for c in candidates],
            [c.T_world_cam for c in candidates],
            [hw] * len(candidates),
            count=s.partners,
            min_baseline=s.min_baseline,
            max_baseline=s.max_baseline,
            ideal_baseline=s.ideal_baseline,
            max_angle_deg=s.max_angle_deg,
            min_overlap=s.min_overlap,
        )
        return [candidates[i] for i in chosen]

    def depth_for_keyframe(self, *args, **kwargs) -> DepthResult:
        """See ``_depth_for_keyframe``; remembers the result in ``last_result``."""
        self.last_fine_sweep_ms = self.last_plane_fill_ms = self.last_semantic_ms = None
        self.last_result = self._depth_for_keyframe(*args, **kwargs)
        return self.last_result

    @torch.inference_mode()
    def _depth_for_keyframe(
        self,
        image: np.ndarray,
        camera: PinholeCamera,
        T_world_cam: np.ndarray,
        depth: np.ndarray | None = None,
        depth_camera: PinholeCamera | None = None,
        T_cam_depth: np.ndarray | None = None,
    ) -> DepthResult:
        """Depth, confidence, colour and labels of one keyframe (module docstring).

        Args:
            image: (H, W, 3) uint8 RGB; camera: its intrinsics; T_world_cam: (4, 4).
            depth: optional (Hd, Wd) float32 metres (0 unknown) from an RGB-D sensor.
            depth_camera: the depth image's intrinsics (default: ``camera``, registered depth).
            T_cam_depth: (4, 4) depth optical frame in the colour optical frame (default:
                identity, registered depth).
        """
        use_sensor = depth is not None and self.depth_source in ("auto", "sensor")
        network_image = network_camera = None
        if self.net is not None:
            network_image, network_camera = self._network_view(image, camera)
            encoded = self.net.encode_view(network_image[None])
            colour_fine = fine_camera = None
            if self.stereo.fine_sweep:
                colour_fine, fine_camera = self._fine_view(
                    image, camera, network_image, network_camera
                )
            keyframe = _Keyframe(
                encoded.match[0],
                encoded.grey[0],
                network_camera.K,
                np.array(T_world_cam),
                grey_full=grey_image(colour_fine[None])[0] if colour_fine is not None else None,
                K_fine=fine_camera.K if fine_camera is not None else None,
            )
        if use_sensor:
            result = self._sensor_depth(
                image,
                camera,
                T_world_cam,
                depth,
                depth_camera,
                T_cam_depth,
                encoded if self.net is not None else None,
                (network_image, network_camera),
            )
        elif self.net is None:
            return DepthResult("waiting")
        else:
            partners = self._partners(
                network_camera.K, T_world_cam, (network_camera.height, network_camera.width)
            )
            if not partners:
                self.history.append(keyframe)
                return DepthResult("waiting")
            T_world_ref = np.asarray(T_world_cam, dtype=np.float64)
            source_match = torch.stack([p.match for p in partners])[None]
            source_grey = torch.stack([p.grey for p in partners])[None]
            K_src = torch.as_tensor(np.stack([p.K for p in partners]), dtype=torch.float32)
            T_src_ref = torch.as_tensor(
                np.stack([invert_pose(p.T_world_cam) @ T_world_ref for p in partners]),
                dtype=torch.float32,
            )
            output = self.net.forward_encoded(
                encoded,
                source_match,
                source_grey,
                torch.as_tensor(network_camera.K, dtype=torch.float32, device=self.device)[None],
                K_src[None].to(self.device),
                T_src_ref[None].to(self.device),
            )
            half = _half_camera(network_camera)
            confidence = output.confidence[0]
            predicted = output.depth[0].clone()
            labels_logits = output.semantic_logits[0]
            depth_camera_out = half
            refined = torch.zeros_like(predicted, dtype=torch.bool)
            if self.stereo.fine_sweep and all(p.grey_full is not None for p in partners):
                predicted, confidence, refined, score = self._fine_sweep(
                    predicted, confidence, keyframe, partners, T_src_ref
                )
                labels_logits = F.interpolate(
                    labels_logits[None], size=predicted.shape, mode="nearest"
                )[0]
                depth_camera_out = fine_camera
            # Labels that vote into the map. The plane fill keeps the head's: it was tuned
            # with them, and on validation scenes the semantic network's changed the geometry
            # for the worse (F-score 0.545 -> 0.535) while improving the labels.
            vote_logits = labels_logits
            if self.semantic_net is not None:
                trusted = (confidence >= self.stereo.min_confidence) | refined
                vote_logits = self._semantic_logits(
                    network_image,
                    network_camera,
                    torch.where(trusted, predicted, torch.zeros_like(predicted)),
                    T_world_cam,
                    head_logits=labels_logits,
                )
            if depth_camera_out is fine_camera and self.stereo.plane_fill:
                started = time.perf_counter()
                filled = plane_fill(
                    predicted,
                    refined & (score >= self.stereo.plane_fill_min_ncc),
                    labels_logits.argmax(dim=0),
                    torch.as_tensor(fine_camera.K, dtype=predicted.dtype),
                    self._planar_classes(),
                    max_change=self.stereo.plane_fill_max_change,
                    **self._wall_feet_classes(),
                )
                predicted = filled.depth
                confidence = torch.where(
                    filled.filled, confidence.clamp(min=self.stereo.min_confidence), confidence
                )
                refined = refined | filled.filled
                vote_logits = self._floor_labels(
                    vote_logits, predicted, fine_camera.K, filled.planes_of
                )
                self.last_plane_fill_ms = (time.perf_counter() - started) * 1e3
            predicted[(confidence < self.stereo.min_confidence) & ~refined] = 0.0
            if self.stereo.guess_weight != 1.0 and depth_camera_out is fine_camera:
                confidence = torch.where(refined, confidence, confidence * self.stereo.guess_weight)
            predicted = self._consistent(predicted, depth_camera_out.K, T_world_ref, partners)
            if self.stereo.near_weighting_depth > 0:
                # Stereo depth error grows with the square of depth: far views count less.
                scale = (self.stereo.near_weighting_depth / predicted.clamp(min=1e-3)) ** 2
                confidence = confidence * scale.clamp(max=1.0)
            labels = vote_logits.argmax(dim=0)
            # colour at the depth's size: the fine sweep's own image, else the network's input
            if depth_camera_out is fine_camera:
                rgb = colour_fine
            else:
                rgb = resize_image_tensor(
                    network_image, depth_camera_out.width, depth_camera_out.height
                )
            keyframe.depth, keyframe.K_depth = predicted, depth_camera_out.K
            result = DepthResult(
                "mvs",
                depth=predicted,
                K=depth_camera_out.K,
                T_world_depth=np.asarray(T_world_cam, dtype=np.float64),
                confidence=confidence,
                rgb=rgb,
                labels=labels,
                partners=len(partners),
            )
        if self.net is not None:
            self.history.append(keyframe)
        return result

    def _semantic_logits(
        self,
        network_image: torch.Tensor,
        network_camera: PinholeCamera,
        depth: torch.Tensor,
        T_world_cam: np.ndarray,
        out_size: tuple[int, int] | None = None,
        head_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(C, h, w) class scores of the semantic network for a keyframe (log-probabilities;
        with ``combine_labels``, plus the head's).

        Args:
            network_image: (3, H, W) colour at ``network_camera``.
            depth: (h, w) metres (0 unknown) covering the same view as the image (any size).
            T_world_cam: (4, 4) the camera's pose (gravity, ``up_in_camera``).
            out_size: (h, w) of the logits; default the depth's.
            head_logits: (C, h', w') the depth network head's logits of the same view.
        """
        started = time.perf_counter()
        net = self.semantic_net
        width, height = net.config.image_size
        image = network_image
        camera = network_camera
        if (network_camera.width, network_camera.height) != (width, height):
            image = resize_image_tensor(network_image, width, height)
            camera = network_camera.resized(width, height)
        depth_in = F.interpolate(
            depth[None, None].float(), size=(height, width), mode="nearest-exact"
        )
        up = torch.as_tensor(
            up_in_camera(T_world_cam, self.world_up), dtype=torch.float32, device=self.device
        )
        K = torch.as_tensor(camera.K, dtype=torch.float32, device=self.device)
        logits = net(image[None], depth_in, K[None], up[None])
        size = out_size or tuple(depth.shape)
        scores = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        scores = F.log_softmax(scores, dim=1)
        if self.combine_labels and head_logits is not None:
            head = F.interpolate(head_logits[None], size=size, mode="bilinear", align_corners=False)
            scores = scores + F.log_softmax(head, dim=1)
        self.last_semantic_ms = (time.perf_counter() - started) * 1e3
        return scores[0]

    def _planar_classes(self) -> tuple[int, ...]:
        names = list(self.net.config.class_names)
        return tuple(names.index(n) for n in PLANAR_CLASS_NAMES if n in names)

    def _floor_labels(self, logits, depth, K, planes_of: dict) -> torch.Tensor:
        """``withdraw_floor_above_plane`` with the keyframe's best floor plane, when the
        setting is on and a floor plane was found."""
        names = list(self.net.config.class_names)
        height = self.stereo.floor_label_max_height
        if height <= 0 or "floor" not in names:
            return logits
        floor = names.index("floor")
        if len(planes_of.get(floor, ())) == 0:
            return logits
        return withdraw_floor_above_plane(
            logits, depth, torch.as_tensor(K, dtype=depth.dtype), planes_of[floor][0], floor, height
        )

    def _wall_feet_classes(self) -> dict:
        """``plane_fill``'s wall and base classes (none when the setting is off or the network
        has no wall class)."""
        names = list(self.net.config.class_names)
        if not self.stereo.plane_fill_wall_feet or "wall" not in names:
            return {}
        bases = tuple(names.index(n) for n in ("floor", "ceiling") if n in names)
        return {"wall_class": names.index("wall"), "base_classes": bases}

    def _fine_sweep(
        self,
        depth: torch.Tensor,
        confidence: torch.Tensor,
        keyframe: _Keyframe,
        partners: list[_Keyframe],
        T_src_ref: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The network's (h, w) depth refined at the fine sweep's size (``_fine_view``) by
        ``fine_sweep``: (depth, confidence, refined, peak NCC); refined pixels are confident
        whatever the network said, the others keep the network's confidence."""
        cfg, s = self.net.config, self.stereo
        started = time.perf_counter()
        result = fine_sweep(
            depth[None],
            keyframe.grey_full[None],
            torch.stack([p.grey_full for p in partners])[None],
            torch.as_tensor(keyframe.K_fine, dtype=torch.float32, device=self.device)[None],
            torch.as_tensor(
                np.stack([p.K_fine for p in partners]), dtype=torch.float32, device=self.device
            )[None],
            T_src_ref[None].to(self.device),
            plane_step=(1.0 / cfg.near - 1.0 / cfg.far) / (cfg.planes - 1),
            hypotheses=s.fine_hypotheses,
            span=s.fine_span,
            window=s.fine_window,
            min_score=s.fine_min_ncc,
        )
        size = tuple(result.depth.shape[-2:])
        confidence = F.interpolate(confidence[None, None], size=size, mode="bilinear",
                                   align_corners=False)[0, 0]  # fmt: skip
        refined = result.refined[0]
        confidence = torch.where(refined, confidence.clamp(min=s.min_confidence), confidence)
        self.last_fine_sweep_ms = (time.perf_counter() - started) * 1e3
        return result.depth[0], confidence, refined, result.score[0]

    def _consistent(
        self, depth: torch.Tensor, K: np.ndarray, T_world_cam: np.ndarray, partners: list
    ) -> torch.Tensor:
        """``depth`` with pixels that no partner's depth confirms set to 0 (geometric
        consistency, as classical MVS fusion filters): each pixel's point is projected into the
        partners that have a depth; it is confirmed by one whose depth there is within the
        tolerance of the point's depth in that view. Kept as is when no partner has a depth."""
        s = self.stereo
        judges = [p for p in partners if p.depth is not None]
        if s.min_consistent_views <= 0 or not judges:
            return depth
        height, width = depth.shape
        device = depth.device
        K_t = torch.as_tensor(K, dtype=torch.float32, device=device)
        points = (pixel_rays(K_t, height, width) * depth).reshape(3, -1)
        votes = torch.zeros(height * width, device=device)
        for judge in judges:
            T = torch.as_tensor(
                invert_pose(judge.T_world_cam) @ np.asarray(T_world_cam), dtype=torch.float32
            ).to(device)
            cam = T[:3, :3] @ points + T[:3, 3:]
            Kj = torch.as_tensor(judge.K_depth, dtype=torch.float32, device=device)
            z = cam[2]
            safe = torch.where(z > 1e-3, z, torch.ones_like(z))
            pu = torch.round(Kj[0, 0] * cam[0] / safe + Kj[0, 2]).long()
            pv = torch.round(Kj[1, 1] * cam[1] / safe + Kj[1, 2]).long()
            jh, jw = judge.depth.shape
            inside = (z > 1e-3) & (pu >= 0) & (pu < jw) & (pv >= 0) & (pv < jh)
            seen = judge.depth.reshape(-1).take(pv.clamp(0, jh - 1) * jw + pu.clamp(0, jw - 1))
            agree = inside & (seen > 0) & ((seen - z).abs() <= s.consistency_tolerance * z)
            votes += agree.float()
        keep = votes.view(height, width) >= min(s.min_consistent_views, len(judges))
        return torch.where(keep, depth, torch.zeros_like(depth))

    def _sensor_depth(
        self, image, camera, T_world_cam, depth, depth_camera, T_cam_depth, encoded, network_view
    ) -> DepthResult:
        """The RGB-D keyframe's depth, colour and labels; ``encoded`` and ``network_view``
        (image, camera) are the depth network's encoding and input of the colour image (None
        without a depth network)."""
        depth_t = torch.as_tensor(
            np.nan_to_num(np.asarray(depth, dtype=np.float32)), device=self.device
        )
        depth_t = torch.where(depth_t > 0, depth_t, torch.zeros_like(depth_t))
        height, width = depth_t.shape
        depth_camera = depth_camera or camera
        if (depth_camera.width, depth_camera.height) != (width, height):
            raise ValueError(
                f"depth: {width}x{height} px, its camera info says "
                f"{depth_camera.width}x{depth_camera.height}"
            )
        registered = T_cam_depth is None or np.allclose(T_cam_depth, np.eye(4), atol=1e-6)
        colour = image_to_tensor(image, self.device)
        labels = None
        if self.net is not None:
            label_camera = _half_camera(camera.resized(*self.net.config.image_size))
            if self.semantic_net is not None:
                network_image, network_camera = network_view
                depth_in_view = (
                    depth_t
                    if registered
                    else depth_in_colour_view(
                        depth_t,
                        depth_camera.K,
                        network_camera,
                        np.asarray(T_cam_depth, dtype=np.float64),
                    )
                )
                head_logits = self.net.forward_encoded(
                    encoded, None, None, None, None, None
                ).semantic_logits[0]
                label_image = self._semantic_logits(
                    network_image,
                    network_camera,
                    depth_in_view,
                    T_world_cam,
                    out_size=(network_camera.height, network_camera.width),
                    head_logits=head_logits,
                ).argmax(dim=0)
                label_camera = network_camera
            else:
                logits = self.net.forward_encoded(
                    encoded, None, None, None, None, None
                ).semantic_logits[0]
                label_image = logits.argmax(dim=0)  # at half the network size
        if registered:
            rgb = resize_image_tensor(colour, width, height)
            if self.net is not None:
                labels = F.interpolate(
                    label_image[None, None].float(), size=(height, width), mode="nearest"
                )[0, 0].long()
            T_world_depth = np.asarray(T_world_cam, dtype=np.float64)
        else:
            T = np.asarray(T_cam_depth, dtype=np.float64)
            rgb = sample_at_depth_pixels(colour, camera.K, depth_t, depth_camera.K, T)
            if self.net is not None:
                labels = sample_at_depth_pixels(
                    label_image[None].float(),
                    label_camera.K,
                    depth_t,
                    depth_camera.K,
                    T,
                    mode="nearest",
                )[0].long()
                labels[depth_t <= 0] = IGNORE_LABEL
            T_world_depth = np.asarray(T_world_cam, dtype=np.float64) @ T
        return DepthResult(
            "sensor",
            depth=depth_t,
            K=depth_camera.K,
            T_world_depth=T_world_depth,
            confidence=(depth_t > 0).float(),
            rgb=rgb,
            labels=labels,
        )
