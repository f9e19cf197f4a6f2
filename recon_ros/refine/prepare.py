"""Training pairs of the 3D refinement network: for each generated scene, the map the fusion
pipeline builds from the depth network's own stereo predictions (what the network will be asked
to correct) beside the ground truth on the same voxel lattice (TSDF fusion of the rendered depth
with the sensor path's truncation, and the rendered labels' votes).

One compressed ``.npz`` per scene, written atomically, so preparation resumes where it stopped.
"""

from __future__ import annotations

import io
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from recon_ros.core.atomic_io import atomic_write

PAIR_FORMAT = "recon_ros.refine_pair"
#: How far the pairs' boxes reach beyond the surfaces the ground-truth depth sees (metres).
CONTEXT_MARGIN_M = 0.6


def prepare_scene(
    folder: Path,
    depth_model,
    config,
    out_path: Path,
    update_every: int = 8,
) -> dict:
    """Build and write one scene's pair (module docstring). Returns a summary."""
    from recon_ros.core.reconstructor import AtlasReconstructor
    from recon_ros.training.evaluation import (
        frame_subset,
        fuse_frames,
        grid_from_depth,
        load_frames,
        open_sequence,
    )

    started = time.monotonic()
    sequence, _ = open_sequence(folder)
    indices = frame_subset(len(sequence), None)
    frames = load_frames(sequence, indices)
    reconstructor = AtlasReconstructor(None, replace(config, depth_source="mvs"), depth_model)
    voxel_size = reconstructor.voxel_size
    num_classes = len(reconstructor.class_names)
    stamps = sequence.stamps_ns
    integrated = 0
    for i in indices:
        frame = sequence[i]
        result = reconstructor.integrate(frame.rgb, frame.K, frame.T_world_cam, stamps[i] * 1e-9)
        integrated += int(result.integrated)
        if result.integrated and integrated % update_every == 0:
            reconstructor.update()
    reconstructor.update(force=True)
    # The box reaches well beyond the scene's surfaces: the band the stereo fusion leaves behind
    # walls is context the network sees at run time too, so it must see it in training (a box
    # cut at the walls taught it that no such band exists, and it erased walls in full maps).
    origin, dims = grid_from_depth(frames, voxel_size, margin=CONTEXT_MARGIN_M)
    truth = fuse_frames(frames, origin, voxel_size, dims, 3.0 * voxel_size, num_classes=num_classes)
    origin_index = np.round(np.asarray(origin) / voxel_size).astype(np.int64)
    fused = reconstructor.map.read_region(origin_index, dims)
    labels = truth.get("labels")
    arrays = {
        "format": np.array(PAIR_FORMAT),
        "origin_index": origin_index,
        "voxel_size": np.array(voxel_size),
        "class_names": np.array(list(reconstructor.class_names)),
        "fused_tsdf": fused["tsdf"].astype(np.float16),
        "fused_weight": fused["weight"].astype(np.uint16),
        "fused_label": fused["label"].astype(np.uint8),
        "fused_confidence": fused["confidence"].astype(np.float16),
        "gt_tsdf": truth["tsdf"].astype(np.float16),
        "gt_observed": truth["observed"],
        "gt_label": (labels if labels is not None else np.full(dims, 255, np.uint8)),
    }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write(out_path, lambda f: f.write(buffer.getvalue()))
    return {
        "scene": folder.name,
        "keyframes": integrated,
        "dims": list(dims),
        "seconds": time.monotonic() - started,
    }


def prepare_scenes(
    folders: list[Path],
    out_dir: Path,
    depth_weights: Path,
    config,
    minutes: float = 0.0,
    threads: int = 2,
) -> list[Path]:
    """Prepare every scene of ``folders`` not yet in ``out_dir``; stops cleanly after
    ``minutes`` (0: no limit). Returns the pair files present."""
    from recon_ros.core.depth_checkpoint import load_depth_net

    torch.set_num_threads(max(1, threads))
    out_dir.mkdir(parents=True, exist_ok=True)
    depth_model, _ = load_depth_net(depth_weights, "cpu")
    started = time.monotonic()
    for n, folder in enumerate(folders):
        path = out_dir / f"{folder.parent.name}_{folder.name}.npz"
        if path.is_file():
            continue
        if minutes and (time.monotonic() - started) / 60.0 >= minutes:
            print(f"time box of {minutes} min reached: {n} of {len(folders)} scenes", flush=True)
            break
        try:
            summary = prepare_scene(folder, depth_model, config, path)
        except ValueError as error:  # a scene without usable depth: say so, go on
            print(f"skipped {folder}: {error}", flush=True)
            continue
        print(
            f"[{n + 1}/{len(folders)}] {summary['scene']}: {summary['keyframes']} keyframes, "
            f"grid {summary['dims']}, {summary['seconds']:.1f} s",
            flush=True,
        )
    return sorted(out_dir.glob("*.npz"))
