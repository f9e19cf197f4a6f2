"""Frame sufficiency: do the recent frames see the scene well enough to reconstruct it?

After "Pixel-by-pixel estimation of the possibility of 3D scene reconstruction from multiple
images": for a reference frame and ``m`` other frames, every reference pixel gets a class, the
number of the ``m`` frames that also see the 3D point under it (its conjugate pairs).

- ``labels``: the geometric labels from depth and poses (training targets, or a direct answer
  when depth exists), vectorised plus a slow reference;
- ``linknet``: the three-block LinkNet (~3 M parameters) predicting the classes from the stacked
  RGB images alone;
- ``overlap``: frustum overlap between posed cameras and the partner choice;
- ``dataset``: samples from posed RGB-D sequences (``frames`` describes the sequence interface),
  cached as npz;
- ``train``, ``evaluate``: ``recon-ros train sufficiency`` / ``recon-ros evaluate sufficiency``;
- ``estimator``: ``SufficiencyEstimator``, what the ROS node calls;
- ``synthetic``: a tiny ray-cast scene for tests and smoke runs.

ROS-free: nothing here imports rclpy.
"""

from recon_ros.sufficiency.estimator import SufficiencyEstimator, SufficiencyResult
from recon_ros.sufficiency.labels import (
    IGNORE_LABEL,
    conjugate_pair_labels,
    conjugate_pair_labels_reference,
    conjugate_pair_visibility,
)
from recon_ros.sufficiency.linknet import LinkNet, count_parameters

__all__ = [
    "IGNORE_LABEL",
    "LinkNet",
    "SufficiencyEstimator",
    "SufficiencyResult",
    "conjugate_pair_labels",
    "conjugate_pair_labels_reference",
    "conjugate_pair_visibility",
    "count_parameters",
]
