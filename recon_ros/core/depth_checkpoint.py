"""Checkpoints of the multi-view depth network (``core.depth_net``): the same file layout as the
Atlas checkpoints (``core.checkpoint``: tensors plus JSON metadata, written atomically, read with
``torch.load(..., weights_only=True)``) under their own format tag."""

import os
from pathlib import Path

import torch

from recon_ros.core.checkpoint import load_model, save_checkpoint
from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet

DEPTH_CHECKPOINT_FORMAT = "recon_ros.mvs_depth"


def save_depth_net(
    model: MVSDepthNet,
    path: str | os.PathLike,
    trained: bool,
    recipe: str = "",
    extra: dict | None = None,
) -> Path:
    """Write the depth network to ``path`` atomically."""
    return save_checkpoint(model, path, trained, recipe, extra, DEPTH_CHECKPOINT_FORMAT)


def load_depth_net(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[MVSDepthNet, dict]:
    """The depth network a checkpoint describes, on ``device``, in eval mode, with its metadata.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a depth-network checkpoint, or weights that do not fit its config.
    """
    return load_model(path, device, DEPTH_CHECKPOINT_FORMAT, DepthNetConfig, MVSDepthNet)
