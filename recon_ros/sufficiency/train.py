"""Training of the conjugate-pair network (``recon-ros train sufficiency``).

Recipe, after the paper: per-pixel cross-entropy over the ``m + 1`` count classes (pixels without
valid reference depth ignored), Adam, and the learning rate reduced when the validation loss stops
falling (``ReduceLROnPlateau``). Each epoch writes ``last.pt`` (model, optimiser, scheduler,
epoch, RNG states, history: a run resumes from it), ``best.pt`` when the validation loss improves,
``history.json`` and ``curves.png`` (loss and pixel accuracy, train and validation).
Deterministic by seed: model initialisation, sample plan, shuffling and augmentation.
"""

import argparse
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)
from matplotlib.figure import Figure
from torch.utils.data import DataLoader
from tqdm import tqdm

from recon_ros.core.atomic_io import atomic_write_bytes
from recon_ros.core.device import resolve_device
from recon_ros.sufficiency.checkpoint import (
    load_checkpoint,
    model_metadata,
    rng_states,
    save_checkpoint,
    set_rng_states,
)
from recon_ros.sufficiency.dataset import SampleConfig, SufficiencyDataset, split_specs
from recon_ros.sufficiency.labels import IGNORE_LABEL
from recon_ros.sufficiency.linknet import LinkNet, count_parameters
from recon_ros.sufficiency.metrics import confusion_matrix, summarize
from recon_ros.sufficiency.preprocess import INPUTS, network_input
from recon_ros.sufficiency.sources import add_source_arguments, sequences_from_args


@dataclass
class TrainConfig:
    """Training settings; ``sample`` says how samples are drawn."""

    out_dir: str = "runs/sufficiency"
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.0
    width: int = 64
    val_fraction: float = 0.2
    lr_factor: float = 0.5
    lr_patience: int = 2
    min_lr: float = 1e-6
    augment: bool = True
    max_steps: int | None = None
    device: str = "auto"
    seed: int = 0
    num_workers: int = 0
    threads: int = 0
    resume: bool = True
    cache_dir: str | None = None
    sample: SampleConfig = field(default_factory=lambda: SampleConfig(partners="mixed"))


