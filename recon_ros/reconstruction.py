"""The reconstructor atlas_node, the offline replay and the demo run, built from atlas_node's
parameter values (``parameters.resolve``): the pipeline, the weights it needs (the parameters' or
the shipped ones) and a plain description of it for the log and the reports; and
``MappingPipeline``, the mapping both drive (frames in, counts, the map hand-over cadence, save
and load). ROS-free.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon_ros import parameters
from recon_ros.core.atomic_io import atomic_directory, remove_stale_temporaries
from recon_ros.core.reconstructor import (
    MAP_METADATA_FILE,
    AtlasReconstructor,
    ReconstructorConfig,
)
from recon_ros.io.ply import write_ply
from recon_ros.weights import (
    default_atlas_weights,
    default_depth_weights,
    default_refine_weights,
    default_semantic_weights,
    given_or_shipped,
)


def _weights_path(values: dict, key: str, shipped) -> Path | None:
    """The checkpoint a ``*_path`` parameter names, else ``shipped()`` (None: none ships)."""
    return given_or_shipped(values[key], shipped)


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
        weights = _weights_path(values, "weights_path", default_atlas_weights)
        reconstructor = AtlasReconstructor(weights, config)
        description = f"atlas pipeline, Atlas weights {weights}"
    else:
        weights = _weights_path(values, "depth_weights_path", default_depth_weights)
        if weights is None:
            warnings.append(
                "no depth network weights: only frames with sensor depth are mapped, without "
                "semantic labels (set depth_weights_path)"
            )
        semantic_weights = None
        if values["labels_from"] != "depth_network" and weights is not None:
            semantic_weights = _weights_path(
                values, "semantic_weights_path", default_semantic_weights
            )
            if semantic_weights is None:
                warnings.append(
                    "no semantic network weights ship: labels come from the depth network's "
                    "head (set semantic_weights_path)"
                )
        refine_weights = None
        if values["refinement"]:
            refine_weights = _weights_path(values, "refine_weights_path", default_refine_weights)
            if refine_weights is None:
                warnings.append(
                    "refinement is on but no 3D refinement weights ship: meshes show fusion "
                    "alone (set refine_weights_path)"
                )
        reconstructor = AtlasReconstructor(
            None,
            config,
            depth_model=weights,
            refine_model=refine_weights,
            refine_mode=values["refinement_mode"],
            semantic_model=semantic_weights,
        )
        labels = (
            f"the semantic network {semantic_weights}"
            + (" with the depth network's head" if values["labels_from"] == "combined" else "")
            if semantic_weights
            else "the depth network's head"
            if weights
            else "none"
        )
        description = (
            f"fusion pipeline, depth {config.depth_source}, depth network "
            f"{weights if weights else '(none)'}, labels from {labels}, 3D refinement "
            f"{refine_weights if refine_weights else 'off'}"
        )
        if reconstructor.semantic_metadata.get("trained") is False:
            warnings.append(f"UNTRAINED semantic network weights ({semantic_weights})")
        if reconstructor.refine_metadata.get("trained") is False:
            warnings.append(f"UNTRAINED 3D refinement weights ({refine_weights})")
    if reconstructor.trained is False:
        warnings.append(
            f"UNTRAINED weights ({weights}): the map is plumbing output, not a reconstruction"
        )
    return reconstructor, description, warnings


def integrate_frame(reconstructor: AtlasReconstructor, frame):
    """Offer a decoded ``frames.PosedFrame`` (with its depth, if any) to the reconstructor: the
    one call atlas_node and the replay make."""
    return reconstructor.integrate_view(
        frame.rgb,
        frame.camera,
        frame.T_world_cam,
        frame.stamp_ns,
        depth=frame.depth,
        depth_camera=frame.depth_camera,
        T_cam_depth=frame.T_cam_depth,
    )


class MappingPipeline:
    """What atlas_node and the replay both run, ROS-free: the reconstructor of the parameter
    ``values`` (weights and config), decoded frames offered one at a time and counted, the
    hand-over of the window to the map (running the 3D network of the atlas pipeline) at the
    ``cnn_period_s`` cadence, saving and loading. Thread-safe: a worker offers frames while a
    timer or a service calls ``update``, ``save``, ``load`` or ``reset``.

    The caller decodes messages into ``frames.PosedFrame`` (a camera object, integer nanosecond
    stamps) and counts what it drops before that; the pipeline counts the rest.
    """

    def __init__(self, values: dict):
        self.values = values
        self.reconstructor, self.description, self.warnings = build_reconstructor(values)
        self.cnn_period_ns = round(float(values["cnn_period_s"]) * 1e9)
        self._lock = threading.Lock()
        self._integrated = 0
        self._not_keyframes = 0
        self._cnn_updates = 0
        self._integrated_at_update = 0
        self._mapped = 0  # frames integrated into the map at the last completed hand-over
        self._last_update_ns: int | None = None

    def offer(self, frame):
        """Integrate ``frame`` (keyframe gating decides whether it is mapped) and count it.
        Returns the ``IntegrateResult``; raises ValueError for a frame the reconstructor refuses
        (the caller counts that drop)."""
        result = integrate_frame(self.reconstructor, frame)
        with self._lock:
            if result.integrated:
                self._integrated += 1
            else:
                self._not_keyframes += 1
        return result

    def update(self) -> bool:
        """Hand the window to the map when frames were integrated since the last hand-over;
        returns whether it ran."""
        with self._lock:
            if self._integrated == self._integrated_at_update:
                return False
            self._integrated_at_update = taken = self._integrated
        self.reconstructor.update()
        with self._lock:
            self._cnn_updates += 1
            self._mapped = max(self._mapped, taken)
        return True

    def frames_mapped(self) -> int:
        """Frames integrated into the map (not only the window) as of the last hand-over, load
        or reset: ``counts()[0]`` once the map has caught up."""
        with self._lock:
            return self._mapped

    def update_at(self, stamp_ns: int) -> bool:
        """``update`` on the data's own clock (the replay's bag time): once ``cnn_period_s`` has
        passed since the last one (the node uses a steady timer instead)."""
        if self._last_update_ns is None:
            self._last_update_ns = stamp_ns
        if stamp_ns - self._last_update_ns < self.cnn_period_ns:
            return False
        self._last_update_ns = stamp_ns
        return self.update()

    def counts(self) -> tuple[int, int, int]:
        """(frames integrated, frames that were not keyframes, map hand-overs)."""
        with self._lock:
            return self._integrated, self._not_keyframes, self._cnn_updates

    def save(self, output_directory: Path, name: str, color_by: str | None = None) -> SavedMap:
        """Everything integrated goes to the map, then ``save_map_outputs``."""
        self.update()
        color_by = color_by or self.values["mesh_color_mode"]
        return save_map_outputs(self.reconstructor, output_directory, name, color_by)

    def load(self, output_directory: Path, path: str) -> tuple[Path, int]:
        """Replace the map with a saved one (``map_folder_to_load`` finds it); returns (the map
        folder, chunks loaded). Frames integrated before are not handed over afterwards."""
        folder = map_folder_to_load(output_directory, path)
        chunks = self.reconstructor.load_map(folder)
        with self._lock:
            self._integrated_at_update = self._mapped = self._integrated
        return folder, chunks

    def reset(self) -> None:
        """Forget the map, the window and the keyframe history (the counts stay)."""
        self.reconstructor.reset()
        with self._lock:
            self._integrated_at_update = self._mapped = self._integrated


#: What save names may look like: a plain stem, no folders.
SAVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


@dataclass(frozen=True)
class SavedMap:
    """Where a save went: ``folder`` holds ``mesh.ply`` and ``map/`` (``AtlasReconstructor.load``
    reads it back)."""

    folder: Path
    mesh_path: Path
    map_path: Path
    triangles: int


def map_folder_to_load(output_directory: Path, path: str) -> Path:
    """The map folder (holding map.json) that ``path`` names: a folder ``save_map_outputs``
    wrote, its ``map/`` folder, or a save name; relative paths are taken in ``output_directory``.

    Raises:
        ValueError: an empty path.
        FileNotFoundError: no saved map there.
    """
    if not path.strip():
        raise ValueError("load_map: give the folder save_map wrote, or its name")
    folder = Path(output_directory).expanduser() / Path(path).expanduser()  # absolute stays so
    for candidate in (folder / "map", folder):
        if (candidate / MAP_METADATA_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"load_map: no saved map in {folder} (nor in {folder / 'map'})")


def save_map_outputs(
    reconstructor: AtlasReconstructor, output_directory: Path, name: str, color_by: str
) -> SavedMap:
    """Save the mesh and the map as one transaction: both are written into a fresh temporary
    folder that becomes ``output_directory/name`` in one rename, so a save that is killed leaves
    the previous save of that name whole (and a temporary folder the next save removes). An
    empty ``name`` gets a unique one from the time.

    Raises:
        ValueError: a name that is not a plain stem, or a symlink where the save would go.
        OSError: the file system refused.
    """
    output_directory = Path(output_directory)
    if name and (not SAVE_NAME.fullmatch(name) or ".." in name):
        raise ValueError(
            f"refused name '{name}': use a plain file stem (letters, digits, '_', '-', '.'); "
            f"files are always written into {output_directory}"
        )
    if not name:
        stem = time.strftime("atlas_%Y%m%d_%H%M%S")
        name, n = stem, 1
        while (output_directory / name).exists() or (output_directory / name).is_symlink():
            n += 1
            name = f"{stem}_{n}"
    remove_stale_temporaries(output_directory)
    mesh = reconstructor.mesh(color_by=color_by)
    folder = output_directory / name
    with atomic_directory(folder) as staging:
        write_ply(
            staging / "mesh.ply",
            mesh.vertices,
            mesh.faces,
            mesh.colors,
            label=np.asarray(mesh.labels, dtype=np.uint8),
            confidence=np.asarray(mesh.confidence, dtype=np.float32),
        )
        reconstructor.save(staging / "map")
    return SavedMap(folder, folder / "mesh.ply", folder / "map", len(mesh.faces))
