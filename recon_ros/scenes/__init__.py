"""Synthetic indoor scenes: the generator of the Everted U-Net paper (Mymlikov et al., section
3.1), grown to serve recon_ros's models and tests. Everything runs on the CPU and is deterministic
by seed.

Modules (import them directly; this package imports nothing so that light users stay light):

- ``geometry``: analytic primitives (box, cylinder, sphere, capsule), exact signed distances,
  tessellation, floor-plane collision boxes.
- ``objects``: procedural tables, chairs, nightstands, laptops, bags and people with variants.
- ``room``: floor, walls and ceiling as slabs, doors, windows, passages, wall fixtures.
- ``placement``: the paper's placement (random pose, bounding-box checks, N retries, hiding,
  children on parents).
- ``appearance``: solid textures, material families, lights.
- ``scene``: ``generate_scene(seed, config) -> Scene``, seeds and random streams.
- ``cameras``: intrinsics, look-at, smooth walks, fixed rigs.
- ``render``: ``Renderer(scene).render(K, T_world_cam, w, h)`` -> RGB, depth, labels (open3d).
- ``volumes``: ``compute_ground_truth(scene, grid)``: TSDF, occupancy, labels, observed mask;
  ``paper_volumes`` (80 x 96 x 64 layout).
- ``mesh``: ``reference_mesh(scene)`` and labelled PLY I/O.
- ``pipeline``: ``generate_scene_folder(folder, seed, GenerationConfig)``.
- ``cli``: the ``generate`` subcommand (``add_parser``).

The folder layout and loaders live in ``recon_ros.datasets``.
"""