def save_figure(fig: Figure, path: Path) -> None:
    """Save a matplotlib figure as PNG atomically (object API: no pyplot, no global backend)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss and pixel accuracy per epoch, train and validation, as a PNG."""
    epochs = [h["epoch"] + 1 for h in history]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, key, title in (
        (axes[0], "loss", "cross-entropy"),
        (axes[1], "accuracy", "pixel accuracy"),
    ):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "o-", label="train")
        val = [h.get(f"val_{key}") for h in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [np.nan if v is None else v for v in val], "s-", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    save_figure(fig, path)


def run_epoch(
    model: LinkNet,
    loader: DataLoader,
    device: torch.device,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    max_steps: int | None = None,
    progress: bool = False,
    desc: str = "",
) -> dict:
    """One pass over ``loader``: trains when ``optimizer`` is given, else evaluates.

    Returns:
        ``loss`` (mean cross-entropy per valid pixel), ``accuracy``, ``confusion`` (C, C) numpy,
        ``steps``.
    """
    training = optimizer is not None
    model.train(training)
    C = model.num_classes
    total_loss, total_pixels, steps = 0.0, 0, 0
    confusion = torch.zeros(C, C, dtype=torch.int64, device=device)
    bar = tqdm(
        loader,
        desc=desc,
        disable=not progress,
        leave=False,
        total=min(len(loader), max_steps) if max_steps else len(loader),
    )
    with torch.set_grad_enabled(training):
        for batch in bar:
            images, labels = batch[0], batch[1]
            extras = [b.to(device) for b in batch[2:]]  # frustum, stereo (dataset)
            x = network_input(images.to(device, non_blocking=True), *extras)
            y = labels.to(device).long()
            valid = int((y != IGNORE_LABEL).sum())
            if valid == 0:
                continue
            logits = model(x)
            loss = F.cross_entropy(logits, y, ignore_index=IGNORE_LABEL)
            if training:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            steps += 1
            total_loss += loss.item() * valid
            total_pixels += valid
            confusion += confusion_matrix(logits.argmax(1), y, C)
            bar.set_postfix(loss=f"{total_loss / total_pixels:.4f}")
            if max_steps is not None and steps >= max_steps:
                break
    conf = confusion.cpu().numpy()
    return {
        "loss": total_loss / total_pixels if total_pixels else float("nan"),
        "accuracy": summarize(conf)["pixel_accuracy"],
        "confusion": conf,
        "steps": steps,
    }


def _check_resumable(meta: dict, model: LinkNet, config: TrainConfig, path: Path) -> None:
    want = {
        "m": model.m,
        "width": model.width,
        "inputs": model.inputs,
        "input_size": list(config.sample.size),
    }
    have = {k: meta.get(k, "rgb" if k == "inputs" else None) for k in want}
    if have != want:
        raise ValueError(f"resume: {path} was trained with {have}, this run asks for {want}")


def train(sequences: list[Any], config: TrainConfig, progress: bool = True) -> dict:
    """Train the network on samples of ``sequences``.

    Returns:
        ``history`` (list of per-epoch dicts), ``best`` and ``last`` checkpoint paths,
        ``parameters``, ``train_samples``, ``val_samples``.
    """
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    cache = Path(config.cache_dir) if config.cache_dir else out / "cache"
    full = SufficiencyDataset(sequences, config.sample, cache_dir=cache)
    train_specs, val_specs = split_specs(full.specs, config.val_fraction, config.seed)
    if not train_specs:
        raise ValueError("sequences yield no training samples (too short for m and window?)")
    train_ds = SufficiencyDataset(sequences, config.sample, cache, config.augment, train_specs)
    val_ds = (
        SufficiencyDataset(sequences, config.sample, cache, False, val_specs) if val_specs else None
    )
    for ds in (train_ds, val_ds):
        if ds is not None:
            ds.prepare(progress=progress)

    torch.manual_seed(config.seed)
    model = LinkNet(m=config.sample.m, width=config.width, inputs=config.sample.inputs).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="min",
        factor=config.lr_factor,
        patience=config.lr_patience,
        min_lr=config.min_lr,
    )
    last_path, best_path = out / "last.pt", out / "best.pt"
    history: list[dict] = []
    start, best = 0, float("inf")
    if config.resume and last_path.exists():
        payload = load_checkpoint(last_path, map_location=device)
        _check_resumable(payload["metadata"], model, config, last_path)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        set_rng_states(payload["rng"])
        start = int(payload["epoch"]) + 1
        history = list(payload["history"])
        best = float(payload.get("best", best))

    recipe = asdict(config)
    for epoch in range(start, config.epochs):
        train_ds.set_epoch(epoch)
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
        loader = DataLoader(
            train_ds,
            batch_size=config.batch_size,
            shuffle=True,
            generator=gen,
            num_workers=config.num_workers,
        )
        tr = run_epoch(
            model,
            loader,
            device,
            optimizer=optimizer,
            max_steps=config.max_steps,
            progress=progress,
            desc=f"epoch {epoch + 1}/{config.epochs} train",
        )
        entry = {
            "epoch": epoch,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": tr["loss"],
            "train_accuracy": tr["accuracy"],
            "val_loss": None,
            "val_accuracy": None,
        }
        monitor = tr["loss"]
        if val_ds is not None:
            vl = DataLoader(val_ds, batch_size=config.batch_size, num_workers=config.num_workers)
            va = run_epoch(
                model,
                vl,
                device,
                max_steps=config.max_steps,
                progress=progress,
                desc=f"epoch {epoch + 1}/{config.epochs} val",
            )
            entry.update(val_loss=va["loss"], val_accuracy=va["accuracy"])
            monitor = va["loss"]
        scheduler.step(monitor)
        history.append(entry)
        improved = monitor < best
        best = min(best, monitor)
        meta = model_metadata(
            model,
            config.sample.size,
            trained=True,
            sample=asdict(config.sample),
            recipe=recipe,
            epoch=epoch,
            metrics=entry,
            parameters=count_parameters(model),
        )
        state = {"model": model.state_dict(), "metadata": meta}
        save_checkpoint(
            last_path,
            {
                **state,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "epoch": epoch,
                "rng": rng_states(),
                "history": history,
                "best": best,
            },
        )
        if improved:
            save_checkpoint(best_path, state)
        atomic_write_bytes(out / "history.json", json.dumps(history, indent=1).encode())
        plot_curves(history, out / "curves.png")
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}: train loss {tr['loss']:.4f} acc {tr['accuracy']:.3f}"
                + (
                    f", val loss {entry['val_loss']:.4f} acc {entry['val_accuracy']:.3f}"
                    if val_ds is not None
                    else ""
                )
            )
    return {
        "history": history,
        "best": best_path,
        "last": last_path,
        "parameters": count_parameters(model),
        "train_samples": len(train_ds),
        "val_samples": len(val_ds) if val_ds is not None else 0,
    }


