"""Checkpoints of the multi-view depth network (``core.depth_net``): the same file layout as the
Atlas checkpoints (``core.checkpoint``: tensors plus JSON metadata, written atomically, read with
``torch.load(..., weights_only=True)``) under their own format tag."""

import os
from pathlib import Path

import torch

from recon_ros.core.checkpoint import load_checkpoint, load_state_into, save_checkpoint
from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet
from recon_ros.core.device import resolve_device

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
    device = resolve_device(device)
    state_dict, metadata = load_checkpoint(path, "cpu", DEPTH_CHECKPOINT_FORMAT)
    try:
        config = DepthNetConfig.from_dict(metadata["model_config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint: {path} has an unusable model_config ({error})") from error
    model = MVSDepthNet(config)
    load_state_into(model, state_dict, str(path))
    return model.to(device).eval(), metadata
