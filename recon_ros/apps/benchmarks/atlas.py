"""Atlas core speed (``recon-ros bench``, ``bench/atlas_core.py``).

Runs ``AtlasReconstructor`` at its default settings (default model architecture, 96x96x80 window
of 4 cm voxels, 384x288 network images) on a synthetic walk: random images, a camera moving
0.15 m per frame along x with a slow yaw, so every frame is a keyframe and the window shifts every
few frames. The 3D CNN runs every ``--update-every`` keyframes, as the ROS node's timer would.
Printed, per device (the CPU, and CUDA when available):

- per frame: feature extraction, back-projection, window shift (per shift, flush not included);
- per update: 3D CNN over the window, merge into the map; meshing (whole map, cached chunks);
- peak memory: process RSS (``resource``), and CUDA max allocated on CUDA;
- back-projection speed-up: the brute-force loop reference (``backproject_features_reference``)
  against the vectorised ``backproject_features`` on the same small volume, measured in this run
  (best of several runs each), plus the fast version on the full window and the reference's time
  extrapolated to it per voxel.

Stage times are per call; medians are robust to other processes on the machine, means are not.

The weights are random (BatchNorm statistics calibrated so the TSDF has surfaces to mesh); speed
does not depend on training.
"""

import argparse
import json
import os
import resource
import time
from dataclasses import replace

import numpy as np
import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.core.backproject import backproject_features, backproject_features_reference
from recon_ros.core.batchnorm_calibration import calibrate_batchnorm
from recon_ros.core.geometry import look_at_pose
from recon_ros.core.reconstructor import STAGES, AtlasReconstructor, ReconstructorConfig


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def walk_frames(count: int, seed: int, size=(640, 480)):
    """Synthetic frames: (image (H, W, 3) uint8, K (3, 3), T_world_cam (4, 4), stamp)."""
    rng = np.random.default_rng(seed)
    width, height = size
    K = np.array([[0.8 * width, 0, (width - 1) / 2], [0, 0.8 * width, (height - 1) / 2], [0, 0, 1]])
    for i in range(count):
        position = np.array([0.15 * i, 0.0, 1.4])
        yaw = 0.3 * np.sin(0.2 * i)
        target = position + np.array([np.cos(yaw), np.sin(yaw), -0.35])
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        yield image, K, look_at_pose(position, target), 0.1 * i


