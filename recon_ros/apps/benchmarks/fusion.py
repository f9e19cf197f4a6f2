"""Speed and memory of the default fusion pipeline (``recon-ros bench``; ``recon-ros bench
--pipeline atlas`` runs the features-only Atlas benchmark of ``benchmarks.atlas``).

The scene is an analytic box room (8 x 6 x 2.6 m) with a random texture; the camera walks a loop
through it, every frame a keyframe. Printed, per device (the CPU, and CUDA when available):

- per keyframe, on a walk with RGB only: the multi-view depth network (partner choice, network,
  confidence filter) and the fusion (TSDF, colour and label votes); the label voting alone is
  the fusion's time with labels minus without, on the same frames and volume;
- per update: handing the window to the map; meshing the map (cached chunks);
- peak memory (process RSS) after 100 and after 1000 keyframes of a long walk with sensor depth
  (the map stops growing once the loop closes: memory must stay flat), with the map's chunks;
- ratios measured in the same run: our fusion against Open3D's ``UniformTSDFVolume.integrate``
  on the same frames and an equal cubic volume (best of several runs each), and the network's
  plane sweep against the brute-force per-pixel reference (``warp_to_planes_reference``) on a
  small grid, extrapolated per pixel and plane to the network's sweep.

Stage times are per call, medians next to means (other processes share the machine). Speed does
not depend on training: the depth network is the shipped one when present, else random.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time

import numpy as np
import torch

from recon_ros.core.depth_fusion import TSDFGrid, fuse_depth_into
from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet
from recon_ros.core.geometry import look_at_pose
from recon_ros.core.plane_sweep import (
    inverse_depth_planes,
    warp_to_planes,
    warp_to_planes_reference,
)
from recon_ros.core.reconstructor import AtlasReconstructor, ReconstructorConfig

ROOM = (np.array([0.0, 0.0, 0.0]), np.array([8.0, 6.0, 2.6]))
WIDTH, HEIGHT = 320, 240
K = np.array([[260.0, 0, 159.5], [0, 260.0, 119.5], [0, 0, 1]])


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def room_view(T: np.ndarray, texture: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Depth (along the optical axis) and a textured image of the box room from pose ``T``."""
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    direction = rays @ T[:3, :3].T
    lo, hi = ROOM
    with np.errstate(divide="ignore", invalid="ignore"):
        exits = np.where(direction > 0, (hi - T[:3, 3]) / direction, (lo - T[:3, 3]) / direction)
    exits[~np.isfinite(exits)] = np.inf
    depth = exits.min(axis=-1)
    hit = T[:3, 3] + depth[..., None] * direction
    index = (np.abs(hit[..., 0] * 37 + hit[..., 1] * 53 + hit[..., 2] * 71) * 4).astype(int)
    image = texture[index % len(texture)]
    return depth.astype(np.float32), image


def loop_walk(count: int, step: float = 0.12):
    """Poses of a camera walking an ellipse in the room, looking ahead and slightly down."""
    for i in range(count):
        angle = step * i / 2.0
        position = np.array([4.0 + 2.5 * np.cos(angle), 3.0 + 1.8 * np.sin(angle), 1.4])
        heading = np.array([-np.sin(angle), np.cos(angle), 0.0])
        target = position + 2.0 * heading + np.array([0.0, 0.0, -0.4])
        yield look_at_pose(position, target)


def _stats(samples: list[float]) -> dict:
    return {
        "median_ms": float(np.median(samples)) if samples else float("nan"),
        "mean_ms": float(np.mean(samples)) if samples else float("nan"),
        "n": len(samples),
    }