def add_sample_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of :class:`SampleConfig` shared by train and evaluate."""
    d = SampleConfig()
    parser.add_argument(
        "--partners",
        choices=("overlap", "random", "mixed"),
        default="mixed",
        help="how partner frames are chosen (dataset module docstring); mixed: the estimator's "
        "overlap choice plus random sets, so low counts are not rare",
    )
    parser.add_argument("--window", type=int, default=d.window, help="candidate frames per side")
    parser.add_argument("--step", type=int, default=d.step, help="spacing of candidate frames")
    parser.add_argument(
        "--both-sides",
        action="store_true",
        help="candidates before and after the reference (default: before only)",
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=d.draws,
        help="random partner sets per reference (--partners random or mixed)",
    )
    parser.add_argument(
        "--reference-stride",
        type=int,
        default=d.reference_stride,
        help="use every Nth frame as a reference",
    )


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """``--threads``, shared by train and evaluate."""
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (torch.set_num_threads); 0: torch's default",
    )


def _sample_config(args: argparse.Namespace, **fixed: Any) -> SampleConfig:
    return SampleConfig(
        partners=args.partners,
        window=args.window,
        step=args.step,
        causal=not args.both_sides,
        draws=args.draws,
        reference_stride=args.reference_stride,
        seed=args.seed,
        **fixed,
    )


def run(args: argparse.Namespace) -> int:
    """Entry point of ``recon-ros train sufficiency``."""
    sample = _sample_config(args, m=args.m, size=tuple(args.size), inputs=args.inputs)
    config = TrainConfig(
        out_dir=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        width=args.width,
        val_fraction=args.val_fraction,
        lr_patience=args.lr_patience,
        augment=not args.no_augment,
        max_steps=args.max_steps,
        device=args.device,
        seed=args.seed,
        num_workers=args.num_workers,
        threads=args.threads,
        resume=not args.no_resume,
        cache_dir=args.cache_dir,
        sample=sample,
    )
    result = train(sequences_from_args(args), config, progress=not args.quiet)
    print(
        f"trained {result['parameters']} parameters on {result['train_samples']} samples "
        f"({result['val_samples']} validation); best checkpoint {result['best']}"
    )
    return 0


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sufficiency`` under ``recon-ros train``."""
    d, s = TrainConfig(), SampleConfig()
    p = subparsers.add_parser(
        "sufficiency", help="train the conjugate-pair (frame sufficiency) net", description=__doc__
    )
    add_source_arguments(p)
    p.add_argument("--out", default=d.out_dir, help="run folder (checkpoints, curves, cache)")
    p.add_argument("--m", type=int, default=s.m, help="partner frames per sample")
    p.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=list(s.size),
        metavar=("H", "W"),
        help="network input size",
    )
    p.add_argument("--width", type=int, default=d.width, help="LinkNet base width (64: ~3M)")
    p.add_argument(
        "--inputs",
        choices=INPUTS,
        default=s.inputs,
        help="network input: rgb (the paper's stacked images), rgb+frustum (plus each "
        "partner's frustum depth interval per pixel, from the poses; sufficiency.frustum) or "
        "rgb+frustum+stereo (plus plane-sweep depth and per-partner matching costs; "
        "sufficiency.stereo)",
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--lr-patience", type=int, default=d.lr_patience)
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--max-steps", type=int, default=None, help="cap batches per epoch (smoke)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--no-resume", action="store_true", help="ignore an existing last.pt")
    p.add_argument("--cache-dir", default=None, help="sample cache (default OUT/cache)")
    p.add_argument("--device", default=d.device, help="cpu, cuda or auto")
    p.add_argument("--num-workers", type=int, default=d.num_workers)
    add_threads_argument(p)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_sample_arguments(p)
    p.set_defaults(func=run)
    return p
