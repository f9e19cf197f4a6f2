"""Evaluation of a conjugate-pair checkpoint (``recon-ros evaluate sufficiency``).

Builds samples the way the checkpoint was trained (m, input size, tolerances), with partners
chosen by default as sufficiency_node chooses them (``--partners keyframes``: keyframe gating at
the node's defaults, then the best-overlapping of the 11 keyframes before; ``overlap`` among
consecutive frames, ``offsets`` at fixed frame offsets, ``random``, ``mixed``), and its own
seed; runs the network and reports the metrics of
``metrics``: pixel accuracy as the paper defines it (correct / valid pixels), mean IoU over the
count classes, mean absolute count error, plus the accuracy of always answering the most frequent
count (a baseline from the same labels). Writes ``metrics.json``, ``metrics.md`` (a markdown
table) and ``confusion.png`` (row-normalised confusion matrix).
"""

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.utils.data import DataLoader

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.device import resolve_device
from recon_ros.sufficiency.checkpoint import load_model
from recon_ros.sufficiency.dataset import PARTNER_MODES, SampleConfig, SufficiencyDataset
from recon_ros.sufficiency.metrics import summarize
from recon_ros.sufficiency.sources import add_source_arguments, sequences_from_args
from recon_ros.sufficiency.train import add_threads_argument, run_epoch, save_figure


def plot_confusion(confusion: np.ndarray, path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix (rows: label count, columns: predicted count) as PNG."""
    c = np.asarray(confusion, dtype=np.float64)
    rows = c.sum(1, keepdims=True)
    norm = np.divide(c, rows, out=np.zeros_like(c), where=rows > 0)
    n = c.shape[0]
    fig = Figure(figsize=(1.2 * n + 2, 1.1 * n + 1.5))
    ax = fig.subplots()
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted count")
    ax.set_ylabel("label count")
    ax.set_title(title or "confusion (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    save_figure(fig, path)


def markdown_table(metrics: dict) -> str:
    """The metrics as a markdown table."""
    lines = [
        "| metric | value |",
        "| --- | --- |",
        f"| samples | {metrics['samples']} |",
        f"| valid pixels | {metrics['pixels']} |",
        f"| pixel accuracy | {metrics['pixel_accuracy']:.4f} |",
        f"| mean IoU | {metrics['mean_iou']:.4f} |",
        f"| count MAE | {metrics['count_mae']:.4f} |",
        f"| cross-entropy | {metrics['loss']:.4f} |",
        f"| baseline accuracy (most frequent count) | {metrics['baseline_accuracy']:.4f} |",
    ]
    lines += [
        "",
        "| count | label fraction | predicted fraction | IoU |",
        "| --- | --- | --- | --- |",
    ]
    for i, iou in enumerate(metrics["iou"]):
        lf = metrics["label_fractions"][i] if metrics["label_fractions"] else 0.0
        pf = metrics["pred_fractions"][i] if metrics["pred_fractions"] else 0.0
        lines.append(f"| {i} | {lf:.3f} | {pf:.3f} | {'-' if iou is None else f'{iou:.3f}'} |")
    return "\n".join(lines) + "\n"


def evaluate(
    checkpoint: str | Path,
    sequences: list[Any],
    out_dir: str | Path,
    *,
    batch_size: int = 4,
    device: str = "auto",
    overrides: dict | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Evaluate ``checkpoint`` on samples of ``sequences`` and write the reports to ``out_dir``.

    Args:
        overrides: SampleConfig fields replacing the checkpoint's (e.g. ``seed``, ``partners``).

    Returns:
        The metrics dict (also in ``metrics.json``).
    """
    dev = resolve_device(device)
    model, meta = load_model(checkpoint, dev)
    sample = dict(meta["sample"])
    sample.update(overrides or {})
    sample.update(m=meta["m"], size=tuple(meta["input_size"]), inputs=model.inputs)
    config = SampleConfig(**sample)
    ds = SufficiencyDataset(sequences, config, cache_dir=cache_dir)
    if len(ds) == 0:
        raise ValueError("sequences yield no evaluation samples")
    result = run_epoch(
        model, DataLoader(ds, batch_size=batch_size), dev, progress=progress, desc="evaluate"
    )
    metrics = summarize(result["confusion"])
    metrics.update(
        samples=len(ds),
        loss=result["loss"],
        checkpoint=str(checkpoint),
        m=meta["m"],
        input_size=meta["input_size"],
        sample=sample | {"size": list(config.size)},
        baseline_accuracy=max(metrics["label_fractions"]) if metrics["label_fractions"] else 0.0,
        confusion=result["confusion"].tolist(),
    )
    out = Path(out_dir)
    atomic_write_bytes(out / "metrics.json", json.dumps(metrics, indent=1).encode())
    atomic_write_bytes(out / "metrics.md", markdown_table(metrics).encode())
    plot_confusion(
        result["confusion"],
        out / "confusion.png",
        f"m={meta['m']}, accuracy {metrics['pixel_accuracy']:.3f}",
    )
    return metrics


def run(args: argparse.Namespace) -> int:
    """Entry point of ``recon-ros evaluate sufficiency``."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = {"seed": args.seed}
    if args.partners:
        overrides["partners"] = args.partners
    if args.partners == "keyframes":
        # sufficiency_node's defaults: the estimator keeps 12 keyframes, the reference included
        overrides["window"] = 11
    if args.offsets:
        overrides["offsets"] = tuple(args.offsets)
    if args.reference_stride:
        overrides["reference_stride"] = args.reference_stride
    metrics = evaluate(
        args.checkpoint,
        sequences_from_args(args),
        args.out,
        batch_size=args.batch_size,
        device=args.device,
        overrides=overrides,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
    )
    print(markdown_table(metrics), end="")
    return 0


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sufficiency`` under ``recon-ros evaluate``."""
    p = subparsers.add_parser(
        "sufficiency", help="evaluate a conjugate-pair checkpoint", description=__doc__
    )
    add_source_arguments(p)
    p.add_argument("--checkpoint", required=True, help="checkpoint (.pt) to evaluate")
    p.add_argument("--out", default="runs/sufficiency_eval", help="report folder")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument(
        "--partners",
        choices=PARTNER_MODES,
        default="keyframes",
        help="partner choice (default keyframes: sufficiency_node's own, keyframe gating at its "
        "defaults then overlap among the 11 keyframes before; overlap: among consecutive "
        "frames; offsets: fixed frame offsets, --offsets)",
    )
    p.add_argument(
        "--offsets",
        type=int,
        nargs="+",
        default=None,
        help="frame offsets of the partners before the reference (--partners offsets), e.g. "
        "12 24 36 48",
    )
    p.add_argument(
        "--reference-stride",
        type=int,
        default=None,
        help="use every Nth frame as a reference (default: the checkpoint's)",
    )
    p.add_argument("--cache-dir", default=None, help="sample cache (default: none)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.add_argument("--seed", type=int, default=1, help="sample plan seed")
    add_threads_argument(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)
    return p
