"""Back-projection of 2D features into a voxel volume (Atlas eq. 1-4).

Every voxel centre is projected into every frame; a voxel counts for a frame (binary weight
``W_t = 1``) when its centre lies in front of the camera (depth > ``MIN_DEPTH``, and at most
``max_depth`` when given) and projects inside the feature map, i.e. into the pixel area
``[-0.5, w - 0.5] x [-0.5, h - 0.5]`` (pixel centres at integer coordinates). The voxel then
receives the bilinearly interpolated feature at that point; the border row/column is repeated for
points between the outermost pixel centres and the image edge. All voxels along a ray get the
same feature.

The functions return the *sum* of features over frames and the *count* of frames; the Atlas
running average of eq. 3-4 is ``sum / count`` (``average_features``), and keeping the two apart
lets a rolling volume add frames one at a time.
"""

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the usual torch name)

from recon_ros.core.geometry import invert_rigid_tensor, validate_pose_tensor
from recon_ros.core.voxel_grid import validate_grid, voxel_centres

#: Voxels closer to the image plane than this (metres) do not count: they would project to
#: pixels far outside the image and divide by almost zero.
MIN_DEPTH = 1e-4
#: Default bound on the elements (frames x channels x voxels) of one sampling call; 2^24 float32
#: elements are 64 MiB, so a large window never materialises all frames at once.
DEFAULT_MAX_ELEMENTS = 1 << 24


def validate_backprojection_inputs(
    features: torch.Tensor, K: torch.Tensor, T_world_cam: torch.Tensor
) -> None:
    """Check ``features (V, C, h, w)``, ``K (V, 3, 3)`` and ``T_world_cam (V, 4, 4)``; raise
    ValueError naming the bad input."""
    if not isinstance(features, torch.Tensor) or features.ndim != 4:
        shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features)
        raise ValueError(f"features: expected a tensor (V, C, h, w), got {shape}")
    if not features.is_floating_point():
        raise ValueError(f"features: expected a floating-point tensor, got {features.dtype}")
    if min(features.shape) == 0:
        raise ValueError(f"features: empty tensor of shape {tuple(features.shape)}")
    num_frames = features.shape[0]
    if not isinstance(K, torch.Tensor) or K.shape != (num_frames, 3, 3):
        shape = tuple(K.shape) if isinstance(K, torch.Tensor) else type(K)
        raise ValueError(f"K: expected shape ({num_frames}, 3, 3), got {shape}")
    if not bool(torch.isfinite(K).all()):
        raise ValueError("K: contains NaN or infinite values")
    if bool((K[:, 0, 0] <= 0).any()) or bool((K[:, 1, 1] <= 0).any()):
        raise ValueError("K: focal length must be positive (fx and fy)")
    if not isinstance(T_world_cam, torch.Tensor) or T_world_cam.shape != (num_frames, 4, 4):
        shape = tuple(T_world_cam.shape) if isinstance(T_world_cam, torch.Tensor) else None
        raise ValueError(f"T_world_cam: expected shape ({num_frames}, 4, 4), got {shape}")
    validate_pose_tensor(T_world_cam, "T_world_cam")
    for name, tensor in (("K", K), ("T_world_cam", T_world_cam)):
        if tensor.device != features.device:
            raise ValueError(f"{name}: on {tensor.device}, features on {features.device}")


def _max_depth_value(max_depth: float | None) -> float:
    if max_depth is None:
        return float("inf")
    if not max_depth > 0:
        raise ValueError(f"max_depth: must be positive or None, got {max_depth}")
    return float(max_depth)


