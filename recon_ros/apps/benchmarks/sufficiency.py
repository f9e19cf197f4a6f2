"""Frame-sufficiency speed (``recon-ros bench-sufficiency``, ``bench/sufficiency.py``).

Measures, on the CPU and on CUDA when available, at the network size (300x300 by default):

- ``network b1``: one forward pass of the conjugate-pair LinkNet, batch 1 (estimates/s);
- ``network b8``: batch 8, per estimate (what offline evaluation gets);
- ``estimator``: ``SufficiencyEstimator.estimate()`` end to end (partner choice by frustum
  overlap, stacking, normalisation, network, summary) on a window of toy keyframes;
- baseline ``labels``: the geometric conjugate-pair labels from depth and poses
  (``labels.conjugate_pair_labels``, numpy on the CPU) at the same size, i.e. what the network
  replaces when depth exists. The ratio ``estimator / labels`` is printed.

The network has random weights: speed does not depend on them. ``inputs`` picks the network's
input (default: the shipped checkpoint's ``rgb+frustum+stereo``, whose estimator also computes
the frustum and plane-sweep channels; ``rgb``: the paper's images only).
"""

import argparse

import torch

from recon_ros.apps.benchmarks import time_calls
from recon_ros.sufficiency.estimator import SufficiencyEstimator
from recon_ros.sufficiency.labels import conjugate_pair_labels
from recon_ros.sufficiency.linknet import LinkNet, count_parameters
from recon_ros.sufficiency.preprocess import input_channels
from recon_ros.sufficiency.synthetic import ToySequence


def benchmark_sufficiency(
    size: tuple[int, int] = (300, 300),
    m: int = 4,
    *,
    iterations: int = 20,
    warmup: int = 3,
    devices: tuple[str, ...] | None = None,
    seed: int = 0,
    inputs: str = "rgb+frustum+stereo",
) -> dict:
    """Run the measurements; returns ``{"parameters", "threads", "rows": [...]}``, each row
    ``{"device", "what", "median_ms", "best_ms", "per_s"}`` (best: the fastest iteration, the
    figure least disturbed by other processes on a shared machine)."""
    if devices is None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
    torch.manual_seed(seed)
    seq = ToySequence(seed, num_frames=m + 3, hw=size)
    frames = [seq[i] for i in range(len(seq))]
    ref, partners = frames[-1], frames[-1 - m : -1]
    rows = []
    labels = time_calls(
        lambda: conjugate_pair_labels(
            ref.depth,
            ref.K,
            ref.T_world_cam,
            [p.depth for p in partners],
            [p.K for p in partners],
            [p.T_world_cam for p in partners],
        ),
        iterations,
        warmup,
        lambda: None,
    )
    rows.append({"device": "cpu", "what": "labels from depth (baseline)", **labels})
    model = LinkNet(m=m, inputs=inputs).eval()
    for name in devices:
        device = torch.device(name)
        net = model.to(device)

        def sync(device=device):
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        for batch in (1, 8):
            x = torch.randn(batch, input_channels(m, inputs), *size, device=device)

            def forward(net=net, x=x):
                with torch.inference_mode():
                    net(x)

            repeats = iterations if batch == 1 else max(3, iterations // 4)
            r = time_calls(forward, repeats, warmup, sync)
            r = {
                "median_ms": r["median_ms"] / batch,
                "best_ms": r["best_ms"] / batch,
                "per_s": r["per_s"] * batch,
            }
            rows.append({"device": name, "what": f"network b{batch} (per estimate)", **r})
        est = SufficiencyEstimator(net, input_size=size, window=len(frames), device=device)
        for f in frames:
            est.add_keyframe(f.rgb, f.K, f.T_world_cam, f.stamp)
        rows.append(
            {
                "device": name,
                "what": "estimator.estimate()",
                **time_calls(est.estimate, iterations, warmup, sync),
            }
        )
    return {
        "parameters": count_parameters(model),
        "threads": torch.get_num_threads(),
        "size": list(size),
        "m": m,
        "inputs": inputs,
        "rows": rows,
    }


def format_report(result: dict) -> str:
    """Markdown table of :func:`benchmark_sufficiency`, with ratios to the label baseline."""
    base = result["rows"][0]["per_s"]
    lines = [
        f"LinkNet m={result['m']}, inputs {result['inputs']}, {result['parameters']} parameters, "
        f"input {result['size'][0]}x{result['size'][1]}, torch threads {result['threads']}",
        "",
        "| device | what | median ms | best ms | per s (median) | vs labels |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['device']} | {r['what']} | {r['median_ms']:.1f} | {r['best_ms']:.1f} | "
            f"{r['per_s']:.1f} | "
            f"{r['per_s'] / base:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Entry point of ``recon-ros bench-sufficiency``."""
    devices = None if args.device == "auto" else (args.device,)
    result = benchmark_sufficiency(
        tuple(args.size), args.m, iterations=args.iterations, devices=devices, inputs=args.inputs
    )
    print(format_report(result), end="")
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``bench-sufficiency``."""
    p = subparsers.add_parser(
        "bench-sufficiency", help="frame-sufficiency estimator speed", description=__doc__
    )
    p.add_argument("--size", type=int, nargs=2, default=[300, 300], metavar=("H", "W"))
    p.add_argument("--m", type=int, default=4)
    p.add_argument(
        "--inputs",
        default="rgb+frustum+stereo",
        choices=("rgb", "rgb+frustum", "rgb+frustum+stereo"),
        help="network input (default: the shipped checkpoint's)",
    )
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--device", default="auto", help="cpu, cuda, or auto (cpu and cuda if there)")
    p.set_defaults(func=run)
    return p
