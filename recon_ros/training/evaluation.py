"""Full-scene evaluation of an Atlas checkpoint through ``AtlasReconstructor``, the path the ROS
node and the offline replay take, with the metrics of ``metrics`` (Atlas Table 1 and 4).

Per scene:

1. **Reconstruct**: every frame is offered to ``AtlasReconstructor.integrate`` in order (the
   keyframe gate and the rolling window decide, as on a robot); ``update`` runs every
   ``cnn_period_s`` of frame time and once at the end, as ``replay`` does.
2. **Ground truth**: generated scenes give the exact TSDF, the ``observed`` mask and the
   labelled reference mesh; the reference points are points sampled on the mesh
   (``mesh_surface_points``, thinned to 2 cm) inside the ground-truth grid (the room and a
   margin) that some frame sees (within ``VISIBILITY_TOLERANCE`` of its depth), so surfaces no
   camera saw are not asked for.
   Other layouts (ScanNet, 7-Scenes, TUM) get the paper's ground truth: TSDF fusion of their
   depth and the mesh of it (no labels).
3. **Score** a reconstruction (its mesh and its TSDF on the ground-truth grid), the same way for
   the model and for the upper bound:

   - L1 of the TSDF over observed ground-truth voxels with ``t* < 1``;
   - 2D metrics of the mesh's depth rendered at every input pose against the ground-truth depth
     (pixels whose surface lies inside the ground-truth grid);
   - the paper's trimming (section 5): the rendered depth maps are fused again (``TSDFFusion``)
     and meshed, so geometry no input view sees (behind walls, outside the room, where the
     ground truth was not observed) is not penalised; Acc, Comp, Prec, Recall and F-score of
     points sampled on that trimmed mesh against the reference points;
   - semantics: labels of the (untrimmed) mesh's vertices transferred to the reference points by
     nearest neighbour; a confusion matrix for IoU.

4. **Upper bound**: TSDF fusion of the ground-truth depth (and labels) on the ground-truth grid,
   scored identically: how far the learned model is from a perfect depth sensor.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from recon_ros.core.meshing import extract_mesh
from recon_ros.datasets.sequence import FrameSequence
from recon_ros.sufficiency.intrinsics import resize_nearest
from recon_ros.training.metrics import (
    DOWN_SAMPLE,
    DepthAccumulator,
    mesh_surface_points,
    point_metrics,
    semantic_confusion,
    transfer_labels,
    tsdf_l1,
    voxel_down_sample,
)
from recon_ros.training.tsdf_fusion import TSDFFusion

#: A reference vertex counts as seen when its depth in some frame is within this of the frame's
#: depth at its pixel (m).
VISIBILITY_TOLERANCE = 0.03
#: Mean spacing of the points sampled on mesh surfaces (m).
SURFACE_SPACING = 0.01
LAYOUTS = ("auto", "synthetic", "scannet", "7scenes", "tum")


def open_sequence(
    folder: str | os.PathLike, layout: str = "auto", frame_rate: float | None = None
) -> tuple[FrameSequence, str]:
    """A loader for ``folder``: a generated scene (``scene.json``), a ScanNet export
    (``color/``, ``depth/``, ``pose/``, ``intrinsic/``), a 7-Scenes ``seq-XX`` folder
    (``frame-*.color.png``) or a TUM RGB-D sequence (``rgb.txt``). Returns it and the layout.

    Raises:
        ValueError: unknown layout, or a folder that matches none.
    """
    from recon_ros.datasets.layout import SyntheticSequence
    from recon_ros.datasets.real import ScanNetSequence, SevenScenesSequence, TUMSequence

    folder = Path(folder)
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    if layout == "auto":
        if (folder / "scene.json").is_file():
            layout = "synthetic"
        elif all((folder / d).is_dir() for d in ("color", "depth", "pose", "intrinsic")):
            layout = "scannet"
        elif (folder / "rgb.txt").is_file():
            layout = "tum"
        elif any(folder.glob("frame-*.color.png")) or any(folder.glob("frame-*.color.jpg")):
            layout = "7scenes"
        else:
            raise ValueError(f"scene: {folder} is no generated, ScanNet, 7-Scenes or TUM folder")
    loaders = {
        "synthetic": SyntheticSequence,
        "scannet": ScanNetSequence,
        "7scenes": SevenScenesSequence,
        "tum": TUMSequence,
    }
    if frame_rate is not None and layout in ("scannet", "7scenes"):
        return loaders[layout](folder, frame_rate=frame_rate), layout
    return loaders[layout](folder), layout


def list_evaluation_scenes(root: str | os.PathLike) -> list[Path]:
    """``root`` itself when it is a scene folder, else its sub-folders that are (sorted)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"data: {root} is not a folder")
    try:
        open_sequence(root)
        return [root]
    except ValueError:
        pass
    scenes = []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            open_sequence(child)
        except ValueError:
            continue
        scenes.append(child)
    if not scenes:
        raise ValueError(f"data: no scene folders in {root}")
    return scenes


