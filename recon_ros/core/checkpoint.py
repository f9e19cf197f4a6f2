"""Atlas checkpoints: a dict of plain tensors plus JSON-able metadata, written atomically and read
only with ``torch.load(..., weights_only=True)``.

File content (``torch.save`` of a dict)::

    {"format": "recon_ros.atlas", "format_version": 1,
     "state_dict": {name: tensor, ...},
     "metadata": {"model_config": AtlasModelConfig.to_dict(), "trained": bool, "recipe": str,
                  "parameters": int, "torch_version": str, "extra": {...}}}

``model_config`` carries the architecture, class names, voxel size, truncation and the network
image size, so a checkpoint rebuilds its own model.
"""

import json
import os
from pathlib import Path

import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.batchnorm_calibration import calibrate_batchnorm
from recon_ros.core.device import resolve_device

CHECKPOINT_FORMAT = "recon_ros.atlas"
CHECKPOINT_FORMAT_VERSION = 1


def save_checkpoint(
    model: torch.nn.Module,
    path: str | os.PathLike,
    trained: bool,
    recipe: str = "",
    extra: dict | None = None,
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> Path:
    """Write ``model`` (any module with a ``config.to_dict()``) to ``path`` atomically
    (temporary file in the same folder, then ``os.replace``). ``extra`` must be JSON-able
    (metrics, dataset names...); ``checkpoint_format`` tags the kind of model."""
    path = Path(path)
    metadata = {
        "model_config": model.config.to_dict(),
        "trained": bool(trained),
        "recipe": str(recipe),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "torch_version": torch.__version__.split("+")[0],
        "extra": extra or {},
    }
    # Round trip through JSON: rejects non-JSON values early and stores plain types only.
    metadata = json.loads(json.dumps(metadata))
    payload = {
        "format": checkpoint_format,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": metadata,
    }
    atomic_write(path, lambda file: torch.save(payload, file))
    return path


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    checkpoint_format: str = CHECKPOINT_FORMAT,
) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a checkpoint of the kind ``checkpoint_format``: ``(state_dict, metadata)``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a torch file, not loadable with ``weights_only=True``, or not a
            recon_ros Atlas checkpoint of a supported version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint: no file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for foreign or corrupt files
        raise ValueError(
            f"checkpoint: {path} is not a loadable weights-only torch file "
            f"({type(error).__name__}: {str(error).strip().splitlines()[0][:200]})"
        ) from error
    if not isinstance(payload, dict) or payload.get("format") != checkpoint_format:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(
            f"checkpoint: {path} is not a {checkpoint_format} checkpoint (found {found!r})"
        )
    version = payload.get("format_version")
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ValueError(
            f"checkpoint: {path} has format version {version}, this code reads "
            f"{CHECKPOINT_FORMAT_VERSION}"
        )
    state_dict, metadata = payload.get("state_dict"), payload.get("metadata")
    if not isinstance(state_dict, dict) or not isinstance(metadata, dict):
        raise ValueError(f"checkpoint: {path} lacks state_dict or metadata")
    if not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"checkpoint: {path} state_dict holds values other than tensors")
    if "model_config" not in metadata:
        raise ValueError(f"checkpoint: {path} metadata has no model_config")
    return state_dict, metadata


def load_state_into(
    model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str = ""
) -> None:
    """``model.load_state_dict`` with a ValueError listing missing, unexpected and mis-shaped
    parameters when the architectures differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        f"{k}: {tuple(state_dict[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if state_dict[k].shape != own[k].shape
    )
    if missing or unexpected or mismatched:
        raise ValueError(
            f"checkpoint{' ' + source if source else ''}: architecture mismatch; missing "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
            f"{'...' if len(unexpected) > 5 else ''}, shapes {mismatched[:5]}"
        )
    model.load_state_dict(state_dict, strict=True)


def load_model(
    path: str | os.PathLike,
    device: str | torch.device,
    checkpoint_format: str,
    config_class,
    model_class,
) -> tuple[torch.nn.Module, dict]:
    """The ``model_class(config_class.from_dict(model_config))`` a checkpoint of
    ``checkpoint_format`` describes, with its weights, on ``device``, in eval mode, and its
    metadata.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: bad file (see ``load_checkpoint``), a config this code cannot build, or
            weights that do not fit it.
    """
    device = resolve_device(device)
    state_dict, metadata = load_checkpoint(path, "cpu", checkpoint_format)
    try:
        config = config_class.from_dict(metadata["model_config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint: {path} has an unusable model_config ({error})") from error
    model = model_class(config)
    load_state_into(model, state_dict, str(path))
    return model.to(device).eval(), metadata


def load_atlas_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    expected_config: AtlasModelConfig | None = None,
) -> tuple[AtlasModel, dict]:
    """Build the model a checkpoint describes, load its weights, move it to ``device`` and set
    eval mode. Returns ``(model, metadata)``.

    Raises:
        ValueError: bad file (see ``load_checkpoint``), a config this code cannot build, weights
            that do not fit it, or a config different from ``expected_config``.
    """
    device = resolve_device(device)
    state_dict, metadata = load_checkpoint(path, map_location="cpu")
    try:
        config = AtlasModelConfig.from_dict(metadata["model_config"])
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint: {path} has an unusable model_config ({error})") from error
    if expected_config is not None and config != expected_config:
        differing = sorted(
            k for k, v in expected_config.to_dict().items() if config.to_dict().get(k) != v
        )
        raise ValueError(
            f"checkpoint: {path} architecture differs from the expected one in {differing}"
        )
    model = AtlasModel(config)
    load_state_into(model, state_dict, str(path))
    return model.to(device).eval(), metadata


def write_untrained_checkpoint(
    path: str | os.PathLike, seed: int = 0, config: AtlasModelConfig | None = None
) -> Path:
    """The plumbing checkpoint: weights from ``torch.manual_seed(seed)``, BatchNorm statistics
    from ``calibrate_batchnorm(model, seed)``, ``trained=False``. With the default
    ``config=None`` it uses ``AtlasModelConfig.small()`` to stay small."""
    config = config or AtlasModelConfig.small()
    torch.manual_seed(seed)
    model = calibrate_batchnorm(AtlasModel(config), seed=seed)
    architecture = (
        "AtlasModelConfig.small()" if config == AtlasModelConfig.small() else "a custom config"
    )
    recipe = (
        "Untrained: random initialisation for plumbing tests, not for reconstruction. "
        f"recon_ros.core.checkpoint.write_untrained_checkpoint(path, seed={seed}) with "
        f"{architecture}: "
        "weights from torch.manual_seed(seed), BatchNorm statistics from "
        "calibrate_batchnorm(model, seed) on random synthetic frames (no gradient steps)."
    )
    return save_checkpoint(model, path, trained=False, recipe=recipe, extra={"seed": seed})