def backproject_features(
    features: torch.Tensor,
    K: torch.Tensor,
    T_world_cam: torch.Tensor,
    origin: torch.Tensor | Sequence[float],
    voxel_size: float,
    dims: Sequence[int],
    max_depth: float | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of back-projected features and count of frames per voxel; differentiable in
    ``features``.

    Args:
        features: (V, C, h, w) feature maps of V frames.
        K: (V, 3, 3) intrinsics at feature resolution.
        T_world_cam: (V, 4, 4) camera poses (optical frame to world).
        origin: (3,) centre of voxel (0, 0, 0), metres.
        voxel_size: metres.
        dims: (nx, ny, nz).
        max_depth: voxels farther than this along the optical axis do not count (None: no limit).
        max_elements: bound on channels x voxels per sampling call (memory).

    Returns:
        feature_sum: (C, nx, ny, nz), same dtype as ``features``.
        count: (nx, ny, nz), number of frames that see each voxel, same dtype.
    """
    dims = validate_grid(origin, voxel_size, dims)
    feature_sum = features.new_zeros(features.shape[1], *dims)
    count = features.new_zeros(dims)
    backproject_features_into(
        features, K, T_world_cam, origin, voxel_size, feature_sum, count, max_depth, max_elements
    )
    return feature_sum, count


def backproject_features_into(
    features: torch.Tensor,
    K: torch.Tensor,
    T_world_cam: torch.Tensor,
    origin: torch.Tensor | Sequence[float],
    voxel_size: float,
    feature_sum: torch.Tensor,
    count: torch.Tensor,
    max_depth: float | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> int:
    """``backproject_features`` that adds into existing ``feature_sum (C, nx, ny, nz)`` and
    ``count (nx, ny, nz)`` in place (both contiguous, on the features' device), so a running
    volume needs no full-size temporaries. Returns the number of (voxel, frame) hits.

    Only visible voxels are sampled: each frame's visible voxel centres are gathered, sampled with
    ``grid_sample`` and scattered back with ``index_add_`` (differentiable in ``features``).
    """
    validate_backprojection_inputs(features, K, T_world_cam)
    num_frames, channels, height, width = features.shape
    if feature_sum.ndim != 4 or feature_sum.shape[0] != channels:
        raise ValueError(
            f"feature_sum: expected ({channels}, nx, ny, nz), got {tuple(feature_sum.shape)}"
        )
    dims = validate_grid(origin, voxel_size, feature_sum.shape[1:])
    if count.shape != dims:
        raise ValueError(f"count: expected shape {dims}, got {tuple(count.shape)}")
    if not (feature_sum.is_contiguous() and count.is_contiguous()):
        raise ValueError("feature_sum and count: must be contiguous")
    depth_limit = _max_depth_value(max_depth)
    nx, ny, nz = dims
    device = features.device
    # Geometry in at least float32 even when the features are half precision.
    geometry_dtype = torch.promote_types(features.dtype, torch.float32)
    origin_tensor = torch.as_tensor(origin, dtype=geometry_dtype, device=device).reshape(3)
    T_cam_world = invert_rigid_tensor(T_world_cam.to(geometry_dtype))
    projection = K.to(geometry_dtype) @ T_cam_world[:, :3, :]  # (V, 3, 4)
    flat_sum = feature_sum.view(channels, -1)
    flat_count = count.view(-1)
    voxels_per_x = ny * nz
    x_per_slab = max(1, max_elements // max(1, channels * voxels_per_x))
    hits = 0
    for x_start in range(0, nx, x_per_slab):
        x_stop = min(nx, x_start + x_per_slab)
        centres = voxel_centres(origin_tensor, voxel_size, dims, (x_start, x_stop))  # (M, 3)
        first_index = x_start * voxels_per_x
        for frame in range(num_frames):
            pixels = projection[frame, :, :3] @ centres.T + projection[frame, :, 3:]  # (3, M)
            depth = pixels[2]
            visible = (depth > MIN_DEPTH) & (depth <= depth_limit)
            safe_depth = torch.where(visible, depth, torch.ones_like(depth))
            u, v = pixels[0] / safe_depth, pixels[1] / safe_depth
            visible &= (u >= -0.5) & (u <= width - 0.5) & (v >= -0.5) & (v <= height - 0.5)
            index = visible.nonzero().squeeze(1)
            if index.numel() == 0:
                continue
            # align_corners=False: normalised -1 and 1 are the outer pixel edges -0.5, size - 0.5.
            grid = torch.stack(
                [(2.0 * u[index] + 1.0) / width - 1.0, (2.0 * v[index] + 1.0) / height - 1.0], -1
            )
            sampled = F.grid_sample(
                features[frame : frame + 1],
                grid.view(1, 1, -1, 2).to(features.dtype),
                mode="bilinear",
                padding_mode="border",
                align_corners=False,
            )[0, :, 0]  # (C, n)
            flat_sum.index_add_(1, index + first_index, sampled)
            flat_count.index_add_(0, index + first_index, torch.ones_like(index, dtype=count.dtype))
            hits += int(index.numel())
    return hits


def backproject_features_reference(
    features: torch.Tensor,
    K: torch.Tensor,
    T_world_cam: torch.Tensor,
    origin: Sequence[float],
    voxel_size: float,
    dims: Sequence[int],
    max_depth: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Slow reference of ``backproject_features``: loops over frames and voxels in float64 with
    explicit bilinear interpolation. Same arguments and outputs (float64 tensors on the CPU)."""
    validate_backprojection_inputs(features, K, T_world_cam)
    dims = validate_grid(origin, voxel_size, dims)
    depth_limit = _max_depth_value(max_depth)
    feature_maps = features.detach().cpu().double().numpy()
    intrinsics = K.detach().cpu().double().numpy()
    poses = T_world_cam.detach().cpu().double().numpy()
    origin = np.asarray(origin.cpu() if isinstance(origin, torch.Tensor) else origin, np.float64)
    num_frames, channels, height, width = feature_maps.shape
    feature_sum = np.zeros((channels, *dims))
    count = np.zeros(dims)
    for frame in range(num_frames):
        T_cam_world = np.linalg.inv(poses[frame])
        for i in range(dims[0]):
            for j in range(dims[1]):
                for k in range(dims[2]):
                    point_world = origin + voxel_size * np.array([i, j, k], dtype=np.float64)
                    point_cam = T_cam_world[:3, :3] @ point_world + T_cam_world[:3, 3]
                    depth = point_cam[2]
                    if depth <= MIN_DEPTH or depth > depth_limit:
                        continue
                    pixel = intrinsics[frame] @ point_cam
                    u, v = pixel[0] / pixel[2], pixel[1] / pixel[2]
                    if not (-0.5 <= u <= width - 0.5 and -0.5 <= v <= height - 0.5):
                        continue
                    # Border padding: clamp the sampling point onto the outermost pixel centres.
                    u = min(max(u, 0.0), width - 1.0)
                    v = min(max(v, 0.0), height - 1.0)
                    x0, y0 = int(np.floor(u)), int(np.floor(v))
                    x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
                    ax, ay = u - x0, v - y0
                    value = (
                        (1 - ax) * (1 - ay) * feature_maps[frame, :, y0, x0]
                        + ax * (1 - ay) * feature_maps[frame, :, y0, x1]
                        + (1 - ax) * ay * feature_maps[frame, :, y1, x0]
                        + ax * ay * feature_maps[frame, :, y1, x1]
                    )
                    feature_sum[:, i, j, k] += value
                    count[i, j, k] += 1
    return torch.from_numpy(feature_sum), torch.from_numpy(count)


def backproject_batch(
    features: torch.Tensor,
    K: torch.Tensor,
    T_world_cam: torch.Tensor,
    origins: torch.Tensor,
    voxel_size: float,
    dims: Sequence[int],
    max_depth: float | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``backproject_features`` for a training batch, each sample with its own grid origin.

    Args:
        features: (B, V, C, h, w).
        K: (B, V, 3, 3) at feature resolution.
        T_world_cam: (B, V, 4, 4).
        origins: (B, 3).

    Returns:
        feature_sum (B, C, nx, ny, nz) and count (B, nx, ny, nz).
    """
    if features.ndim != 5:
        raise ValueError(f"features: expected (B, V, C, h, w), got {tuple(features.shape)}")
    batch = features.shape[0]
    if K.ndim != 4 or K.shape[0] != batch:
        raise ValueError(f"K: expected ({batch}, V, 3, 3), got {tuple(K.shape)}")
    if T_world_cam.ndim != 4 or T_world_cam.shape[0] != batch:
        raise ValueError(
            f"T_world_cam: expected ({batch}, V, 4, 4), got {tuple(T_world_cam.shape)}"
        )
    if origins.shape != (batch, 3):
        raise ValueError(f"origins: expected ({batch}, 3), got {tuple(origins.shape)}")
    sums, counts = [], []
    for b in range(batch):
        feature_sum, count = backproject_features(
            features[b], K[b], T_world_cam[b], origins[b], voxel_size, dims, max_depth, max_elements
        )
        sums.append(feature_sum)
        counts.append(count)
    return torch.stack(sums), torch.stack(counts)


def average_features(feature_sum: torch.Tensor, count: torch.Tensor) -> torch.Tensor:
    """Running average of eq. 3: ``(..., C, nx, ny, nz) / (..., nx, ny, nz)``; 0 where unseen."""
    return feature_sum / count.clamp(min=1.0).unsqueeze(-4)
