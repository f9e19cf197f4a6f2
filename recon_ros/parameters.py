"""The parameters of the nodes in tables: name, default, description, range. The nodes declare them
from here (with descriptors), config/atlas.yaml sets them, and the offline replay reads the same
YAML file with the same defaults, so a bag replayed offline and live runs the same settings.
ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from recon_ros.core.classes import DEFAULT_CLASSES


@dataclass(frozen=True)
class Param:
    name: str
    default: Any
    description: str
    value_range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None


INPUT_PARAMS = (
    Param("world_frame", "world", "Fixed frame of poses and of every output (map, odom, world)."),
    Param("camera_frame", "", "Optical frame of the camera; empty: the image's header.frame_id."),
    Param(
        "image_transport",
        "raw",
        "'raw': sensor_msgs/Image on 'image'; 'compressed': sensor_msgs/CompressedImage (JPEG or "
        "PNG) on 'image/compressed', as image_transport publishes it.",
        choices=("raw", "compressed"),
    ),
    Param(
        "image_qos",
        "sensor_data",
        "QoS of the image and CameraInfo subscriptions: 'sensor_data' (best effort, depth 5: a "
        "busy node skips frames rather than falling behind) or 'reliable' (reliable, depth 100: "
        "every frame of a bag replay, which publishes reliably, reaches the queue).",
        choices=("sensor_data", "reliable"),
    ),
    Param(
        "pose_source",
        "tf",
        "Where camera poses come from: 'tf' (/tf, /tf_static), 'pose' (geometry_msgs/PoseStamped "
        "on 'pose') or 'odometry' (nav_msgs/Odometry on 'odometry').",
        choices=("tf", "pose", "odometry"),
    ),
    Param(
        "pose_frame",
        "",
        "With pose_source 'pose': the frame whose pose the PoseStamped gives (TF links it to the "
        "camera); empty: the camera's optical frame itself.",
    ),
    Param(
        "tf_timeout_s",
        0.3,
        "How long to wait for the pose at an image's stamp before dropping the image.",
        (0.0, 10.0),
    ),
    Param(
        "tf_max_future_s",
        10.0,
        "Transforms on /tf stamped this far after the node's clock (and after the newest image) "
        "are refused: one far-future stamp would otherwise push every real pose out of the "
        "history.",
        (0.1, 1e6),
    ),
    Param(
        "tf_max_translation_m",
        1e7,
        "Transforms and poses moving further than this (metres, per axis) are refused: UTM "
        "coordinates fit, absurd values would overflow the map's voxel index.",
        (1.0, 1e12),
    ),
    Param(
        "tf_cache_time_s", 30.0, "How much transform history to keep, in seconds.", (1.0, 3600.0)
    ),
    Param(
        "queue_size",
        30,
        "Images waiting for integration; when full, the oldest is dropped (reason queue_full).",
        (1, 1000),
    ),
    Param(
        "max_image_pixels",
        40_000_000,
        "Images (colour or depth) declaring more pixels are dropped undecoded (reason bad_image): "
        "a few bytes of PNG can declare gigabytes.",
        (1024, 1_000_000_000),
    ),
    Param(
        "log_throttle_s",
        5.0,
        "Shortest interval between repeats of one warning, in seconds.",
        (0.0, 600.0),
    ),
    Param(
        "use_depth",
        False,
        "Subscribe to an RGB-D camera's depth on 'depth/image' (16UC1 millimetres or 32FC1 "
        "metres) and 'depth/camera_info'; registered to the colour image, or in its own optical "
        "frame (linked to the colour frame by TF). Paired with colour images by stamp.",
    ),
)

# Parameters of the reconstruction core; ``config_key`` maps them onto ReconstructorConfig.
CORE_PARAMS = (
    Param("device", "auto", "Torch device: 'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."),
    Param(
        "pipeline",
        "fusion",
        "'fusion': each keyframe's depth (the RGB-D camera's, or multi-view stereo over recent "
        "keyframes) fused as a TSDF with semantic label votes; 'atlas': the paper's features-only "
        "Atlas (back-projected 2D features, the 3D network predicts the TSDF).",
        choices=("fusion", "atlas"),
    ),
    Param(
        "depth_source",
        "auto",
        "Fusion pipeline: 'auto' (sensor depth while it arrives, else multi-view stereo), 'mvs' "
        "(stereo only) or 'sensor' (only frames with depth are mapped).",
        choices=("auto", "mvs", "sensor"),
    ),
    Param(
        "truncation_voxels",
        3.0,
        "TSDF truncation of sensor depth's fusion, in voxels.",
        (0.5, 20.0),
    ),
    Param(
        "stereo_truncation_voxels",
        8.0,
        "TSDF truncation of stereo depth's fusion, in voxels: wider, so noisier depth from many "
        "views averages into one surface.",
        (0.5, 20.0),
    ),
    Param(
        "stereo_partners",
        3,
        "Earlier keyframes the stereo depth of a keyframe is computed with.",
        (1, 4),
    ),
    Param(
        "stereo_min_baseline_m",
        0.05,
        "Stereo partners are at least this far from the keyframe (no depth from a standstill).",
        (0.0, 10.0),
    ),
    Param(
        "stereo_max_baseline_m",
        0.6,
        "... and at most this far (views too far apart see the scene differently).",
        (0.01, 50.0),
    ),
    Param(
        "min_depth_confidence",
        0.5,
        "Stereo depth whose confidence is below this is not fused.",
        (0.0, 0.99),
    ),
    Param(
        "stereo_min_consistent_views",
        0,
        "Stereo depth is fused only where this many earlier keyframes' depths agree with it "
        "(geometric consistency; 0: no check, the default: on our validation scenes the check "
        "cost more recall than it gained precision).",
        (0, 4),
    ),
    Param(
        "stereo_near_weighting_m",
        1.5,
        "> 0: stereo depth's fusion weight falls as (this / depth)^2 beyond this depth (stereo "
        "error grows with the square of depth); 0: off.",
        (0.0, 20.0),
    ),
    Param(
        "stereo_fine_sweep",
        True,
        "Refine the depth network's output by a narrow NCC sweep at twice its resolution "
        "(sub-plane depth where the images have texture).",
    ),
    Param(
        "stereo_fine_min_ncc",
        0.2,
        "The fine sweep's depth replaces the network's only where the peak NCC reaches this.",
        (-1.0, 1.0),
    ),
    Param(
        "stereo_fine_max_width",
        320,
        "The fine sweep runs at the camera's own resolution, at most this many pixels wide, "
        "where that is wider than the depth network's input (256); 0: at the network's input "
        "(faster: a 320-wide sweep costs about 1.6 times as much).",
        (0, 4096),
    ),
    Param(
        "stereo_plane_fill",
        True,
        "With the fine sweep: pixels of floor, wall and ceiling it could not refine (no texture) "
        "take the depth of the plane the refined pixels of their class define, where that is "
        "within 20 % of the network's estimate.",
    ),
    Param(
        "stereo_wall_feet",
        True,
        "With the plane fill: walls also take upright planes through the line where they meet "
        "the floor's (or the ceiling's) plane, for plain walls with no texture of their own.",
    ),
    Param(
        "stereo_guess_weight",
        0.3,
        "With the fine sweep: fusion weight factor of stereo pixels that neither matching nor a "
        "plane explains (the depth network's own guess), so keyframes whose depth has evidence "
        "outvote it; 1: weigh them by their confidence alone.",
        (0.0, 1.0),
    ),
    Param(
        "stereo_floor_label_height_m",
        0.2,
        "With the plane fill: pixels the network labels floor that lie more than this high "
        "above the keyframe's floor plane take their next most likely class (table tops and "
        "chair seats called floor); 0: off.",
        (0.0, 5.0),
    ),
    Param(
        "mesh_min_weight",
        1,
        "Voxels observed with less weight (fusion: summed depth confidence) stay out of the mesh.",
        (1, 1000),
    ),
    Param(
        "voxel_size_m",
        0.0,
        "Voxel edge length in metres; 0: the checkpoint's own (the Atlas model's; 4 cm for the "
        "fusion pipeline). Otherwise at least 0.01.",
        (0.0, 0.5),
    ),
    Param(
        "window_dims",
        [160, 160, 96],
        "Rolling window size in voxels along world x, y, z (the last: vertical); multiples of "
        "chunk_size and of 8. 96 x 4 cm reaches at least 3.1 m above the floor wherever the "
        "chunk lattice puts the window's floor side.",
    ),
    Param(
        "chunk_size",
        16,
        "Voxels per edge of a map chunk; the window moves by whole chunks.",
        (4, 64),
    ),
    Param(
        "max_map_chunks",
        4096,
        "Memory cap of the global map, in chunks; beyond it the chunks farthest from the camera "
        "are evicted.",
        (16, 10_000_000),
    ),
    Param(
        "max_depth_m",
        0.0,
        "Voxels farther from the camera than this get no features from a frame (0: the whole "
        "ray, as Atlas).",
        (0.0, 100.0),
    ),
    Param(
        "keyframe_min_translation_m",
        0.1,
        "A frame is integrated once the camera moved this far since the last keyframe (0 and a 0 "
        "rotation threshold: every frame).",
        (0.0, 10.0),
    ),
    Param("keyframe_min_rotation_deg", 15.0, "... or turned this many degrees.", (0.0, 180.0)),
    Param(
        "window_mode",
        "auto",
        "How the window follows the camera: 'auto' (decided at the first keyframe from the "
        "camera's image-down axis: over the floor when world z is up, else in 3D; logged and in "
        "the status), 'floor' (slides over the floor plane, fixed height range from "
        "window_floor_z_m) or '3d' (follows in all three axes).",
        choices=("auto", "floor", "3d"),
    ),
    Param(
        "window_forward_offset_m",
        2.5,
        "The window is centred this far ahead of the camera, where it looks.",
        (0.0, 20.0),
    ),
    Param(
        "window_floor_z_m",
        0.0,
        "Floor height along world up (z in a z-up world; window_mode 'floor', and 'auto' where "
        "the camera is at a plausible height above it).",
        (-1000.0, 1000.0),
    ),
    Param(
        "window_hysteresis_m",
        0.16,
        "The window moves only when its target moved this much beyond a chunk boundary.",
        (0.0, 10.0),
    ),
    Param(
        "class_colors",
        [int(v) for c in DEFAULT_CLASSES for v in c.color],
        "Mesh and cloud colour of each semantic class, r g b per class in the model's class order.",
    ),
)
CONFIG_KEYS = {
    "device": "device",
    "pipeline": "pipeline",
    "depth_source": "depth_source",
    "labels_from": "labels_from",
    "truncation_voxels": "truncation_voxels",
    "stereo_truncation_voxels": "stereo_truncation_voxels",
    "stereo_partners": "stereo_partners",
    "stereo_min_baseline_m": "stereo_min_baseline",
    "stereo_max_baseline_m": "stereo_max_baseline",
    "min_depth_confidence": "min_depth_confidence",
    "stereo_min_consistent_views": "stereo_min_consistent_views",
    "stereo_near_weighting_m": "stereo_near_weighting_m",
    "stereo_fine_sweep": "stereo_fine_sweep",
    "stereo_fine_min_ncc": "stereo_fine_min_ncc",
    "stereo_fine_max_width": "stereo_fine_max_width",
    "stereo_plane_fill": "stereo_plane_fill",
    "stereo_wall_feet": "stereo_wall_feet",
    "stereo_guess_weight": "stereo_guess_weight",
    "stereo_floor_label_height_m": "stereo_floor_label_height_m",
    "mesh_min_weight": "mesh_min_weight",
    "voxel_size_m": "voxel_size",
    "window_dims": "window_dims",
    "chunk_size": "chunk_size",
    "max_map_chunks": "max_map_chunks",
    "max_depth_m": "max_depth",
    "keyframe_min_translation_m": "keyframe_min_translation",
    "keyframe_min_rotation_deg": "keyframe_min_rotation_deg",
    "window_mode": "window_mode",
    "window_forward_offset_m": "window_forward_offset",
    "window_floor_z_m": "window_floor_z",
    "window_hysteresis_m": "window_hysteresis",
    "class_colors": "class_colors",
}

NODE_PARAMS = (
    Param(
        "weights_path",
        "",
        "Atlas checkpoint of the 'atlas' pipeline (.pt, loaded with weights_only=True); empty: "
        "trained weights shipped with the package (none yet: the 'atlas' pipeline then needs "
        "this set).",
    ),
    Param(
        "depth_weights_path",
        "",
        "Multi-view depth network checkpoint of the 'fusion' pipeline (stereo depth and semantic "
        "labels; .pt, weights_only); empty: the weights shipped with the package.",
    ),
    Param(
        "labels_from",
        "combined",
        "Fusion pipeline: where each keyframe's class labels come from: 'combined' (the "
        "semantic network, reading the colour with the keyframe's depth and gravity, and the "
        "depth network's colour-only head, their class probabilities multiplied), "
        "'semantic_network' (the first alone) or 'depth_network' (the head alone). Without "
        "semantic network weights: the head.",
        choices=("combined", "semantic_network", "depth_network"),
    ),
    Param(
        "semantic_weights_path",
        "",
        "Semantic network checkpoint (.pt, weights_only); empty: the weights shipped with the "
        "package.",
    ),
    Param(
        "refinement",
        False,
        "Fusion pipeline: mesh the map through the 3D refinement network (TSDF and labels of "
        "chunks with fused surface refined; the map keeps the fused values).",
    ),
    Param(
        "refinement_mode",
        "labels",
        "What the 3D refinement changes: 'labels' (its class labels on the fused surfaces) or "
        "'full' (its TSDF too: surfaces moved, removed, holes filled).",
        choices=("labels", "full"),
    ),
    Param(
        "refine_weights_path",
        "",
        "3D refinement network checkpoint (.pt, weights_only); empty: the weights shipped with "
        "the package.",
    ),
    Param(
        "cnn_period_s",
        2.0,
        "Period of the 3D CNN over the window, run when new frames arrived.",
        (0.05, 3600.0),
    ),
    Param(
        "publish_period_s",
        1.0,
        "Period of the status message; mesh and cloud go out when the map changed.",
        (0.05, 3600.0),
    ),
    Param(
        "mesh_refresh_period_s",
        60.0,
        "Every this many seconds the mesh goes out whole (every chunk), so a subscriber the "
        "node did not see arrive (one left and one came between two publishes) still gets all "
        "of it; between, only changed chunks, and every chunk when the subscriber count rises. "
        "A whole map is tens of MB (48 MB for 400k triangles, 7 s to decode in Python): keep "
        "this long on a wireless link. 0: only when the subscriber count rises.",
        (0.0, 3600.0),
    ),
    Param(
        "mesh_color_mode",
        "semantic",
        "Mesh vertex colours: 'semantic' (class palette) or 'rgb' (image colour).",
        choices=("semantic", "rgb"),
    ),
    Param(
        "output_directory",
        "~/.ros/recon_ros",
        "Folder save_map writes into; nothing is written elsewhere.",
    ),
    Param("publish_window", True, "Publish the rolling window's outline on ~/window."),
    Param(
        "publish_occupancy",
        True,
        "Publish ~/occupancy (nav_msgs/OccupancyGrid): the map's 2D slice between "
        "occupancy_min_height_m and occupancy_max_height_m above the floor, for planners.",
    ),
    Param(
        "occupancy_min_height_m",
        0.1,
        "Lower height of the occupancy slice above the floor (below: the floor itself).",
        (-10.0, 10.0),
    ),
    Param(
        "occupancy_max_height_m",
        1.0,
        "Upper height of the occupancy slice above the floor (the robot's height).",
        (-10.0, 10.0),
    ),
    Param(
        "stall_warning_s",
        10.0,
        "Warn when no image arrived, or none was integrated, for this long.",
        (1.0, 3600.0),
    ),
)

ALL_PARAMS = INPUT_PARAMS + CORE_PARAMS + NODE_PARAMS

SUFFICIENCY_PARAMS = (
    Param(
        "weights_path",
        "",
        "Conjugate-pair network checkpoint (.pt, weights_only); empty: the weights shipped with "
        "the package.",
    ),
    Param("device", "auto", "Torch device: 'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."),
    Param(
        "window",
        12,
        "Recent keyframes kept; the partners of the newest are chosen among them.",
        (2, 1000),
    ),
    Param("k", 2, "A pixel is covered when at least k partner frames see it.", (1, 64)),
    Param(
        "threshold",
        0.6,
        "The frames suffice when the covered fraction of pixels reaches this.",
        (0.0, 1.0),
    ),
    Param(
        "min_overlap",
        0.05,
        "Partners must see at least this fraction of the reference view frustum.",
        (0.0, 1.0),
    ),
    Param(
        "keyframe_min_translation_m",
        0.1,
        "A frame becomes a keyframe once the camera moved this far since the last one.",
        (0.0, 10.0),
    ),
    Param("keyframe_min_rotation_deg", 15.0, "... or turned this many degrees.", (0.0, 180.0)),
    Param(
        "coverage_cell_size_m",
        0.2,
        "Coverage layer: each estimate's counts go into world cells of this size through the "
        "reference's plane-sweep depth, and ~/coverage shows each cell's best count (red: no "
        "partner saw it, green: all m did); 0: off.",
        (0.0, 5.0),
    ),
    Param(
        "coverage_max_depth_m",
        6.0,
        "Coverage layer: reference pixels deeper than this (poor sweep depth) are left out.",
        (0.1, 100.0),
    ),
    Param(
        "coverage_max_cells",
        200000,
        "Coverage layer memory bound; beyond it the cells farthest from the camera go first.",
        (1, 100000000),
    ),
    Param(
        "coverage_chunk_size_m",
        1.0,
        "Coverage layer: /diagnostics lists the chunks of this size with the most cells not "
        "covered.",
        (0.1, 100.0),
    ),
)


def _input_param(name: str) -> Param:
    """An input parameter other nodes share with atlas_node (one definition)."""
    return next(p for p in INPUT_PARAMS if p.name == name)


#: object_node: one object's whole shape from a few views (3D-R2N2), on request.
OBJECT_PARAMS = (
    Param(
        "weights_path",
        "",
        "3D-R2N2 checkpoint (.pt, weights_only); empty: the weights shipped with the package.",
    ),
    Param("device", "auto", "Torch device: 'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."),
    Param(
        "threshold",
        0.4,
        "Voxels at or above this occupancy probability are the object (the seed's 0.4).",
        (0.01, 0.99),
    ),
    Param(
        "max_views",
        20,
        "Requests with more views than this are refused (each view costs one network step).",
        (1, 1000),
    ),
    _input_param("max_image_pixels"),
)


#: rig_node: a room seen by fixed cameras (Everted U-Net), its occupancy and object classes.
RIG_PARAMS = (
    Param(
        "weights_path",
        "",
        "Everted U-Net checkpoint (.pt, weights_only); empty: the weights shipped with the "
        "package.",
    ),
    Param("device", "auto", "Torch device: 'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."),
    Param(
        "image_topics",
        ["/rig/camera_0/image_raw", "/rig/camera_1/image_raw", "/rig/camera_2/image_raw"],
        "The rig's image topics, in the order of the cameras the model was trained with.",
    ),
    Param(
        "camera_info_topics",
        [""],
        "The rig's CameraInfo topics, one per image topic; empty: each image topic's sibling "
        "'camera_info'. Read (with the cameras' poses in room_frame from TF) by models that "
        "lift along the rays (the default training); learned-lift models need neither.",
    ),
    Param("room_frame", "room", "Frame of the published grid (the room the rig watches)."),
    Param(
        "grid_corner",
        [0.0, 0.0, 0.0],
        "Room-frame lower corner (x, y, z, metres) of the model's 80 x 96 x 64 grid.",
    ),
    Param(
        "voxel_size_m",
        0.0625,
        "Edge of the grid's cubic voxels (0.0625: a 5 x 6 x 4 m room).",
        (0.001, 10.0),
    ),
    Param(
        "rate_hz",
        1.0,
        "Predictions per second at most (one once every camera has sent an image, and then "
        "whenever a newer one arrived).",
        (0.01, 100.0),
    ),
    Param(
        "max_image_age_s",
        2.0,
        "Images older than this (by header stamp) than the rig's newest are stale: the "
        "prediction waits for that camera (0: never stale).",
        (0.0, 3600.0),
    ),
    Param(
        "occupancy_threshold",
        0.0,
        "Voxels at or above this occupancy probability are occupied; 0: the threshold the "
        "checkpoint's validation chose (0.5 when it has none).",
        (0.0, 0.99),
    ),
    Param(
        "mask_threshold",
        0.0,
        "An occupied voxel takes the most likely class whose mask reaches this; else "
        "unlabelled. 0: the threshold the checkpoint's validation chose (0.5 when it has none).",
        (0.0, 0.99),
    ),
    _input_param("image_qos"),
    _input_param("max_image_pixels"),
    _input_param("log_throttle_s"),
)


#: ifnet_node: the scene in front of each image from that image alone (depth U-Net + IF-Net).
IFNET_PARAMS = (
    Param(
        "weights_path",
        "",
        "Single-view depth + IF-Net checkpoint (.pt, weights_only); empty: the weights shipped "
        "with the package.",
    ),
    Param("device", "auto", "Torch device: 'auto' (cuda when present), 'cpu', 'cuda' or 'cuda:N'."),
    Param(
        "rate_hz",
        1.0,
        "Images completed per second at most (the newest one each time; older ones are skipped).",
        (0.01, 100.0),
    ),
    Param(
        "occupancy_threshold",
        0.5,
        "The mesh is the surface where the occupancy probability crosses this.",
        (0.01, 0.99),
    ),
    Param(
        "floor_frame",
        "base_footprint",
        "Frame on the floor with z up (REP 120's base_footprint): the camera's height above it and "
        "the direction of up from TF give a model trained with the floor prior its metric scale. "
        "Without that transform the image is completed without it (a throttled warning); empty: "
        "never look it up.",
    ),
    _input_param("tf_timeout_s"),
    _input_param("tf_cache_time_s"),
    _input_param("image_qos"),
    _input_param("max_image_pixels"),
    _input_param("log_throttle_s"),
)


def check_value(param: Param, value) -> None:
    """Raise ValueError when ``value`` is outside the parameter's range or choices."""
    if param.choices is not None and value not in param.choices:
        raise ValueError(f"parameter {param.name} is '{value}'; expected one of {param.choices}")
    if param.value_range is not None:
        low, high = param.value_range
        if not low <= value <= high:
            raise ValueError(f"parameter {param.name} = {value} is outside [{low}, {high}]")


