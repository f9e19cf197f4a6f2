"""``recon-ros train ifnet`` / ``recon-ros evaluate ifnet``: the single-image model's training
regimes (the seed paper's Table 1 rows) and their evaluation.

Data: ``recon-ros train ifnet --build-samples`` turns generated scene folders into samples
(``ifnet.dataset.build_samples``), once, resumably; training then reads them.

Regimes (``--regime``):

- ``depth``: the depth U-Net alone, supervised by the frames' depth (L1 of log depth); the
  checkpoint the ``pretrained`` regime starts from;
- ``viability``: the IF-Net (and the voxeliser's sigma) on the voxelised ground-truth depth;
- ``pretrained``: the IF-Net on the predictions of the depth U-Net trained by ``depth``
  (``--depth-init``; the IF-Net may start from a ``viability`` checkpoint, ``--init``), which
  goes on learning with depth supervision beside the occupancy loss
  (``--depth-weight``; the paper's "pretrained with depth supervision"), or stays frozen with
  ``--depth-weight 0``;
- ``end-to-end``: all parts from scratch through the differentiable voxeliser, occupancy loss
  only, no depth supervision.

Loss: binary cross-entropy of the query points' occupancy (``SingleViewSamples``; occupied points
weighted by ``--occupied-weight``). Training items are mirrored and given real-camera effects at
random; ``--data`` takes several sample folders. Resumable and
time-boxed (``--minutes``); the best validation IoU is kept as ``best.pt``. Evaluation queries
every voxel centre of the grid of each held-out sample and reports the paper's metrics
(``ifnet.metrics``) in ``results.json``: ``iou``, ``chamfer_l2``, ``normal_consistency`` for the
checkpoint's regime, and per regime under ``regimes`` when several checkpoints are given (a
model with the floor prior gives two rows: with it, and with it withheld).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.checkpoint import load_model, save_checkpoint
from recon_ros.ifnet.dataset import SingleViewSamples, build_samples
from recon_ros.ifnet.ifnet import SingleViewConfig, SingleViewIFNet
from recon_ros.ifnet.metrics import occupancy_field, occupancy_iou, surface_metrics
from recon_ros.training.run_folder import RunFolder, add_run_arguments, scheduled_lr

IFNET_CHECKPOINT_FORMAT = "recon_ros.single_view_ifnet"
REGIMES = ("depth", "viability", "pretrained", "end-to-end")


def save_ifnet(model: SingleViewIFNet, path, trained: bool, recipe: str, extra: dict) -> Path:
    return save_checkpoint(model, path, trained, recipe, extra, IFNET_CHECKPOINT_FORMAT)


def load_ifnet(path, device="cpu") -> tuple[SingleViewIFNet, dict]:
    """The model a checkpoint describes (``torch.load(..., weights_only=True)``), eval mode."""
    return load_model(path, device, IFNET_CHECKPOINT_FORMAT, SingleViewConfig, SingleViewIFNet)


def config_for(
    samples: SingleViewSamples,
    floor_input: bool = False,
    floor_align: bool = False,
    floor_snap: float = 0.0,
) -> SingleViewConfig:
    """The model configuration that fits ``samples``: their grid, image size and camera (the
    first sample's focal length); ``floor_input``: with the floor prior; ``floor_align``: the
    predicted depth scaled to meet it; ``floor_snap``: and snapped to it."""
    return SingleViewConfig(
        grid_dims=samples.grid.dims,
        voxel_size=samples.grid.voxel_size,
        near=samples.grid.origin[2],
        image_size=samples.image_size,
        focal_length=samples.focal_length(),
        floor_input=floor_input,
        floor_align=floor_align,
        floor_snap=floor_snap,
    )


def regime_losses(
    model: SingleViewIFNet,
    batch: dict,
    regime: str,
    depth_weight: float = 1.0,
    occupied_weight: float = 1.0,
) -> dict[str, torch.Tensor]:
    """The losses of one batch under ``regime`` (module docstring).

    Args:
        depth_weight: in the ``pretrained`` regime, the weight of the depth loss beside the
            occupancy loss (the depth U-Net keeps learning depth); 0 freezes the U-Net.
        occupied_weight: the weight of occupied query points in the occupancy loss (above 1
            against the collapse to empty space).
    """
    if regime not in REGIMES:
        raise ValueError(f"regime: expected one of {REGIMES}, got {regime!r}")
    if depth_weight < 0 or occupied_weight <= 0:
        raise ValueError("depth_weight: must be >= 0; occupied_weight: must be > 0")
    if regime == "depth":  # the U-Net's own depth, never aligned: it must learn the scale
        loss = _depth_log_l1(_predict_depth(model, batch, align=False), batch["depth"])
        return {"total": loss, "depth_log_l1": loss}
    losses = {}
    depth = batch["depth"] if regime == "viability" else None
    if regime == "pretrained":
        # on the U-Net's batch-norm running statistics, as at evaluation: small batches' own
        # statistics give it depth twice as far off (log-L1 0.37 against 0.15), which the IF-Net
        # would learn to expect and then never get. depth_weight 0 freezes it (no gradient).
        was_training = model.depth_net.training
        model.depth_net.eval()
        with torch.set_grad_enabled(torch.is_grad_enabled() and depth_weight > 0):
            depth = _predict_depth(model, batch)
        model.depth_net.train(was_training)
        if depth_weight > 0:
            losses["depth_log_l1"] = _depth_log_l1(depth, batch["depth"])
    if depth is None:
        depth = _predict_depth(model, batch)
    _, logits = model(batch["image"], batch["K"], batch["queries"], depth=depth)
    weight = torch.tensor(float(occupied_weight), dtype=logits.dtype)
    occupancy = F.binary_cross_entropy_with_logits(logits, batch["occupied"], pos_weight=weight)
    losses["occupancy_bce"] = occupancy
    losses["total"] = occupancy + depth_weight * losses.get("depth_log_l1", 0.0)
    return losses


def _predict_depth(model: SingleViewIFNet, batch: dict, align: bool | None = None) -> torch.Tensor:
    """(B, H, W) the depth U-Net's depth of a batch (with its floor prior where it has one;
    ``align`` as ``SingleViewIFNet.predict_depth``)."""
    return model.predict_depth(
        batch["image"], batch["K"], batch.get("up"), batch.get("height"), align
    )


def _depth_log_l1(predicted: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean |log predicted - log reference| over pixels with a reference depth (B, H, W)."""
    valid = reference > 0
    return (predicted[valid].log() - reference[valid].log()).abs().mean()


