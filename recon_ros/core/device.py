"""Device selection shared by the core: ``"auto"`` means CUDA when available, else the CPU."""

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device`` into a device.

    Raises:
        ValueError: ``device`` names CUDA while no CUDA device is available, or is not a device.
    """
    if isinstance(device, torch.device):
        resolved = device
    elif isinstance(device, str):
        if device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            resolved = torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"device: {device!r} is not a device name ({error})") from error
    else:
        raise ValueError(f"device: expected a string or torch.device, got {type(device).__name__}")
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for CUDA but no CUDA device is available")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"device: {device!r} is not supported (use cpu, cuda or auto)")
    return resolved
