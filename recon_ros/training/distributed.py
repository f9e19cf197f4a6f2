"""Several processes with ``torch.distributed`` (``torchrun``): process-group set-up from the
environment torchrun provides, synchronised batch norm and the DDP wrapper.

One process per GPU, e.g. on one machine with 8 GPUs::

    torchrun --standalone --nproc_per_node 8 -m recon_ros.apps.cli train atlas ...

Each process trains on its own shard of the samples (``DistributedSampler``), gradients are
averaged by ``DistributedDataParallel`` and, on CUDA, batch-norm statistics are computed over all
processes (``torch.nn.SyncBatchNorm``), as Atlas trained (one sequence per GPU, batch 8). PyTorch's
SyncBatchNorm runs on GPUs only: on the CPU (gloo backend: tests, debugging) each process keeps its
own batch statistics, the rest is the same code path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its
    machine, and the ``device`` it trains on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistributedContext:
    """Join the process group described by torchrun's environment (``WORLD_SIZE``, ``RANK``,
    ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); a single process when ``WORLD_SIZE`` is
    unset or 1. Backend: NCCL for CUDA, gloo otherwise. On CUDA each process takes the GPU
    ``cuda:LOCAL_RANK``."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(device=device)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistributedContext(rank, world_size, local_rank, device)


def wrap_model(module: nn.Module, context: DistributedContext) -> nn.Module:
    """``module`` on the context's device; with several processes, batch norm synchronised
    (CUDA) and wrapped in ``DistributedDataParallel``."""
    module = module.to(context.device)
    if not context.enabled:
        return module
    if context.device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        return nn.parallel.DistributedDataParallel(
            module, device_ids=[context.device.index], output_device=context.device.index
        )
    return nn.parallel.DistributedDataParallel(module)


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DDP wrapper (or the module itself)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def barrier(context: DistributedContext) -> None:
    if context.enabled:
        dist.barrier()


def broadcast_object(value, context: DistributedContext):
    """``value`` of rank 0 on every rank."""
    if not context.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_reduce_mean(values: dict[str, float], context: DistributedContext) -> dict[str, float]:
    """Mean over processes of each value."""
    if not context.enabled or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    if context.device.type == "cuda":
        tensor = tensor.to(context.device)
    dist.all_reduce(tensor)
    tensor /= context.world_size
    return {k: float(v) for k, v in zip(keys, tensor.tolist(), strict=True)}


def cleanup(context: DistributedContext) -> None:
    if context.enabled and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port free on this machine now (for a local process group)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _local_worker(rank: int, world_size: int, port: int, function, args) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
        }
    )
    function(rank, *args)


def spawn_local(world_size: int, function, *args) -> None:
    """Run ``function(rank, *args)`` in ``world_size`` fresh processes on this machine with the
    environment torchrun would give them (``torch.multiprocessing.spawn``): multi-process
    training without torchrun, e.g. to test the DDP path on the CPU with gloo. ``function`` must
    be importable (a module-level function)."""
    import torch.multiprocessing as mp

    mp.spawn(_local_worker, args=(world_size, free_port(), function, args), nprocs=world_size)
