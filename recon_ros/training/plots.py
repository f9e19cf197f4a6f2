"""PNG plots of training and evaluation: matplotlib's object API (no pyplot, no global backend),
written atomically."""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from recon_ros.core.atomic_io import atomic_write


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> None:
    """Save ``fig`` as PNG atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write(path, lambda f: f.write(buffer.getvalue()))


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` values (shorter at the start); NaNs are skipped."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        chunk = values[max(0, i - window + 1) : i + 1]
        chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            out[i] = chunk.mean()
    return out


def plot_history(history: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """One panel per metric: training records (``kind == "train"``, smoothed) and validation
    records (``kind == "val"``) against the step."""
    train = [h for h in history if h.get("kind") == "train"]
    val = [h for h in history if h.get("kind") == "val"]
    skip = {"kind", "step", "epoch", "seconds", "lr"}
    train_keys = sorted({k for h in train for k in h if k not in skip})
    val_keys = sorted({k for h in val for k in h if k not in skip})
    panels = [("train", k) for k in train_keys] + [("val", k) for k in val_keys]
    if train:
        panels.append(("train", "lr"))
    if not panels:
        return
    columns = min(4, len(panels))
    rows = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4.2 * columns, 3.0 * rows))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax, (kind, key) in zip(axes, panels, strict=False):
        records = train if kind == "train" else val
        steps = [h["step"] for h in records if key in h]
        values = [h[key] for h in records if key in h]
        if kind == "train" and key != "lr":
            ax.plot(steps, values, color="0.8", linewidth=0.8)
            ax.plot(steps, moving_average(values, 10), color="C0", linewidth=1.5)
        else:
            ax.plot(
                steps,
                values,
                "o-" if kind == "val" else "-",
                color="C1" if kind == "val" else "C2",
                markersize=3,
            )
        ax.set_title(f"{kind}: {key}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.subplots_adjust(hspace=0.55, wspace=0.3)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def plot_frames_curve(
    frames: Sequence[int], series: dict[str, Sequence[float]], path: str | os.PathLike
) -> None:
    """Quality against the number of input frames (the Atlas paper's Fig. 5): one panel per
    metric."""
    keys = list(series)
    fig = Figure(figsize=(4.0 * len(keys), 3.2))
    axes = np.atleast_1d(fig.subplots(1, len(keys)))
    for ax, key in zip(axes, keys, strict=True):
        ax.plot(frames, series[key], "o-")
        ax.set_xscale("log")
        ax.set_xticks(list(frames))
        ax.set_xticklabels([str(f) for f in frames])
        ax.set_xlabel("input frames")
        ax.set_title(key)
        ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_bars(
    names: Sequence[str], rows: dict[str, Sequence[float]], path: str | os.PathLike, title: str
) -> None:
    """Grouped bars (e.g. per-class IoU of the model and of the upper bound)."""
    fig = Figure(figsize=(max(6.0, 0.9 * len(names) + 2), 3.5))
    ax = fig.subplots()
    width = 0.8 / max(1, len(rows))
    x = np.arange(len(names))
    for i, (label, row) in enumerate(rows.items()):
        values = np.asarray([np.nan if v is None else v for v in row], dtype=np.float64)
        ax.bar(x + i * width, np.nan_to_num(values), width, label=label)
    ax.set_xticks(x + width * (len(rows) - 1) / 2)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    save_figure(fig, path)
