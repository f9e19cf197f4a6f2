"""``recon-ros train r2n2`` / ``recon-ros evaluate r2n2``: the conv-LSTM 3D-R2N2 on object
samples (``recon-ros generate OUT --objects N --seed S``).

Training feeds each batch 1 to 5 of a sample's views in random order (the seed's protocol),
voxel cross-entropy; ``--neighbourhood 3`` (units coupled by a 3x3x3 convolution) or ``1`` (the
seed's comparison). Resumable and time-boxed; ``best.pt`` keeps the best validation IoU.
Evaluation reports, as the seed does, the IoU at threshold 0.4 and the voxel cross-entropy per
class and their mean for 1 to 5 views; ``results.json`` carries ``iou`` (the first checkpoint,
5 views) and ``iou_1x1x1`` when a 1x1x1 checkpoint is given too.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.checkpoint import load_model, save_checkpoint
from recon_ros.r2n2.data import ObjectSamples
from recon_ros.r2n2.model import ConvLSTMR2N2, R2N2Config, occupancy_iou, voxel_cross_entropy
from recon_ros.scenes.objects import OBJECT_CLASSES
from recon_ros.training.data import PhotometricConfig, photometric_jitter
from recon_ros.training.run_folder import RunFolder, add_run_arguments, scheduled_lr

R2N2_CHECKPOINT_FORMAT = "recon_ros.r2n2"
MAX_VIEWS = 5


def save_r2n2(model: ConvLSTMR2N2, path, trained: bool, recipe: str, extra: dict) -> Path:
    return save_checkpoint(model, path, trained, recipe, extra, R2N2_CHECKPOINT_FORMAT)


def load_r2n2(path, device="cpu") -> tuple[ConvLSTMR2N2, dict]:
    """The model a checkpoint describes (``torch.load(..., weights_only=True)``), eval mode."""
    return load_model(path, device, R2N2_CHECKPOINT_FORMAT, R2N2Config, ConvLSTMR2N2)


@torch.no_grad()
def evaluate_objects(model: ConvLSTMR2N2, samples: ObjectSamples, views: int, limit=None) -> dict:
    """IoU at 0.4 and voxel cross-entropy, per class and their mean over the classes present,
    with the first ``views`` views of each sample."""
    model.eval()
    per_class: dict[str, list[tuple[float, float]]] = {}
    count = len(samples) if limit is None else min(limit, len(samples))
    for index in range(count):
        item = samples[index]
        logits = model(item["views"][None, :views])
        target = item["occupancy"][None]
        name = OBJECT_CLASSES[item["class_id"]]
        per_class.setdefault(name, []).append(
            (float(occupancy_iou(logits, target)[0]), float(voxel_cross_entropy(logits, target)))
        )
    model.train()
    classes = {}
    for name, values in sorted(per_class.items()):
        ious, entropies = zip(*values, strict=True)
        classes[name] = {"iou": float(np.mean(ious)), "cross_entropy": float(np.mean(entropies))}
    return {
        "iou": float(np.mean([c["iou"] for c in classes.values()])) if classes else float("nan"),
        "cross_entropy": float(np.mean([c["cross_entropy"] for c in classes.values()]))
        if classes
        else float("nan"),
        "classes": classes,
    }


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("r2n2", help="train the conv-LSTM 3D-R2N2 (seed 001)")
    p.add_argument("--data", nargs="+", required=True, help="object sample folders")
    p.add_argument("--val-data", required=True, help="validation object sample folder")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--neighbourhood", type=int, choices=(1, 3), default=3)
    p.add_argument("--val-samples", type=int, default=60)
    p.add_argument("--init", default=None,
                   help="start from this checkpoint's weights (fine-tuning)")  # fmt: skip
    p.add_argument("--occupied-weight", type=float, default=1.0,
                   help="weight of occupied voxels in the cross-entropy")  # fmt: skip
    p.add_argument("--decay-from", type=int, default=0,
                   help="constant rate until this step, then cosine to 5%% at --steps "
                   "(0: constant throughout)")  # fmt: skip
    add_run_arguments(p, steps=6000, batch_size=8, lr=1e-3)
    p.set_defaults(func=run_training)
    return p


def run_training(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    train = ConcatDataset([ObjectSamples(folder) for folder in args.data])
    val = ObjectSamples(args.val_data)
    photometric = PhotometricConfig()
    model = ConvLSTMR2N2(R2N2Config(neighbourhood=args.neighbourhood))
    if args.init:
        start, _ = load_r2n2(args.init)
        if start.config.neighbourhood != args.neighbourhood:
            raise ValueError(
                f"--init: {args.init} has neighbourhood {start.config.neighbourhood}, "
                f"not --neighbourhood {args.neighbourhood}"
            )
        model.load_state_dict(start.state_dict())
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    args.out.mkdir(parents=True, exist_ok=True)
    run = RunFolder(args.out, f"3D-R2N2 ({args.neighbourhood}x{args.neighbourhood})")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step}", flush=True)
    recipe = (
        f"recon-ros train r2n2 --data {' '.join(map(str, args.data))} "
        f"--val-data {args.val_data} --out {args.out} "
        f"--neighbourhood {args.neighbourhood} --steps {args.steps} --batch-size "
        f"{args.batch_size} --lr {args.lr} --threads {args.threads} --seed {args.seed}"
        + (f" --init {args.init}" if args.init else "")
        + (f" --occupied-weight {args.occupied_weight}" if args.occupied_weight != 1.0 else "")
        + (f" --decay-from {args.decay_from}" if args.decay_from > 0 else "")
    )
    started = time.monotonic()
    model.train()
    running: list[float] = []
    while run.step < args.steps:
        if run.out_of_time(args.minutes, started):
            break
        rng = np.random.default_rng((args.seed, run.step))
        items = [train[int(i)] for i in rng.integers(0, len(train), args.batch_size)]
        available = min(item["views"].shape[0] for item in items)
        count = int(rng.integers(1, min(MAX_VIEWS, available) + 1))
        order = rng.permutation(available)[:count]  # random order and number of views
        # every view its own colour jitter: real cameras differ in exposure and white balance
        views = torch.stack(
            [
                torch.stack([photometric_jitter(v, rng, photometric) for v in item["views"][order]])
                for item in items
            ]
        )
        occupancy = torch.stack([item["occupancy"] for item in items])
        if args.decay_from > 0:
            for group in optimiser.param_groups:
                group["lr"] = scheduled_lr(run.step, args.steps, args.lr, 0, args.decay_from)
        loss = voxel_cross_entropy(model(views), occupancy, args.occupied_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        run.step += 1
        running.append(float(loss.detach()))
        if run.step % args.log_every == 0:
            run.log_loss(running, started)
        if run.step % args.val_every == 0 or run.step == args.steps:
            metrics = evaluate_objects(model, val, MAX_VIEWS, args.val_samples)
            flat = {"iou": metrics["iou"], "cross_entropy": metrics["cross_entropy"]}
            run.history.append({"kind": "val", "step": run.step, **flat})
            print(f"val step {run.step}: {json.dumps(flat)}", flush=True)
            if not np.isfinite(run.best) or -metrics["iou"] < run.best:
                run.best = -float(metrics["iou"])
                extra = {"step": run.step, "validation": flat}
                save_r2n2(model, run.best_path, True, recipe, extra)
            run.save(model, optimiser)
    run.save(model, optimiser)
    print(f"stopped at step {run.step}; {run.best_path}", flush=True)
    return 0


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("r2n2", help="evaluate 3D-R2N2 checkpoints")
    p.add_argument("--data", required=True, help="held-out object sample folder")
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="the 3x3x3 checkpoint first, optionally the 1x1x1 one")  # fmt: skip
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run_evaluation)
    return p


def run_evaluation(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    samples = ObjectSamples(args.data)
    results: dict = {"format": "recon_ros.r2n2_evaluation", "data": str(args.data)}
    for path in args.checkpoints:
        model, metadata = load_r2n2(path)
        k = model.config.neighbourhood
        by_views = {
            str(v): evaluate_objects(model, samples, v, args.limit) for v in range(1, MAX_VIEWS + 1)
        }
        key = "iou" if k == 3 else "iou_1x1x1"
        results[key] = by_views[str(MAX_VIEWS)]["iou"]
        results[f"{k}x{k}x{k}"] = {
            "checkpoint": str(path),
            "trained": bool(metadata.get("trained")),
            "views": by_views,
        }
        summary = ", ".join(f"{v}: {m['iou']:.3f}" for v, m in by_views.items())
        print(f"{k}x{k}x{k}: IoU by views {summary}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "results.json", json.dumps(results, indent=1).encode())
    return 0
