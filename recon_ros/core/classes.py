"""Semantic classes of recon_ros: the six object classes of the Everted U-Net scene generator plus
the room surfaces. Models store the class names they were trained with; configs may rename or
recolour them but must keep the count.
"""

from dataclasses import dataclass

import numpy as np

#: Label of voxels and pixels with no class (free space, outside the scene).
IGNORE_LABEL = 255


@dataclass(frozen=True)
class SemanticClass:
    name: str
    color: tuple[int, int, int]  # RGB, 0-255, for meshes and point clouds


DEFAULT_CLASSES: tuple[SemanticClass, ...] = (
    SemanticClass("floor", (152, 130, 105)),
    SemanticClass("wall", (174, 199, 232)),
    SemanticClass("ceiling", (220, 220, 220)),
    SemanticClass("table", (255, 152, 30)),
    SemanticClass("chair", (44, 160, 44)),
    SemanticClass("nightstand", (148, 103, 189)),
    SemanticClass("laptop", (23, 190, 207)),
    SemanticClass("bag", (214, 39, 40)),
    SemanticClass("human", (247, 182, 210)),
)

CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in DEFAULT_CLASSES)
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}


def palette(classes: tuple[SemanticClass, ...] = DEFAULT_CLASSES) -> np.ndarray:
    """Colour table of shape (256, 3) uint8: row ``i`` is the colour of class ``i``; unused rows
    (and ``IGNORE_LABEL``) are grey."""
    table = np.full((256, 3), 128, dtype=np.uint8)
    for i, c in enumerate(classes):
        table[i] = c.color
    return table