@dataclass
class GroundTruth:
    """Ground truth of a scene on its evaluation grid.

    Attributes:
        origin (3,), voxel_size, dims, truncation (m): the grid.
        tsdf: (X, Y, Z) float32; observed: (X, Y, Z) bool.
        points: (N, 3) reference surface points (seen vertices of the reference mesh).
        labels: (N,) uint8 classes of ``points``, or None.
        source: ``"exact"`` (generated scene) or ``"fusion"`` (fused depth).
    """

    origin: np.ndarray
    voxel_size: float
    dims: tuple[int, int, int]
    truncation: float
    tsdf: np.ndarray
    observed: np.ndarray
    points: np.ndarray
    labels: np.ndarray | None
    source: str


@dataclass
class FrameData:
    """What the scoring needs of one frame: depth (H, W) m, its K (3, 3), pose, labels."""

    depth: np.ndarray
    K_depth: np.ndarray
    T_world_cam: np.ndarray
    semantic: np.ndarray | None


def load_frames(sequence: FrameSequence, indices: list[int]) -> list[FrameData]:
    """Depth, depth intrinsics, pose and labels of the frames ``indices``.

    Raises:
        ValueError: a frame has no depth (evaluation needs ground-truth depth).
    """
    frames = []
    for i in indices:
        frame = sequence[i]
        if frame.depth is None:
            raise ValueError(f"scene {sequence.name}: frame {i} has no depth")
        semantic = frame.semantic if frame.semantic is not None else None
        if semantic is not None and semantic.shape != frame.depth.shape:
            semantic = None
        frames.append(FrameData(frame.depth, frame.K_depth, frame.T_world_cam, semantic))
    return frames


class DepthRenderer:
    """Depth maps of one triangle mesh from many poses: ``recon_ros.io.mesh_images.render_depth``
    with the ray-casting scene built once. Depth is along the optical axis, 0 where nothing is
    hit."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray) -> None:
        import open3d as o3d

        self.empty = len(faces) == 0
        self.scene = o3d.t.geometry.RaycastingScene()
        if not self.empty:
            self.scene.add_triangles(
                o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
                o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
            )
        self._directions: dict[tuple, np.ndarray] = {}

    def render(self, K: np.ndarray, T_world_cam: np.ndarray, width: int, height: int):
        """(height, width) float32 depth in metres."""
        import open3d as o3d

        if self.empty:
            return np.zeros((height, width), np.float32)
        K = np.asarray(K, dtype=np.float64)
        key = (width, height, *K.ravel().tolist())
        if key not in self._directions:
            u, v = np.meshgrid(
                np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
            )
            y = (v - K[1, 2]) / K[1, 1]
            x = (u - K[0, 2] - K[0, 1] * y) / K[0, 0]
            self._directions[key] = np.stack([x, y, np.ones_like(u)], -1).reshape(-1, 3)
        T = np.asarray(T_world_cam, dtype=np.float64)
        directions = self._directions[key] @ T[:3, :3].T
        origins = np.broadcast_to(T[:3, 3], directions.shape)
        rays = o3d.core.Tensor(np.concatenate([origins, directions], 1).astype(np.float32))
        depth = self.scene.cast_rays(rays)["t_hit"].numpy().reshape(height, width)
        depth[~np.isfinite(depth)] = 0.0
        return depth.astype(np.float32)


def visible_points(points: np.ndarray, frames: list[FrameData], tolerance: float) -> np.ndarray:
    """Mask (N,) of ``points`` (N, 3) that some frame sees: in front, inside the image, and
    within ``tolerance`` of the frame's depth at the nearest pixel."""
    seen = np.zeros(len(points), dtype=bool)
    points32 = np.asarray(points, dtype=np.float32)
    for frame in frames:
        T = np.asarray(frame.T_world_cam, dtype=np.float64)
        R = T[:3, :3].astype(np.float32)
        cam = points32 @ R - (T[:3, 3] @ T[:3, :3]).astype(np.float32)
        z = cam[:, 2]
        front = z > 1e-3
        safe = np.where(front, z, 1.0)
        K = frame.K_depth
        u = np.round((K[0, 0] * cam[:, 0] + K[0, 1] * cam[:, 1]) / safe + K[0, 2]).astype(int)
        v = np.round(K[1, 1] * cam[:, 1] / safe + K[1, 2]).astype(int)
        height, width = frame.depth.shape
        ok = front & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        d = np.zeros(len(points), dtype=np.float32)
        d[ok] = frame.depth[v[ok], u[ok]]
        seen |= ok & (d > 0) & (np.abs(d - z) < tolerance)
    return seen