def timed_walk(
    device: str, frames: int, depth_model, seed: int, refine_model=None, semantic_model=None
) -> dict:
    """The RGB-only walk: per-keyframe and per-update stage times (with ``refine_model``: the
    3D refinement of the remeshed surface chunks, inside meshing, timed on its own too)."""
    texture = np.random.default_rng(seed).integers(0, 256, (4096, 3), dtype=np.uint8)
    config = ReconstructorConfig(
        device=device, keyframe_min_translation=0.0, keyframe_min_rotation_deg=0.0
    )
    rec = AtlasReconstructor(
        None,
        config,
        depth_model=depth_model,
        refine_model=refine_model,
        semantic_model=semantic_model,
    )
    samples: dict[str, list[float]] = {"update": [], "meshing": []}
    if rec.refiner is not None:
        samples["refine"] = []
        blocks: list[int] = []
    for i, T in enumerate(loop_walk(frames)):
        _, image = room_view(T, texture)
        rec.integrate(image, K, T, 0.1 * i)
        if i % 4 == 3:
            start = time.perf_counter()
            rec.update()
            samples["update"].append((time.perf_counter() - start) * 1e3)
            start = time.perf_counter()
            rec.mesh()
            samples["meshing"].append((time.perf_counter() - start) * 1e3)
            if rec.refiner is not None:
                samples["refine"].append(rec.refiner.last_seconds * 1e3)
                blocks.append(rec.refiner.last_blocks)
    timings = rec.stats.timings
    result = {name: _stats(values) for name, values in samples.items()}
    if rec.refiner is not None:
        result["refine_blocks_mean"] = float(np.mean(blocks)) if blocks else 0.0
        result["map_chunks"] = rec.map.num_chunks
    for stage in ("depth", "fine_sweep", "plane_fill", "semantic", "fusion"):
        if stage not in timings:
            continue
        t = timings[stage]
        result[stage] = {"median_ms": t.last_ms, "mean_ms": t.mean_ms, "n": t.count}
    result["keyframes_fused"] = rec.stats.counters["keyframes_integrated"]
    return result


def dense_refine_ms(refine_model, dims, device: str) -> float:
    """One pass of the refinement network over the whole window (the dense alternative to
    refining surface chunks), best of 2."""
    net = refine_model.to(device).eval()
    inputs = torch.zeros(1, net.config.in_channels, *dims, device=device)
    inputs[:, 0] = 1.0
    best = float("inf")
    with torch.inference_mode():
        for _ in range(2):
            start = time.perf_counter()
            net(inputs)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            best = min(best, (time.perf_counter() - start) * 1e3)
    return best


def label_voting_cost(device: str, dims, frames: int, seed: int) -> dict:
    """Fusion time with and without label votes on the same frames (best of 3 each)."""
    texture = np.random.default_rng(seed).integers(0, 256, (4096, 3), dtype=np.uint8)
    views = [room_view(T, texture) for T in loop_walk(frames)]
    poses = list(loop_walk(frames))
    origin = torch.tensor([0.0, 0.0, -0.2], dtype=torch.float64)
    labels = torch.randint(0, 9, (HEIGHT, WIDTH), generator=torch.Generator().manual_seed(seed))
    K_t = torch.as_tensor(K, dtype=torch.float32)

    def run(with_labels: bool) -> float:
        best = np.inf
        for _ in range(3):
            grid = TSDFGrid.empty(dims, 9, device)
            start = time.perf_counter()
            for (depth, image), T in zip(views, poses, strict=True):
                rgb = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
                fuse_depth_into(
                    grid,
                    origin,
                    0.04,
                    0.12,
                    torch.from_numpy(depth),
                    K_t,
                    torch.as_tensor(T),
                    None,
                    rgb,
                    labels if with_labels else None,
                )
            best = min(best, (time.perf_counter() - start) * 1e3 / len(views))
        return best

    with_labels, without = run(True), run(False)
    return {
        "with_labels_ms": with_labels,
        "without_labels_ms": without,
        "label_voting_ms": with_labels - without,
    }


