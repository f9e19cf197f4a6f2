"""Backbone feature maps of every frame, computed once and stored on disk (float16), so the 3D
network trains on many frames per crop at no 2D cost while the backbone is frozen.

Layout of a cache folder::

    cache/meta.json                     backbone checksum, network image size, channels
    cache/<scene>-<hash>.npy            (N, C, h, w) float16, frame order of the scene

``<hash>`` is taken from the scene folder's absolute path, so two datasets with the same scene
names do not collide. A cache made with another backbone or image size is refused.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.camera import image_to_tensor, resize_image_tensor
from recon_ros.training.scenes import TrainingScene

CACHE_FORMAT = "recon_ros.atlas_feature_cache"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_file(cache_dir: str | os.PathLike, scene: TrainingScene) -> Path:
    """Path of a scene's feature array in ``cache_dir``."""
    key = hashlib.sha1(str(Path(scene.folder).resolve()).encode()).hexdigest()[:10]
    return Path(cache_dir) / f"{scene.name}-{key}.npy"


def _check_meta(cache_dir: Path, meta: dict) -> None:
    path = cache_dir / "meta.json"
    if path.is_file():
        existing = json.loads(path.read_text())
        if existing != meta:
            raise ValueError(
                f"feature cache: {cache_dir} was made with {existing}, this run needs {meta}; "
                "use another --cache-dir or delete it"
            )
    else:
        text = json.dumps(meta, indent=1).encode()
        atomic_write(path, lambda f: f.write(text))


@torch.inference_mode()
def build_feature_cache(
    scenes: list[TrainingScene],
    backbone: torch.nn.Module,
    cache_dir: str | os.PathLike,
    image_size: tuple[int, int],
    backbone_id: str,
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    progress: bool = True,
) -> Path:
    """Compute and store the features of every frame of ``scenes`` that are not cached yet.

    Args:
        backbone: ``FeatureBackbone2D`` (eval mode is set here).
        image_size: (width, height) the network sees; stored images are resized to it.
        backbone_id: identifies the weights (e.g. the checkpoint's SHA-256); stored in meta.json.

    Returns:
        ``cache_dir``.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    width, height = image_size
    channels = int(backbone.out_channels)
    meta = {
        "format": CACHE_FORMAT,
        "backbone": backbone_id,
        "image_size": [int(width), int(height)],
        "channels": channels,
        "dtype": "float16",
    }
    _check_meta(cache_dir, meta)
    backbone = backbone.to(device).eval()
    todo = [s for s in scenes if not cache_file(cache_dir, s).is_file()]
    bar = tqdm(
        total=sum(s.num_frames for s in todo),
        desc="feature cache",
        unit="frame",
        disable=not progress,
    )
    for scene in todo:
        maps = []
        for start in range(0, scene.num_frames, batch_size):
            indices = range(start, min(scene.num_frames, start + batch_size))
            images = torch.stack([image_to_tensor(scene.rgb(i)) for i in indices]).to(device)
            images = resize_image_tensor(images, width, height)
            maps.append(backbone(images).to(torch.float16).cpu().numpy())
            bar.update(len(indices))
        array = np.concatenate(maps)

        def write(file, array=array):
            buffer = io.BytesIO()
            np.save(buffer, array, allow_pickle=False)
            file.write(buffer.getvalue())

        atomic_write(cache_file(cache_dir, scene), write)
    bar.close()
    return cache_dir


def load_scene_features(cache_dir: str | os.PathLike, scene: TrainingScene) -> np.ndarray:
    """(N, C, h, w) float16 memory map of a scene's cached features.

    Raises:
        ValueError: the scene is not cached, or its frame count differs from the scene's.
    """
    path = cache_file(cache_dir, scene)
    if not path.is_file():
        raise ValueError(f"feature cache: no features of {scene.folder} in {cache_dir}")
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.ndim != 4 or array.shape[0] != scene.num_frames:
        raise ValueError(
            f"feature cache: {path} holds {array.shape}, expected {scene.num_frames} frames"
        )
    return array
