"""``AtlasReconstructor``: the plain Python API of live reconstruction, shared by the ROS node, the
offline bag replay and non-ROS users.

    cfg = ReconstructorConfig(device="auto")           # the fusion pipeline
    rec = AtlasReconstructor(None, cfg, depth_model="recon_ros/weights/depth_default.pt")
    for image, camera, T_world_cam, stamp_ns in frames:  # a PinholeCamera, integer ns
        rec.integrate_view(image, camera, T_world_cam, stamp_ns)  # keyframes; depth= for RGB-D
        rec.update()                                   # window -> global map
    mesh = rec.mesh(color_by="semantic")
    points = rec.semantic_points()
    rec.save("run/map")

Flow of the default ``"fusion"`` pipeline (``core.fusion_stage``): ``integrate`` gates frames by
motion; a keyframe gets depth (the RGB-D camera's, or the multi-view stereo network's over
earlier keyframes) and per-pixel labels, fused as a TSDF with colour and label votes into the
rolling window (``core.tsdf_volume``), which starts from the map's contents where it moves;
``update`` hands the window's changed voxels to the global map. Flow of the ``"atlas"``
pipeline (the paper's): 2D features of keyframes are back-projected into the window (running
average); ``update`` runs the 3D CNN over a snapshot of the window and merges the prediction
into the global map where frames arrived since the previous update. In both, when the window
must follow the camera it first flushes (runs ``update`` if frames were integrated since the last
one) and then shifts by whole chunks; ``mesh`` and ``semantic_points`` read the map.

Threads: ``integrate`` from one thread and ``update`` / ``mesh`` / ``semantic_points`` from
another is safe. ``update`` holds the window lock only to copy the window, runs the CNN without
locks and merges under the map's lock using the snapshot's origin, even if the window moved
meanwhile; meshing runs marching cubes outside the map lock. Memory is bounded: the window has
fixed dims and the map evicts chunks beyond ``max_map_chunks``.
"""

import copy
import json
import math
import os
import threading
import time
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.atlas_model import AtlasModel, feature_intrinsics
from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.backbone import FEATURE_STRIDE
from recon_ros.core.camera import (
    PinholeCamera,
    image_to_tensor,
    resize_image_tensor,
    validate_image,
    validate_intrinsics,
)
from recon_ros.core.checkpoint import load_atlas_model
from recon_ros.core.classes import DEFAULT_CLASSES, palette
from recon_ros.core.depth_checkpoint import load_depth_net
from recon_ros.core.depth_net import MVSDepthNet
from recon_ros.core.device import resolve_device
from recon_ros.core.fusion_stage import (
    DEPTH_SOURCES,
    LABEL_SOURCES,
    DepthFusionStage,
    StereoSettings,
)
from recon_ros.core.geometry import validate_pose
from recon_ros.core.global_map import MAX_WEIGHT_CAP, GlobalMap
from recon_ros.core.keyframes import KeyframeGate
from recon_ros.core.meshing import (
    COLOR_MODES,
    Mesh,
    SemanticPointCloud,
    colorize_mesh,
    semantic_point_cloud,
)
from recon_ros.core.model3d import DIMS_MULTIPLE
from recon_ros.core.occupancy import OccupancySlice
from recon_ros.core.refine_checkpoint import load_refine_net
from recon_ros.core.refine_net import SurfaceRefinerNet
from recon_ros.core.semantic_net import SemanticNet, load_semantic_net
from recon_ros.core.surface_refiner import SurfaceRefiner
from recon_ros.core.timing import StageTimer, StageTiming
from recon_ros.core.tsdf_volume import RollingTSDFVolume
from recon_ros.core.volume import RollingFeatureVolume
from recon_ros.core.window_policy import (
    AUTO_CAMERA_HEIGHTS,
    WindowPolicy,
    WindowPolicyConfig,
    floor_from_depth,
    resolve_auto_mode,
    up_axis_of,
    window_dims_for,
)

MAP_FORMAT = "recon_ros.atlas_map"
MAP_FORMAT_VERSION = 1
MAP_ARRAYS_FILE = "map.npz"
MAP_METADATA_FILE = "map.json"
#: Stages reported in ``stats.timings``.
STAGES = (
    "depth",
    "fusion",
    "feature_extraction",
    "backprojection",
    "window_shift",
    "cnn_3d",
    "merge",
    "meshing",
)
PIPELINES = ("fusion", "atlas")
#: Voxel size of the fusion pipeline when the config gives none.
DEFAULT_FUSION_VOXEL_SIZE = 0.04
#: ``ReconstructorConfig`` fields where None means "take the model's / derived value"; in
#: ``from_dict`` an empty string means None too (ROS parameters cannot be None).
_OPTIONAL_FIELDS = (
    "voxel_size",
    "image_size",
    "max_depth",
    "window_floor_z",
    "point_cell_size",
    "class_colors",
)


