"""What the step-based trainers of the fusion pipeline (``recon-ros train depth``, ``train
refiner``) share: the learning-rate schedule, class weights for rare classes, and a resumable
run folder (``last.pt`` with model, optimiser, step and best score; ``history.jsonl``;
``curves.png``), written atomically."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.atomic_io import atomic_write
from recon_ros.training.engine import lr_factor

#: The schedule ends at this fraction of the base learning rate.
FINAL_LR_FRACTION = 0.05


def scheduled_lr(step: int, total: int, base: float, warmup: int, hold: int = 0) -> float:
    """Linear warm-up, then cosine down to ``FINAL_LR_FRACTION`` of ``base`` at ``total``.
    With ``hold`` > 0 the rate stays at ``base`` until step ``hold`` and the cosine spans
    ``hold`` .. ``total`` (a constant-rate run that is resumed to anneal)."""
    if hold > 0:
        if step < hold:
            return base * lr_factor(step, total, warmup, 1.0)
        return base * lr_factor(step - hold, total - hold, 0, FINAL_LR_FRACTION)
    return base * lr_factor(step, total, warmup, FINAL_LR_FRACTION)


def adamw_without_decay_on_biases(
    model: torch.nn.Module, lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and kernels only (not biases or norms)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=lr,
    )


def balanced_class_weights(counts: np.ndarray, balance: float) -> torch.Tensor:
    """(C,) loss weights ~ frequency^-balance from per-class counts, scaled so the average
    labelled sample keeps weight 1; classes never seen get the largest weight."""
    counts = np.asarray(counts, dtype=np.float64)
    frequency = counts / max(1.0, counts.sum())
    seen = frequency > 0
    weights = np.ones(len(counts))
    if seen.any():
        weights[seen] = frequency[seen] ** -balance
        weights[~seen] = weights[seen].max()
        weights /= float((weights * frequency).sum())
    return torch.tensor(weights, dtype=torch.float32)


class RunFolder:
    """A resumable training run in ``folder``.

    ``resume`` loads ``last.pt`` into the model and optimiser when it exists; ``save`` writes it
    back with the history and the curves.
    """

    def __init__(self, folder: Path, title: str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.last_path = self.folder / "last.pt"
        self.best_path = self.folder / "best.pt"
        self.history_path = self.folder / "history.jsonl"
        self.step = 0
        self.best = math.inf
        self.history: list[dict] = []

    def resume(self, model: torch.nn.Module, optimiser: torch.optim.Optimizer) -> bool:
        """Continue from ``last.pt`` if there is one; returns whether it did."""
        if not self.last_path.is_file():
            return False
        state = torch.load(self.last_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        self.step, self.best = int(state["step"]), float(state["best"])
        if self.history_path.is_file():
            lines = self.history_path.read_text().splitlines()
            self.history = [json.loads(line) for line in lines if line]
        return True

    def out_of_time(self, minutes: float, started: float) -> bool:
        """Whether the time box of ``minutes`` (0: none) since ``started`` (``time.monotonic``)
        is spent; says so."""
        import time

        if minutes and (time.monotonic() - started) / 60.0 >= minutes:
            print(f"time box of {minutes} min reached at step {self.step}", flush=True)
            return True
        return False

    def log_loss(self, running: list[float], started: float, **extra: float) -> None:
        """Record and print the mean of ``running`` (then cleared) as a training record."""
        import time

        record = {"kind": "train", "step": self.step, "loss": float(np.mean(running)), **extra}
        running.clear()
        self.history.append(record)
        minutes = (time.monotonic() - started) / 60.0
        details = "".join(f" {k} {v:.3f}" for k, v in extra.items())
        text = f"step {self.step} loss {record['loss']:.4f}{details} ({minutes:.1f} min)"
        print(text, flush=True)

    def save(self, model: torch.nn.Module, optimiser: torch.optim.Optimizer) -> None:
        payload = {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "step": self.step,
            "best": self.best,
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        atomic_write(self.last_path, lambda f: f.write(buffer.getvalue()))
        lines = "".join(json.dumps(h) + "\n" for h in self.history)
        atomic_write(self.history_path, lambda f: f.write(lines.encode()))
        try:
            from recon_ros.training.plots import plot_history

            plot_history(self.history, self.folder / "curves.png", self.title)
        except Exception as error:  # a plot must never stop training
            print(f"curves not written: {error}", flush=True)


def add_run_arguments(
    parser, *, steps: int, batch_size: int, lr: float, val_every: int = 250
) -> None:
    """The arguments every resumable, time-boxed trainer takes (with its own defaults):
    ``--steps --batch-size --lr --val-every --log-every --minutes --threads --seed``."""
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch-size", type=int, default=batch_size)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--val-every", type=int, default=val_every)
    parser.add_argument("--log-every", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this long (0: no)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
