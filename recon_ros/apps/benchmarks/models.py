"""Inference speed of the seed models beside the Atlas pipeline (``recon-ros bench-models``,
``bench/models.py``): the conv-LSTM 3D-R2N2 (issue 12.2), the Everted U-Net (12.1) and the
single-view depth + IF-Net (13), per call, on the CPU and on CUDA when present.

Rows per model, each timed after warm-up (median and best of ``iterations`` calls):

- ``r2n2``: the network on 5 views; ``reconstruct_object`` end to end (5 views of 640x480 cut
  to their masks, network, marching cubes); baseline: the network at the seed's widths (96-256
  encoder channels, 1024 features, 128 hidden channels), whose ratio says what the CPU sizing
  bought.
- ``everted``: the network on 3 views of 224x224 (occupancy and 6 class masks, 80x96x64), with
  the rays lift the shipped weights use; baseline: the paper's shape with learned lifts (three
  branch passes and the merger where the rays lift fuses first and decodes once).
- ``ifnet``: each stage of one image: the depth U-Net, the differentiable voxelisation, the
  IF-Net's occupancy for the whole frustum grid, and all three together.

Weights are random: speed does not depend on them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import numpy as np
import torch

from recon_ros.apps.benchmarks import time_calls

MODELS = ("r2n2", "everted", "ifnet")


def _sync_for(device: torch.device) -> Callable[[], None]:
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return sync


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def r2n2_rows(device: torch.device, iterations: int, warmup: int, seed: int) -> list[dict]:
    from recon_ros.r2n2.model import ConvLSTMR2N2, R2N2Config
    from recon_ros.r2n2.reconstruct import reconstruct_object

    torch.manual_seed(seed)
    sync = _sync_for(device)
    ours = ConvLSTMR2N2().to(device).eval()
    seed_widths = R2N2Config(
        encoder_channels=(96, 128, 256, 256, 256, 256),
        feature_size=1024,
        hidden=128,
        decoder_channels=(128, 128, 32),
    )
    paper = ConvLSTMR2N2(seed_widths).to(device).eval()
    views = torch.rand(1, 5, 3, 127, 127, device=device)
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(5)]
    masks = []
    for _ in images:
        mask = np.zeros((480, 640), bool)
        mask[140:340, 220:420] = True
        masks.append(mask)
    rows = [
        {
            "what": "r2n2 network, 5 views (baseline: the seed's widths)",
            "parameters": _parameters(paper),
            **time_calls(lambda: paper(views), iterations, warmup, sync),
            "baseline": True,
        },
        {
            "what": "r2n2 network, 5 views",
            "parameters": _parameters(ours),
            **time_calls(lambda: ours(views), iterations, warmup, sync),
        },
        {
            "what": "r2n2 reconstruct_object, 5 views 640x480 with masks, mesh",
            "parameters": _parameters(ours),
            **time_calls(lambda: reconstruct_object(ours, images, masks), iterations, warmup, sync),
        },
    ]
    return rows


@torch.no_grad()
def everted_rows(device: torch.device, iterations: int, warmup: int, seed: int) -> list[dict]:
    import numpy as np

    from recon_ros.core.poses import look_at_pose
    from recon_ros.everted.model import EvertedConfig, EvertedUNet
    from recon_ros.everted.ray_lift import grid_projections
    from recon_ros.everted.train import RAYS_SHAPE
    from recon_ros.scenes.cameras import default_intrinsics

    torch.manual_seed(seed)
    paper = EvertedUNet().to(device).eval()
    rays = EvertedUNet(EvertedConfig(lift="rays", **RAYS_SHAPE)).to(device).eval()
    size = paper.config.image_size
    views = torch.rand(1, 3, 3, size, size, device=device)
    # three cameras round a 5 x 6 x 4 m room, as the studio rig
    K = default_intrinsics(size, size)
    eyes = [(4.6, 3.0, 2.4), (0.6, 5.5, 2.4), (0.6, 0.5, 2.4)]
    projections = torch.from_numpy(np.stack([
        grid_projections(K, look_at_pose(np.array(eye), np.array([2.5, 3.0, 0.6])), (size, size),
                         size, [0.03125] * 3, 0.0625)
        for eye in eyes
    ]))[None].to(device)  # fmt: skip
    sync = _sync_for(device)
    return [
        {
            "what": f"everted network, learned lift (paper's shape), 3 views {size}x{size}",
            "parameters": _parameters(paper),
            **time_calls(lambda: paper(views), iterations, warmup, sync),
            "baseline": True,
        },
        {
            "what": f"everted network, rays lift (shipped), 3 views {size}x{size}",
            "parameters": _parameters(rays),
            **time_calls(lambda: rays(views, None, projections), iterations, warmup, sync),
        },
    ]


@torch.no_grad()
def ifnet_rows(device: torch.device, iterations: int, warmup: int, seed: int) -> list[dict]:
    from recon_ros.core.camera import PinholeCamera
    from recon_ros.core.camera_resample import resample_to_camera
    from recon_ros.ifnet.floor_alignment import align_depth_to_floor
    from recon_ros.ifnet.floor_prior import floor_channels, floor_depth
    from recon_ros.ifnet.ifnet import SingleViewConfig, SingleViewIFNet

    torch.manual_seed(seed)
    model = SingleViewIFNet(SingleViewConfig(floor_input=True, floor_align=True)).to(device).eval()
    config = model.config
    width, height = config.image_size
    images = torch.rand(1, 3, height, width, device=device)
    focal = 0.6 * width
    K = torch.tensor(
        [[[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]]], device=device
    )
    queries = model.grid.centres().reshape(1, -1, 3).to(device)
    up = torch.tensor([[0.0, -0.97, -0.24]], device=device)  # camera pitched down 14 deg
    up = up / up.norm()
    camera_height = torch.tensor([1.2], device=device)
    depth = model.predict_depth(images, K, up, camera_height)
    floor = floor_depth(K, up, camera_height, (height, width), config.max_depth)
    # the bench's random weights put no pixel near the floor: give the op a floor to align
    near_floor = torch.where(floor > 0, floor * 1.05, depth)
    # a 640x480 robot camera of 600 px focal length, resampled into the network's camera
    robot = PinholeCamera(600.0, 600.0, 319.5, 239.5, 640, 480)
    network = PinholeCamera(focal, focal, (width - 1) / 2, (height - 1) / 2, width, height)
    robot_rgb = np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    grid = model.voxelise_depth(depth, K)
    sync = _sync_for(device)
    voxels = int(np.prod(config.grid_dims))
    parameters = _parameters(model)
    return [
        {
            "what": "ifnet 640x480 image resampled into the network's camera",
            "parameters": 0,
            **time_calls(
                lambda: resample_to_camera(robot_rgb, robot, network), iterations, warmup, sync
            ),
        },
        {
            "what": "ifnet floor prior (channels from camera height and up)",
            "parameters": 0,
            **time_calls(
                lambda: floor_channels(K, up, camera_height, (height, width), 8.0),
                iterations,
                warmup,
                sync,
            ),
        },
        {
            "what": f"ifnet depth U-Net with the floor prior, {width}x{height}",
            "parameters": _parameters(model.depth_net),
            **time_calls(
                lambda: model.predict_depth(images, K, up, camera_height, align=False),
                iterations,
                warmup,
                sync,
            ),
        },
        {
            "what": "ifnet depth aligned to the floor (median ratio on floor pixels)",
            "parameters": 0,
            **time_calls(lambda: align_depth_to_floor(near_floor, floor), iterations, warmup, sync),
        },
        {
            "what": "ifnet voxelisation (splat + learnable blur)",
            "parameters": _parameters(model.voxeliser),
            **time_calls(lambda: model.voxelise_depth(depth, K), iterations, warmup, sync),
        },
        {
            "what": f"ifnet occupancy of the grid ({voxels} queries)",
            "parameters": _parameters(model.ifnet),
            **time_calls(
                lambda: model.ifnet(grid, model.grid.to_grid(queries)), iterations, warmup, sync
            ),
        },
        {
            "what": "ifnet image to occupancy grid, all stages",
            "parameters": parameters,
            **time_calls(
                lambda: model(images, K, queries, up=up, height=camera_height),
                iterations,
                warmup,
                sync,
            ),
        },
    ]


ROWS = {"r2n2": r2n2_rows, "everted": everted_rows, "ifnet": ifnet_rows}


def benchmark_models(
    models=MODELS, devices=None, iterations: int = 10, warmup: int = 2, seed: int = 0
) -> dict:
    """``{"threads", "rows": [{"device", "model", "what", "parameters", "median_ms", "best_ms",
    "per_s", ...}]}`` of ``models`` on ``devices`` (default: the CPU, and CUDA when present)."""
    if devices is None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    rows = []
    for name in devices:
        device = torch.device(name)
        for model in models:
            for row in ROWS[model](device, iterations, warmup, seed):
                rows.append({"device": name, "model": model, **row})
    return {"threads": torch.get_num_threads(), "rows": rows}


def format_result(result: dict) -> str:
    lines = [f"torch threads: {result['threads']}"]
    lines.append(f"{'device':6} {'what':62} {'params':>9} {'median ms':>10} {'best ms':>9}")
    baselines = {}
    for row in result["rows"]:
        if row.get("baseline"):
            baselines[(row["device"], row["model"])] = row["median_ms"]
        lines.append(
            f"{row['device']:6} {row['what']:62} {row['parameters'] / 1e6:8.2f}M "
            f"{row['median_ms']:10.1f} {row['best_ms']:9.1f}"
        )
    for (device, model), baseline_ms in baselines.items():
        for row in result["rows"]:
            if (row["device"], row["model"]) == (device, model) and not row.get("baseline"):
                lines.append(
                    f"{device} {row['what']}: {baseline_ms / row['median_ms']:.1f}x faster than "
                    "the baseline"
                )
                break
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = None
    if args.device != "all":
        from recon_ros.core.device import resolve_device

        devices = (str(resolve_device(args.device)),)
    result = benchmark_models(args.models, devices, args.iterations, args.warmup, args.seed)
    print(format_result(result))
    if args.json:
        from recon_ros.core.atomic_io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(result, indent=1).encode())
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bench-models",
        help="inference speed of the seed models (3D-R2N2, Everted U-Net, IF-Net)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--device", default="all", help="cpu, cuda, auto or all (default)")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.set_defaults(func=run)
    return parser
