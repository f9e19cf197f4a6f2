"""The one triangle mesh type (numpy only, so the ROS message conversions and every other part
can use it without loading marching cubes)."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Mesh:
    """Triangle mesh in world metres.

    Attributes:
        vertices: (N, 3) float32.
        faces: (M, 3) int32 indices into ``vertices``.
        colors: (N, 3) uint8 RGB vertex colours.
        labels: (N,) uint8 semantic class per vertex (``IGNORE_LABEL`` when unknown).
        confidence: (N,) float32 in [0, 1].
        rgb: (N, 3) uint8 image colour per vertex (``colors`` may be the class colour instead).
    """

    vertices: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    faces: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.int32))
    colors: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.uint8))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))
    rgb: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.uint8))

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def num_faces(self) -> int:
        return len(self.faces)
