"""``recon-ros train depth``: train the multi-view depth network on generated scenes.

Resumable and time-boxed, for a 2-core CPU: ``--minutes`` stops cleanly at a step boundary, and
running the same command again continues from ``OUT/last.pt`` (model, optimiser, schedule, step,
history). ``OUT/best.pt`` holds the weights with the best validation AbsRel; ``OUT/history.jsonl``
one record per logged step; ``OUT/curves.png`` the curves. Validation reports, on the same fixed
samples, the network and the classical winner-take-all NCC sweep it starts from (the floor it
must beat).

Example::

    recon-ros train depth --data data/mvs/train --val-data data/mvs/val --out runs/depth \\
        --steps 6000 --batch-size 4 --crop 160 128 --minutes 150 --threads 2 --seed 0
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.depth_checkpoint import save_depth_net
from recon_ros.core.depth_net import (
    DepthLossWeights,
    DepthNetConfig,
    MVSDepthNet,
    depth_losses,
    winner_take_all_depth,
)
from recon_ros.depth.dataset import StereoDepthDataset, collate, find_scene_folders
from recon_ros.training.metrics import depth_metrics


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "depth",
        help="train the multi-view depth network",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", nargs="+", required=True, help="training scene folders/roots")
    parser.add_argument("--val-data", nargs="+", required=True, help="validation scenes")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=(160, 128), metavar=("W", "H"))
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--val-samples", type=int, default=48)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: no)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-randomise", action="store_true", help="train on clean renders")
    parser.add_argument("--planes", type=int, default=64)
    parser.set_defaults(func=run)
    return parser


def _lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def validation_indices(dataset: StereoDepthDataset, count: int, seed: int) -> list[int]:
    """``count`` frames spread evenly over the validation sequences (fixed by seed)."""
    rng = np.random.default_rng(seed)
    picks = np.linspace(0, len(dataset) - 1, count).round().astype(int)
    return sorted(
        set(int(i) for i in picks + rng.integers(0, 3, size=count)) & set(range(len(dataset)))
    )


@torch.inference_mode()
def validate(model: MVSDepthNet, dataset: StereoDepthDataset, indices: list[int]) -> dict:
    """Mean depth metrics of the network and of the classical NCC sweep over ``indices``, and
    the semantic pixel accuracy."""
    model.eval()
    rows_net, rows_wta = [], []
    correct = labelled = 0
    for index in indices:
        sample = dataset.sample(index, partners=2)
        if sample is None:
            continue
        batch = collate([sample])
        output = model(batch.reference, batch.sources, batch.K_ref, batch.K_src, batch.T_src_ref)
        rows_net.append(depth_metrics(output.depth[0].numpy(), batch.depth[0].numpy()))
        wta = winner_take_all_depth(output.ncc, model.config)
        rows_wta.append(depth_metrics(wta[0].numpy(), batch.depth[0].numpy()))
        labels = output.semantic_logits.argmax(1)[0]
        known = batch.semantic[0] != 255
        correct += int((labels[known] == batch.semantic[0][known]).sum())
        labelled += int(known.sum())
    model.train()
    result = {}
    for prefix, rows in (("", rows_net), ("wta_", rows_wta)):
        for key in rows[0] if rows else ():
            result[prefix + key] = float(np.nanmean([r[key] for r in rows]))
    result["semantic_accuracy"] = correct / max(1, labelled)
    result["samples"] = len(rows_net)
    return result


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    def training_set() -> StereoDepthDataset:
        return StereoDepthDataset.from_folders(
            args.data, crop=tuple(args.crop), randomise=not args.no_randomise, seed=args.seed
        )

    train = training_set()
    val = StereoDepthDataset.from_folders(args.val_data, randomise=False, seed=args.seed + 1)
    val_ids = validation_indices(val, args.val_samples, args.seed)
    config = DepthNetConfig(planes=args.planes)
    model = MVSDepthNet(config)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimiser = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": args.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=args.lr,
    )
    last_path, best_path = args.out / "last.pt", args.out / "best.pt"
    history_path = args.out / "history.jsonl"
    step, best, history = 0, math.inf, []
    if last_path.is_file():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, best = int(state["step"]), float(state["best"])
        if history_path.is_file():
            history = [json.loads(line) for line in history_path.read_text().splitlines() if line]
        print(f"resumed at step {step} (best val AbsRel {best:.4f})", flush=True)
    rng = np.random.default_rng((args.seed, step))
    weights = DepthLossWeights()
    recipe = (
        f"recon-ros train depth --data {' '.join(args.data)} --val-data {' '.join(args.val_data)} "
        f"--out {args.out} --steps {args.steps} --batch-size {args.batch_size} --crop "
        f"{args.crop[0]} {args.crop[1]} --lr {args.lr} --threads {args.threads} --seed {args.seed}"
        f"{' --no-randomise' if args.no_randomise else ''}"
    )

    def save_state() -> None:
        payload = {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": step,
            "best": best,
        }
        atomic_write(last_path, lambda f: torch.save(payload, f))
        lines = "".join(json.dumps(h) + "\n" for h in history)
        atomic_write(history_path, lambda f: f.write(lines.encode()))
        try:
            from recon_ros.training.plots import plot_history

            plot_history(history, args.out / "curves.png", "multi-view depth network")
        except Exception as error:  # a plot must never stop training
            print(f"curves not written: {error}", flush=True)

    started = time.monotonic()
    model.train()
    running: dict[str, list[float]] = {}
    while step < args.steps:
        if args.minutes and (time.monotonic() - started) / 60.0 >= args.minutes:
            print(f"time box of {args.minutes} min reached at step {step}", flush=True)
            break
        # Scenes still being generated join as they are completed.
        if step % 100 == 0 and len(find_scene_folders(args.data)) != len(train.sequences):
            train = training_set()
            print(f"training on {len(train.sequences)} scenes", flush=True)
        partners = int(rng.choice((2, 3)))
        samples = []
        while len(samples) < args.batch_size:
            sample = train.sample(int(rng.integers(len(train))), partners)
            if sample is not None:
                samples.append(sample)
        batch = collate(samples)
        for group in optimiser.param_groups:
            group["lr"] = _lr_at(step, args.steps, args.lr, args.warmup_steps)
        output = model(batch.reference, batch.sources, batch.K_ref, batch.K_src, batch.T_src_ref)
        losses = depth_losses(output, batch.depth, batch.semantic, config, weights)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        step += 1
        for key, value in losses.items():
            running.setdefault(key, []).append(float(value.detach()))
        if step % args.log_every == 0:
            record = {"kind": "train", "step": step, "lr": optimiser.param_groups[0]["lr"]}
            record.update({k: float(np.mean(v)) for k, v in running.items()})
            record["temperature"] = float(model.ncc_temperature)
            running.clear()
            history.append(record)
            elapsed = (time.monotonic() - started) / 60.0
            print(
                f"step {step} loss {record['total']:.3f} plane {record['plane']:.3f} "
                f"logl1 {record['log_l1']:.3f} sem {record['semantic']:.3f} ({elapsed:.1f} min)",
                flush=True,
            )
        if step % args.val_every == 0 or step == args.steps:
            metrics = validate(model, val, val_ids)
            history.append({"kind": "val", "step": step, **metrics})
            print(
                f"val step {step}: AbsRel {metrics['abs_rel']:.4f} d1 {metrics['delta1']:.3f} "
                f"(NCC sweep {metrics['wta_abs_rel']:.4f} / {metrics['wta_delta1']:.3f}), "
                f"semantic acc {metrics['semantic_accuracy']:.3f}",
                flush=True,
            )
            if metrics["abs_rel"] < best:
                best = metrics["abs_rel"]
                save_depth_net(
                    model,
                    best_path,
                    trained=True,
                    recipe=recipe,
                    extra={"step": step, "validation": metrics},
                )
            save_state()
    save_state()
    print(f"stopped at step {step}; best val AbsRel {best:.4f}; {best_path}", flush=True)
    return 0
