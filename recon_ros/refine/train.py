"""``recon-ros train refiner``: train the 3D refinement network of the fusion pipeline on maps
fused from the depth network's own predictions.

Two resumable, time-boxed phases in one command: (1) scene pairs are prepared in
``OUT/pairs`` (``refine.prepare``: the fusion pipeline's map of each generated scene beside its
ground truth), skipping scenes already there; (2) training from ``OUT/last.pt``. ``OUT/best.pt``
holds the weights with the best validation loss; ``OUT/history.jsonl`` and ``OUT/curves.png`` the
record. Validation compares, on the same fixed blocks, the refined output with the fused input it
starts from (near-surface TSDF error, voxel label mIoU).

Example::

    recon-ros train refiner --data data/mvs/train --val-data data/mvs/val \\
        --depth-weights recon_ros/weights/depth_default.pt --out runs/refiner \\
        --scenes 60 --steps 2000 --minutes 150 --threads 2 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.confusion import confusion_matrix, mean_iou
from recon_ros.core.refine_checkpoint import save_refine_net
from recon_ros.core.refine_net import (
    RefineLossWeights,
    RefineNetConfig,
    SurfaceRefinerNet,
    refine_losses,
    refiner_input,
)
from recon_ros.refine.dataset import RefineBatch, RefineDataset
from recon_ros.training.run_folder import (
    RunFolder,
    adamw_without_decay_on_biases,
    balanced_class_weights,
    scheduled_lr,
)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "refiner",
        help="train the 3D refinement network on fused maps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", nargs="+", required=True, help="training scene roots")
    parser.add_argument("--val-data", nargs="+", required=True, help="validation scene roots")
    parser.add_argument("--depth-weights", type=Path, default=None, help="default: shipped")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--scenes", type=int, default=60, help="training scenes to prepare")
    parser.add_argument("--val-scenes", type=int, default=8)
    parser.add_argument("--prepare-only", action="store_true")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--val-every", type=int, default=200)
    parser.add_argument("--val-blocks", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--semantic-balance", type=float, default=0.5)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: no)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
    return parser


def _inputs(batch: RefineBatch, num_classes: int) -> torch.Tensor:
    return refiner_input(
        batch.fused_tsdf,
        batch.fused_weight,
        batch.fused_label,
        batch.fused_confidence,
        num_classes,
    )


def _class_weights(dataset: RefineDataset, classes: int, balance: float) -> torch.Tensor:
    """(classes,) weights ~ frequency^-balance of true labels near true surface."""
    counts = np.zeros(classes)
    for scene in dataset.scenes:
        near = scene["gt_observed"] & (np.abs(scene["gt_tsdf"]) < 1)
        labels = scene["gt_label"][near]
        counts += np.bincount(labels[labels < classes], minlength=classes)[:classes]
    return balanced_class_weights(counts, balance)


def _confusion(pred: torch.Tensor, truth: torch.Tensor, classes: int) -> np.ndarray:
    keep = truth < classes  # unknown voxels (IGNORE_LABEL) are left out
    return confusion_matrix(pred[keep].clamp(0, classes - 1), truth[keep], classes).numpy()


def _miou(confusion: np.ndarray) -> float:
    return mean_iou(confusion, over="labelled")


@torch.inference_mode()
def validate(
    model: SurfaceRefinerNet, batches: list[RefineBatch], weights: RefineLossWeights
) -> dict:
    """Loss and metrics of the refined output beside those of the fused input it starts from."""
    model.eval()
    classes = model.config.num_classes
    totals: dict[str, float] = {}
    errors = {"fused": [], "refined": []}
    confusions = {"fused": 0, "refined": 0}
    for batch in batches:
        inputs = _inputs(batch, classes)
        output = model(inputs)
        for key, value in refine_losses(
            output, inputs, batch.gt_tsdf, batch.gt_observed, batch.gt_label, weights
        ).items():
            totals[key] = totals.get(key, 0.0) + float(value) / len(batches)
        near = batch.gt_observed & (batch.gt_tsdf.abs() < 1)
        fused = torch.where(
            batch.fused_weight > 0, batch.fused_tsdf, torch.ones_like(batch.gt_tsdf)
        )
        errors["fused"].append((fused - batch.gt_tsdf).abs()[near])
        errors["refined"].append((output.tsdf - batch.gt_tsdf).abs()[near])
        truth = torch.where(near, batch.gt_label, 255)
        confusions["fused"] = confusions["fused"] + _confusion(
            batch.fused_label.clamp(max=classes - 1), truth, classes
        )
        confusions["refined"] = confusions["refined"] + _confusion(
            output.semantic_logits.argmax(1), truth, classes
        )
    model.train()
    result = {f"loss_{k}": v for k, v in totals.items()}
    for name in ("fused", "refined"):
        result[f"{name}_tsdf_l1"] = float(torch.cat(errors[name]).mean())
        result[f"{name}_miou"] = _miou(confusions[name])
    return result


def run(args: argparse.Namespace) -> int:
    from recon_ros.core.reconstructor import ReconstructorConfig
    from recon_ros.depth.dataset import find_scene_folders
    from recon_ros.refine.prepare import prepare_scenes
    from recon_ros.weights import default_depth_weights

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    depth_weights = args.depth_weights or default_depth_weights()
    if depth_weights is None:
        raise ValueError("no depth network weights: pass --depth-weights")
    config = ReconstructorConfig()
    train_folders = find_scene_folders(args.data)[: args.scenes]
    val_folders = find_scene_folders(args.val_data)[: args.val_scenes]
    remaining = lambda: max(0.01, args.minutes - (time.monotonic() - started) / 60.0)  # noqa: E731
    train_dir, val_dir = args.out / "pairs" / "train", args.out / "pairs" / "val"
    val_paths = prepare_scenes(
        val_folders,
        val_dir,
        depth_weights,
        config,
        remaining() if args.minutes else 0.0,
        args.threads,
    )
    train_paths = prepare_scenes(
        train_folders,
        train_dir,
        depth_weights,
        config,
        remaining() if args.minutes else 0.0,
        args.threads,
    )
    print(f"pairs: {len(train_paths)} training, {len(val_paths)} validation", flush=True)
    if args.prepare_only:
        return 0
    train = RefineDataset(train_paths, block=args.block)
    val = RefineDataset(val_paths, block=args.block, augment=False)
    config3d = RefineNetConfig(class_names=tuple(train.class_names), block=args.block)
    model = SurfaceRefinerNet(config3d)
    weights = RefineLossWeights(
        semantic_class_weights=_class_weights(train, config3d.num_classes, args.semantic_balance)
        if args.semantic_balance > 0
        else None
    )
    val_rng = np.random.default_rng(args.seed + 1)
    val_batches = [
        val.batch(args.batch_size, val_rng) for _ in range(args.val_blocks // args.batch_size)
    ]
    optimiser = adamw_without_decay_on_biases(model, args.lr, args.weight_decay)
    run = RunFolder(args.out, "3D refinement network")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step} (best val loss {run.best:.4f})", flush=True)
    rng = np.random.default_rng((args.seed, run.step))
    recipe = (
        f"recon-ros train refiner --data {' '.join(args.data)} --val-data "
        f"{' '.join(args.val_data)} --depth-weights {depth_weights} --out {args.out} --scenes "
        f"{args.scenes} --val-scenes {args.val_scenes} --steps {args.steps} --batch-size "
        f"{args.batch_size} --block {args.block} --lr {args.lr} --threads {args.threads} "
        f"--seed {args.seed} --semantic-balance {args.semantic_balance}"
    )

    model.train()
    running: dict[str, list[float]] = {}
    while run.step < args.steps:
        if args.minutes and (time.monotonic() - started) / 60.0 >= args.minutes:
            print(f"time box of {args.minutes} min reached at step {run.step}", flush=True)
            break
        batch = train.batch(args.batch_size, rng)
        for group in optimiser.param_groups:
            group["lr"] = scheduled_lr(run.step, args.steps, args.lr, args.warmup_steps)
        inputs = _inputs(batch, config3d.num_classes)
        output = model(inputs)
        losses = refine_losses(
            output, inputs, batch.gt_tsdf, batch.gt_observed, batch.gt_label, weights
        )
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
            running.clear()
            run.history.append(record)
            print(
                f"step {run.step} loss {record['total']:.3f} tsdf {record['tsdf']:.3f} occ "
                f"{record['occupancy']:.3f} sem {record['semantic']:.3f} "
                f"({(time.monotonic() - started) / 60.0:.1f} min)",
                flush=True,
            )
        if run.step % args.val_every == 0 or run.step == args.steps:
            metrics = validate(model, val_batches, weights)
            run.history.append({"kind": "val", "step": run.step, **metrics})
            print(
                f"val step {run.step}: loss {metrics['loss_total']:.3f}; near-surface TSDF L1 "
                f"{metrics['refined_tsdf_l1']:.3f} (fused {metrics['fused_tsdf_l1']:.3f}); "
                f"voxel mIoU {metrics['refined_miou']:.3f} (fused {metrics['fused_miou']:.3f})",
                flush=True,
            )
            if metrics["loss_total"] < run.best:
                run.best = metrics["loss_total"]
                save_refine_net(
                    model,
                    run.best_path,
                    trained=True,
                    recipe=recipe,
                    extra={"step": run.step, "validation": metrics},
                )
            run.save(model, optimiser)
    run.save(model, optimiser)
    print(f"stopped at step {run.step}; best val loss {run.best:.4f}; {run.best_path}", flush=True)
    return 0
