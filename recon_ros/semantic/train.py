"""``recon-ros train semantic``: train the semantic network (``core.semantic_net``) on generated
scenes.

Resumable and time-boxed like the other trainers (``training.run_folder``): ``--minutes`` stops at
a step boundary and the same command continues from ``OUT/last.pt``. ``OUT/best.pt`` keeps the
weights with the best validation mIoU on stereo-like depth. Validation reports the pixel mIoU
three times over the same frames: with stereo-like depth, sensor-like depth and no depth.

Example::

    recon-ros train semantic --data data/mvs/train --val-data data/mvs/val --out runs/semantic \\
        --steps 6000 --batch-size 8 --minutes 120 --threads 2 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.confusion import confusion_matrix, mean_iou
from recon_ros.core.semantic_net import SemanticNet, SemanticNetConfig, save_semantic_net
from recon_ros.depth.dataset import collate, find_scene_folders
from recon_ros.semantic.dataset import DEPTH_KINDS, SemanticDataset
from recon_ros.training.run_folder import (
    RunFolder,
    adamw_without_decay_on_biases,
    balanced_class_weights,
    scheduled_lr,
)


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "semantic",
        help="train the semantic network (colour + depth -> class labels)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", nargs="+", required=True, help="training scene folders/roots")
    parser.add_argument("--val-data", nargs="+", required=True, help="validation scenes")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--val-samples", type=int, default=64)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: no)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--balance",
        type=float,
        default=0.5,
        help="class weights of the loss ~ pixel frequency^-BALANCE (0: unweighted)",
    )
    parser.set_defaults(func=run)
    return parser


def validation_indices(dataset: SemanticDataset, count: int) -> list[int]:
    """``count`` frames spread evenly over the validation sequences."""
    return sorted(set(np.linspace(0, len(dataset) - 1, count).round().astype(int).tolist()))


@torch.inference_mode()
def validate(model: SemanticNet, dataset: SemanticDataset, indices: list[int]) -> dict:
    """Pixel accuracy, mIoU (over labelled classes) and per-class IoU with each depth kind."""
    from recon_ros.core.confusion import class_iou

    model.eval()
    classes = model.config.num_classes
    result: dict = {}
    for kind in DEPTH_KINDS:
        confusion = np.zeros((classes, classes), dtype=np.int64)
        for index in indices:
            batch = collate([dataset.sample(index, depth_kind=kind)])
            labels = model(batch.image, batch.depth, batch.K, batch.up).argmax(1)[0]
            known = batch.labels[0] < classes
            confusion += confusion_matrix(labels[known], batch.labels[0][known], classes).numpy()
        result[f"{kind}_accuracy"] = float(np.trace(confusion) / max(1, confusion.sum()))
        result[f"{kind}_miou"] = mean_iou(confusion, over="labelled")
        result[f"{kind}_iou"] = [
            None if np.isnan(v) else float(v) for v in class_iou(confusion).tolist()
        ]
    model.train()
    result["samples"] = len(indices)
    return result


def class_weights(dataset: SemanticDataset, classes: int, balance: float, frames: int, seed: int):
    """(classes,) loss weights ~ frequency^-balance over ``frames`` training frames."""
    rng = np.random.default_rng(seed)
    counts = np.zeros(classes, dtype=np.float64)
    for index in rng.integers(0, len(dataset), size=frames):
        labels = dataset.sample(int(index), depth_kind="none").labels.numpy().ravel()
        counts += np.bincount(labels[labels < classes], minlength=classes)
    return balanced_class_weights(counts, balance)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    def training_set() -> SemanticDataset:
        return SemanticDataset.from_folders(args.data, seed=args.seed)

    train = training_set()
    val = SemanticDataset.from_folders(args.val_data, randomise=False, seed=args.seed + 1)
    val_ids = validation_indices(val, args.val_samples)
    config = SemanticNetConfig()
    model = SemanticNet(config)
    optimiser = adamw_without_decay_on_biases(model, args.lr, args.weight_decay)
    run = RunFolder(args.out, "semantic network")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step} (best val -mIoU {run.best:.4f})", flush=True)
    weights = None
    if args.balance > 0:
        weights = class_weights(train, config.num_classes, args.balance, 200, args.seed)
        print("class weights: " + " ".join(f"{w:.2f}" for w in weights.tolist()), flush=True)
    recipe = (
        f"recon-ros train semantic --data {' '.join(args.data)} --val-data "
        f"{' '.join(args.val_data)} --out {args.out} --steps {args.steps} --batch-size "
        f"{args.batch_size} --lr {args.lr} --threads {args.threads} --seed {args.seed} "
        f"--balance {args.balance}"
    )
    started = time.monotonic()
    model.train()
    running: list[float] = []
    while run.step < args.steps:
        if run.out_of_time(args.minutes, started):
            break
        if run.step % 100 == 0 and len(find_scene_folders(args.data)) != len(train.sequences):
            train = training_set()
            print(f"training on {len(train.sequences)} scenes", flush=True)
        rng = np.random.default_rng((args.seed, run.step))
        batch = collate(
            [train.sample(int(i)) for i in rng.integers(0, len(train), size=args.batch_size)]
        )
        for group in optimiser.param_groups:
            group["lr"] = scheduled_lr(run.step, args.steps, args.lr, args.warmup_steps)
        logits = model(batch.image, batch.depth, batch.K, batch.up)
        loss = F.cross_entropy(logits, batch.labels, weight=weights, ignore_index=IGNORE_LABEL)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        run.step += 1
        running.append(float(loss.detach()))
        if run.step % args.log_every == 0:
            run.log_loss(running, started, lr=optimiser.param_groups[0]["lr"])
        if run.step % args.val_every == 0 or run.step == args.steps:
            metrics = validate(model, val, val_ids)
            run.history.append({"kind": "val", "step": run.step, **metrics})
            print(
                f"val step {run.step}: mIoU stereo {metrics['stereo_miou']:.3f} sensor "
                f"{metrics['sensor_miou']:.3f} no depth {metrics['none_miou']:.3f}",
                flush=True,
            )
            if -metrics["stereo_miou"] < run.best:
                run.best = -metrics["stereo_miou"]
                save_semantic_net(
                    model,
                    run.best_path,
                    trained=True,
                    recipe=recipe,
                    extra={"step": run.step, "validation": metrics},
                )
            run.save(model, optimiser)
    run.save(model, optimiser)
    print(f"stopped at step {run.step}; best val mIoU {-run.best:.4f}; {run.best_path}", flush=True)
    return 0


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "semantic",
        help="per-pixel labels of the semantic network, the depth network's head and both",
        description="Per-pixel mIoU on frames of generated scenes (the validation frames of "
        "`recon-ros train semantic`), with stereo-like depth and without depth: the semantic "
        "network alone, the depth network's colour-only head alone, and both (class "
        "probabilities multiplied: the default 'combined' labels).",
    )
    parser.add_argument("--data", nargs="+", required=True, help="scene folders or roots")
    parser.add_argument("--weights", help="semantic network checkpoint (default: shipped)")
    parser.add_argument("--depth-weights", help="depth network checkpoint (default: shipped)")
    parser.add_argument("--samples", type=int, default=64, help="frames, spread evenly")
    parser.add_argument("--seed", type=int, default=1, help="depth corruption seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.set_defaults(func=run_evaluation)
    return parser


@torch.inference_mode()
def compare_labels(semantic, depth_net, dataset: SemanticDataset, indices: list[int]) -> dict:
    """Confusion matrices of the three label sources (keys ``semantic``, ``head``,
    ``combined``) per depth kind (``stereo``, ``none``)."""
    classes = semantic.config.num_classes
    out: dict = {}
    for kind in ("stereo", "none"):
        matrices = {k: np.zeros((classes, classes), np.int64) for k in ("semantic", "head")}
        matrices["combined"] = np.zeros((classes, classes), np.int64)
        for index in indices:
            batch = collate([dataset.sample(index, depth_kind=kind)])
            size = batch.image.shape[-2:]
            ours = F.log_softmax(semantic(batch.image, batch.depth, batch.K, batch.up), dim=1)
            head = F.interpolate(
                depth_net.semantic_only(batch.image), size=size, mode="bilinear"
            ).log_softmax(dim=1)
            known = batch.labels[0] < classes
            for name, scores in (("semantic", ours), ("head", head), ("combined", ours + head)):
                labels = scores.argmax(1)[0]
                matrices[name] += confusion_matrix(
                    labels[known], batch.labels[0][known], classes
                ).numpy()
        out[kind] = matrices
    return out


def run_evaluation(args: argparse.Namespace) -> int:
    from recon_ros.core.confusion import class_iou
    from recon_ros.core.depth_checkpoint import load_depth_net
    from recon_ros.core.semantic_net import load_semantic_net
    from recon_ros.weights import default_depth_weights, default_semantic_weights, given_or_shipped

    torch.set_num_threads(max(1, args.threads))
    semantic_path = given_or_shipped(args.weights or "", default_semantic_weights)
    depth_path = given_or_shipped(args.depth_weights or "", default_depth_weights)
    if semantic_path is None or depth_path is None:
        raise SystemExit("no semantic or depth network weights: pass --weights / --depth-weights")
    semantic, _ = load_semantic_net(semantic_path)
    depth_net, _ = load_depth_net(depth_path)
    dataset = SemanticDataset.from_folders(args.data, randomise=False, seed=args.seed)
    indices = validation_indices(dataset, args.samples)
    result = compare_labels(semantic, depth_net, dataset, indices)
    names = semantic.config.class_names
    print(
        f"{len(indices)} frames of {len(dataset.sequences)} scenes; {semantic_path}, {depth_path}"
    )
    print("| depth | labels | mIoU | " + " | ".join(names) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for kind, matrices in result.items():
        for name, matrix in matrices.items():
            iou = class_iou(matrix)
            cells = " | ".join("-" if np.isnan(v) else f"{v:.2f}" for v in iou)
            miou = mean_iou(matrix, over="labelled")
            print(f"| {kind} | {name} | {miou:.3f} | {cells} |")
    return 0
