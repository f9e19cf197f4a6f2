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
from recon_ros.everted.ray_lift import grid_projections
from recon_ros.sufficiency.preprocess import resize_rgb
from recon_ros.training.run_folder import RunFolder, add_run_arguments

EVERTED_CHECKPOINT_FORMAT = "recon_ros.everted_unet"
#: the rays lift's grid: views fused at 25 cm (20 x 24 x 16), up-sampled twice to 80 x 96 x 64
RAYS_SHAPE = dict(volume_dims=(20, 24, 16), volume_channels=32, branch_channels=(16, 8))
#: occupancy thresholds validation chooses from (objects fill about 1 % of the grid, so the
#: best one can sit well below 0.5: the paper's was 0.32)
THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7)


class RigScenes(Dataset):
    """Rig scenes (module docstring). Item: ``views`` (V, 3, S, S) in [0, 1], their
    ``projections`` (V, 3, 4) from grid indices to view pixels (``ray_lift.grid_projections``),
    ``occupancy`` (1, X, Y, Z) and ``masks`` (C, X, Y, Z) float 0/1."""

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
        frames = [sequence[index] for index in range(len(sequence))]
        for frame in frames:
            rgb = resize_rgb(frame.rgb, (self.image_size, self.image_size))
            if self.randomiser is not None:
                rgb = self.randomiser.image(rgb, rng)
            views.append(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1))
        masks = np.moveaxis(volumes["masks"], -1, 0)  # channels last on disk
        projections = [
            grid_projections(
                frame.K, frame.T_world_cam, frame.rgb.shape[:2], self.image_size,
                volumes["origin"], float(volumes["voxel_size"]),
            )
            for frame in frames
        ]  # fmt: skip
        return {
            "views": torch.stack(views).float() / 255.0,
            "projections": torch.from_numpy(np.stack(projections)),
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
    model: EvertedUNet,
    scenes: RigScenes,
    threshold: float | None = None,
    limit=None,
    mask_threshold: float | None = None,
) -> dict:
    """Reconstruction IoU at ``threshold`` (the best of ``THRESHOLDS`` when None, reported as
    ``threshold``); per-class mask IoU (summed over the scenes) at ``mask_threshold`` (likewise
    the best mean of ``THRESHOLDS`` when None, ``mask_threshold``) and their mean over the
    classes present (the paper chooses both thresholds on validation: its Table 1)."""
    model.eval()
    thresholds = THRESHOLDS if threshold is None else (threshold,)
    mask_thresholds = THRESHOLDS if mask_threshold is None else (mask_threshold,)
    inter = np.zeros(len(thresholds))
    union = np.zeros(len(thresholds))
    classes = len(model.config.classes)
    class_inter = np.zeros((len(mask_thresholds), classes))
    class_union = np.zeros((len(mask_thresholds), classes))
    count = len(scenes) if limit is None else min(limit, len(scenes))
    for index in range(count):
        item = scenes[index]
        occupancy_logits, mask_logits = model(item["views"][None], None, item["projections"][None])
        probability = torch.sigmoid(occupancy_logits)[0, 0].numpy()
        target = item["occupancy"][0].numpy() > 0.5
        for k, t in enumerate(thresholds):
            inter[k] += np.logical_and(probability > t, target).sum()
            union[k] += np.logical_or(probability > t, target).sum()
        mask_probability = torch.sigmoid(mask_logits)[0].numpy().reshape(classes, -1)
        truth = item["masks"].numpy().reshape(classes, -1) > 0.5
        for k, t in enumerate(mask_thresholds):
            masks = mask_probability > t
            class_inter[k] += np.logical_and(masks, truth).sum(1)
            class_union[k] += np.logical_or(masks, truth).sum(1)
    model.train()
    scores = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    best = int(np.argmax(scores))
    per_class = np.where(class_union > 0, class_inter / np.maximum(class_union, 1), np.nan)
    present = np.isfinite(per_class[0])  # a class absent from every scene has no IoU
    means = per_class[:, present].mean(1) if present.any() else np.full(len(mask_thresholds), 0.0)
    best_mask = int(np.argmax(means))
    return {
        "reconstruction_iou": float(scores[best]),
        "threshold": float(thresholds[best]),
        "segmentation_miou": float(means[best_mask]) if present.any() else float("nan"),
        "mask_threshold": float(mask_thresholds[best_mask]),
        "class_iou": {
            name: (None if not np.isfinite(v) else float(v))
            for name, v in zip(model.config.classes, per_class[best_mask], strict=True)
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
    p.add_argument(
        "--masks", choices=("given_occupancy", "independent"), default="given_occupancy",
        help="class masks inside the occupancy (default) or one independent sigmoid each (the "
        "paper's); applies to a model started here or from --init",
    )  # fmt: skip
    p.add_argument(
        "--lift", choices=("rays", "camera", "pool"), default="rays",
        help="image-to-volume lift (model docstring): along the calibrated rays, one learned per "
        "camera, or Pix2Vox's pooling",
    )  # fmt: skip
    p.add_argument(
        "--positive-weight", type=float, default=1.0,
        help="weight of the occupied voxels in the BCE (1: the paper's plain BCE)",
    )  # fmt: skip
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
        model.config.masks = args.masks  # the mask head's weights serve either reading
        model.train()
    else:
        views = len(SyntheticSequence(train.folders[0]))
        # the learned lifts start from the paper's 5 x 6 x 4
        shape = RAYS_SHAPE if args.lift == "rays" else {}
        config = EvertedConfig(
            image_size=args.image_size, dropout=args.dropout, lift=args.lift, rig_cameras=views,
            masks=args.masks, **shape,
        )  # fmt: skip
        model = EvertedUNet(config)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr)
    args.out.mkdir(parents=True, exist_ok=True)
    run = RunFolder(args.out, f"Everted U-Net ({args.stage}, {args.views} views)")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step}", flush=True)
    recipe = (
        f"recon-ros train everted-unet --data {' '.join(args.data)} --val-data "
        f"{' '.join(args.val_data)} --out {args.out} --stage {args.stage} --views {args.views} "
        f"--steps {args.steps} --batch-size {args.batch_size} --lr {args.lr} --dropout "
        f"{args.dropout} --lift {args.lift} --masks {args.masks} --positive-weight "
        f"{args.positive_weight} "
        f"--threads {args.threads} --seed {args.seed}"
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
        projections = torch.stack([item["projections"] for item in items])
        cameras = torch.arange(views.shape[1])
        if args.views == "one":
            pick = int(rng.integers(views.shape[1]))
            views, cameras = views[:, pick : pick + 1], cameras[pick : pick + 1]
            projections = projections[:, pick : pick + 1]
        occupancy = torch.stack([item["occupancy"] for item in items])
        masks = torch.stack([item["masks"] for item in items])
        logits = model(views, cameras, projections)
        losses = everted_losses(*logits, occupancy, masks, args.stage, args.positive_weight)
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
    p.add_argument(
        "--val-data", nargs="+", default=None,
        help="choose both thresholds on these validation scenes first (default: the ones the "
        "checkpoint's validation chose)",
    )  # fmt: skip
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run_evaluation)
    return p


def run_evaluation(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    model, metadata = load_everted(args.checkpoint)
    # the thresholds chosen on validation, as the paper does
    validation = metadata.get("extra", {}).get("validation", {})
    if args.val_data:
        validation = evaluate_scenes(model, RigScenes(args.val_data, model.config.image_size))
        print(f"thresholds chosen on {args.val_data}: occupancy {validation['threshold']}, "
              f"masks {validation['mask_threshold']}", flush=True)  # fmt: skip
    threshold = validation.get("threshold", 0.5)
    mask_threshold = validation.get("mask_threshold", 0.5)
    scenes = RigScenes(args.data, model.config.image_size)
    metrics = evaluate_scenes(model, scenes, threshold, args.limit, mask_threshold)
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