def depth_in_region(frame: FrameData, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The frame's depth with pixels whose surface point lies outside the box ``lo``-``hi`` set
    to 0 (invalid): the 2D metrics are taken over the evaluated region, like the 3D ones."""
    depth = frame.depth
    v, u = np.nonzero(depth > 0)
    z = depth[v, u].astype(np.float64)
    K = frame.K_depth
    y = (v - K[1, 2]) / K[1, 1] * z
    x = (u - K[0, 2] - K[0, 1] * y / z) / K[0, 0] * z
    T = np.asarray(frame.T_world_cam, dtype=np.float64)
    world = np.stack([x, y, z], 1) @ T[:3, :3].T + T[:3, 3]
    outside = ~np.all((world >= lo) & (world <= hi), axis=1)
    masked = depth.copy()
    masked[v[outside], u[outside]] = 0.0
    return masked


def fuse_frames(
    frames: list[FrameData],
    origin,
    voxel_size: float,
    dims,
    truncation: float,
    depths: list[np.ndarray] | None = None,
    num_classes: int = 0,
) -> dict[str, np.ndarray]:
    """TSDF fusion of the frames' depth (or of ``depths``, one per frame, at the frames'
    depth intrinsics) on a grid; with ``num_classes`` the frames' labels vote."""
    fusion = TSDFFusion(origin, voxel_size, dims, truncation, num_classes=num_classes)
    for i, frame in enumerate(frames):
        depth = frame.depth if depths is None else depths[i]
        labels = frame.semantic if num_classes and frame.semantic is not None else None
        fusion.integrate(depth, frame.K_depth, frame.T_world_cam, labels)
    return fusion.result()


