"""The labelled reference mesh a dataset folder stores (``mesh.ply``): the folder format, read by
evaluation without the scene engine that builds it (``recon_ros.scenes.mesh``). The file is a PLY
of ``recon_ros.io.ply``."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from recon_ros.core.classes import palette
from recon_ros.io.ply import read_ply, write_ply


@dataclass
class LabelledMesh:
    """Triangle mesh with per-vertex labels.

    Attributes:
        vertices: (V, 3) float32 world coordinates.
        faces: (F, 3) int32, counter-clockwise seen from free space.
        labels: (V,) uint8 class ids.
        instances: (V,) uint16 instance ids.
    """

    vertices: np.ndarray
    faces: np.ndarray
    labels: np.ndarray
    instances: np.ndarray

    def colors(self) -> np.ndarray:
        """Per-vertex class colours (V, 3) uint8."""
        return palette()[self.labels]

    def save(self, path: str | os.PathLike) -> None:
        """Write as binary PLY (``x y z``, the class palette as ``red green blue``, ``label``,
        ``instance`` per vertex), atomically; Open3D, MeshLab and trimesh read it."""
        vertices = np.asarray(self.vertices, dtype=np.float32)
        faces = np.asarray(self.faces, dtype=np.int64)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise ValueError(f"mesh.vertices: expected shape (V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"mesh.faces: expected shape (F, 3), got {faces.shape}")
        if len(self.labels) != len(vertices) or len(self.instances) != len(vertices):
            raise ValueError("mesh.labels, mesh.instances: need one value per vertex")
        labels = np.asarray(self.labels, dtype=np.uint8)
        write_ply(
            path,
            vertices,
            faces,
            palette()[labels],
            label=labels,
            instance=np.asarray(self.instances, dtype=np.uint16),
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> LabelledMesh:
        """Read a PLY written by ``save``."""
        arrays = read_ply(path)
        for name in ("label", "instance"):
            if name not in arrays:
                raise ValueError(f"path: {path} has no per-vertex '{name}'")
        return cls(
            arrays["vertices"].astype(np.float32),
            arrays.get("faces", np.zeros((0, 3), np.int64)).astype(np.int32),
            arrays["label"].astype(np.uint8),
            arrays["instance"].astype(np.uint16),
        )