def resolve(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every parameter's value: defaults, replaced by ``overrides`` (checked)."""
    values = {p.name: p.default for p in ALL_PARAMS}
    by_name = {p.name: p for p in ALL_PARAMS}
    for name, value in (overrides or {}).items():
        if name == "use_sim_time":
            continue
        if name not in by_name:
            raise ValueError(
                f"unknown atlas_node parameter '{name}' (known: {', '.join(sorted(by_name))})"
            )
        check_value(by_name[name], value)
        values[name] = value
    return values


def core_config_dict(values: dict[str, Any]) -> dict[str, Any]:
    """The ReconstructorConfig fields among resolved parameter values."""
    config = {CONFIG_KEYS[name]: values[name] for name in CONFIG_KEYS}
    voxel = float(config["voxel_size"])
    if 0.0 < voxel < 0.01:
        raise ValueError(f"parameter voxel_size_m {voxel}: use 0 (the checkpoint's) or >= 0.01 m")
    config["voxel_size"] = voxel or None  # 0: the checkpoint's own, never a silent override
    config["window_dims"] = tuple(int(d) for d in config["window_dims"])
    colors = [int(v) for v in config["class_colors"]]
    if len(colors) % 3:
        raise ValueError(f"parameter class_colors has {len(colors)} values, not r g b per class")
    config["class_colors"] = tuple(tuple(colors[i : i + 3]) for i in range(0, len(colors), 3))
    return config


def load_params_file(path: str | Path, node_name: str = "atlas_node") -> dict[str, Any]:
    """The ``ros__parameters`` of ``node_name`` in a ROS 2 parameter file, as the node would get
    them in any namespace: the sections ``/**``, ``/**/<node>``, ``<node>`` and ``/<node>``, the
    more specific later."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    params: dict[str, Any] = {}
    for key in ("/**", f"/**/{node_name}", node_name, f"/{node_name}"):
        params.update((data.get(key) or {}).get("ros__parameters", {}))
    return params


def _yaml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    return repr(value)


def config_yaml() -> str:
    """config/atlas.yaml: every parameter of both nodes with its default (``python -m
    recon_ros.parameters > config/atlas.yaml`` writes it; a test keeps the file in step)."""
    lines = [
        "# Parameters of the recon_ros nodes. Every parameter is listed with its default;",
        "# `ros2 param describe /atlas_node <name>` prints its description and range.",
        "# The offline replay (`recon-ros replay --params-file`) reads the atlas_node section too.",
        "# Written by `python -m recon_ros.parameters`.",
    ]
    nodes = (
        (
            "atlas_node",
            (
                ("inputs: images, CameraInfo and poses", INPUT_PARAMS),
                ("reconstruction core", CORE_PARAMS),
                ("node", NODE_PARAMS),
            ),
        ),
        (
            "sufficiency_node",
            (
                ("inputs: images, CameraInfo and poses (as for atlas_node)", INPUT_PARAMS),
                ("frame sufficiency", SUFFICIENCY_PARAMS),
            ),
        ),
        ("object_node", (("objects from a few views", OBJECT_PARAMS),)),
        ("rig_node", (("a room seen by fixed cameras", RIG_PARAMS),)),
        ("ifnet_node", (("the scene in front of one image", IFNET_PARAMS),)),
    )
    for node, sections in nodes:
        # Keyed /**/<node>: the file applies in any namespace (a robot1/atlas_node too).
        lines += [f"/**/{node}:", "  ros__parameters:"]
        for title, table in sections:
            lines.append(f"    # {title}")
            lines += [f"    {p.name}: {_yaml_value(p.default)}" for p in table]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(config_yaml(), end="")