def _trainable(
    model: SingleViewIFNet, regime: str, depth_weight: float = 1.0
) -> list[torch.nn.Parameter]:
    if regime == "depth":
        return list(model.depth_net.parameters())
    if regime == "viability" or (regime == "pretrained" and depth_weight == 0):
        return list(model.voxeliser.parameters()) + list(model.ifnet.parameters())
    return list(model.parameters())


@torch.no_grad()
def evaluate_samples(
    model: SingleViewIFNet,
    samples: SingleViewSamples,
    regime: str,
    limit: int | None = None,
    floor: bool = True,
) -> dict[str, float]:
    """Mean IoU, Chamfer-L2 and normal consistency over ``samples`` (the first ``limit``),
    every voxel centre of the grid queried; ``floor`` False withholds the floor prior. Rows on
    predicted depth also give the depth the IF-Net got (aligned where the model aligns):
    ``depth_log_l1`` and ``depth_scale_error`` (|median(predicted / true) - 1| of each frame,
    the median over frames)."""
    model.eval()
    grid = model.grid
    centres = grid.centres().reshape(1, -1, 3)
    rows = []
    count = len(samples) if limit is None else min(limit, len(samples))
    for index in range(count):
        item = samples[index]
        batch = {key: value[None] for key, value in item.items()}
        if not floor:
            batch["height"] = torch.full_like(batch["height"], float("nan"))
        depth = batch["depth"] if regime == "viability" else _predict_depth(model, batch)
        _, logits = model(batch["image"], batch["K"], centres, depth=depth)
        probability = torch.sigmoid(logits).view(grid.dims).numpy()
        reference = item["sdf"].numpy()
        row = {"iou": occupancy_iou(probability > 0.5, reference < 0)}
        if regime != "viability":
            valid = item["depth"] > 0
            ratio = depth[0][valid] / item["depth"][valid]
            row["depth_log_l1"] = float(ratio.log().abs().mean())
            row["depth_scale_error"] = float((ratio.median() - 1).abs())
        row.update(surface_metrics(occupancy_field(probability), reference / 0.4, grid))
        rows.append(row)
    model.train()
    summary = {}
    for key in rows[0] if rows else ():
        values = np.array([r[key] for r in rows], dtype=np.float64)
        if key == "depth_scale_error":
            summary[key] = float(np.median(values))
            continue
        # a sample without a surface on either side has no surface metrics: NaN, not 0
        summary[key] = (
            float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float("nan")
        )
    return summary


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ifnet", help="train the single-image IF-Net (seed 004)")
    p.add_argument("--data", required=True, nargs="+",
                   help="sample folders (or scenes with --build-samples)")  # fmt: skip
    p.add_argument("--val-data", required=True, help="validation sample folder (or scenes)")
    p.add_argument("--build-samples", nargs=2, metavar=("TRAIN_SCENES", "VAL_SCENES"),
                   help="first build the sample folders from these scene roots")  # fmt: skip
    p.add_argument("--frames-per-scene", type=int, default=8)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--regime", choices=REGIMES, default="viability")
    p.add_argument("--init", default=None,
                   help="start all parts from this checkpoint (any regime)")  # fmt: skip
    p.add_argument("--depth-init", default=None, help="depth-regime checkpoint (pretrained)")
    p.add_argument("--depth-weight", type=float, default=1.0,
                   help="pretrained: depth loss weight; 0 freezes the depth U-Net")  # fmt: skip
    p.add_argument("--occupied-weight", type=float, default=1.0,
                   help="weight of occupied query points in the occupancy loss")  # fmt: skip
    p.add_argument("--floor", action="store_true",
                   help="the depth U-Net also takes the floor prior")  # fmt: skip
    p.add_argument("--floor-align", action="store_true",
                   help="with --floor: scale the predicted depth to meet the floor")  # fmt: skip
    p.add_argument("--floor-snap", type=float, default=0.0,
                   help="with --floor-align: depth within this fraction of the floor's takes "
                   "it (0: none)")  # fmt: skip
    p.add_argument("--decay-from", type=int, default=0,
                   help="constant rate until this step, then cosine to 5%% at --steps "
                   "(0: constant throughout)")  # fmt: skip
    p.add_argument("--queries", type=int, default=2048)
    p.add_argument("--val-samples", type=int, default=32)
    add_run_arguments(p, steps=4000, batch_size=4, lr=2e-4)
    p.set_defaults(func=run_training)
    return p


