"""One object's whole shape from a few unposed views, with the trained 3D-R2N2: the plain Python
API behind object_node's ``~/reconstruct_object`` service and ``recon-ros reconstruct-object``.

Each view is cut to a square around the object (its mask's bounding box with a margin, so that
the object fills the crop as in training, or the centre square without a mask) and resized to
127 x 127; the network reads the views in the order given and returns the 32^3 occupancy
probabilities of the object's bounding cube (x forward, z up, as the training objects stand);
the mesh is the surface at ``threshold`` (0.4, the seed's), in a cube of edge ``size_m`` centred
on the origin, since unposed views carry no scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.mesh import Mesh
from recon_ros.core.meshing import occupancy_surface
from recon_ros.r2n2.model import ConvLSTMR2N2

#: The seed's occupancy threshold.
DEFAULT_THRESHOLD = 0.4
#: A mask's bounding box fills this share of its crop's side: training views see the object's
#: bounding sphere from 1.1 times the distance at which it fills the field of view.
OBJECT_SHARE_OF_CROP = 0.7
#: Grey of the mesh (no class: the object is one part).
MESH_GREY = (180, 180, 190)


@dataclass
class ObjectReconstruction:
    """``occupancy`` (G, G, G) float32 probabilities, index (x, y, z); ``mesh`` in metres, its
    cube centred on the origin; ``views`` used."""

    occupancy: np.ndarray
    mesh: Mesh
    views: int


def square_crop_box(height: int, width: int, mask: np.ndarray | None) -> tuple[float, float, float]:
    """Centre (row, column) and side in pixels of the square a view is cut to: around the mask's
    bounding box (``OBJECT_SHARE_OF_CROP``), or the image's centre square without a mask.

    Raises ValueError for a mask of another size or with no pixel on the object."""
    if mask is None:
        return (height - 1) / 2, (width - 1) / 2, float(min(height, width))
    mask = np.asarray(mask)
    if mask.shape[:2] != (height, width):
        raise ValueError(f"mask: expected {height}x{width} like its view, got {mask.shape}")
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("mask: no pixel on the object")
    side = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) / OBJECT_SHARE_OF_CROP
    return (rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2, float(side)


def prepare_view(
    image: np.ndarray, mask: np.ndarray | None = None, size: int = 127
) -> torch.Tensor:
    """(H, W, 3) uint8 RGB (and an optional (H, W) mask) -> (3, size, size) float in [0, 1]:
    the square of ``square_crop_box`` resampled bilinearly, edge pixels repeated outside."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    height, width = image.shape[:2]
    row, col, side = square_crop_box(height, width, mask)
    # Output pixel centres mapped into the image, then to grid_sample's [-1, 1] (align_corners
    # False: -1 and 1 are the outer edges of the first and last pixel).
    offsets = ((np.arange(size) + 0.5) / size - 0.5) * side
    ys = (row + offsets + 0.5) / height * 2 - 1
    xs = (col + offsets + 0.5) / width * 2 - 1
    grid = np.stack(np.meshgrid(xs, ys, indexing="xy"), axis=-1)[None]
    pixels = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255.0  # a copy
    out = F.grid_sample(
        pixels,
        torch.from_numpy(grid).float(),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    return out[0].clamp(0.0, 1.0)


def prepare_view_reference(
    image: np.ndarray, mask: np.ndarray | None = None, size: int = 127
) -> np.ndarray:
    """Slow reference of ``prepare_view``: (3, size, size) float64, pixel by pixel, bilinear
    between the four nearest pixel centres with coordinates clamped to the image."""
    height, width = image.shape[:2]
    row, col, side = square_crop_box(height, width, mask)
    pixels = image.astype(np.float64) / 255.0
    out = np.zeros((3, size, size))
    for i in range(size):
        for j in range(size):
            y = min(max(row + ((i + 0.5) / size - 0.5) * side, 0.0), height - 1.0)
            x = min(max(col + ((j + 0.5) / size - 0.5) * side, 0.0), width - 1.0)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
            fy, fx = y - y0, x - x0
            top = pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx
            bottom = pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx
            out[:, i, j] = top * (1 - fy) + bottom * fy
    return out


def occupancy_mesh(occupancy: np.ndarray, threshold: float, size_m: float) -> Mesh:
    """The closed surface of ``occupancy`` >= ``threshold`` in a cube of edge ``size_m`` centred
    on 0 (``core.meshing.occupancy_surface``), grey."""
    grid = occupancy.shape[0]
    voxel = size_m / grid
    origin = np.full(3, voxel / 2 - size_m / 2)  # the centre of voxel (0, 0, 0)
    vertices, faces = occupancy_surface(occupancy, threshold, origin, voxel)
    colors = np.tile(np.array(MESH_GREY, np.uint8), (len(vertices), 1))
    return Mesh(vertices=vertices, faces=faces, colors=colors)


@torch.no_grad()
def reconstruct_object(
    model: ConvLSTMR2N2,
    images: list[np.ndarray],
    masks: list[np.ndarray] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    size_m: float = 1.0,
) -> ObjectReconstruction:
    """The object seen in ``images`` ((H, W, 3) uint8 RGB each, any sizes, 1 or more; with
    ``masks``, one (H, W) per image): ``ObjectReconstruction`` (module docstring).

    Raises ValueError for no image, a mask count that does not match, bad arrays, a threshold
    outside (0, 1) or a non-positive ``size_m``."""
    if not images:
        raise ValueError("images: need at least one view of the object")
    if masks is not None and len(masks) != len(images):
        raise ValueError(f"masks: {len(masks)} for {len(images)} views (give one per view)")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold: expected in (0, 1), got {threshold}")
    if not size_m > 0:
        raise ValueError(f"size_m: expected > 0, got {size_m}")
    size = model.config.image_size
    views = [
        prepare_view(image, None if masks is None else masks[i], size)
        for i, image in enumerate(images)
    ]
    device = next(model.parameters()).device
    logits = model(torch.stack(views)[None].to(device))
    occupancy = torch.softmax(logits, dim=1)[0, 1].cpu().numpy().astype(np.float32)
    return ObjectReconstruction(occupancy, occupancy_mesh(occupancy, threshold, size_m), len(views))
