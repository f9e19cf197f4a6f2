"""BatchNorm statistics of an untrained model from synthetic posed frames.

A freshly initialised network in eval mode uses running statistics of mean 0 and variance 1,
which do not match its activations: its TSDF output then sits in a narrow band around the head
bias and rarely crosses zero, so the plumbing checkpoint would never produce a mesh. Running the
whole pipeline in train mode on random frames (no gradients, no weight change) and keeping the
exact average of the batch statistics gives activations of the scale the network was built for.
This is not training: the weights stay the random initialisation.
"""

import numpy as np
import torch
from torch import nn

from recon_ros.core.atlas_model import AtlasModel
from recon_ros.core.geometry import look_at_pose


def synthetic_posed_batch(
    model: AtlasModel, generator: torch.Generator, views: int = 4, dims=(32, 32, 32)
) -> dict[str, torch.Tensor]:
    """Random images of the model's size and cameras on a circle looking at a volume centred on
    the world origin: ``forward_train`` arguments for one sample."""
    width, height = model.config.image_size
    voxel_size = model.config.voxel_size
    # Smooth random images: low-resolution noise upsampled, like large uniform surfaces.
    coarse = torch.rand(1, views, 3, height // 16, width // 16, generator=generator)
    images = torch.nn.functional.interpolate(
        coarse[0], size=(height, width), mode="bilinear", align_corners=False
    )[None]
    focal = 0.8 * width
    K = torch.tensor([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])
    radius = 0.9 * max(dims) * voxel_size
    angles = torch.rand(views, generator=generator).numpy() * 2 * np.pi
    poses = [
        look_at_pose([radius * np.cos(a), radius * np.sin(a), 0.3 * radius], [0.0, 0.0, 0.0])
        for a in angles
    ]
    origin = -0.5 * (np.asarray(dims) - 1) * voxel_size
    return {
        "images": images,
        "K": K.expand(1, views, 3, 3).clone(),
        "T_world_cam": torch.tensor(np.stack(poses), dtype=torch.float32)[None],
        "origin": torch.tensor(origin, dtype=torch.float32)[None],
        "voxel_size": voxel_size,
        "dims": dims,
    }


@torch.no_grad()
def calibrate_batchnorm(model: AtlasModel, seed: int = 0, batches: int = 2) -> AtlasModel:
    """Replace every BatchNorm's running statistics by their exact average over ``batches``
    synthetic samples (``synthetic_posed_batch``); weights are untouched. Returns ``model`` in
    eval mode."""
    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average instead of an exponential one
    device = next(model.parameters()).device
    model.train()
    try:
        for _ in range(batches):
            batch = synthetic_posed_batch(model, generator)
            batch = {
                k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
            }
            model.forward_train(**batch)
    finally:
        for norm, momentum in zip(norms, momenta, strict=True):
            norm.momentum = momentum
        model.eval()
    return model
