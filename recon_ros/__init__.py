"""recon_ros: live, labelled 3D reconstruction from posed RGB images (Atlas) for ROS 2.

The algorithm (``recon_ros.core``) has no ROS imports; the ROS 2 nodes convert messages at the edge.
In a colcon install this package also holds the generated interfaces ``recon_ros.msg`` and
``recon_ros.srv``.
"""

__version__ = "0.1.0"
