"""The training loop shared by the Atlas stages.

A ``Stage`` says what is trained (``build_model``), on what (``dataset``), how the loss is computed
(``compute_loss``), how it is validated (``validate``) and what the stage leaves behind
(``export``). ``run_stage`` does the rest, the same way for every stage:

- Adam with a linear warm-up and a cosine decay to ``final_lr_fraction`` of the rate;
- mixed precision (float16 autocast and a gradient scaler) on CUDA, full precision on the CPU;
- several processes with ``torchrun`` (``distributed``): a ``DistributedSampler`` shard per process,
  DDP, synchronised batch norm on CUDA;
- ``last.pt`` every ``checkpoint_every`` steps and at the end: model, optimiser, scheduler,
  scaler, step, RNG state, history and the wall time spent; a run resumes from it at the exact
  sample it stopped at (samples depend only on seed, epoch and index, see ``data``);
- ``best.pt`` (model only) whenever the validation score improves;
- a tqdm progress bar, ``metrics.csv`` and ``history.json`` (one record per logged step and per
  validation) and ``curves.png``.

Files are written atomically and read with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import abc
import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.device import resolve_device
from recon_ros.training.data import ResumableDistributedSampler, stack_batch, steps_per_epoch
from recon_ros.training.distributed import (
    DistributedContext,
    all_reduce_mean,
    barrier,
    broadcast_object,
    cleanup,
    init_distributed,
    unwrap,
    wrap_model,
)
from recon_ros.training.plots import plot_history

STATE_FORMAT = "recon_ros.atlas_train_state"


@dataclass
class EngineConfig:
    """Loop settings common to every stage.

    Attributes:
        out_dir: folder of the stage's files.
        steps: optimiser steps in all (a resumed run continues up to this).
        batch_size: samples per step and process.
        lr, weight_decay: Adam settings; warmup_steps, final_lr_fraction: the schedule.
        grad_clip: gradient-norm clip (None: none).
        num_workers: DataLoader worker processes (each uses one thread).
        threads: torch threads of the training process (other jobs may share the cores).
        device: "auto", "cpu", "cuda"; under torchrun each process takes cuda:LOCAL_RANK.
        seed: model initialisation and sample draws.
        amp: mixed precision (CUDA only).
        log_every: steps per training record; val_every: steps per validation (0: only at the
            end; also before the first step, as a baseline); checkpoint_every: steps per
            ``last.pt``.
        resume: continue from ``out_dir/last.pt`` when it exists.
        max_minutes: stop (saving ``last.pt``) after this much wall time in this invocation.
    """

    out_dir: str = "runs/atlas"
    steps: int = 1000
    batch_size: int = 1
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 100
    final_lr_fraction: float = 0.05
    grad_clip: float | None = 5.0
    num_workers: int = 1
    threads: int = 2
    device: str = "auto"
    seed: int = 0
    amp: bool = True
    log_every: int = 10
    val_every: int = 500
    checkpoint_every: int = 100
    resume: bool = True
    progress: bool = True
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"steps and batch_size: must be positive, got {self.steps}, {self.batch_size}"
            )
        if not self.lr > 0:
            raise ValueError(f"lr: must be positive, got {self.lr}")
        if self.num_workers < 0 or self.threads < 1:
            raise ValueError("num_workers >= 0 and threads >= 1")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ValueError(f"final_lr_fraction: must be in [0, 1], got {self.final_lr_fraction}")


class Stage(abc.ABC):
    """One training stage (see the module docstring)."""

    name: str = "stage"

    def prepare(self, context: DistributedContext) -> None:  # noqa: B027 (optional hook)
        """Work before training (e.g. a feature cache); called on every rank, rank 0 first."""

    def begin_step(self, model: nn.Module, step: int) -> None:  # noqa: B027 (optional hook)
        """Called with the (unwrapped) model before each optimiser step ``step`` (0-based), e.g.
        for curricula."""

    @abc.abstractmethod
    def build_model(self) -> nn.Module:
        """The module whose trainable parameters the optimiser updates (CPU, train mode)."""

    @abc.abstractmethod
    def dataset(self) -> Dataset:
        """The training samples; must offer ``set_epoch(epoch)``."""

    @abc.abstractmethod
    def compute_loss(
        self, model: nn.Module, batch: dict[str, torch.Tensor], device: torch.device
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total loss and its parts (detached scalars) for one batch."""

    @abc.abstractmethod
    def validate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Validation metrics of the (unwrapped, eval-mode) model; ``score``: lower is better."""

    @abc.abstractmethod
    def export(self, model: nn.Module, out_dir: Path, summary: dict) -> dict[str, str]:
        """Write what the stage leaves behind; returns named paths."""

    def describe(self) -> dict:
        """JSON-able settings of the stage (stored in checkpoints and the summary)."""
        return {}


def lr_factor(step: int, total: int, warmup: int, final_fraction: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine from 1 to ``final_fraction``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _save_torch(path: Path, payload: dict) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def load_state(path: Path, map_location: torch.device | str = "cpu") -> dict:
    """A ``last.pt`` / ``best.pt`` of this engine (weights_only).

    Raises:
        ValueError: not a file of this engine.
    """
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
        raise ValueError(f"training state: {path} is not a {STATE_FORMAT} file")
    return payload


def write_history(out_dir: Path, history: list[dict], title: str) -> None:
    """history.json, metrics.csv and curves.png."""
    text = json.dumps(history, indent=1).encode()
    atomic_write(out_dir / "history.json", lambda f: f.write(text))
    keys = ["step", "kind", *sorted({k for h in history for k in h} - {"step", "kind"})]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    writer.writeheader()
    for record in history:
        writer.writerow(record)
    data = buffer.getvalue().encode()
    atomic_write(out_dir / "metrics.csv", lambda f: f.write(data))
    plot_history(history, out_dir / "curves.png", title)


def _to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)


def run_stage(stage: Stage, config: EngineConfig) -> dict:
    """Train ``stage`` (see the module docstring). Returns a summary: ``steps``, ``best_score``,
    ``train_seconds``, ``artifacts`` (rank 0; other ranks get the same dict without artifacts)
    and ``model``, the trained module (unwrapped)."""
    torch.set_num_threads(config.threads)
    context = init_distributed(resolve_device(config.device))
    out_dir = Path(config.out_dir)
    try:
        if context.is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            stage.prepare(context)
        barrier(context)
        if not context.is_main:
            stage.prepare(context)
        return _train(stage, config, context, out_dir)
    finally:
        cleanup(context)


def _train(stage: Stage, config: EngineConfig, context: DistributedContext, out_dir: Path) -> dict:
    device = context.device
    torch.manual_seed(config.seed)
    module = stage.build_model()
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_factor(step, config.steps, config.warmup_steps, config.final_lr_fraction),
    )
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    step, history, best, seconds = 0, [], math.inf, 0.0
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if config.resume and last_path.is_file():
        state = load_state(last_path)
        if state.get("stage") != stage.name:
            raise ValueError(f"resume: {last_path} belongs to stage {state.get('stage')!r}")
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        step, history = int(state["step"]), list(state["history"])
        best, seconds = float(state["best_score"]), float(state["train_seconds"])
        torch.set_rng_state(state["rng_torch"])
    model = wrap_model(module, context)
    dataset = stage.dataset()
    per_epoch = steps_per_epoch(len(dataset), context.world_size, config.batch_size)
    sampler = ResumableDistributedSampler(
        dataset, context.world_size, context.rank, shuffle=True, seed=config.seed
    )
    description = {
        "stage": stage.name,
        "engine": asdict(config),
        "settings": stage.describe(),
        "world_size": context.world_size,
        "device": str(device),
    }

    def save_last() -> None:
        if not context.is_main:
            return
        payload = {
            "format": STATE_FORMAT,
            "stage": stage.name,
            "model": unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "step": step,
            "history": history,
            "best_score": best,
            "train_seconds": seconds,
            "rng_torch": torch.get_rng_state(),
            "description": json.loads(json.dumps(description)),
        }
        _save_torch(last_path, payload)

    def validate() -> None:
        nonlocal best
        if context.is_main:
            inner = unwrap(model)
            inner.eval()
            with torch.no_grad():
                metrics = stage.validate(inner, device)
            inner.train()
            record = {"step": step, "kind": "val", **{k: float(v) for k, v in metrics.items()}}
            history.append(record)
            if metrics["score"] < best:
                best = float(metrics["score"])
                _save_torch(
                    best_path,
                    {
                        "format": STATE_FORMAT,
                        "stage": stage.name,
                        "model": inner.state_dict(),
                        "step": step,
                        "metrics": record,
                        "description": json.loads(json.dumps(description)),
                    },
                )
            write_history(out_dir, history, f"{stage.name} ({out_dir})")
            tqdm.write(
                f"[{stage.name}] step {step}: validation "
                + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            )
        barrier(context)

    if step == 0 and not history:
        validate()
    started = time.monotonic()
    bar = tqdm(
        total=config.steps,
        initial=step,
        desc=stage.name,
        unit="step",
        disable=not (config.progress and context.is_main),
        dynamic_ncols=True,
    )
    running: dict[str, list[float]] = {}
    model.train()
    stop = False
    try:
        while step < config.steps and not stop:
            epoch, within = divmod(step, per_epoch)
            dataset.set_epoch(epoch)
            sampler.set_epoch(epoch)
            sampler.set_start(within * config.batch_size)
            loader = DataLoader(
                dataset,
                batch_size=config.batch_size,
                sampler=sampler,
                num_workers=config.num_workers,
                collate_fn=stack_batch,
                drop_last=True,
                worker_init_fn=_worker_init,
                pin_memory=device.type == "cuda",
                prefetch_factor=2 if config.num_workers > 0 else None,
            )
            for cpu_batch in loader:
                tick = time.monotonic()
                stage.begin_step(unwrap(model), step)
                batch = _to_device(cpu_batch, device)
                with torch.autocast(device.type, dtype=torch.float16, enabled=use_amp):
                    loss, parts = stage.compute_loss(model, batch, device)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                step += 1
                seconds += time.monotonic() - tick
                for key, value in parts.items():
                    running.setdefault(key, []).append(float(value))
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
                if step % config.log_every == 0 or step == config.steps:
                    means = {k: sum(v) / len(v) for k, v in running.items()}
                    means = all_reduce_mean(means, context)
                    running.clear()
                    history.append(
                        {
                            "step": step,
                            "kind": "train",
                            "epoch": epoch,
                            "lr": scheduler.get_last_lr()[0],
                            "seconds": seconds,
                            **means,
                        }
                    )
                if config.val_every and step % config.val_every == 0 and step < config.steps:
                    validate()
                if step % config.checkpoint_every == 0:
                    save_last()
                    if context.is_main:
                        write_history(out_dir, history, f"{stage.name} ({out_dir})")
                if config.max_minutes is not None:
                    stop = (time.monotonic() - started) / 60.0 >= config.max_minutes
                    stop = bool(broadcast_object(stop, context))  # rank 0 decides for all
                if step >= config.steps or stop:
                    break
    except KeyboardInterrupt:
        save_last()
        raise
    finally:
        bar.close()
    finished = step >= config.steps
    if finished and not any(h["kind"] == "val" and h["step"] == step for h in history):
        validate()
    save_last()
    summary = {
        "stage": stage.name,
        "steps": step,
        "finished": finished,
        "best_score": best,
        "train_seconds": seconds,
        "description": description,
        "artifacts": {},
    }
    if context.is_main:
        write_history(out_dir, history, f"{stage.name} ({out_dir})")
        if finished:
            summary["artifacts"] = stage.export(unwrap(model), out_dir, summary)
        text = json.dumps(summary, indent=1, default=str).encode()
        atomic_write(out_dir / "summary.json", lambda f: f.write(text))
    barrier(context)
    return {**summary, "model": unwrap(model)}
