"""Training of the Atlas model (``recon-ros train atlas``) and the reconstruction evaluation of
every pipeline (``recon-ros evaluate atlas``), with what the other trainers share (``run_folder``:
the depth network's and the refiner's resumable runs). ROS-free.

Modules:

- ``scenes``: scene folders of the dataset layout as training sources (poses, intrinsics,
  ground-truth volumes with an in-memory cache).
- ``augment``: rotation about z and translation of a crop: the grid, the poses and the resampled
  ground truth.
- ``data``: the samples of each stage (frames for the backbone, crops with frames or cached
  features for the 3D network) and the resumable distributed sampler.
- ``feature_cache``: backbone feature maps of every frame stored once on disk (float16).
- ``heads``: the auxiliary 2D heads of the backbone stage.
- ``distributed``: torchrun / process-group helpers, synchronised batch norm.
- ``engine``: the generic training loop (resumable state, schedule, mixed precision, DDP,
  progress bar, metrics CSV/JSON and plots).
- ``atlas_train``: the stages and the command line.
- ``metrics``: Table 1 of the Atlas paper (2D depth, 3D TSDF and point-cloud metrics) and the
  semantic IoU, each with a reference implementation.
- ``tsdf_fusion``: TSDF fusion of depth maps (the upper-bound row, trimming of predictions).
- ``evaluation`` and ``atlas_evaluate``: full-scene evaluation through ``AtlasReconstructor`` and
  the command line.
- ``plots``: PNG plots (object API of matplotlib, written atomically).
- ``run_folder``: resumable run folders, the learning-rate schedule and class weights of the
  step-based trainers (``depth``, ``refine``).

The held-out check of the shipped weights replays a bag, so it is an app:
``recon_ros.apps.shipped_check``.
"""