def open3d_ratio(frames: int, seed: int, resolution: int = 128) -> dict:
    """Our fusion vs Open3D's UniformTSDFVolume.integrate: same frames, same cubic volume."""
    import open3d as o3d

    texture = np.random.default_rng(seed).integers(0, 256, (4096, 3), dtype=np.uint8)
    poses = list(loop_walk(frames))
    views = [room_view(T, texture) for T in poses]
    voxel = 0.04
    length = resolution * voxel
    origin = np.array([2.0, 1.0, -0.2])
    intrinsic = o3d.camera.PinholeCameraIntrinsic(WIDTH, HEIGHT, K[0, 0], K[1, 1], K[0, 2], K[1, 2])
    images = [
        o3d.geometry.RGBDImage.create_from_color_and_depth(
            o3d.geometry.Image(np.ascontiguousarray(image)),
            o3d.geometry.Image(np.ascontiguousarray(depth)),
            depth_scale=1.0,
            depth_trunc=10.0,
            convert_rgb_to_intensity=False,
        )
        for depth, image in views
    ]
    # Open3D's volume starts at its origin (0, 0, 0): move the world instead.
    shift = np.eye(4)
    shift[:3, 3] = -origin
    extrinsics = [np.linalg.inv(shift @ T) for T in poses]

    def run_open3d() -> float:
        best = np.inf
        for _ in range(3):
            volume = o3d.pipelines.integration.UniformTSDFVolume(
                length=length,
                resolution=resolution,
                sdf_trunc=3 * voxel,
                color_type=o3d.pipelines.integration.TSDFVolumeColorType.RGB8,
            )
            start = time.perf_counter()
            for rgbd, extrinsic in zip(images, extrinsics, strict=True):
                volume.integrate(rgbd, intrinsic, extrinsic)
            best = min(best, (time.perf_counter() - start) * 1e3 / len(images))
        return best

    K_t = torch.as_tensor(K, dtype=torch.float32)
    centre = torch.as_tensor(origin + 0.5 * voxel, dtype=torch.float64)

    def run_ours() -> float:
        best = np.inf
        for _ in range(3):
            grid = TSDFGrid.empty((resolution,) * 3, 0)
            start = time.perf_counter()
            for (depth, image), T in zip(views, poses, strict=True):
                rgb = torch.from_numpy(image).permute(2, 0, 1).float().div(255)
                fuse_depth_into(
                    grid,
                    centre,
                    voxel,
                    3 * voxel,
                    torch.from_numpy(depth),
                    K_t,
                    torch.as_tensor(T),
                    None,
                    rgb,
                )
            best = min(best, (time.perf_counter() - start) * 1e3 / len(views))
        return best

    ours, theirs = run_ours(), run_open3d()
    return {
        "volume": [resolution] * 3,
        "ours_ms": ours,
        "open3d_ms": theirs,
        "speedup": theirs / ours,
    }


def sweep_ratio(config: DepthNetConfig, seed: int) -> dict:
    """The vectorised plane sweep vs the per-pixel reference on a small grid (best of N), and
    the vectorised sweep at the network's size with the reference extrapolated to it."""
    generator = torch.Generator().manual_seed(seed)
    width, height = config.image_size[0] // 2, config.image_size[1] // 2
    K_half = torch.tensor(
        [[[0.8 * width, 0, (width - 1) / 2], [0, 0.8 * width, (height - 1) / 2], [0, 0, 1]]]
    )
    T = torch.eye(4)[None]
    T[0, 0, 3] = -0.2
    source = torch.rand(1, config.match_channels + 1, height, width, generator=generator)
    small_planes = inverse_depth_planes(4, config.near, config.far)
    small = (6, 8)
    start = time.perf_counter()
    warp_to_planes_reference(source, K_half, K_half, T, small_planes, small)
    reference_ms = (time.perf_counter() - start) * 1e3

    def fast(planes, size, repeats) -> float:
        best = np.inf
        for _ in range(repeats):
            start = time.perf_counter()
            warp_to_planes(source, K_half, K_half, T, planes, size)
            best = min(best, (time.perf_counter() - start) * 1e3)
        return best

    fast_small = fast(small_planes, small, 20)
    full_planes = inverse_depth_planes(config.planes, config.near, config.far)
    fast_full = fast(full_planes, (height, width), 3)
    per_unit = reference_ms / (small[0] * small[1] * len(small_planes))
    reference_full = per_unit * height * width * config.planes
    return {
        "small_grid": [*small, len(small_planes)],
        "reference_ms": reference_ms,
        "fast_small_ms": fast_small,
        "speedup_small": reference_ms / fast_small,
        "full_grid": [height, width, config.planes],
        "fast_full_ms": fast_full,
        "reference_full_ms_extrapolated": reference_full,
        "speedup_full_extrapolated": reference_full / fast_full,
    }