def grid_from_depth(
    frames: list[FrameData], voxel_size: float, margin: float = 0.1, max_points: int = 200_000
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Origin and dims of a grid covering the points of the frames' depth (0.5 and 99.5
    percentiles, plus ``margin``)."""
    rng = np.random.default_rng(0)
    samples = []
    for frame in frames:
        v, u = np.nonzero(frame.depth > 0)
        if len(v) == 0:
            continue
        pick = rng.choice(len(v), size=min(len(v), max(1, max_points // len(frames))))
        z = frame.depth[v[pick], u[pick]].astype(np.float64)
        K = frame.K_depth
        x = (u[pick] - K[0, 2]) / K[0, 0] * z
        y = (v[pick] - K[1, 2]) / K[1, 1] * z
        cam = np.stack([x, y, z], 1)
        T = frame.T_world_cam
        samples.append(cam @ T[:3, :3].T + T[:3, 3])
    if not samples:
        raise ValueError("frames: no valid depth to place a grid")
    points = np.concatenate(samples)
    lo = np.percentile(points, 0.5, axis=0) - margin
    hi = np.percentile(points, 99.5, axis=0) + margin
    origin = np.floor(lo / voxel_size) * voxel_size
    dims = tuple(int(d) for d in np.ceil((hi - origin) / voxel_size) + 1)
    return origin, dims


def load_ground_truth_for(
    sequence: FrameSequence,
    layout: str,
    frames: list[FrameData],
    voxel_size: float,
    truncation: float,
) -> GroundTruth:
    """The ground truth of a scene (module docstring, step 2)."""
    if layout == "synthetic":
        try:
            volume = sequence.volume(voxel_size)
        except ValueError:
            from recon_ros.scenes.scene import Scene
            from recon_ros.scenes.volumes import compute_ground_truth, observed_mask, room_grid

            scene = Scene.from_dict(sequence.metadata["scene"])
            grid = room_grid(scene, voxel_size)
            volume = compute_ground_truth(scene, grid, truncation)
            volume.observed = observed_mask(
                grid, truncation, [(f.K_depth, f.T_world_cam, f.depth) for f in frames]
            )
        if sequence.mesh_path is not None:
            mesh = sequence.mesh()
        else:
            from recon_ros.scenes.mesh import reference_mesh
            from recon_ros.scenes.scene import Scene

            mesh = reference_mesh(Scene.from_dict(sequence.metadata["scene"]))
        samples, sample_labels = mesh_surface_points(
            mesh.vertices, mesh.faces, SURFACE_SPACING, labels=mesh.labels
        )
        points = voxel_down_sample(samples, DOWN_SAMPLE)
        labels = transfer_labels(samples, sample_labels, points)
        # Seen by a frame, and inside the ground-truth grid (the room with a margin: surfaces
        # seen through doors and passages beyond it are outside the evaluated region).
        seen = visible_points(points, frames, VISIBILITY_TOLERANCE)
        seen &= np.all((points >= volume.grid.lo) & (points <= volume.grid.hi), axis=1)
        return GroundTruth(
            origin=np.asarray(volume.grid.origin, dtype=np.float64),
            voxel_size=volume.grid.voxel_size,
            dims=volume.grid.dims,
            truncation=volume.truncation,
            tsdf=volume.tsdf.astype(np.float32),
            observed=np.asarray(volume.observed, dtype=bool),
            points=points[seen],
            labels=labels[seen],
            source="exact",
        )
    origin, dims = grid_from_depth(frames, voxel_size)
    fused = fuse_frames(frames, origin, voxel_size, dims, truncation)
    mesh = extract_mesh(fused["tsdf"], fused["observed"], origin, voxel_size)
    samples, _ = mesh_surface_points(mesh.vertices, mesh.faces, SURFACE_SPACING)
    return GroundTruth(
        origin=origin,
        voxel_size=voxel_size,
        dims=dims,
        truncation=truncation,
        tsdf=fused["tsdf"],
        observed=fused["observed"],
        points=voxel_down_sample(samples, DOWN_SAMPLE),
        labels=None,
        source="fusion",
    )


def map_tsdf_on_grid(reconstructor, origin: np.ndarray, dims) -> np.ndarray:
    """The reconstructor's map TSDF at the centres of a grid of the map's voxel size (+1 where
    nothing was mapped): read directly when the grid lies on the map lattice, else trilinearly
    interpolated."""
    from scipy.ndimage import map_coordinates

    voxel_size = reconstructor.voxel_size
    start = np.asarray(origin, dtype=np.float64) / voxel_size
    base = np.floor(start + 1e-6).astype(np.int64)
    offset = start - base
    dims = tuple(int(d) for d in dims)
    if np.all(np.abs(offset) < 1e-4):
        return reconstructor.map.read_region(base, dims)["tsdf"].astype(np.float32)
    region = reconstructor.map.read_region(base, tuple(d + 1 for d in dims))["tsdf"]
    axes = [offset[a] + np.arange(dims[a]) for a in range(3)]
    coords = np.stack(np.meshgrid(*axes, indexing="ij"), 0).reshape(3, -1)
    values = map_coordinates(region.astype(np.float64), coords, order=1, mode="nearest")
    return values.reshape(dims).astype(np.float32)


@dataclass
class Reconstruction:
    """What the scoring takes: a mesh (vertices (N, 3), faces (M, 3), labels (N,) or None) and
    a TSDF on the ground-truth grid."""

    vertices: np.ndarray
    faces: np.ndarray
    labels: np.ndarray | None
    tsdf: np.ndarray
    seconds: float = 0.0
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    """One evaluated way of reconstructing (a row of the report).

    Attributes:
        name: key in ``results.json`` (``model`` for the default pipeline).
        label: row label in ``results.md``.
        config: the ``ReconstructorConfig``.
        model: the Atlas network (``"atlas"`` pipeline) or None.
        depth_model: the depth network (``"fusion"`` pipeline) or None.
        sensor_depth: offer the frames' depth to the reconstructor (the RGB-D path).
        refine_model: the 3D refinement network on top of fusion, or None.
        semantic_model: the semantic network (keyframe labels), or None: the depth network's head.
    """

    name: str
    label: str
    config: object
    model: object = None
    depth_model: object = None
    sensor_depth: bool = False
    refine_model: object = None
    refine_mode: str = "labels"
    semantic_model: object = None


def reconstruct(
    sequence: FrameSequence,
    pipeline: Pipeline,
    indices: list[int],
    gt: GroundTruth,
    cnn_period_s: float = 2.0,
) -> Reconstruction:
    """Run ``AtlasReconstructor`` over the frames ``indices`` (module docstring, step 1). With
    stereo depth, each keyframe's predicted depth is also scored against the frame's depth
    (``info["depth_network"]``)."""
    from recon_ros.core.reconstructor import AtlasReconstructor

    started = time.monotonic()
    reconstructor = AtlasReconstructor(
        pipeline.model,
        pipeline.config,
        pipeline.depth_model,
        pipeline.refine_model,
        pipeline.refine_mode,
        pipeline.semantic_model,
    )
    stage = reconstructor.stage
    depth_accumulator = DepthAccumulator()
    period_ns = int(cnn_period_s * 1e9)
    last_update, dirty = None, False
    stamps = sequence.stamps_ns
    for i in indices:
        frame = sequence[i]
        depth = frame.depth if pipeline.sensor_depth else None
        result = reconstructor.integrate(
            frame.rgb,
            frame.K,
            frame.T_world_cam,
            float(stamps[i]) * 1e-9,
            depth=depth,
            K_depth=frame.K_depth if depth is not None else None,
        )
        if result.integrated and stage is not None and stage.last_result is not None:
            scored = stage.last_result
            if scored.source == "mvs" and frame.depth is not None:
                predicted = scored.depth.cpu().numpy()
                reference = resize_nearest(frame.depth, predicted.shape)
                depth_accumulator.add(predicted, reference)
        if not result.integrated:
            continue
        dirty = True
        last_update = stamps[i] if last_update is None else last_update
        if stamps[i] - last_update >= period_ns:
            reconstructor.update()
            last_update, dirty = stamps[i], False
    if dirty:
        reconstructor.update()
    mesh = reconstructor.mesh()
    tsdf = map_tsdf_on_grid(reconstructor, gt.origin, gt.dims)
    counters = reconstructor.stats.counters
    info = {
        "keyframes": counters["keyframes_integrated"],
        "frames": len(indices),
        "updates": counters["updates"],
    }
    if depth_accumulator.reference_pixels:
        info["depth_network"] = depth_accumulator.result()
        info["depth_network_pixels"] = depth_accumulator.pixels
    return Reconstruction(
        vertices=mesh.vertices.astype(np.float64),
        faces=mesh.faces,
        labels=np.asarray(mesh.labels, dtype=np.uint8),
        tsdf=tsdf,
        seconds=time.monotonic() - started,
        info=info,
    )


def fusion_reconstruction(frames: list[FrameData], gt: GroundTruth, num_classes: int):
    """The upper bound: TSDF fusion of the ground-truth depth (and label votes) on the
    ground-truth grid, meshed like the map."""
    started = time.monotonic()
    labelled = num_classes if any(f.semantic is not None for f in frames) else 0
    fused = fuse_frames(
        frames, gt.origin, gt.voxel_size, gt.dims, gt.truncation, num_classes=labelled
    )
    mesh = extract_mesh(
        fused["tsdf"], fused["observed"], gt.origin, gt.voxel_size, labels=fused.get("labels")
    )
    return Reconstruction(
        vertices=mesh.vertices.astype(np.float64),
        faces=mesh.faces,
        labels=np.asarray(mesh.labels, dtype=np.uint8) if labelled else None,
        tsdf=fused["tsdf"],
        seconds=time.monotonic() - started,
    )


def mesh_scores(
    vertices: np.ndarray,
    faces: np.ndarray,
    labels: np.ndarray | None,
    gt: GroundTruth,
    frames: list[FrameData],
    num_classes: int,
) -> dict:
    """The metrics of a mesh (module docstring, step 3, all but L1): ``depth_*``, the point
    metrics after the paper's trimming, and ``confusion`` (K, K + 1 list) when ``labels`` (per
    vertex) and the ground truth's labels exist."""
    result: dict = {}
    depths, accumulator = [], DepthAccumulator()
    renderer = DepthRenderer(vertices, faces)
    lo = gt.origin - 0.5 * gt.voxel_size
    hi = gt.origin + (np.asarray(gt.dims) - 0.5) * gt.voxel_size
    for frame in frames:
        height, width = frame.depth.shape
        rendered = renderer.render(frame.K_depth, frame.T_world_cam, width, height)
        depths.append(rendered)
        accumulator.add(rendered, depth_in_region(frame, lo, hi))
    result.update({f"depth_{k}": v for k, v in accumulator.result().items()})
    trimmed = fuse_frames(frames, gt.origin, gt.voxel_size, gt.dims, gt.truncation, depths)
    trimmed_mesh = extract_mesh(trimmed["tsdf"], trimmed["observed"], gt.origin, gt.voxel_size)
    samples, _ = mesh_surface_points(trimmed_mesh.vertices, trimmed_mesh.faces, SURFACE_SPACING)
    points = point_metrics(samples, gt.points)
    result.update(points.as_dict())
    result["predicted_points"] = points.predicted_points
    result["reference_points"] = points.reference_points
    result["mesh_vertices"] = len(vertices)
    if gt.labels is not None and labels is not None:
        transferred = transfer_labels(np.asarray(vertices, np.float64), labels, gt.points)
        result["confusion"] = semantic_confusion(transferred, gt.labels, num_classes).tolist()
    return result