def run_training(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    if args.build_samples:
        for source, target in zip(args.build_samples, (args.data[0], args.val_data), strict=True):
            count = build_samples(source, target, frames_per_scene=args.frames_per_scene)
            print(f"{target}: {count} samples", flush=True)
    folders = [SingleViewSamples(f, args.queries, args.seed, augment=True) for f in args.data]
    train = torch.utils.data.ConcatDataset(folders)
    val = SingleViewSamples(args.val_data, args.queries, args.seed + 1)
    if args.floor_align and not args.floor:
        raise ValueError("--floor-align needs --floor")
    if args.floor_snap and not args.floor_align:
        raise ValueError("--floor-snap needs --floor-align")
    floor = (args.floor, args.floor_align, args.floor_snap)
    config = config_for(folders[0], *floor)
    if any(config_for(f, *floor) != config for f in folders[1:]):
        raise ValueError("--data: the sample folders differ in grid or image size")
    model = SingleViewIFNet(config)
    if args.init:
        state = load_ifnet(args.init)[0].state_dict()
        if args.depth_init:  # the depth U-Net comes from there (it may take other inputs)
            state = {k: v for k, v in state.items() if not k.startswith("depth_net.")}
        model.load_state_dict(state, strict=not args.depth_init)
    if args.regime == "pretrained":
        if not args.depth_init:
            raise ValueError("regime 'pretrained' needs --depth-init (a 'depth' checkpoint)")
        pretrained, _ = load_ifnet(args.depth_init)
        model.depth_net.load_state_dict(pretrained.depth_net.state_dict())
    parameters = _trainable(model, args.regime, args.depth_weight)
    optimiser = torch.optim.Adam(parameters, lr=args.lr)
    args.out.mkdir(parents=True, exist_ok=True)
    run = RunFolder(args.out, f"single-image IF-Net ({args.regime})")
    if run.resume(model, optimiser):
        print(f"resumed at step {run.step}", flush=True)
    # the best score is a loss for 'depth' (lower is better), an IoU otherwise (higher)
    sign = 1.0 if args.regime == "depth" else -1.0
    recipe = (
        f"recon-ros train ifnet --data {' '.join(args.data)} --val-data {args.val_data} "
        f"--out {args.out} --depth-weight {args.depth_weight} "
        f"--occupied-weight {args.occupied_weight} "
        + ("--floor " if args.floor else "")
        + ("--floor-align " if args.floor_align else "")
        + (f"--floor-snap {args.floor_snap} " if args.floor_snap else "")
        + f"--regime {args.regime} --steps {args.steps} --batch-size {args.batch_size} "
        f"--queries {args.queries} --lr {args.lr} --threads {args.threads} --seed {args.seed}"
        + (f" --decay-from {args.decay_from}" if args.decay_from > 0 else "")
        + (f" --init {args.init}" if args.init else "")
        + (f" --depth-init {args.depth_init}" if args.depth_init else "")
    )
    started = time.monotonic()
    if run.step == 0 and (args.init or args.depth_init):
        # the starting point is a candidate too: trained parts put together may already be
        # better than what the first steps on each other's outputs make of them
        _validate(model, val, args, run, sign, recipe)
    model.train()
    running: list[float] = []
    while run.step < args.steps:
        if run.out_of_time(args.minutes, started):
            break
        for folder in folders:
            folder.epoch = run.step  # a fresh, seeded draw of items and queries per step
        rng = np.random.default_rng((args.seed, run.step))
        items = [train[int(i)] for i in rng.integers(0, len(train), args.batch_size)]
        batch = {key: torch.stack([item[key] for item in items]) for key in items[0]}
        if args.decay_from > 0:
            for group in optimiser.param_groups:
                group["lr"] = scheduled_lr(run.step, args.steps, args.lr, 0, args.decay_from)
        losses = regime_losses(model, batch, args.regime, args.depth_weight, args.occupied_weight)
        optimiser.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(parameters, 5.0)
        optimiser.step()
        run.step += 1
        running.append(float(losses["total"].detach()))
        if run.step % args.log_every == 0:
            run.log_loss(running, started, sigma=float(model.voxeliser.sigma.detach()))
        if run.step % args.val_every == 0 or run.step == args.steps:
            _validate(model, val, args, run, sign, recipe)
            run.save(model, optimiser)
    run.save(model, optimiser)
    print(f"stopped at step {run.step}; best {run.best:.4f}; {run.best_path}", flush=True)
    return 0


def _validate(model, val, args, run, sign: float, recipe: str) -> None:
    """Validation at ``run.step``: the history, and ``best.pt`` when the score is the best."""
    if args.regime == "depth":
        metrics = _depth_validation(model, val, args.val_samples)
        score = metrics["depth_log_l1"]
    else:
        metrics = evaluate_samples(model, val, args.regime, args.val_samples)
        score = metrics["iou"]
    run.history.append({"kind": "val", "step": run.step, **metrics})
    print(f"val step {run.step}: {json.dumps(metrics)}", flush=True)
    if not np.isfinite(run.best) or sign * score < sign * run.best:
        run.best = score
        extra = {"step": run.step, "regime": args.regime, "validation": metrics}
        save_ifnet(model, run.best_path, True, recipe, extra)


@torch.no_grad()
def _depth_validation(model, samples, limit) -> dict[str, float]:
    model.eval()
    errors = []
    for index in range(min(limit, len(samples))):
        item = samples[index]
        batch = {key: value[None] for key, value in item.items()}
        depth = _predict_depth(model, batch, align=False)[0]
        errors.append(float(_depth_log_l1(depth, item["depth"])))
    model.train()
    return {"depth_log_l1": float(np.mean(errors))}


def add_evaluate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("ifnet", help="evaluate single-image IF-Net checkpoints")
    p.add_argument("--data", required=True, help="held-out sample folder")
    p.add_argument("--checkpoints", nargs="+", required=True,
                   help="checkpoints; the first is the default row")  # fmt: skip
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N samples")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=run_evaluation)
    return p


def run_evaluation(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    samples = SingleViewSamples(args.data, queries=16, seed=0)
    regimes = {}
    for path in args.checkpoints:
        model, metadata = load_ifnet(path)
        regime = metadata.get("extra", {}).get("regime", "viability")
        # a model with the floor prior: a row with it and a row without (a camera without TF)
        rows = [(regime, True)]
        if model.config.floor_input and regime != "viability":
            rows = [(f"{regime}, floor prior", True), (f"{regime}, floor prior withheld", False)]
        for row, floor in rows:
            # two checkpoints of one regime: told apart by their paths
            name = f"{row} ({path})" if row in regimes else row
            metrics = evaluate_samples(model, samples, regime, args.limit, floor)
            metrics["checkpoint"] = str(path)
            metrics["trained"] = bool(metadata.get("trained"))
            metrics["floor_prior"] = bool(model.config.floor_input and floor)
            regimes[name] = metrics
            print(f"{name}: {json.dumps(metrics)}", flush=True)
    first = next(iter(regimes.values()))
    results = {
        "format": "recon_ros.ifnet_evaluation",
        "data": str(args.data),
        "samples": len(samples) if args.limit is None else min(args.limit, len(samples)),
        "iou": first["iou"],
        "chamfer_l2": first["chamfer_l2"],
        "normal_consistency": first["normal_consistency"],
        "regimes": regimes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.out / "results.json", json.dumps(results, indent=1).encode())
    print(f"wrote {args.out / 'results.json'}", flush=True)
    return 0
