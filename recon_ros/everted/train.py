"""``recon-ros train everted-unet`` / ``recon-ros evaluate everted-unet``: the Everted U-Net on
rooms seen by a fixed rig (seed 002).

Data: scene folders generated with the rig and the paper's volumes::

    recon-ros generate data/rig/train --scenes N --seed S --trajectory rig --rig-cameras 3 \\
        --paper-volumes --width 224 --height 224 --no-mesh

``RigScenes`` reads every rig view of a scene (resized to the network's input; in training each
view randomised as a real camera, ``datasets.randomise``), the 80 x 96 x 64 occupancy and the 6
class masks.

Training follows the paper: ``--stage reconstruction`` (occupancy loss only) then ``--stage
both`` (occupancy and masks), ``--views one`` (one random view a sample) then ``all``; dropout in
the model. Resumable and time-boxed; validation picks the occupancy threshold (the paper's
"threshold" column) and keeps the best ``reconstruction_iou`` (plus ``segmentation_miou`` in
the stage that trains the masks) as ``best.pt``. Evaluation writes ``results.json`` with
``reconstruction_iou``, ``segmentation_miou`` and the per-class IoUs (the paper's Tables 1
and 2).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.checkpoint import load_model, save_checkpoint
from recon_ros.datasets.layout import SyntheticSequence, list_scenes
from recon_ros.datasets.randomise import CameraRandomiser
from recon_ros.everted.model import EvertedConfig, EvertedUNet, everted_losses
from recon_ros.sufficiency.preprocess import resize_rgb
from recon_ros.training.run_folder import RunFolder, add_run_arguments

EVERTED_CHECKPOINT_FORMAT = "recon_ros.everted_unet"
#: occupancy thresholds validation chooses from (objects fill about 1 % of the grid, so the
#: best one can sit well below 0.5: the paper's was 0.32)
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)


class RigScenes(Dataset):
    """Rig scenes (module docstring). Item: ``views`` (V, 3, S, S) in [0, 1], ``occupancy``
    (1, X, Y, Z) and ``masks`` (C, X, Y, Z) float 0/1."""

    def __init__(self, roots, image_size: int = 224, randomise: bool = False, seed: int = 0):
        roots = [roots] if isinstance(roots, (str, Path)) else list(roots)
        self.folders = [f for root in roots for f in list_scenes(root)]
        if not self.folders:
            raise ValueError(f"no scene folders under {roots}")
        self.image_size = int(image_size)
        self.randomiser = CameraRandomiser() if randomise else None
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.folders)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        sequence = SyntheticSequence(self.folders[item])
        volumes = sequence.paper_volumes()
        rng = np.random.default_rng((self.seed, self.epoch, item))
        views = []
        for index in range(len(sequence)):
            rgb = resize_rgb(sequence[index].rgb, (self.image_size, self.image_size))
            if self.randomiser is not None:
                rgb = self.randomiser.image(rgb, rng)
            views.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
        masks = np.moveaxis(volumes["masks"], -1, 0)  # channels last on disk
        return {
            "views": torch.stack(views).float() / 255.0,
            "occupancy": torch.from_numpy(volumes["occupancy"][None].astype(np.float32)),
            "masks": torch.from_numpy(masks.astype(np.float32)),
        }


def save_everted(model: EvertedUNet, path, trained: bool, recipe: str, extra: dict) -> Path:
    return save_checkpoint(model, path, trained, recipe, extra, EVERTED_CHECKPOINT_FORMAT)


def load_everted(path, device="cpu") -> tuple[EvertedUNet, dict]:
    """The model a checkpoint describes (``torch.load(..., weights_only=True)``), eval mode."""
    return load_model(path, device, EVERTED_CHECKPOINT_FORMAT, EvertedConfig, EvertedUNet)


def iou(predicted: np.ndarray, target: np.ndarray) -> float:
    """IoU of two boolean arrays (NaN when both are empty: the class is absent)."""
    union = np.logical_or(predicted, target).sum()
    return float("nan") if union == 0 else float(np.logical_and(predicted, target).sum() / union)


@torch.no_grad()
def evaluate_scenes(
    model: EvertedUNet, scenes: RigScenes, threshold: float | None = None, limit=None
) -> dict:
    """Reconstruction IoU (at ``threshold``, or the best of ``THRESHOLDS`` when None, reported
    as ``threshold``), per-class mask IoU (summed over the scenes) and their mean over the
    classes present."""
    model.eval()
    thresholds = THRESHOLDS if threshold is None else (threshold,)
    inter = np.zeros(len(thresholds))
    union = np.zeros(len(thresholds))
    class_inter = np.zeros(len(model.config.classes))
    class_union = np.zeros(len(model.config.classes))
    count = len(scenes) if limit is None else min(limit, len(scenes))
    for index in range(count):
        item = scenes[index]
        occupancy_logits, mask_logits = model(item["views"][None])
        probability = torch.sigmoid(occupancy_logits)[0, 0].numpy()
        target = item["occupancy"][0].numpy() > 0.5
        for k, t in enumerate(thresholds):
            inter[k] += np.logical_and(probability > t, target).sum()
            union[k] += np.logical_or(probability > t, target).sum()
        masks = torch.sigmoid(mask_logits)[0].numpy() > 0.5
        truth = item["masks"].numpy() > 0.5
        class_inter += np.logical_and(masks, truth).reshape(len(class_inter), -1).sum(1)
        class_union += np.logical_or(masks, truth).reshape(len(class_union), -1).sum(1)
    model.train()
    scores = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    best = int(np.argmax(scores))
    per_class = np.where(class_union > 0, class_inter / np.maximum(class_union, 1), np.nan)
    present = per_class[np.isfinite(per_class)]
    return {
        "reconstruction_iou": float(scores[best]),
        "threshold": float(thresholds[best]),
        "segmentation_miou": float(present.mean()) if present.size else float("nan"),
        "class_iou": {
            name: (None if not np.isfinite(v) else float(v))
            for name, v in zip(model.config.classes, per_class, strict=True)
        },
    }


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("everted-unet", help="train the Everted U-Net (seed 002)")
    p.add_argument("--data", nargs="+", required=True, help="rig scene roots")
    p.add_argument("--val-data", nargs="+", required=True, help="validation rig scene roots")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--stage", choices=("reconstruction", "both"), default="reconstruction")
    p.add_argument("--views", choices=("one", "all"), default="one")
    p.add_argument("--init", default=None, help="checkpoint to start from (the previous stage)")
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--val-scenes", type=int, default=16)
    add_run_arguments(p, steps=4000, batch_size=2, lr=1e-3)
    p.set_defaults(func=run_training)
    return p


def run_training(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    train = RigScenes(args.data, args.image_size, randomise=True, seed=args.seed)
    val = RigScenes(args.val_data, args.image_size, randomise=False, seed=args.seed + 1)
    if args.init:
        model, _ = load_everted(args.init)
        model.train()
    else:
        model = EvertedUNet(EvertedConfig(image_size=args.image_size, dropout=args.dropout))
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    args.out.mkdir(parents=True, exist_ok=True)
    run = RunFolder(args.out, f"Everted U-Net ({args.stage}, {args.views} views)")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step}", flush=True)
    recipe = (
        f"recon-ros train everted-unet --data {' '.join(args.data)} --val-data "
        f"{' '.join(args.val_data)} --out {args.out} --stage {args.stage} --views {args.views} "
        f"--steps {args.steps} --batch-size {args.batch_size} --lr {args.lr} --dropout "
        f"{args.dropout} --threads {args.threads} --seed {args.seed}"
        + (f" --init {args.init}" if args.init else "")
    )
    started = time.monotonic()
    model.train()
    running: list[float] = []
    while run.step < args.steps:
        if run.out_of_time(args.minutes, started):
            break
        train.epoch = run.step
        rng = np.random.default_rng((args.seed, run.step))
        items = [train[int(i)] for i in rng.integers(0, len(train), args.batch_size)]
        views = torch.stack([item["views"] for item in items])
        if args.views == "one":
            pick = int(rng.integers(views.shape[1]))
            views = views[:, pick : pick + 1]
        occupancy = torch.stack([item["occupancy"] for item in items])
        masks = torch.stack([item["masks"] for item in items])
        losses = everted_losses(*model(views), occupancy, masks, args.stage)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        optimiser.step()
        run.step += 1
        running.append(float(losses["total"].detach()))
        if run.step % args.log_every == 0:
            run.log_loss(running, started)
        if run.step % args.val_every == 0 or run.step == args.steps:
            metrics = evaluate_scenes(model, val, limit=args.val_scenes)
            flat = {k: v for k, v in metrics.items() if k != "class_iou"}
            flat.update({f"iou_{k}": v for k, v in metrics["class_iou"].items() if v is not None})
            run.history.append({"kind": "val", "step": run.step, **flat})
            print(f"val step {run.step}: {json.dumps(metrics)}", flush=True)
            miou = metrics["segmentation_miou"]
            # the masks count once they are trained (the reconstruction stage leaves them noise)
            counted = args.stage == "both" and np.isfinite(miou)
            score = float(metrics["reconstruction_iou"] + (miou if counted else 0.0))
            if not np.isfinite(run.best) or -score < run.best:
                run.best = -score
                extra = {"step": run.step, "stage": args.stage, "validation": metrics}
                save_everted(model, run.best_path, True, recipe, extra)
            run.save(model, optimiser)
    run.save(model, optimiser)
    print(f"stopped at step {run.step}; {run.best_path}", flush=True)
    return 0


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("everted-unet", help="evaluate an Everted U-Net checkpoint")
    p.add_argument("--data", nargs="+", required=True, help="held-out rig scene roots")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run_evaluation)
    return p


def run_evaluation(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    model, metadata = load_everted(args.checkpoint)
    # the threshold chosen on validation, as the paper does
    threshold = metadata.get("extra", {}).get("validation", {}).get("threshold", 0.5)
    scenes = RigScenes(args.data, model.config.image_size)
    metrics = evaluate_scenes(model, scenes, threshold=threshold, limit=args.limit)
    results = {
        "format": "recon_ros.everted_evaluation",
        "checkpoint": str(args.checkpoint),
        "trained": bool(metadata.get("trained")),
        "scenes": len(scenes) if args.limit is None else min(args.limit, len(scenes)),
        **metrics,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "results.json", json.dumps(results, indent=1).encode())
    print(json.dumps(results, indent=1), flush=True)
    return 0