def score(
    reconstruction: Reconstruction,
    gt: GroundTruth,
    frames: list[FrameData],
    num_classes: int,
) -> dict:
    """All metrics of one reconstruction (module docstring, step 3): ``l1`` and
    ``mesh_scores``."""
    result: dict = {"l1": tsdf_l1(reconstruction.tsdf, gt.tsdf, gt.observed)}
    result.update(
        mesh_scores(
            reconstruction.vertices,
            reconstruction.faces,
            reconstruction.labels,
            gt,
            frames,
            num_classes,
        )
    )
    return result


@dataclass
class SceneResult:
    """Metrics of each pipeline (``rows``; ``model`` is the first, the default) and of the upper
    bound on one scene."""

    name: str
    folder: str
    layout: str
    model: dict
    upper_bound: dict
    info: dict
    rows: dict = field(default_factory=dict)


def evaluate_scene(
    folder: str | os.PathLike,
    pipelines: list[Pipeline],
    num_classes: int,
    voxel_size: float,
    truncation: float,
    layout: str = "auto",
    cnn_period_s: float = 2.0,
    max_frames: int | None = None,
    upper_bound: bool = True,
    mesh_dir: Path | None = None,
    frame_rate: float | None = None,
) -> SceneResult:
    """Evaluate each of ``pipelines`` (the first is the default, reported as ``model``) on one
    scene folder."""
    if not pipelines:
        raise ValueError("pipelines: need at least one")
    sequence, layout = open_sequence(folder, layout, frame_rate)
    indices = frame_subset(len(sequence), max_frames)
    frames = load_frames(sequence, indices)
    gt = load_ground_truth_for(sequence, layout, frames, voxel_size, truncation)
    rows, infos = {}, {}
    for pipeline in pipelines:
        prediction = reconstruct(sequence, pipeline, indices, gt, cnn_period_s)
        metrics = score(prediction, gt, frames, num_classes)
        metrics["seconds"] = prediction.seconds
        if "depth_network" in prediction.info:
            metrics["depth_network"] = prediction.info["depth_network"]
        rows[pipeline.name] = metrics
        infos[pipeline.name] = prediction.info
        if mesh_dir is not None:
            from recon_ros.io.ply import write_ply

            suffix = "" if pipeline is pipelines[0] else f"_{pipeline.name}"
            write_ply(
                Path(mesh_dir) / f"{Path(folder).name}{suffix}.ply",
                prediction.vertices.astype(np.float32),
                prediction.faces,
                label=prediction.labels,
            )
    bound: dict = {}
    if upper_bound:
        fused = fusion_reconstruction(frames, gt, num_classes)
        bound = score(fused, gt, frames, num_classes)
    first = pipelines[0].name
    return SceneResult(
        name=sequence.name,
        folder=str(folder),
        layout=layout,
        model=rows[first],
        upper_bound=bound,
        info={
            **{k: v for k, v in infos[first].items() if k != "depth_network"},
            "gt_source": gt.source,
            "gt_points": len(gt.points),
            "grid_dims": list(gt.dims),
        },
        rows=rows,
    )