def memory_walk(device: str, checkpoints=(100, 1000), seed: int = 0) -> dict:
    """Peak and current RSS after each checkpoint count of keyframes of a long walk with sensor
    depth, and the map's chunks then."""
    texture = np.random.default_rng(seed).integers(0, 256, (4096, 3), dtype=np.uint8)
    config = ReconstructorConfig(
        device=device,
        depth_source="sensor",
        keyframe_min_translation=0.0,
        keyframe_min_rotation_deg=0.0,
    )
    rec = AtlasReconstructor(None, config)
    out = {}
    started = time.perf_counter()
    for i, T in enumerate(loop_walk(max(checkpoints))):
        depth, image = room_view(T, texture)
        rec.integrate(image, K, T, 0.1 * i, depth=depth)
        if i % 4 == 3:
            rec.update()
        if i + 1 in checkpoints:
            rec.update()
            rec.mesh()
            out[str(i + 1)] = {
                "rss_mib": _rss_mib(),
                "peak_rss_mib": _peak_rss_mib(),
                "map_chunks": rec.stats.map_chunks,
                "seconds": time.perf_counter() - started,
            }
    return out


def format_result(result: dict) -> str:
    lines = [
        f"device {result['device']}: window {result['window']} x 4 cm, depth network "
        f"{result['depth_weights']}, {result['frames']} keyframes"
    ]
    for label, key, unit in (
        ("depth (network, sweep, planes)", "depth", "per keyframe"),
        ("  of which the fine sweep", "fine_sweep", "per keyframe"),
        ("  of which the plane fill", "plane_fill", "per keyframe"),
        ("  of which the semantic network", "semantic", "per keyframe"),
        ("fusion (TSDF, colour, labels)", "fusion", "per keyframe"),
        ("window -> map", "update", "per update"),
        ("meshing (cached chunks)", "meshing", "per update"),
        ("3D refinement (surface chunks)", "refine", "per update, inside meshing"),
    ):
        if key not in result["walk"]:
            continue
        s = result["walk"][key]
        lines.append(
            f"  {label:32s} {s['median_ms']:8.1f} ms last/median {s['mean_ms']:8.1f} ms "
            f"mean  ({unit}, n={s['n']})"
        )
    if "refine_dense_ms" in result:
        walk = result["walk"]
        lines.append(
            f"  3D refinement: {walk['refine_blocks_mean']:.1f} surface blocks per update "
            f"({walk['map_chunks']} map chunks) vs one dense pass over the window "
            f"{result['refine_dense_ms']:.0f} ms: x"
            f"{result['refine_dense_ms'] / max(walk['refine']['mean_ms'], 1e-6):.1f}"
        )
    labels = result["labels"]
    lines.append(
        f"  label voting                     {labels['label_voting_ms']:8.1f} ms "
        f"(fusion {labels['with_labels_ms']:.1f} ms with labels, "
        f"{labels['without_labels_ms']:.1f} ms without)"
    )
    if "open3d" in result:
        o = result["open3d"]
        lines.append(
            f"  fusion vs Open3D UniformTSDFVolume ({o['volume'][0]}^3): ours "
            f"{o['ours_ms']:.1f} ms, Open3D {o['open3d_ms']:.1f} ms per frame: "
            f"x{o['speedup']:.2f}"
        )
    s = result["sweep"]
    lines.append(
        f"  plane sweep vs per-pixel reference: x{s['speedup_small']:.0f} on "
        f"{s['small_grid']} (measured), x{s['speedup_full_extrapolated']:.0f} at "
        f"{s['full_grid']} (reference extrapolated: "
        f"{s['reference_full_ms_extrapolated'] / 1e3:.0f} s vs {s['fast_full_ms']:.1f} ms)"
    )
    for count, m in result.get("memory", {}).items():
        lines.append(
            f"  after {count:>5s} keyframes: RSS {m['rss_mib']:.0f} MiB (peak "
            f"{m['peak_rss_mib']:.0f} MiB), map {m['map_chunks']} chunks, "
            f"{m['seconds']:.0f} s"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.pipeline == "atlas":
        from recon_ros.apps.benchmarks import atlas

        return atlas.run(args)
    from recon_ros.weights import (
        default_depth_weights,
        default_refine_weights,
        default_semantic_weights,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    devices = (
        ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        if args.device == "all"
        else [args.device]
    )
    weights = default_depth_weights()
    semantic_weights = default_semantic_weights()
    semantic_model = None
    if semantic_weights is not None:
        from recon_ros.core.semantic_net import load_semantic_net

        semantic_model, _ = load_semantic_net(semantic_weights)
    refine_weights = default_refine_weights()
    refine_model = None
    if refine_weights is not None:
        from recon_ros.core.refine_checkpoint import load_refine_net

        refine_model, _ = load_refine_net(refine_weights)
    if weights is not None:
        from recon_ros.core.depth_checkpoint import load_depth_net

        depth_model, _ = load_depth_net(weights)
    else:
        torch.manual_seed(args.seed)
        depth_model = MVSDepthNet().eval()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads of "
        f"{os.cpu_count()} cores, load average {load}"
    )
    results = []
    for device in devices:
        result = {
            "device": device,
            "window": list(ReconstructorConfig().window_dims),
            "depth_weights": str(weights) if weights else "random (none shipped)",
            "frames": args.frames,
            "refine_weights": str(refine_weights) if refine_weights else None,
            "walk": timed_walk(
                device, args.frames, depth_model, args.seed, refine_model, semantic_model
            ),
            "labels": label_voting_cost(device, ReconstructorConfig().window_dims, 8, args.seed),
            "sweep": sweep_ratio(depth_model.config, args.seed),
        }
        if refine_model is not None:
            result["refine_dense_ms"] = dense_refine_ms(
                refine_model, ReconstructorConfig().window_dims, device
            )
        if device == "cpu":
            result["open3d"] = open3d_ratio(8, args.seed)
        if not args.no_memory:
            result["memory"] = memory_walk(device, tuple(args.memory_keyframes), args.seed)
        results.append(result)
        print(format_result(result), flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="speed and memory of the reconstruction (fusion pipeline; --pipeline atlas)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pipeline", choices=("fusion", "atlas"), default="fusion")
    parser.add_argument("--device", default="all", help="cpu, cuda, auto or all (default)")
    parser.add_argument("--frames", type=int, default=24, help="keyframes of the timed walk")
    parser.add_argument(
        "--memory-keyframes",
        type=int,
        nargs="+",
        default=[100, 1000],
        help="RSS checkpoints of the long walk (default 100 1000)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the long walk")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    # the atlas benchmark's options
    parser.add_argument("--update-every", type=int, default=4, help="atlas: keyframes per update")
    parser.add_argument("--window-dims", type=int, nargs=3, metavar=("X", "Y", "Z"))
    parser.add_argument("--image-size", type=int, nargs=2, metavar=("W", "H"))
    parser.add_argument("--small", action="store_true", help="atlas: the plumbing architecture")
    parser.add_argument(
        "--reference-dims", type=int, nargs=3, default=(24, 24, 16), metavar=("X", "Y", "Z")
    )
    parser.set_defaults(func=run)
    return parser