def measure_backprojection_speedup(
    device: torch.device, channels: int, feature_size, reference_dims, window_dims, voxel_size, seed
) -> dict:
    """Reference vs fast back-projection of one frame on ``reference_dims``, and the fast one on
    ``window_dims``; best-of-N times in ms."""
    generator = torch.Generator().manual_seed(seed)
    width, height = feature_size
    features = torch.rand(1, channels, height, width, generator=generator)
    K = torch.tensor(
        [[[0.8 * width, 0, (width - 1) / 2], [0, 0.8 * width, (height - 1) / 2], [0, 0, 1]]]
    )
    extent = np.asarray(window_dims) * voxel_size
    T = torch.tensor(look_at_pose([-0.5, 0.5 * extent[1], 1.4], 0.5 * extent), dtype=torch.float32)[
        None
    ]
    small_extent = np.asarray(reference_dims) * voxel_size
    small_origin = 0.5 * extent - 0.5 * small_extent

    # Best of several runs for both sides: the ratio should not depend on other load.
    reference_runs = []
    for _ in range(3):
        start = time.perf_counter()
        backproject_features_reference(features, K, T, small_origin, voxel_size, reference_dims)
        reference_runs.append(time.perf_counter() - start)
    reference_ms = min(reference_runs) * 1e3

    features, K, T = features.to(device), K.to(device), T.to(device)

    def fast(dims, origin, repeats: int) -> float:
        backproject_features(features, K, T, origin, voxel_size, dims)  # warm-up
        _synchronize(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            backproject_features(features, K, T, origin, voxel_size, dims)
            _synchronize(device)
            times.append(time.perf_counter() - start)
        return min(times) * 1e3

    fast_small_ms = fast(reference_dims, small_origin, repeats=20)
    fast_full_ms = fast(window_dims, np.zeros(3), repeats=5)
    # The reference costs the same per voxel everywhere (its loop visits every voxel).
    reference_window_ms = reference_ms * np.prod(window_dims) / np.prod(reference_dims)
    return {
        "reference_dims": list(reference_dims),
        "reference_ms": reference_ms,
        "fast_small_ms": fast_small_ms,
        "speedup": reference_ms / fast_small_ms,
        "window_dims": list(window_dims),
        "fast_window_ms": fast_full_ms,
        "reference_window_ms_extrapolated": reference_window_ms,
        "speedup_window_extrapolated": reference_window_ms / fast_full_ms,
    }


def benchmark_atlas(
    device: str,
    frames: int = 24,
    update_every: int = 4,
    seed: int = 0,
    model_config: AtlasModelConfig | None = None,
    config: ReconstructorConfig | None = None,
    reference_dims=(24, 24, 16),
) -> dict:
    """Run the walk on one device; returns the figures as a dict."""
    torch.manual_seed(seed)
    model = calibrate_batchnorm(AtlasModel(model_config or AtlasModelConfig()), seed=seed)
    config = replace(config or ReconstructorConfig(), device=device, pipeline="atlas")
    rec = AtlasReconstructor(model, config)
    if rec.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(rec.device)
    # Warm-up on a throw-away frame (first calls allocate and pick kernels), then start clean.
    warm = next(walk_frames(1, seed + 1))
    rec.integrate(*warm)
    rec.update()
    rec.mesh()
    rec.reset()
    samples: dict[str, list[float]] = {stage: [] for stage in STAGES}

    def record(call, *args):
        # Every call runs each stage at most once; keep each run's duration for the medians.
        before = rec.stats.timings
        output = call(*args)
        for stage, timing in rec.stats.timings.items():
            previous = before[stage].count if stage in before else 0
            if stage in samples and timing.count == previous + 1:
                samples[stage].append(timing.last_ms)
        return output

    start = time.perf_counter()
    for i, frame in enumerate(walk_frames(frames, seed)):
        record(rec.integrate, *frame)
        if (i + 1) % update_every == 0:
            record(rec.update)
            record(rec.mesh)
    record(rec.update)
    mesh = record(rec.mesh)
    wall_s = time.perf_counter() - start
    stats = rec.stats
    result = {
        "device": str(rec.device),
        "frames": frames,
        "window_dims": list(config.window_dims),
        "image_size": list(rec.image_size),
        "voxel_size": rec.voxel_size,
        "feature_channels": model.config.feature_channels,
        "base_channels_3d": model.config.base_channels_3d,
        "timings_ms": {
            stage: {
                "median": float(np.median(values)),
                "mean": float(np.mean(values)),
                "count": len(values),
            }
            for stage, values in samples.items()
            if values
        },
        "counters": stats.counters,
        "map_chunks": stats.map_chunks,
        "mesh_faces": mesh.num_faces,
        "wall_s": wall_s,
        "peak_rss_mib": _peak_rss_mib(),
    }
    if rec.device.type == "cuda":
        result["cuda_max_allocated_mib"] = torch.cuda.max_memory_allocated(rec.device) / 2**20
    width, height = rec.image_size
    result["backprojection"] = measure_backprojection_speedup(
        rec.device,
        model.config.feature_channels + 3,  # the volume back-projects features and colour together
        (width // 4, height // 4),
        reference_dims,
        config.window_dims,
        rec.voxel_size,
        seed,
    )
    return result


def format_result(result: dict) -> str:
    t = result["timings_ms"]

    def row(label: str, stage: str, unit: str) -> str:
        if stage not in t:
            return f"  {label:<34} (not run)"
        return (
            f"  {label:<30} {t[stage]['median']:8.1f} ms median {t[stage]['mean']:8.1f} ms mean"
            f"  ({unit}, n={t[stage]['count']})"
        )

    bp = result["backprojection"]
    lines = [
        f"device {result['device']}: window {tuple(result['window_dims'])} x "
        f"{result['voxel_size'] * 100:.0f} cm, images {tuple(result['image_size'])}, "
        f"C={result['feature_channels']}, 3D base {result['base_channels_3d']}, "
        f"{result['frames']} frames",
        row("feature extraction", "feature_extraction", "per frame"),
        row("back-projection", "backprojection", "per frame"),
        row("window shift", "window_shift", "per shift"),
        row("3D CNN over the window", "cnn_3d", "per update"),
        row("merge into the map", "merge", "per update"),
        row("meshing (whole map, cached)", "meshing", "per call"),
        f"  {'peak RSS':<34} {result['peak_rss_mib']:9.0f} MiB",
    ]
    if "cuda_max_allocated_mib" in result:
        lines.append(f"  {'CUDA max allocated':<34} {result['cuda_max_allocated_mib']:9.0f} MiB")
    lines += [
        f"  map: {result['map_chunks']} chunks, mesh {result['mesh_faces']} faces, "
        f"{result['counters']['window_shifts']} window shifts, wall {result['wall_s']:.1f} s",
        f"  back-projection of one frame on {tuple(bp['reference_dims'])} voxels, best of N: "
        f"reference {bp['reference_ms']:.1f} ms, fast {bp['fast_small_ms']:.2f} ms -> speed-up "
        f"x{bp['speedup']:.0f}",
        f"  fast on the {tuple(bp['window_dims'])} window {bp['fast_window_ms']:.1f} ms; the "
        f"reference extrapolated per voxel {bp['reference_window_ms_extrapolated'] / 1e3:.1f} s "
        f"-> x{bp['speedup_window_extrapolated']:.0f}",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.device == "all":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = [args.device]
    defaults = ReconstructorConfig()
    window_dims = tuple(args.window_dims) if args.window_dims else defaults.window_dims
    window_chunks = int(np.prod([d // defaults.chunk_size for d in window_dims]))
    config = replace(
        defaults,
        window_dims=window_dims,
        max_map_chunks=max(defaults.max_map_chunks, window_chunks),
    )
    model_config = AtlasModelConfig.small() if args.small else AtlasModelConfig()
    if args.image_size:
        model_config = replace(model_config, image_size=tuple(args.image_size))
    if args.threads:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads of {os.cpu_count()} "
        f"cores, load average {load}"
    )
    results = []
    for device in devices:
        result = benchmark_atlas(
            device,
            frames=args.frames,
            update_every=args.update_every,
            seed=args.seed,
            model_config=model_config,
            config=config,
            reference_dims=tuple(args.reference_dims),
        )
        results.append(result)
        print(format_result(result), flush=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=2)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench",
        help="speed of the Atlas core: per-frame and per-update milliseconds, memory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--device",
        default="all",
        help="cpu, cuda, auto, or all (default: cpu and cuda when present)",
    )
    parser.add_argument("--frames", type=int, default=24, help="frames of the walk (default 24)")
    parser.add_argument(
        "--update-every", type=int, default=4, help="keyframes between 3D CNN updates (default 4)"
    )
    parser.add_argument(
        "--window-dims", type=int, nargs=3, metavar=("X", "Y", "Z"), help="window in voxels"
    )
    parser.add_argument(
        "--image-size", type=int, nargs=2, metavar=("W", "H"), help="network image size"
    )
    parser.add_argument(
        "--small", action="store_true", help="the small architecture of the plumbing checkpoint"
    )
    parser.add_argument(
        "--reference-dims",
        type=int,
        nargs=3,
        default=(24, 24, 16),
        metavar=("X", "Y", "Z"),
        help="volume for the brute-force back-projection reference (default 24 24 16)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.set_defaults(func=run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="atlas_core")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["bench", *(argv or [])])
    return args.func(args)