@dataclass(frozen=True)
class ReconstructorConfig:
    """Settings of ``AtlasReconstructor``.

    Attributes:
        voxel_size: metres; None: the model's (4 cm by default). Other values work but differ
            from what the model was trained on.
        window_dims: rolling window in voxels, multiples of ``chunk_size``; the last one is the
            vertical size. Default (160, 160, 96): 6.4 x 6.4 m centred 2.5 m ahead of the camera
            (fusion is cheap per voxel, and surfaces outside the window when seen are not
            mapped: on our test rooms a 3.84 m window kept half of the recall), 3.84 m high: the
            window's floor side sits on the chunk lattice (0.64 m steps) at least
            ``window_floor_margin`` below the floor, so up to 0.74 m of it lies below the floor,
            and 80 voxels cut ceilings above 2.46 m (4 validation scenes: F-score 0.490 -> 0.520
            from 80 to 96). The Atlas pipeline's 3D network costs grow with it; 96 x 96 x 80
            suits it.
        chunk_size: map chunk edge in voxels (multiple of 8); the window moves in these steps.
        max_map_chunks: memory cap of the global map (40 KiB per 16^3 chunk: 4096 ~ 160 MiB).
        map_weight_cap: largest per-voxel observation weight in the map.
        image_size: (width, height) network input, multiples of 32; None: the model's.
        max_depth: back-projection depth limit in metres; None: the model's; 0: no limit.
        device: "auto" (CUDA if available), "cpu", "cuda", "cuda:N".
        keyframe_min_translation: metres (0 disables the test).
        keyframe_min_rotation_deg: degrees (0 disables the test).
        window_*: placement of the window, see ``core.window_policy``.
        mesh_saturation: |TSDF| beyond which voxels count as outside the surface band.
        point_cell_size: spacing of ``semantic_points``; None: the voxel size.
        class_colors: per-class RGB colours overriding the palette of ``core.classes``.
        pipeline: ``"fusion"`` (default: per-keyframe depth fused as a TSDF, labels voted from
            the depth network's semantic head; ``core.fusion_stage``) or ``"atlas"`` (the paper's
            features-only Atlas: back-projected features, the 3D network predicts the TSDF).
        depth_source: fusion pipeline: ``"auto"`` (sensor depth while it arrives, else
            multi-view stereo), ``"mvs"`` or ``"sensor"``.
        labels_from: fusion pipeline, with a semantic network given: ``"combined"`` (its class
            probabilities multiplied with the depth network head's), ``"semantic_network"``
            (its alone) or ``"depth_network"`` (the head's alone; the semantic network unused).
        truncation_voxels: TSDF truncation of the fusion of sensor depth, in voxels.
        stereo_truncation_voxels: the same for stereo depth: its errors (about 10 % of depth)
            exceed a 3-voxel band, and a wider band lets the views average into one surface
            (on our validation scenes 8 voxels raised the F-score from 0.20 to 0.23, and
            ``stereo_near_weighting_m`` 1.5 on top to 0.25).
        stereo_partners, stereo_min_baseline, stereo_max_baseline: stereo partner choice
            (``core.partners.select_stereo_partners``).
        min_depth_confidence: stereo depth below this confidence is not fused.
        stereo_min_consistent_views: stereo depth is fused where this many earlier keyframes'
            depths agree with it (0: no check; see ``core.fusion_stage``).
        stereo_near_weighting_m: > 0: stereo depth's fusion weight falls as (this / depth)^2
            beyond this depth (stereo error grows with the square of depth); 0: off.
        stereo_fine_sweep: refine the depth network's output by a narrow NCC sweep at its
            input size (``core.fine_sweep``; on 2 validation scenes F-score 0.28 -> 0.40);
            ``stereo_fine_min_ncc``: the peak NCC a pixel needs to take the swept depth (0.2
            chosen on the same scenes: 0.7, 0.5, 0.3, 0.2, 0.1 gave 0.34, 0.36, 0.39, 0.40,
            0.40).
        stereo_fine_max_width: the fine sweep runs at the camera's own resolution, at most
            this wide, where that is wider than the network's input (0: the network's input;
            320 chosen on 4 validation scenes: F-score 0.467 at the input, 0.490 at 320).
        stereo_plane_fill: with the fine sweep, unrefined pixels of floor, wall and ceiling take
            the depth of the plane their class's refined pixels define (``core.plane_fill``; on
            4 validation scenes, with the sweep 320 wide: F-score 0.415 -> 0.490).
        stereo_wall_feet: with the plane fill, walls also take upright planes through their
            boundary with the floor's and the ceiling's planes (``core.plane_fill.wall_feet``).
        stereo_guess_weight: with the fine sweep, the fusion weight factor of stereo pixels
            neither matching nor a plane explains (the network's own guess), so that keyframes
            whose depth has evidence outvote it (on 4 validation scenes: F-score 0.554 at 1,
            0.566 at 0.3).
        stereo_floor_label_height_m: > 0: with the plane fill, pixels labelled floor more than
            this high above the keyframe's floor plane take their next class
            (``core.floor_labels``); 0: off.
        mesh_min_weight: voxels observed with less weight (fusion: confidence sum, rounded up;
            atlas: frames) are left out of the mesh.

    Nothing in the reconstructor is random: the same frames give the same map.
    """

    voxel_size: float | None = None
    window_dims: tuple[int, int, int] = (160, 160, 96)
    chunk_size: int = 16
    max_map_chunks: int = 4096
    map_weight_cap: int = 64
    image_size: tuple[int, int] | None = None
    max_depth: float | None = None
    device: str = "auto"
    keyframe_min_translation: float = 0.1
    keyframe_min_rotation_deg: float = 15.0
    window_mode: str = "auto"
    window_forward_offset: float = 2.5
    window_floor_z: float | None = 0.0
    window_floor_margin: float = 0.1
    window_vertical_offset: float = 0.0
    window_hysteresis: float = 0.16
    mesh_saturation: float = 0.99
    point_cell_size: float | None = None
    class_colors: tuple[tuple[int, int, int], ...] | None = None
    pipeline: str = "fusion"
    depth_source: str = "auto"
    labels_from: str = "combined"
    truncation_voxels: float = 3.0
    stereo_partners: int = 3
    stereo_min_baseline: float = 0.05
    stereo_max_baseline: float = 0.6
    min_depth_confidence: float = 0.5
    stereo_min_consistent_views: int = 0
    stereo_near_weighting_m: float = 1.5
    stereo_fine_sweep: bool = True
    stereo_fine_min_ncc: float = 0.2
    stereo_fine_max_width: int = 320
    stereo_plane_fill: bool = True
    stereo_wall_feet: bool = True
    stereo_guess_weight: float = 0.3
    stereo_floor_label_height_m: float = 0.2
    stereo_truncation_voxels: float = 8.0
    mesh_min_weight: int = 1

    def __post_init__(self) -> None:
        def positive(name: str, value, allow_none: bool = False) -> None:
            if value is None and allow_none:
                return
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"{name}: must be a positive number, got {value!r}")

        positive("voxel_size", self.voxel_size, allow_none=True)
        positive("point_cell_size", self.point_cell_size, allow_none=True)
        if self.max_depth is not None and (
            not isinstance(self.max_depth, (int, float)) or not self.max_depth >= 0
        ):
            raise ValueError(
                f"max_depth: must be >= 0 (0: no limit) or None, got {self.max_depth!r}"
            )
        if not 0 <= self.stereo_floor_label_height_m < math.inf:
            raise ValueError(
                "stereo_floor_label_height_m: must be >= 0 (0: off), got "
                f"{self.stereo_floor_label_height_m!r}"
            )
        if int(self.chunk_size) != self.chunk_size or self.chunk_size <= 0:
            raise ValueError(f"chunk_size: must be a positive integer, got {self.chunk_size!r}")
        if self.chunk_size % DIMS_MULTIPLE:
            raise ValueError(
                f"chunk_size: must be a multiple of {DIMS_MULTIPLE} (the 3D network's "
                f"downsampling), got {self.chunk_size}"
            )
        dims = tuple(int(d) for d in self.window_dims)
        if len(dims) != 3 or min(dims) <= 0 or any(d % self.chunk_size for d in dims):
            raise ValueError(
                f"window_dims: expected three positive multiples of chunk_size={self.chunk_size}, "
                f"got {self.window_dims}"
            )
        object.__setattr__(self, "window_dims", dims)
        window_chunks = math.prod(d // self.chunk_size for d in dims)
        if int(self.max_map_chunks) != self.max_map_chunks or self.max_map_chunks < window_chunks:
            raise ValueError(
                f"max_map_chunks: must be an integer >= the {window_chunks} chunks of the window, "
                f"got {self.max_map_chunks}"
            )
        if not 1 <= self.map_weight_cap <= MAX_WEIGHT_CAP:
            raise ValueError(
                f"map_weight_cap: must be in [1, {MAX_WEIGHT_CAP}], got {self.map_weight_cap}"
            )
        if self.image_size is not None:
            size = tuple(int(s) for s in self.image_size)
            if len(size) != 2 or min(size) <= 0 or any(s % 32 for s in size):
                raise ValueError(
                    f"image_size: (width, height) multiples of 32, got {self.image_size}"
                )
            object.__setattr__(self, "image_size", size)
        for name in ("keyframe_min_translation", "keyframe_min_rotation_deg"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: must be >= 0 (0 disables), got {value!r}")
        if not isinstance(self.device, str) or not self.device:
            raise ValueError(f"device: expected 'auto', 'cpu' or 'cuda[:N]', got {self.device!r}")
        if not 0.0 < self.mesh_saturation <= 1.0:
            raise ValueError(f"mesh_saturation: must be in (0, 1], got {self.mesh_saturation}")
        if self.class_colors is not None:
            colors = tuple(tuple(int(c) for c in color) for color in self.class_colors)
            if any(len(c) != 3 or min(c) < 0 or max(c) > 255 for c in colors):
                raise ValueError(
                    f"class_colors: expected [r, g, b] triples in 0..255, got {self.class_colors}"
                )
            object.__setattr__(self, "class_colors", colors)
        self.window_policy_config()  # validates the window_* fields
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline: expected one of {PIPELINES}, got {self.pipeline!r}")
        if self.depth_source not in DEPTH_SOURCES:
            raise ValueError(
                f"depth_source: expected one of {DEPTH_SOURCES}, got {self.depth_source!r}"
            )
        if self.labels_from not in LABEL_SOURCES:
            raise ValueError(
                f"labels_from: expected one of {LABEL_SOURCES}, got {self.labels_from!r}"
            )
        for name in ("truncation_voxels", "stereo_truncation_voxels"):
            if not 0.5 <= getattr(self, name) <= 20:
                raise ValueError(f"{name}: must be in [0.5, 20], got {getattr(self, name)}")
        if not 1 <= int(self.stereo_partners) <= 4:
            raise ValueError(f"stereo_partners: must be 1-4, got {self.stereo_partners}")
        if not 0 <= self.stereo_min_baseline < self.stereo_max_baseline:
            raise ValueError(
                f"stereo baselines: need 0 <= min < max, got {self.stereo_min_baseline}, "
                f"{self.stereo_max_baseline}"
            )
        if int(self.mesh_min_weight) != self.mesh_min_weight or self.mesh_min_weight < 1:
            raise ValueError(
                f"mesh_min_weight: must be an integer >= 1, got {self.mesh_min_weight}"
            )
        if not 0 <= int(self.stereo_min_consistent_views) <= 4:
            raise ValueError(
                f"stereo_min_consistent_views: must be 0-4, got {self.stereo_min_consistent_views}"
            )
        if not -1 <= self.stereo_fine_min_ncc <= 1:
            raise ValueError(
                f"stereo_fine_min_ncc: must be in [-1, 1], got {self.stereo_fine_min_ncc}"
            )
        if not 0 <= self.stereo_guess_weight <= 1:
            raise ValueError(
                f"stereo_guess_weight: must be in [0, 1], got {self.stereo_guess_weight}"
            )
        if not 0 <= int(self.stereo_fine_max_width) <= 4096:
            raise ValueError(
                f"stereo_fine_max_width: must be 0-4096, got {self.stereo_fine_max_width}"
            )
        if not 0 <= self.min_depth_confidence < 1:
            raise ValueError(
                f"min_depth_confidence: must be in [0, 1), got {self.min_depth_confidence}"
            )

    def stereo_settings(self) -> StereoSettings:
        return StereoSettings(
            partners=int(self.stereo_partners),
            min_baseline=self.stereo_min_baseline,
            max_baseline=self.stereo_max_baseline,
            min_confidence=self.min_depth_confidence,
            min_consistent_views=int(self.stereo_min_consistent_views),
            near_weighting_depth=float(self.stereo_near_weighting_m),
            fine_sweep=bool(self.stereo_fine_sweep),
            fine_min_ncc=float(self.stereo_fine_min_ncc),
            fine_max_width=int(self.stereo_fine_max_width),
            plane_fill=bool(self.stereo_plane_fill),
            plane_fill_wall_feet=bool(self.stereo_wall_feet),
            guess_weight=float(self.stereo_guess_weight),
            floor_label_max_height=float(self.stereo_floor_label_height_m),
        )

    def window_policy_config(self) -> WindowPolicyConfig:
        return WindowPolicyConfig(
            mode=self.window_mode,
            forward_offset=self.window_forward_offset,
            floor_z=self.window_floor_z,
            floor_margin=self.window_floor_margin,
            vertical_offset=self.window_vertical_offset,
            hysteresis=self.window_hysteresis,
        )

    @classmethod
    def from_dict(cls, values: Mapping) -> "ReconstructorConfig":
        """Config from YAML or ROS parameter values: unknown keys raise ValueError, lists become
        tuples, and for the optional fields an empty string means None."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"reconstructor config: unknown keys {unknown}")
        cleaned = {}
        for key, raw in values.items():
            value = raw
            if key in _OPTIONAL_FIELDS and (raw is None or raw == ""):
                value = None
            elif isinstance(raw, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in raw)
            cleaned[key] = value
        try:
            return cls(**cleaned)
        except TypeError as error:
            raise ValueError(f"reconstructor config: {error}") from error

    def to_dict(self) -> dict:
        """JSON-able dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass(frozen=True)
class IntegrateResult:
    """What ``integrate`` did with a frame.

    Attributes:
        integrated: the frame was back-projected into the window.
        reason: ``"integrated"`` or ``"not_keyframe"``.
        window_shifted: the window moved before integrating this frame.
        flushed: ``update`` ran before the shift so nothing observed was lost.
        voxels_seen: window voxels inside the frame's frustum.
        stamp_ns: the frame's time stamp (integer nanoseconds, as given).
    """

    integrated: bool
    reason: str
    window_shifted: bool = False
    flushed: bool = False
    voxels_seen: int = 0
    stamp_ns: int = 0

    @property
    def stamp(self) -> float:
        """The time stamp in seconds."""
        return self.stamp_ns * 1e-9


@dataclass(frozen=True)
class UpdateResult:
    """What ``update`` did: ``ran`` is False when there was nothing new to predict."""

    ran: bool
    chunks_updated: int = 0
    chunks_created: int = 0
    voxels_updated: int = 0
    chunks_evicted: int = 0


@dataclass(frozen=True)
class WindowInfo:
    """The rolling window: ``origin`` (3,) world centre of voxel (0, 0, 0), ``origin_index``
    (3,) its integer voxel index, ``dims``, ``voxel_size``; ``placed`` is False until the first
    keyframe positions it; ``bounds`` gives the lower and upper corners in metres."""

    origin: np.ndarray
    origin_index: np.ndarray
    dims: tuple[int, int, int]
    voxel_size: float
    placed: bool = True

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower = self.origin - 0.5 * self.voxel_size
        return lower, lower + np.asarray(self.dims) * self.voxel_size


@dataclass(frozen=True)
class ReconstructorStats:
    """Counters and per-stage timings (milliseconds, last and mean)."""

    counters: dict[str, int]
    timings: dict[str, StageTiming]
    map_chunks: int
    map_bytes: int
    map_chunks_evicted: int

    def as_dict(self) -> dict:
        return {
            "counters": dict(self.counters),
            "timings": {k: asdict(v) for k, v in self.timings.items()},
            "map_chunks": self.map_chunks,
            "map_bytes": self.map_bytes,
            "map_chunks_evicted": self.map_chunks_evicted,
        }


_COUNTERS = (
    "frames_received",
    "keyframes_integrated",
    "frames_skipped_not_keyframe",
    "updates",
    "window_shifts",
    "flushes",
    "unmerged_voxels_dropped",
    "chunks_evicted",
    "keyframes_waiting_for_partners",
    "keyframes_sensor_depth",
    "keyframes_stereo_depth",
)


@dataclass
class _State:
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTERS, 0))
    last_camera_position: np.ndarray | None = None
    #: False until the first keyframe places the window (it waits around the world origin).
    window_placed: bool = False
    #: ``window_mode "auto"`` without a plausible configured floor: the floor is looked for in
    #: the keyframes' depth (``floor_estimate``: its height along world up once found).
    floor_search: bool = False
    floor_estimate: float | None = None
    window_note_base: str = ""


