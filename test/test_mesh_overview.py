"""The overview render leaves ceiling faces out when labels are given (a dollhouse view)."""

import numpy as np

from recon_ros.core.classes import CLASS_IDS
from recon_ros.io.mesh_images import render_overview


def test_ceiling_faces_leave_the_overview():
    # a floor square at z = 0 and a ceiling square right above it at z = 2.5
    square = np.array([[0, 0, 0], [2, 0, 0], [2, 2, 0], [0, 2, 0]], dtype=float)
    vertices = np.concatenate([square, square + np.array([0.0, 0.0, 2.5])])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    colors = np.zeros((8, 3), np.uint8)
    colors[:4] = (200, 0, 0)  # floor red
    colors[4:] = (0, 0, 200)  # ceiling blue
    labels = np.array([CLASS_IDS["floor"]] * 4 + [CLASS_IDS["ceiling"]] * 4, np.uint8)
    with_ceiling = render_overview(vertices, faces, colors, 160, 120)
    dollhouse = render_overview(vertices, faces, colors, 160, 120, labels=labels)

    def pixels(image, channel):  # shaded pixels of one pure colour (the background is white)
        other = image[..., 2 - channel]
        return int(((image[..., channel] > 60) & (other < 40)).sum())

    assert pixels(with_ceiling, 2) > 100  # seen from above, the ceiling hides the floor
    assert pixels(dollhouse, 2) == 0 and pixels(dollhouse, 0) > 100
