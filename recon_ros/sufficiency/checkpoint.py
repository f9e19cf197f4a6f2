"""Checkpoints of the conjugate-pair network: weights plus the metadata needed to use them
(m, input size, input kind, class names, width, input normalisation, training recipe, metrics)
and, for resuming, the optimiser, scheduler, epoch and RNG states.

Files are written atomically (temporary file + ``os.replace``) and read with
``torch.load(..., weights_only=True)``, so they hold only tensors and plain Python values.
"""

import os
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from recon_ros.core.atomic_io import atomic_write
from recon_ros.sufficiency.dataset import SampleConfig
from recon_ros.sufficiency.linknet import LinkNet
from recon_ros.sufficiency.preprocess import MEAN, STD

FORMAT = "recon_ros.sufficiency.linknet/1"


def class_names(m: int) -> list[str]:
    """Names of the m + 1 count classes."""
    return [f"seen by {i} of {m}" for i in range(m + 1)]


def model_metadata(
    model: LinkNet, input_size: tuple[int, int], trained: bool = False, **extra: Any
) -> dict:
    """The metadata every checkpoint carries (``trained``: False for plumbing checkpoints)."""
    return {
        "format": FORMAT,
        "trained": bool(trained),
        "m": model.m,
        "width": model.width,
        "input_size": [int(input_size[0]), int(input_size[1])],
        "classes": class_names(model.m),
        "normalization": {"mean": MEAN, "std": STD},
        # Only when not the paper's images-only input: image-only checkpoints stay as they were.
        **({"inputs": model.inputs} if model.inputs != "rgb" else {}),
        **extra,
    }


def rng_states() -> dict:
    """Global RNG states (python, torch, CUDA) as plain values and tensors. numpy randomness in
    this package uses explicit generators keyed by (seed, epoch, index) and needs no state."""
    states = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore :func:`rng_states`."""
    random.setstate(states["python"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _tupleize(x):
    return tuple(_tupleize(v) for v in x) if isinstance(x, list) else x


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Atomically write ``payload`` (``model`` state dict and ``metadata`` at least)."""
    if "model" not in payload or "metadata" not in payload:
        raise ValueError("payload must contain 'model' and 'metadata'")
    atomic_write(path, lambda fh: torch.save(payload, fh))


def write_untrained_checkpoint(
    path: str | os.PathLike,
    m: int = 4,
    width: int = 64,
    input_size: tuple[int, int] = (300, 300),
    seed: int = 0,
) -> Path:
    """A plumbing checkpoint: the seeded initial LinkNet, ``metadata.trained = False``, weights
    stored as float16 (half the file; ``load_model`` casts them back to float32). It lets the
    node and tools run end to end before trained weights exist; its counts mean nothing."""
    torch.manual_seed(seed)
    model = LinkNet(m=m, width=width)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    sample = asdict(SampleConfig(m=m, size=input_size))
    del sample["inputs"]  # images only; keeps the shipped plumbing file byte-identical
    meta = model_metadata(
        model,
        input_size,
        trained=False,
        sample=sample,
        recipe={"untrained": True, "seed": seed, "width": width},
        parameters=sum(p.numel() for p in model.parameters()),
    )
    save_checkpoint(path, {"model": state, "metadata": meta})
    return Path(path)


def export_weights(
    src: str | os.PathLike, dst: str | os.PathLike, half: bool = True, **metadata: Any
) -> Path:
    """A shippable copy of a training checkpoint: its model and metadata only (no optimiser,
    scheduler or RNG state), floating-point tensors as float16 when ``half`` (``load_model``
    copies them into float32 parameters), ``metadata`` entries added or replaced.

    Returns:
        ``dst``.
    """
    payload = load_checkpoint(src)
    state = payload["model"]
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    meta = {**payload["metadata"], **metadata}
    save_checkpoint(dst, {"model": state, "metadata": meta})
    return Path(dst)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint (``weights_only=True``) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for foreign or corrupt files
        raise ValueError(
            f"checkpoint {str(path)!r} is not a loadable weights-only torch file "
            f"({type(error).__name__}: {str(error).strip().splitlines()[0][:200]})"
        ) from error
    meta = payload.get("metadata", {}) if isinstance(payload, dict) else {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"checkpoint {str(path)!r} is not a {FORMAT} checkpoint")
    if "rng" in payload:
        payload["rng"]["python"] = _tupleize(payload["rng"]["python"])
    return payload


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[LinkNet, dict]:
    """The network of a checkpoint in eval mode on ``device``, and its metadata (checkpoints
    without ``inputs`` predate the option and take images only)."""
    payload = load_checkpoint(path, map_location=device)
    meta = payload["metadata"]
    model = LinkNet(m=int(meta["m"]), width=int(meta["width"]), inputs=meta.get("inputs", "rgb"))
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), meta