class AtlasReconstructor:
    """Live reconstruction into a persistent, labelled global map.

    Args:
        model: the Atlas network (``AtlasModel`` or checkpoint path): required by the ``"atlas"``
            pipeline; the ``"fusion"`` pipeline does not use it (may be None).
        config: settings (default ``ReconstructorConfig()``).
        depth_model: the multi-view depth network (``MVSDepthNet`` or checkpoint path) of the
            ``"fusion"`` pipeline: stereo depth and semantic labels. None: sensor depth only,
            without labels.
        refine_model: the 3D refinement network (``SurfaceRefinerNet`` or checkpoint path) of the
            ``"fusion"`` pipeline: meshes show its labels (``refine_mode "labels"``) or its TSDF
            and labels (``"full"``) for the chunks with fused surface (``core.surface_refiner``).
            None: fusion alone.
        semantic_model: the semantic network (``SemanticNet`` or checkpoint path) of the
            ``"fusion"`` pipeline: each keyframe's labels from its colour and depth
            (``core.semantic_net``). None: the depth network's semantic head labels.
    """

    def __init__(
        self,
        model: AtlasModel | str | os.PathLike | None = None,
        config: ReconstructorConfig | None = None,
        depth_model: MVSDepthNet | str | os.PathLike | None = None,
        refine_model: SurfaceRefinerNet | str | os.PathLike | None = None,
        refine_mode: str = "labels",
        semantic_model: SemanticNet | str | os.PathLike | None = None,
    ) -> None:
        self.config = config or ReconstructorConfig()
        self.device = resolve_device(self.config.device)
        self.pipeline = self.config.pipeline
        cfg = self.config
        self.model = None
        self.model_metadata: dict = {}
        self.semantic_metadata: dict = {}
        if self.pipeline == "atlas":
            if model is None:
                raise ValueError("model: the atlas pipeline needs an Atlas checkpoint")
            if isinstance(model, (str, os.PathLike)):
                model, self.model_metadata = load_atlas_model(model, self.device)
            elif isinstance(model, AtlasModel):
                model = model.to(self.device).eval()
                self.model_metadata = {"model_config": model.config.to_dict(), "trained": None}
            else:
                raise ValueError(
                    f"model: expected an AtlasModel or a checkpoint path, got "
                    f"{type(model).__name__}"
                )
            self.model = model
            model_config = model.config
            self.voxel_size = float(cfg.voxel_size or model_config.voxel_size)
            self.image_size = tuple(cfg.image_size or model_config.image_size)
            default_max_depth = model_config.max_depth
            self.class_names = tuple(model_config.class_names)
            self.stage = None
        else:
            depth_net = None
            if isinstance(depth_model, (str, os.PathLike)):
                depth_net, self.model_metadata = load_depth_net(depth_model, self.device)
            elif isinstance(depth_model, MVSDepthNet):
                depth_net = depth_model.to(self.device).eval()
                self.model_metadata = {"model_config": depth_net.config.to_dict(), "trained": None}
            elif depth_model is not None:
                raise ValueError(
                    f"depth_model: expected an MVSDepthNet or a checkpoint path, got "
                    f"{type(depth_model).__name__}"
                )
            self.depth_net = depth_net
            self.voxel_size = float(cfg.voxel_size or DEFAULT_FUSION_VOXEL_SIZE)
            self.image_size = depth_net.config.image_size if depth_net else (256, 192)
            default_max_depth = depth_net.config.far if depth_net else None
            self.class_names = (
                tuple(depth_net.config.class_names)
                if depth_net
                else tuple(c.name for c in DEFAULT_CLASSES)
            )
            semantic_net = None
            if isinstance(semantic_model, (str, os.PathLike)):
                semantic_net, self.semantic_metadata = load_semantic_net(
                    semantic_model, self.device
                )
            elif isinstance(semantic_model, SemanticNet):
                semantic_net = semantic_model.to(self.device).eval()
            elif semantic_model is not None:
                raise ValueError(
                    f"semantic_model: expected a SemanticNet or a checkpoint path, got "
                    f"{type(semantic_model).__name__}"
                )
            if semantic_net is not None and depth_net is None:
                raise ValueError(
                    "semantic_model: labels need the depth network too (its semantic head "
                    "and stereo); give depth_model"
                )
            if cfg.labels_from == "depth_network":
                semantic_net = None
            self.stage = DepthFusionStage(
                depth_net,
                cfg.depth_source,
                cfg.stereo_settings(),
                self.device,
                semantic_net,
                combine_labels=cfg.labels_from == "combined",
            )
            if cfg.window_mode != "auto":  # up as configured; "auto" settles it at keyframe 1
                policy = cfg.window_policy_config()
                self.stage.set_up(policy.up_axis, int(policy.up_sign))
        if cfg.max_depth is None:
            self.max_depth = default_max_depth
        else:
            self.max_depth = None if cfg.max_depth == 0 else float(cfg.max_depth)
        self.color_table = self._color_table()
        self.window_dims = cfg.window_dims
        self.policy = WindowPolicy(
            cfg.window_dims, self.voxel_size, cfg.chunk_size, cfg.window_policy_config()
        )
        self.map = GlobalMap(
            self.voxel_size,
            cfg.chunk_size,
            cfg.max_map_chunks,
            cfg.map_weight_cap,
            cfg.mesh_saturation,
            cfg.mesh_min_weight,
        )
        self.refine_metadata: dict = {}
        self.refiner = None
        #: Whether the 3D refinement runs, and why not when it does not.
        self.refinement_note = "3D refinement off (no refinement network)"
        if refine_model is not None:
            if self.pipeline != "fusion":
                raise ValueError("refine_model: the 3D refinement runs on the fusion pipeline")
            if isinstance(refine_model, (str, os.PathLike)):
                refine_model, self.refine_metadata = load_refine_net(refine_model, self.device)
            elif isinstance(refine_model, SurfaceRefinerNet):
                self.refine_metadata = {"trained": None}
            else:
                raise ValueError(
                    f"refine_model: expected a SurfaceRefinerNet or a checkpoint path, got "
                    f"{type(refine_model).__name__}"
                )
            if tuple(refine_model.config.class_names) != tuple(self.class_names):
                raise ValueError(
                    f"refine_model: classes {refine_model.config.class_names} differ from the "
                    f"depth network's {self.class_names}"
                )
            self.refiner = SurfaceRefiner(refine_model, device=self.device, mode=refine_mode)
            policy = cfg.window_policy_config()
            self.refiner.set_up(policy.up_axis, int(policy.up_sign))
            self.map.set_refiner(self.refiner)
            self.refinement_note = f"3D refinement on ({refine_mode}): chunks with fused surface"
        self._gate = KeyframeGate(cfg.keyframe_min_translation, cfg.keyframe_min_rotation_deg)
        synchronize = torch.cuda.synchronize if self.device.type == "cuda" else None
        self._timer = StageTimer(synchronize)
        self._state = _State()
        #: How the window follows the camera (for "auto": decided at the first keyframe).
        self.window_note = (
            "window mode 'auto': decided at the first keyframe"
            if cfg.window_mode == "auto"
            else f"window mode '{cfg.window_mode}' (configured)"
        )
        self._initial_origin_index = self.policy.snap(np.zeros(3))
        self._volume = self._new_volume(self._initial_origin_index)
        # integrate() is serialised by _integrate_lock; the window by _window_lock; update() by
        # _update_lock (so a flush and a background update never run the CNN at once); the map
        # has its own lock inside GlobalMap.
        self._integrate_lock = threading.Lock()
        self._window_lock = threading.RLock()
        self._update_lock = threading.Lock()
        self._counter_lock = threading.Lock()

    @property
    def trained(self) -> bool | None:
        """Whether the weights in use were trained (None: given as a module, unknown)."""
        return self.model_metadata.get("trained")

    # --- helpers -------------------------------------------------------------------------------

    def _color_table(self) -> np.ndarray:
        """(256, 3) uint8 class colours: the config's, else the default colour of each class name
        the model knows, grey otherwise."""
        if self.config.class_colors is not None:
            if len(self.config.class_colors) != len(self.class_names):
                raise ValueError(
                    f"class_colors: {len(self.config.class_colors)} colours for "
                    f"{len(self.class_names)} classes"
                )
            table = np.full((256, 3), 128, np.uint8)
            table[: len(self.class_names)] = np.asarray(self.config.class_colors, np.uint8)
            return table
        defaults = {c.name: c.color for c in DEFAULT_CLASSES}
        table = palette(())
        for i, name in enumerate(self.class_names):
            if name in defaults:
                table[i] = defaults[name]
        return table

    def _count(self, name: str, amount: int = 1) -> None:
        with self._counter_lock:
            self._state.counters[name] += amount

    def _new_volume(self, origin_index: np.ndarray):
        if self.pipeline == "fusion":
            return RollingTSDFVolume(
                self.window_dims,
                self.voxel_size,
                self.config.truncation_voxels * self.voxel_size,
                self.config.chunk_size,
                len(self.class_names),
                device=self.device,
                max_weight=float(self.config.map_weight_cap),
                max_depth=self.max_depth,
                origin_index=origin_index,
            )
        return RollingFeatureVolume(
            self.window_dims,
            self.voxel_size,
            self.config.chunk_size,
            self.model.config.feature_channels,
            device=self.device,
            max_depth=self.max_depth,
            origin_index=origin_index,
        )

    # --- public API ----------------------------------------------------------------------------

    def integrate(
        self,
        image: np.ndarray,
        K: np.ndarray,
        T_world_cam: np.ndarray,
        stamp: float = 0.0,
        depth: np.ndarray | None = None,
        K_depth: np.ndarray | None = None,
        T_cam_depth: np.ndarray | None = None,
    ) -> IntegrateResult:
        """``integrate_view`` for callers holding intrinsics matrices and seconds (datasets,
        scripts): ``K`` (3, 3) of ``image``, ``K_depth`` of ``depth`` (default ``K``: registered
        depth; then the sizes must match), ``stamp`` in seconds.

        Raises:
            ValueError: as ``integrate_view``; also bad intrinsics (zero focal length, NaN), a
                non-finite stamp.
        """
        validate_image(image)
        if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            raise ValueError(f"stamp: must be a finite number of seconds, got {stamp!r}")
        camera = PinholeCamera.from_matrix(K, image.shape[1], image.shape[0])
        depth_camera = None  # registered depth: integrate_view takes the image's camera
        if depth is not None and K_depth is not None and np.ndim(depth) == 2 and np.size(depth):
            height, width = np.shape(depth)
            depth_camera = PinholeCamera.from_matrix(
                validate_intrinsics(K_depth, "K_depth"), width, height
            )
        return self.integrate_view(
            image, camera, T_world_cam, round(stamp * 1e9), depth, depth_camera, T_cam_depth
        )

    def integrate_view(
        self,
        image: np.ndarray,
        camera: PinholeCamera,
        T_world_cam: np.ndarray,
        stamp_ns: int = 0,
        depth: np.ndarray | None = None,
        depth_camera: PinholeCamera | None = None,
        T_cam_depth: np.ndarray | None = None,
    ) -> IntegrateResult:
        """Offer a frame; keyframes go into the window (fused depth, or back-projected features
        in the ``"atlas"`` pipeline). The camera objects were validated when built; the image,
        pose and depth are checked here, once.

        Args:
            image: (H, W, 3) uint8 RGB, rectified.
            camera: intrinsics of ``image`` (its size).
            T_world_cam: (4, 4) pose of the optical frame in the world.
            stamp_ns: time stamp, integer nanoseconds (reported back, kept for bookkeeping).
            depth: optional (Hd, Wd) float32 metres from an RGB-D camera, 0 (or NaN) where
                unknown; used by the fusion pipeline unless ``depth_source`` is ``"mvs"``.
            depth_camera: intrinsics of ``depth`` (default ``camera``: registered depth; then
                the sizes must match).
            T_cam_depth: (4, 4) pose of the depth optical frame in the colour optical frame
                (default identity).

        Raises:
            ValueError: empty or malformed image or depth, a camera whose size is not the
                image's, a pose that is not rigid or holds NaN, a stamp that is not an integer.
        """
        validate_image(image)
        if not isinstance(camera, PinholeCamera):
            raise ValueError(f"camera: expected a PinholeCamera, got {type(camera).__name__}")
        if (camera.width, camera.height) != (image.shape[1], image.shape[0]):
            raise ValueError(
                f"camera: {camera.width}x{camera.height} px differs from the image's "
                f"{image.shape[1]}x{image.shape[0]}"
            )
        T_world_cam = validate_pose(T_world_cam)
        if isinstance(stamp_ns, bool) or not isinstance(stamp_ns, (int, np.integer)):
            raise ValueError(f"stamp_ns: must be integer nanoseconds, got {stamp_ns!r}")
        stamp_ns = int(stamp_ns)
        if depth is not None:
            depth = np.asarray(depth)
            if depth.ndim != 2 or depth.size == 0 or not np.issubdtype(depth.dtype, np.floating):
                raise ValueError(
                    f"depth: expected (H, W) float metres, got {depth.shape} {depth.dtype}"
                )
            depth_camera = depth_camera or camera
            if (depth_camera.width, depth_camera.height) != (depth.shape[1], depth.shape[0]):
                raise ValueError(
                    f"depth: {depth.shape[1]}x{depth.shape[0]} px differs from its camera's "
                    f"{depth_camera.width}x{depth_camera.height}; give the depth image's own "
                    "camera for unregistered depth"
                )
            if T_cam_depth is not None:
                T_cam_depth = validate_pose(T_cam_depth, "T_cam_depth")
        else:
            depth_camera = None
        if self.pipeline == "fusion":
            return self._integrate_fusion(
                image, camera, T_world_cam, stamp_ns, depth, depth_camera, T_cam_depth
            )
        return self._integrate_atlas(image, camera, T_world_cam, stamp_ns)

    def _place_window(self, T_world_cam: np.ndarray, floor_view=None) -> tuple[bool, bool]:
        """Place or move the window for this keyframe (flushing unmerged frames into the map
        first); returns (shifted, flushed). ``floor_view``: the keyframe's (depth, K,
        T_world_depth), where the floor is still looked for. Caller holds ``_integrate_lock``."""
        placed = self._state.window_placed
        if not placed and self.config.window_mode == "auto":
            self._resolve_window_mode(T_world_cam)
        if self._state.floor_search and floor_view is not None:
            self._look_for_floor(T_world_cam, *floor_view)
        volume = self._volume
        current = volume.origin_index if placed else None
        target = self.policy.next_origin_index(T_world_cam, current)
        shifted = flushed = False
        if not placed:
            with self._window_lock:
                volume.reset(target)
                self._load_window_from_map()
            self._state.window_placed = True
        elif not np.array_equal(target, current):
            if volume.frames_since_snapshot > 0:
                self.update()
                flushed = True
                self._count("flushes")
            with self._timer.measure("window_shift"), self._window_lock:
                shift = volume.shift_to(target)
                self._load_window_from_map()
            shifted = True
            self._count("window_shifts")
            dropped = shift[1] if isinstance(shift, tuple) else shift.unmerged_voxels_dropped
            self._count("unmerged_voxels_dropped", dropped)
        return shifted, flushed

    def _resolve_window_mode(self, T_world_cam: np.ndarray) -> None:
        """``window_mode "auto"``: decide the placement from the first keyframe
        (``core.window_policy.resolve_auto_mode``) and say so in ``window_note``."""
        height = self.config.window_dims[2] * self.voxel_size
        resolved, note = resolve_auto_mode(self.config.window_policy_config(), T_world_cam, height)
        dims = window_dims_for(self.config.window_dims, resolved)
        if dims != self.window_dims:  # the vertical size goes to the up axis; still empty
            self.window_dims = dims
            self._volume = self._new_volume(self._initial_origin_index)
        self.policy = WindowPolicy(dims, self.voxel_size, self.config.chunk_size, resolved)
        self.window_note = note
        self._state.window_note_base = note
        self._state.floor_search = resolved.mode == "floor" and resolved.floor_z is None
        axis, sign, _ = up_axis_of(T_world_cam)
        if self.refiner is not None:  # blocks reach the refinement network gravity-aligned
            self.refiner.set_up(axis, int(sign))
        if self.stage is not None:  # the semantic network's gravity
            self.stage.set_up(axis, int(sign))

    def _look_for_floor(self, T_world_cam, depth, K, T_world_depth) -> None:
        """Auto placement without a known floor: the lowest surface a keyframe's depth sees
        (``core.window_policy.floor_from_depth``) becomes the floor the window slides over when
        the camera is at a plausible height above it; a floor found later lower by half a chunk
        or more moves the window down to it."""
        cfg = self.policy.config
        seen = floor_from_depth(
            depth.cpu().numpy() if hasattr(depth, "cpu") else np.asarray(depth),
            np.asarray(K, dtype=np.float64),
            T_world_depth,
            cfg.up_axis,
            cfg.up_sign,
        )
        if seen is None:
            return
        height = cfg.up_sign * float(np.asarray(T_world_cam)[cfg.up_axis, 3]) - seen
        low, high = AUTO_CAMERA_HEIGHTS
        if not low <= height <= high:
            return
        current = self._state.floor_estimate
        if current is not None and seen > current - 0.5 * self.config.chunk_size * self.voxel_size:
            return
        self._state.floor_estimate = seen
        self.policy = WindowPolicy(
            self.window_dims, self.voxel_size, self.config.chunk_size, replace(cfg, floor_z=seen)
        )
        name = f"{'+' if cfg.up_sign > 0 else '-'}{'xyz'[cfg.up_axis]}"
        self.window_note = (
            f"{self._state.window_note_base}; floor found in the depth at {seen:.2f} m along "
            f"{name} (camera {height:.2f} m above it): the window slides over it"
        )

    def _load_window_from_map(self) -> None:
        """Fusion: voxels entering the window start from the map (``core.tsdf_volume``)."""
        if self.pipeline != "fusion" or self.map.num_chunks == 0:
            return
        volume = self._volume
        volume.load(self.map.read_region(volume.origin_index, volume.dims))

    def _integrate_fusion(
        self, image, camera, T_world_cam, stamp, depth, depth_camera, T_cam_depth
    ) -> IntegrateResult:
        with self._integrate_lock:
            self._count("frames_received")
            if not self._gate.is_keyframe(T_world_cam):
                self._count("frames_skipped_not_keyframe")
                return IntegrateResult(False, "not_keyframe", stamp_ns=stamp)
            if depth is None and self.config.depth_source == "sensor":
                raise ValueError("depth: depth_source is 'sensor' but the frame has no depth")
            with self._timer.measure("depth"):
                result = self.stage.depth_for_keyframe(
                    image, camera, T_world_cam, depth, depth_camera, T_cam_depth
                )
            if self.stage.last_fine_sweep_ms is not None:  # part of "depth", shown on its own
                self._timer.record("fine_sweep", self.stage.last_fine_sweep_ms)
            if self.stage.last_plane_fill_ms is not None:
                self._timer.record("plane_fill", self.stage.last_plane_fill_ms)
            if self.stage.last_semantic_ms is not None:
                self._timer.record("semantic", self.stage.last_semantic_ms)
            self._gate.accept(T_world_cam)
            if result.source == "waiting":
                self._count("keyframes_waiting_for_partners")
                return IntegrateResult(False, "waiting_for_partners", stamp_ns=stamp)
            shifted, flushed = self._place_window(
                T_world_cam, (result.depth, result.K, result.T_world_depth)
            )
            with self._timer.measure("fusion"), self._window_lock, torch.inference_mode():
                seen = self._volume.integrate(
                    result.depth,
                    torch.as_tensor(result.K, dtype=torch.float32),
                    torch.as_tensor(result.T_world_depth, dtype=torch.float64),
                    result.confidence,
                    result.rgb,
                    result.labels,
                    truncation=(
                        None
                        if result.source == "sensor"
                        else self.config.stereo_truncation_voxels * self.voxel_size
                    ),
                )
            self._state.last_camera_position = T_world_cam[:3, 3].copy()
            self._count("keyframes_integrated")
            self._count(f"keyframes_{'sensor' if result.source == 'sensor' else 'stereo'}_depth")
            if result.source == "sensor" and self.map.refiner is not None:
                # The refinement network learned to correct stereo maps; sensor depth is better
                # left as fused.
                self.map.set_refiner(None)
                self.refinement_note = (
                    "3D refinement off: sensor depth arrives (the network corrects stereo maps)"
                )
            return IntegrateResult(True, "integrated", shifted, flushed, seen, stamp)

    def _integrate_atlas(self, image, camera, T_world_cam, stamp) -> IntegrateResult:
        with self._integrate_lock:
            self._count("frames_received")
            if not self._gate.is_keyframe(T_world_cam):
                self._count("frames_skipped_not_keyframe")
                return IntegrateResult(False, "not_keyframe", stamp_ns=stamp)
            width, height = self.image_size
            with self._timer.measure("feature_extraction"), torch.inference_mode():
                pixels = image_to_tensor(image, self.device)
                network_image = resize_image_tensor(pixels, width, height)
                features = self.model.extract_features(network_image[None])[0]
                feature_height, feature_width = features.shape[-2:]
                small_rgb = resize_image_tensor(pixels, feature_width, feature_height)
                K_net = torch.as_tensor(
                    camera.resized(width, height).K, dtype=torch.float32, device=self.device
                )
                K_features = feature_intrinsics(K_net, FEATURE_STRIDE)
            shifted, flushed = self._place_window(T_world_cam)
            volume = self._volume
            pose = torch.as_tensor(T_world_cam, dtype=torch.float32, device=self.device)
            with self._timer.measure("backprojection"), self._window_lock, torch.inference_mode():
                seen = volume.integrate(features, small_rgb, K_features, pose)
            self._gate.accept(T_world_cam)
            self._state.last_camera_position = T_world_cam[:3, 3].copy()
            self._count("keyframes_integrated")
            return IntegrateResult(True, "integrated", shifted, flushed, seen, stamp)

    def update(self, force: bool = False) -> UpdateResult:
        """Run the 3D CNN over the window and merge the prediction into the global map where
        frames arrived since the previous update. Does nothing (``ran=False``) when no frame
        arrived, unless ``force``."""
        with self._update_lock:
            if self.pipeline == "fusion":
                return self._update_fusion(force)
            with self._window_lock:
                volume = self._volume
                if not self._state.window_placed or (
                    volume.frames_since_snapshot == 0 and not force
                ):
                    return UpdateResult(False)
                with torch.inference_mode():
                    snapshot = volume.snapshot()
            with self._timer.measure("cnn_3d"), torch.inference_mode():
                outputs = self.model.forward_volume(snapshot.network_input)
                tsdf = outputs.tsdf[-1][0, 0]
                if outputs.semantic_logits is not None:
                    probabilities = torch.softmax(outputs.semantic_logits[0].float(), dim=0)
                    confidence, labels = probabilities.max(dim=0)
                else:
                    confidence = torch.zeros_like(tsdf)
                    labels = torch.full_like(tsdf, 255, dtype=torch.long)
                rgb = (snapshot.mean_rgb.clamp(0, 1) * 255).round().to(torch.uint8)
                arrays = {
                    "tsdf": tsdf.float().cpu().numpy(),
                    "labels": labels.to(torch.uint8).cpu().numpy(),
                    "confidence": confidence.float().cpu().numpy(),
                    "rgb": rgb.permute(1, 2, 3, 0).cpu().numpy(),
                    "weight": snapshot.new_weight.float().cpu().numpy(),
                }
            keep_near = self._state.last_camera_position
            with self._timer.measure("merge"):
                merged = self.map.merge(
                    snapshot.origin_index * self.voxel_size, keep_near=keep_near, **arrays
                )
            return self._merged(merged)

    def _merged(self, merged) -> UpdateResult:
        """Count a merge into the map and report it."""
        self._count("updates")
        self._count("chunks_evicted", merged.chunks_evicted)
        return UpdateResult(
            True,
            merged.chunks_updated,
            merged.chunks_created,
            merged.voxels_updated,
            merged.chunks_evicted,
        )

    def _update_fusion(self, force: bool) -> UpdateResult:
        """Hand the window's changed voxels to the map (stored as they are: the window was
        loaded from the map). Caller holds ``_update_lock``."""
        with self._window_lock:
            volume = self._volume
            if not self._state.window_placed or (volume.frames_since_snapshot == 0 and not force):
                return UpdateResult(False)
            snapshot = volume.snapshot()
        with self._timer.measure("merge"):
            merged = self.map.merge(
                snapshot.origin_index * self.voxel_size,
                tsdf=snapshot.tsdf,
                labels=snapshot.labels,
                confidence=snapshot.confidence,
                rgb=snapshot.rgb,
                weight=np.where(snapshot.changed, snapshot.weight, 0.0),
                keep_near=self._state.last_camera_position,
                replace=True,
            )
        return self._merged(merged)

    def mesh(self, color_by: str = "semantic") -> Mesh:
        """Mesh of the global map as of the last ``update``.

        Returns:
            ``Mesh``: vertices (N, 3) float32 world metres, faces (M, 3) int32, colors (N, 3)
            uint8 (class colours for ``"semantic"``, image colours for ``"rgb"``), labels (N,)
            uint8, confidence (N,) float32, rgb (N, 3) uint8.
        """
        if color_by not in COLOR_MODES:
            raise ValueError(f"color_by: expected one of {COLOR_MODES}, got {color_by!r}")
        with self._timer.measure("meshing"):
            mesh = self.map.mesh()
            return colorize_mesh(mesh, color_by, self.color_table)

    def mesh_chunks(self, color_by: str = "semantic") -> list[tuple[tuple, tuple, Mesh]]:
        """The map's mesh chunk by chunk: ``(chunk key, stamp, Mesh)`` in key order, coloured as
        by ``mesh``. A chunk's stamp changes whenever its mesh may have, so consumers can rebuild
        only what changed (atlas_node does this for its marker)."""
        if color_by not in COLOR_MODES:
            raise ValueError(f"color_by: expected one of {COLOR_MODES}, got {color_by!r}")
        with self._timer.measure("meshing"):
            chunks = self.map.chunk_meshes()
        # colour copies: the map's cached meshes stay untouched
        return [
            (key, stamp, colorize_mesh(copy.copy(mesh), color_by, self.color_table))
            for key, stamp, mesh in chunks
        ]

    def occupancy_slice(self, low_m: float, high_m: float) -> OccupancySlice:
        """The map's 2D occupancy between ``low_m`` and ``high_m`` above the floor, across world
        up (``core.occupancy``): the up axis and floor the window placement found (the floor
        at 0 along up where none is known)."""
        with self._window_lock:
            cfg = self.policy.config
        floor = cfg.floor_z if cfg.floor_z is not None else 0.0
        return self.map.occupancy_slice(cfg.up_axis, cfg.up_sign, floor, low_m, high_m)

    def semantic_points(self) -> SemanticPointCloud:
        """Surface points of the map, one per ``point_cell_size`` cell: xyz (N, 3) float32, rgb
        (N, 3) uint8 image colour, label (N,) uint8, confidence (N,) float32."""
        cell = self.config.point_cell_size or self.voxel_size
        return semantic_point_cloud(self.map.mesh(), cell)

    @property
    def window(self) -> WindowInfo:
        """The current window (before the first keyframe: around the world origin)."""
        with self._window_lock:
            volume = self._volume
            return WindowInfo(
                volume.origin,
                volume.origin_index,
                volume.dims,
                self.voxel_size,
                self._state.window_placed,
            )

    @property
    def stats(self) -> ReconstructorStats:
        """Counters (frames received, keyframes integrated, frames skipped as not keyframes,
        updates, window shifts, flushes, unmerged voxels dropped by shifts, chunks evicted) and
        timings of the stages ``STAGES``."""
        with self._counter_lock:
            counters = dict(self._state.counters)
        return ReconstructorStats(
            counters,
            self._timer.snapshot(),
            self.map.num_chunks,
            self.map.nbytes,
            self.map.evictions,
        )

    def reset(self) -> None:
        """Forget the window, the map, the keyframe history, counters and timings."""
        with self._integrate_lock, self._update_lock, self._window_lock:
            self._reset_locked()

    def _reset_locked(self) -> None:
        """``reset``'s work; the caller holds the integrate, update and window locks."""
        self._state = _State()
        if self.config.window_mode == "auto":
            self.window_dims = self.config.window_dims
            self._volume = self._new_volume(self._initial_origin_index)
            self.policy = WindowPolicy(
                self.window_dims,
                self.voxel_size,
                self.config.chunk_size,
                self.config.window_policy_config(),
            )
        self._volume.reset(self._initial_origin_index)
        self.map.clear()
        if self.refiner is not None and self.map.refiner is None:
            self.map.set_refiner(self.refiner)  # a new map starts with the refinement on
            self.refinement_note = (
                f"3D refinement on ({self.refiner.mode}): chunks with fused surface"
            )
        self._gate.reset()
        if self.stage is not None:
            self.stage.reset()
        self._timer.reset()

    # --- persistence ---------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike) -> Path:
        """Save the global map and its metadata into ``directory`` (created if needed):
        ``map.npz`` (chunk arrays) and ``map.json`` (format, version, grid, classes, model
        config, counters). Each file is written atomically; ``map.json`` last."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = self.map.to_arrays()
        metadata = {
            "format": MAP_FORMAT,
            "format_version": MAP_FORMAT_VERSION,
            "voxel_size": self.voxel_size,
            "chunk_size": self.config.chunk_size,
            "num_chunks": len(arrays["keys"]),
            "class_names": list(self.class_names),
            "pipeline": self.pipeline,
            "model_config": self.model_metadata.get("model_config"),
            "model_trained": self.model_metadata.get("trained"),
            "config": self.config.to_dict(),
            "counters": self.stats.counters,
            "saved_at_unix": time.time(),
        }
        atomic_write(directory / MAP_ARRAYS_FILE, lambda f: np.savez_compressed(f, **arrays))
        text = json.dumps(metadata, indent=2).encode()
        atomic_write(directory / MAP_METADATA_FILE, lambda f: f.write(text))
        return directory

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        model: AtlasModel | str | os.PathLike,
        config: ReconstructorConfig | None = None,
    ) -> "AtlasReconstructor":
        """A reconstructor with the map saved in ``directory`` (the window starts empty).

        Raises:
            FileNotFoundError: ``directory`` lacks the map files.
            ValueError: unknown format or version, or a voxel size, chunk size or class list
                different from this reconstructor's.
        """
        reconstructor = cls(model, config)
        reconstructor.load_map(directory)
        return reconstructor

    def load_map(self, directory: str | os.PathLike) -> int:
        """Replace the map with the one saved in ``directory`` (by ``save``); the window, the
        keyframe history and the counters start afresh. Everything is read and checked before
        anything changes, so a map that cannot be loaded leaves this one as it was.

        Returns the number of chunks loaded.

        Raises:
            FileNotFoundError: ``directory`` lacks the map files.
            ValueError: unknown format or version, damaged arrays, or a voxel size, chunk size
                or class list different from this reconstructor's.
        """
        directory = Path(directory)
        metadata_path, arrays_path = directory / MAP_METADATA_FILE, directory / MAP_ARRAYS_FILE
        for path in (metadata_path, arrays_path):
            if not path.is_file():
                raise FileNotFoundError(f"map: no {path.name} in {directory}")
        try:
            metadata = json.loads(metadata_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"map: {metadata_path} is not valid JSON ({error})") from error
        if not isinstance(metadata, dict) or metadata.get("format") != MAP_FORMAT:
            raise ValueError(f"map: {directory} is not a recon_ros Atlas map")
        if metadata.get("format_version") != MAP_FORMAT_VERSION:
            raise ValueError(
                f"map: format version {metadata.get('format_version')}, this code reads "
                f"{MAP_FORMAT_VERSION}"
            )
        try:
            voxel_size = float(metadata["voxel_size"])
            chunk_size = int(metadata["chunk_size"])
            class_names = tuple(metadata["class_names"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"map: {metadata_path} lacks a valid {error}") from error
        if not math.isclose(voxel_size, self.voxel_size, rel_tol=1e-9):
            raise ValueError(
                f"map: voxel_size {voxel_size} differs from the reconstructor's {self.voxel_size}"
            )
        if chunk_size != self.config.chunk_size:
            raise ValueError(
                f"map: chunk_size {chunk_size} differs from the reconstructor's "
                f"{self.config.chunk_size}"
            )
        if class_names != self.class_names:
            raise ValueError(
                f"map: classes {list(class_names)} differ from the model's {list(self.class_names)}"
            )
        try:
            with np.load(arrays_path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
            raise ValueError(f"map: {arrays_path} cannot be read ({error})") from error
        self.map.check_arrays(arrays)  # before anything is cleared
        with self._integrate_lock, self._update_lock, self._window_lock:
            self._reset_locked()
            self.map.replace_arrays(arrays)
        return len(arrays["keys"])
