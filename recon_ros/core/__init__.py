"""The ROS-free reconstruction core: camera, back-projection, rolling volume, models, meshing.

Nothing under ``recon_ros.core`` imports rclpy or ROS messages; the nodes convert at the edge.

Modules (one operation each):

- ``camera``: pinhole intrinsics, resizing, image checks; ``geometry``: rigid poses, quaternions;
  ``poses``: the numpy ``invert_pose`` and ``look_at_pose`` every part shares.
- ``backbone``: 2D CNN, images -> stride-4 features; ``backproject``: features -> voxel sums and
  counts (Atlas eq. 1-4) with its loop reference; ``volume``: the rolling running-average window;
  ``window_policy``: where the window goes.
- ``model3d``: the Atlas 3D encoder-decoder with coarse-to-fine clamping; ``atlas_model``: both
  networks plus metadata; ``losses``: Atlas training losses; ``checkpoint``: weights-only
  checkpoints; ``batchnorm_calibration``: BatchNorm statistics for untrained models.
- ``global_map``: sparse chunked map of predictions; ``meshing``: masked marching cubes, vertex
  attributes, semantic point cloud.
- ``reconstructor``: ``AtlasReconstructor``, the API used by the ROS node, replay and scripts;
  ``keyframes``, ``timing``, ``device``, ``voxel_grid``, ``atomic_io``: its helpers.
"""
