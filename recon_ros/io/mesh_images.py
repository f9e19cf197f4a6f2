"""Rendering meshes on the CPU with open3d's raycasting: colour images for PNG previews and depth
maps (for the 2D depth metrics of a predicted mesh). ROS-free."""

from __future__ import annotations

import numpy as np

from recon_ros.core.poses import look_at_pose as look_at


def intrinsics(width: int, height: int, fov_x_deg: float = 60.0) -> np.ndarray:
    """K (3, 3) of a pinhole camera with the given horizontal field of view."""
    fx = 0.5 * width / np.tan(np.radians(fov_x_deg) / 2)
    return np.array([[fx, 0, (width - 1) / 2], [0, fx, (height - 1) / 2], [0, 0, 1.0]])


def overview_pose(
    vertices: np.ndarray, fov_x_deg: float = 60.0, azimuth_deg=-60.0, elevation_deg=45.0
) -> np.ndarray:
    """A camera pose that sees the whole mesh obliquely from above (an architect's view)."""
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    centre, radius = (lo + hi) / 2, max(np.linalg.norm(hi - lo) / 2, 1e-3)
    distance = radius / np.sin(np.radians(fov_x_deg) / 2 * 0.85)
    az, el = np.radians(azimuth_deg), np.radians(elevation_deg)
    direction = np.array([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)])
    return look_at(centre + distance * direction, centre)


def _cast(vertices, faces, K, T_world_cam, width, height):
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(np.ascontiguousarray(vertices, dtype=np.float32)),
        o3d.core.Tensor(np.ascontiguousarray(faces, dtype=np.uint32)),
    )
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    # rays with z = 1 in the camera, so the hit distance is the depth along the optical axis
    dirs_cam = np.stack(
        [(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1
    )
    dirs = dirs_cam.reshape(-1, 3) @ T_world_cam[:3, :3].T
    origins = np.broadcast_to(T_world_cam[:3, 3], dirs.shape)
    rays = o3d.core.Tensor(np.concatenate([origins, dirs], axis=1).astype(np.float32))
    return scene.cast_rays(rays)


def render_depth(vertices, faces, K, T_world_cam, width: int, height: int) -> np.ndarray:
    """Depth ``(H, W)`` float32 in metres along the optical axis, 0 where no surface is hit."""
    if len(faces) == 0:
        return np.zeros((height, width), np.float32)
    hits = _cast(
        vertices, faces, np.asarray(K, float), np.asarray(T_world_cam, float), width, height
    )
    depth = hits["t_hit"].numpy().reshape(height, width)
    depth[~np.isfinite(depth)] = 0.0
    return depth.astype(np.float32)


def render_colors(
    vertices, faces, colors, K, T_world_cam, width: int, height: int, background=(255, 255, 255)
) -> np.ndarray:
    """Shaded colour image ``(H, W, 3)`` uint8: vertex colours interpolated over each triangle,
    Lambertian shading under a light at the camera, so shapes read clearly."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = background
    if len(faces) == 0:
        return image
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    T_world_cam = np.asarray(T_world_cam, float)
    hits = _cast(vertices, faces, np.asarray(K, float), T_world_cam, width, height)
    ids = hits["primitive_ids"].numpy().reshape(-1).astype(np.int64)
    hit = ids != np.iinfo(np.uint32).max
    uv = hits["primitive_uvs"].numpy().reshape(-1, 2)[hit]
    corners = faces[ids[hit]]
    c = np.asarray(colors, np.float64)[corners]  # (n, 3 corners, 3)
    weights = np.stack([1 - uv[:, 0] - uv[:, 1], uv[:, 0], uv[:, 1]], axis=1)[:, :, None]
    albedo = (weights * c).sum(axis=1)
    normals = hits["primitive_normals"].numpy().reshape(-1, 3)[hit]
    view = T_world_cam[:3, 2]
    shade = 0.35 + 0.65 * np.abs(normals @ view)  # two-sided: back faces of thin walls still read
    image.reshape(-1, 3)[hit] = np.clip(albedo * shade[:, None], 0, 255).astype(np.uint8)
    return image


def render_overview(
    vertices, faces, colors, width: int = 960, height: int = 720, labels=None
) -> np.ndarray:
    """An oblique overview of the whole mesh, ``(H, W, 3)`` uint8. With per-vertex ``labels``,
    faces labelled ceiling are left out, so the view looks into the room (a dollhouse view)
    instead of onto its ceiling."""
    vertices = np.asarray(vertices, np.float64)
    if labels is not None and len(faces):
        from recon_ros.core.classes import CLASS_IDS

        faces = np.asarray(faces)
        ceiling = np.asarray(labels)[faces] == CLASS_IDS["ceiling"]
        faces = faces[~ceiling.all(axis=1)]
    if len(vertices) == 0:
        return render_colors(
            vertices,
            np.zeros((0, 3), int),
            colors,
            intrinsics(width, height),
            np.eye(4),
            width,
            height,
        )
    T = overview_pose(vertices)
    return render_colors(vertices, faces, colors, intrinsics(width, height), T, width, height)


def save_png(path, image: np.ndarray) -> None:
    """Write an RGB image as PNG, atomically."""
    import io

    from PIL import Image

    from recon_ros.core.atomic_io import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
