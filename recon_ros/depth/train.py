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
import time
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.confusion import confusion_matrix, mean_iou
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
from recon_ros.training.run_folder import (
    RunFolder,
    adamw_without_decay_on_biases,
    balanced_class_weights,
    scheduled_lr,
)


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
    parser.add_argument(
        "--keep-snapshots",
        action="store_true",
        help="also keep the weights of every validation step (OUT/snapshots/step_N.pt)",
    )
    parser.add_argument(
        "--semantic-weight", type=float, default=0.5, help="weight of the semantic loss term"
    )
    parser.add_argument(
        "--semantic-balance",
        type=float,
        default=0.0,
        help="class weights of the semantic loss ~ pixel frequency^-BALANCE (0: unweighted, "
        "0.5: inverse square root), measured on training frames",
    )
    parser.set_defaults(func=run)
    return parser


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
    classes = model.config.num_classes
    confusion = np.zeros((classes, classes), dtype=np.int64)
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
        known = batch.semantic[0] < classes
        confusion += confusion_matrix(labels[known], batch.semantic[0][known], classes).numpy()
    model.train()
    result = {}
    for prefix, rows in (("", rows_net), ("wta_", rows_wta)):
        for key in rows[0] if rows else ():
            result[prefix + key] = float(np.nanmean([r[key] for r in rows]))
    result["semantic_accuracy"] = float(np.trace(confusion) / max(1, confusion.sum()))
    result["semantic_miou"] = mean_iou(confusion, over="labelled")
    result["samples"] = len(rows_net)
    return result


def semantic_class_weights(
    dataset: StereoDepthDataset, classes: int, balance: float, frames: int, seed: int
) -> torch.Tensor:
    """(classes,) loss weights ~ frequency^-balance over ``frames`` training frames
    (``balanced_class_weights``)."""
    rng = np.random.default_rng(seed)
    counts = np.zeros(classes, dtype=np.float64)
    for index in rng.integers(0, len(dataset), size=frames):
        sample = dataset.sample(int(index), partners=2)
        if sample is None:
            continue
        labels = sample.semantic.numpy().ravel()
        counts += np.bincount(labels[labels < classes], minlength=classes)
    return balanced_class_weights(counts, balance)


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
    optimiser = adamw_without_decay_on_biases(model, args.lr, args.weight_decay)
    run = RunFolder(args.out, "multi-view depth network")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step} (best val AbsRel {run.best:.4f})", flush=True)
    rng = np.random.default_rng((args.seed, run.step))
    weights = DepthLossWeights(semantic=args.semantic_weight)
    if args.semantic_balance > 0:
        weights.semantic_class_weights = semantic_class_weights(
            train, config.num_classes, args.semantic_balance, frames=200, seed=args.seed
        )
        print(
            "semantic class weights: "
            + " ".join(f"{w:.2f}" for w in weights.semantic_class_weights.tolist()),
            flush=True,
        )
    recipe = (
        f"recon-ros train depth --data {' '.join(args.data)} --val-data {' '.join(args.val_data)} "
        f"--out {args.out} --steps {args.steps} --batch-size {args.batch_size} --crop "
        f"{args.crop[0]} {args.crop[1]} --lr {args.lr} --threads {args.threads} --seed {args.seed}"
        f" --semantic-weight {args.semantic_weight} --semantic-balance {args.semantic_balance}"
        f"{' --no-randomise' if args.no_randomise else ''}"
    )

    started = time.monotonic()
    model.train()
    running: dict[str, list[float]] = {}
    while run.step < args.steps:
        if args.minutes and (time.monotonic() - started) / 60.0 >= args.minutes:
            print(f"time box of {args.minutes} min reached at step {run.step}", flush=True)
            break
        # Scenes still being generated join as they are completed.
        if run.step % 100 == 0 and len(find_scene_folders(args.data)) != len(train.sequences):
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
            group["lr"] = scheduled_lr(run.step, args.steps, args.lr, args.warmup_steps)
        output = model(batch.reference, batch.sources, batch.K_ref, batch.K_src, batch.T_src_ref)
        losses = depth_losses(output, batch.depth, batch.semantic, config, weights)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        run.step += 1
        for key, value in losses.items():
            running.setdefault(key, []).append(float(value.detach()))
        if run.step % args.log_every == 0:
            record = {"kind": "train", "step": run.step, "lr": optimiser.param_groups[0]["lr"]}
            record.update({k: float(np.mean(v)) for k, v in running.items()})
            record["temperature"] = float(model.ncc_temperature.detach())
            running.clear()
            run.history.append(record)
            elapsed = (time.monotonic() - started) / 60.0
            print(
                f"step {run.step} loss {record['total']:.3f} plane {record['plane']:.3f} "
                f"logl1 {record['log_l1']:.3f} sem {record['semantic']:.3f} ({elapsed:.1f} min)",
                flush=True,
            )
        if run.step % args.val_every == 0 or run.step == args.steps:
            metrics = validate(model, val, val_ids)
            run.history.append({"kind": "val", "step": run.step, **metrics})
            print(
                f"val step {run.step}: AbsRel {metrics['abs_rel']:.4f} d1 {metrics['delta1']:.3f} "
                f"(NCC sweep {metrics['wta_abs_rel']:.4f} / {metrics['wta_delta1']:.3f}), "
                f"semantic acc {metrics['semantic_accuracy']:.3f} "
                f"mIoU {metrics['semantic_miou']:.3f}",
                flush=True,
            )
            if args.keep_snapshots:
                save_depth_net(
                    model,
                    args.out / "snapshots" / f"step_{run.step}.pt",
                    trained=True,
                    recipe=recipe,
                    extra={"step": run.step, "validation": metrics},
                )
            if metrics["abs_rel"] < run.best:
                run.best = metrics["abs_rel"]
                save_depth_net(
                    model,
                    run.best_path,
                    trained=True,
                    recipe=recipe,
                    extra={"step": run.step, "validation": metrics},
                )
            run.save(model, optimiser)
    run.save(model, optimiser)
    print(
        f"stopped at step {run.step}; best val AbsRel {run.best:.4f}; {run.best_path}", flush=True
    )
    return 0