def frame_subset(count: int, max_frames: int | None) -> list[int]:
    """All frame indices, or ``max_frames`` of them evenly spaced (first and last included)."""
    if count < 1:
        raise ValueError("scene: no frames")
    if max_frames is None or max_frames >= count:
        return list(range(count))
    if max_frames < 1:
        raise ValueError(f"max_frames: need at least one, got {max_frames}")
    return sorted({round(x) for x in np.linspace(0, count - 1, max_frames)})


POINT_KEYS = ("l1", "acc", "comp", "prec", "recall", "fscore")
DEPTH_KEYS = tuple(
    f"depth_{k}"
    for k in ("abs_rel", "abs_diff", "sq_rel", "rmse", "delta1", "delta2", "delta3", "comp")
)


def aggregate(results: list[dict], num_classes: int) -> dict:
    """Mean over scenes of every scalar metric; semantic IoU from the summed confusion matrices
    (``iou`` per class, ``miou`` over classes present)."""
    from recon_ros.training.metrics import iou_from_confusion, mean_of_present

    if not results:
        return {}
    out: dict = {}
    for key in POINT_KEYS + DEPTH_KEYS:
        values = [r[key] for r in results if key in r and np.isfinite(r[key])]
        out[key] = float(np.mean(values)) if values else float("nan")
    networks = [r["depth_network"] for r in results if "depth_network" in r]
    if networks:
        out["depth_network"] = {
            key: float(np.nanmean([n[key] for n in networks])) for key in networks[0]
        }
    confusions = [np.asarray(r["confusion"]) for r in results if "confusion" in r]
    if confusions:
        total = np.sum(confusions, axis=0)
        iou = iou_from_confusion(total)
        out["iou"] = [None if math.isnan(v) else float(v) for v in iou]
        out["miou"] = mean_of_present(iou)
        out["confusion"] = total.tolist()
    return out


def mesh_depth_agreement(
    vertices: np.ndarray,
    faces: np.ndarray,
    views: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    tolerance: float = 0.05,
) -> float:
    """How well a mesh explains depth images: the share of pixels with depth (over all
    ``views``: (depth (H, W) metres, K (3, 3), T_world_cam (4, 4))) where the mesh, rendered
    from that view, lies within ``tolerance`` (relative) of the measured depth. 0 for an empty
    mesh; pixels the mesh misses count as disagreeing."""
    renderer = DepthRenderer(vertices, faces)
    agree = total = 0
    for depth, K, T in views:
        height, width = depth.shape
        rendered = renderer.render(K, T, width, height)
        valid = depth > 0
        total += int(valid.sum())
        close = np.abs(rendered[valid] - depth[valid]) <= tolerance * depth[valid]
        agree += int((close & (rendered[valid] > 0)).sum())
    return agree / total if total else 0.0
