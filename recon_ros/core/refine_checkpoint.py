"""Checkpoints of the 3D refinement network (``core.refine_net``): the layout of
``core.checkpoint`` (tensors plus JSON metadata, written atomically, read with
``torch.load(..., weights_only=True)``) under their own format tag."""

import os
from pathlib import Path

import torch

from recon_ros.core.checkpoint import load_model, save_checkpoint
from recon_ros.core.refine_net import RefineNetConfig, SurfaceRefinerNet

REFINE_CHECKPOINT_FORMAT = "recon_ros.surface_refiner"


def save_refine_net(
    model: SurfaceRefinerNet,
    path: str | os.PathLike,
    trained: bool,
    recipe: str = "",
    extra: dict | None = None,
) -> Path:
    """Write the refinement network to ``path`` atomically."""
    return save_checkpoint(model, path, trained, recipe, extra, REFINE_CHECKPOINT_FORMAT)


def load_refine_net(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[SurfaceRefinerNet, dict]:
    """The refinement network a checkpoint describes, on ``device``, in eval mode, with its
    metadata.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a refinement-network checkpoint, or weights that do not fit its config.
    """
    return load_model(path, device, REFINE_CHECKPOINT_FORMAT, RefineNetConfig, SurfaceRefinerNet)
