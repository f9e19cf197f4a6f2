"""The reconstructor atlas_node, the offline replay and the demo run, built from atlas_node's
parameter values (``parameters.resolve``): the pipeline, the weights it needs (the parameters' or
the shipped ones) and a plain description of it for the log and the reports. ROS-free.
"""

from __future__ import annotations

from pathlib import Path

from recon_ros import parameters
from recon_ros.core.reconstructor import AtlasReconstructor, ReconstructorConfig
from recon_ros.weights import default_atlas_weights, default_depth_weights


def build_reconstructor(values: dict) -> tuple[AtlasReconstructor, str, list[str]]:
    """The reconstructor of resolved parameter ``values``.

    Returns:
        (reconstructor, description of the weights in use, warnings for the operator: untrained
        weights, or an RGB-only setup without a depth network).

    Raises:
        ValueError / FileNotFoundError: unusable settings or weights.
    """
    config = ReconstructorConfig.from_dict(parameters.core_config_dict(values))
    warnings: list[str] = []
    if config.pipeline == "atlas":
        weights = (
            Path(values["weights_path"]).expanduser()
            if values["weights_path"]
            else default_atlas_weights()
        )
        reconstructor = AtlasReconstructor(weights, config)
        description = f"atlas pipeline, Atlas weights {weights}"
    else:
        weights = (
            Path(values["depth_weights_path"]).expanduser()
            if values["depth_weights_path"]
            else default_depth_weights()
        )
        if weights is None:
            warnings.append(
                "no depth network weights: only frames with sensor depth are mapped, without "
                "semantic labels (set depth_weights_path)"
            )
        reconstructor = AtlasReconstructor(None, config, depth_model=weights)
        description = (
            f"fusion pipeline, depth {config.depth_source}, depth network "
            f"{weights if weights else '(none)'}"
        )
    if reconstructor.trained is False:
        warnings.append(
            f"UNTRAINED weights ({weights}): the map is plumbing output, not a reconstruction"
        )
    return reconstructor, description, warnings


def integrate_frame(reconstructor: AtlasReconstructor, frame):
    """Offer a decoded ``frames.PosedFrame`` (with its depth, if any) to the reconstructor: the
    one call atlas_node and the replay make."""
    return reconstructor.integrate(
        frame.rgb,
        frame.camera.K,
        frame.T_world_cam,
        frame.stamp_ns * 1e-9,
        depth=frame.depth,
        K_depth=frame.depth_camera.K if frame.depth_camera else None,
        T_cam_depth=frame.T_cam_depth,
    )
