"""Training samples of the three stages and the resumable distributed sampler.

Every sample is drawn from its own generator ``numpy.random.default_rng([seed, epoch, index])``,
so a sample depends on nothing but the seed, the epoch and its index: not on the number of
workers, the number of processes, nor on a resume.

- ``FrameDataset`` (stage ``backbone``): one frame per item, with its depth and labels at the
  feature resolution, colour jitter and horizontal flips.
- ``CropDataset`` (stages ``volume``, ``finetune``, ``end2end``): a random crop of a scene (see
  ``augment``), ``views`` random frames whose frustum holds part of it, and the Atlas targets.
  In ``"features"`` mode the frames' cached backbone features are back-projected here (no
  gradient flows into a frozen backbone), so DataLoader workers build the 3D input while the main
  process trains; in ``"images"`` mode the images and cameras go to ``AtlasModel.forward_train``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from recon_ros.core.atlas_model import feature_intrinsics, volume_input
from recon_ros.core.backbone import FEATURE_STRIDE
from recon_ros.core.backproject import backproject_features
from recon_ros.core.camera import PinholeCamera, image_to_tensor, resize_image_tensor
from recon_ros.core.model3d import DIMS_MULTIPLE
from recon_ros.training.augment import (
    CropGeometry,
    atlas_target,
    frame_visibility,
    make_crop,
    resample_ground_truth,
)
from recon_ros.training.feature_cache import load_scene_features
from recon_ros.training.scenes import GroundTruthArrays, TrainingScene, load_ground_truth


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of sample ``index`` of ``epoch``."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


@dataclass(frozen=True)
class PhotometricConfig:
    """Colour jitter of training images (each factor drawn uniformly in ``1 +- value``)."""

    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25
    gamma: float = 0.2


def photometric_jitter(
    image: torch.Tensor, rng: np.random.Generator, config: PhotometricConfig
) -> torch.Tensor:
    """Jitter (3, H, W) RGB in [0, 1]: gamma, brightness, contrast, saturation; clamped."""
    gamma = 1.0 + rng.uniform(-config.gamma, config.gamma)
    brightness = 1.0 + rng.uniform(-config.brightness, config.brightness)
    contrast = 1.0 + rng.uniform(-config.contrast, config.contrast)
    saturation = 1.0 + rng.uniform(-config.saturation, config.saturation)
    image = image.clamp(0, 1) ** gamma * brightness
    mean = image.mean()
    image = (image - mean) * contrast + mean
    grey = image.mean(dim=0, keepdim=True)
    image = (image - grey) * saturation + grey
    return image.clamp(0.0, 1.0)


def network_camera(scene: TrainingScene, image_size: tuple[int, int]) -> np.ndarray:
    """K (3, 3) of the scene's images resized to the network's ``image_size`` (width, height)."""
    camera = PinholeCamera.from_matrix(scene.K, scene.width, scene.height)
    return camera.resized(*image_size).K


class FrameDataset(Dataset):
    """Frames of ``scenes`` for the backbone stage.

    Item: ``image`` (3, H, W) float in [0, 1] at the network size, ``depth`` (H/4, W/4) float
    metres (0: invalid) and ``semantic`` (H/4, W/4) int64 (``IGNORE_LABEL``: none), both sampled
    at the centre pixel of each 4 x 4 block (the feature map's pixel centres).

    Args:
        frames_per_scene: use at most this many frames of each scene, evenly spaced (None: all).
        augment: colour jitter and horizontal flips (per-sample generator, see module doc).
    """

    def __init__(
        self,
        scenes: list[TrainingScene],
        image_size: tuple[int, int],
        seed: int = 0,
        augment: bool = True,
        frames_per_scene: int | None = None,
        photometric: PhotometricConfig | None = None,
    ) -> None:
        if not scenes:
            raise ValueError("scenes: need at least one scene")
        self.scenes = scenes
        self.image_size = tuple(int(s) for s in image_size)
        self.seed = int(seed)
        self.augment = augment
        self.photometric = photometric or PhotometricConfig()
        self.epoch = 0
        self.items: list[tuple[int, int]] = []
        for s, scene in enumerate(scenes):
            count = scene.num_frames
            if frames_per_scene is not None and frames_per_scene < count:
                chosen = np.unique(np.linspace(0, count - 1, frames_per_scene).round().astype(int))
            else:
                chosen = np.arange(count)
            self.items += [(s, int(i)) for i in chosen]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        scene_index, frame = self.items[index]
        scene = self.scenes[scene_index]
        width, height = self.image_size
        rgb = image_to_tensor(scene.rgb(frame))
        image = resize_image_tensor(rgb, width, height)
        depth = torch.from_numpy(scene.depth(frame))
        semantic = torch.from_numpy(scene.semantic(frame).astype(np.int64))
        # Targets at the feature pixel centres: image pixel (s i + (s - 1) / 2) of a stride-s map,
        # mapped through the stored-to-network scale.
        fw, fh = width // FEATURE_STRIDE, height // FEATURE_STRIDE
        u = ((np.arange(fw) + 0.5) * scene.width / fw).astype(int).clip(0, scene.width - 1)
        v = ((np.arange(fh) + 0.5) * scene.height / fh).astype(int).clip(0, scene.height - 1)
        depth = depth[v][:, u]
        semantic = semantic[v][:, u]
        if self.augment:
            rng = sample_rng(self.seed, self.epoch, index)
            image = photometric_jitter(image, rng, self.photometric)
            if rng.random() < 0.5:
                image, depth, semantic = image.flip(-1), depth.flip(-1), semantic.flip(-1)
        return {
            "image": image.contiguous(),
            "depth": depth.contiguous(),
            "semantic": semantic.contiguous(),
        }


def _feature_targets(scene, frame: int, width: int, height: int):
    """Depth (h, w) and labels (h, w) of a frame at the feature pixel centres of a network
    image of ``width`` x ``height``."""
    fw, fh = width // FEATURE_STRIDE, height // FEATURE_STRIDE
    u = ((np.arange(fw) + 0.5) * scene.width / fw).astype(int).clip(0, scene.width - 1)
    v = ((np.arange(fh) + 0.5) * scene.height / fh).astype(int).clip(0, scene.height - 1)
    depth = torch.from_numpy(scene.depth(frame))[v][:, u]
    semantic = torch.from_numpy(scene.semantic(frame).astype(np.int64))[v][:, u]
    return depth, semantic


def correspondences(
    depth_a: np.ndarray,
    K: np.ndarray,
    T_a: np.ndarray,
    T_b: np.ndarray,
    depth_b: np.ndarray,
    feature_size: tuple[int, int],
    rng: np.random.Generator,
    count: int = 384,
    tolerance: float = 0.03,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel correspondences between two frames of a scene, from ground-truth depth and poses.

    ``count`` random feature-map pixels of frame A with valid depth are lifted to 3D, projected
    into frame B and kept when B sees the same point (B's depth there within ``tolerance`` + 2 %
    of the point's depth).

    Args:
        depth_a, depth_b: (H, W) metres of the stored images; K: (3, 3) their intrinsics.
        T_a, T_b: (4, 4) ``T_world_cam``.
        feature_size: (w, h) of the feature maps (the network image / 4).

    Returns:
        grid_a, grid_b: (count, 2) float32 ``grid_sample`` coordinates (x, y in [-1, 1],
        ``align_corners=False``) of the matches in the two feature maps; valid: (count,) bool
        (False rows are padding).
    """
    fw, fh = feature_size
    height, width = depth_a.shape
    uf = rng.integers(0, fw, count)
    vf = rng.integers(0, fh, count)
    u = (uf + 0.5) * width / fw - 0.5
    v = (vf + 0.5) * height / fh - 0.5
    z = depth_a[
        np.clip(np.round(v).astype(int), 0, height - 1),
        np.clip(np.round(u).astype(int), 0, width - 1),
    ].astype(np.float64)
    y = (v - K[1, 2]) / K[1, 1] * z
    x = (u - K[0, 2] - K[0, 1] * y / np.maximum(z, 1e-9)) / K[0, 0] * z
    world = np.stack([x, y, z], 1) @ T_a[:3, :3].T + T_a[:3, 3]
    cam_b = (world - T_b[:3, 3]) @ T_b[:3, :3]
    zb = cam_b[:, 2]
    safe = np.where(zb > 1e-3, zb, 1.0)
    ub = (K[0, 0] * cam_b[:, 0] + K[0, 1] * cam_b[:, 1]) / safe + K[0, 2]
    vb = K[1, 1] * cam_b[:, 1] / safe + K[1, 2]
    inside = (z > 0) & (zb > 1e-3) & (ub >= -0.5) & (ub <= width - 0.5) & (vb >= -0.5)
    inside &= vb <= height - 0.5
    rows = np.clip(np.round(vb).astype(int), 0, height - 1)
    cols = np.clip(np.round(ub).astype(int), 0, width - 1)
    d = depth_b[rows, cols]
    seen = inside & (d > 0) & (np.abs(d - zb) < tolerance + 0.02 * zb)
    # Image pixel coordinates -> normalised feature-map coordinates (pixel areas map onto areas).
    grid_a = np.stack([(2 * uf + 1) / fw - 1, (2 * vf + 1) / fh - 1], 1)
    grid_b = np.stack([(2 * (ub + 0.5) / width) - 1, (2 * (vb + 0.5) / height) - 1], 1)
    return grid_a.astype(np.float32), grid_b.astype(np.float32), seen


class FramePairDataset(Dataset):
    """Pairs of frames of one scene for the backbone stage's descriptor loss: frame ``a`` and a
    frame ``gap`` frames away, with ``correspondences`` between their feature maps.

    Item: ``image`` (2, 3, H, W), ``depth`` and ``semantic`` (2, H/4, W/4) as in
    ``FrameDataset`` (no flips: they would break the correspondences), ``grid`` (2, P, 2) and
    ``valid`` (P,) bool.
    """

    def __init__(
        self,
        scenes: list[TrainingScene],
        image_size: tuple[int, int],
        seed: int = 0,
        augment: bool = True,
        frames_per_scene: int | None = None,
        gap: tuple[int, int] = (3, 25),
        points: int = 384,
        photometric: PhotometricConfig | None = None,
    ) -> None:
        self.frames = FrameDataset(scenes, image_size, seed, augment, frames_per_scene, photometric)
        self.gap = gap
        self.points = int(points)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.frames.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        data = self.frames
        scene_index, a = data.items[index]
        scene = data.scenes[scene_index]
        rng = sample_rng(data.seed + 17, self.epoch, index)
        step = int(rng.integers(self.gap[0], self.gap[1] + 1)) * (1 if rng.random() < 0.5 else -1)
        b = int(np.clip(a + step, 0, scene.num_frames - 1))
        if b == a:
            b = int(np.clip(a - step, 0, scene.num_frames - 1))
        width, height = data.image_size
        images, depths, labels = [], [], []
        for k, frame in enumerate((a, b)):
            image = resize_image_tensor(image_to_tensor(scene.rgb(frame)), width, height)
            if data.augment:
                image = photometric_jitter(
                    image, sample_rng(data.seed, self.epoch, 2 * index + k), data.photometric
                )
            depth, semantic = _feature_targets(scene, frame, width, height)
            images.append(image)
            depths.append(depth)
            labels.append(semantic)
        grid_a, grid_b, valid = correspondences(
            scene.depth(a),
            scene.K,
            scene.poses[a],
            scene.poses[b],
            scene.depth(b),
            (width // FEATURE_STRIDE, height // FEATURE_STRIDE),
            rng,
            self.points,
        )
        return {
            "image": torch.stack(images),
            "depth": torch.stack(depths),
            "semantic": torch.stack(labels),
            "grid": torch.from_numpy(np.stack([grid_a, grid_b])),
            "valid": torch.from_numpy(valid),
        }


@dataclass(frozen=True)
class CropConfig:
    """How crops are drawn.

    Attributes:
        dims: crop size in voxels (multiples of 8).
        views: frames per crop.
        rotate: random rotation about z by any angle.
        shift: the augmented frame moves by up to this many metres along each axis.
        band_probability: chance that the crop is centred near a surface (an observed voxel
            inside the truncation band) rather than near any observed voxel.
        jitter: the centre moves by up to this fraction of the crop size from that voxel.
        min_visible: a frame qualifies when this fraction of a 3x3x3 lattice over the crop lies
            in its image.
        min_frames: fewer qualifying frames: draw another crop.
        max_tries: crops drawn before giving up on a sample.
    """

    dims: tuple[int, int, int] = (64, 64, 48)
    views: int = 20
    rotate: bool = True
    shift: float = 1.0
    band_probability: float = 0.8
    jitter: float = 0.25
    min_visible: float = 0.1
    min_frames: int = 2
    max_tries: int = 30

    def __post_init__(self) -> None:
        dims = tuple(int(d) for d in self.dims)
        if len(dims) != 3 or any(d <= 0 or d % DIMS_MULTIPLE for d in dims):
            raise ValueError(f"crop dims: three positive multiples of {DIMS_MULTIPLE}, got {dims}")
        object.__setattr__(self, "dims", dims)
        if self.views < 1:
            raise ValueError(f"views: need at least one, got {self.views}")
        if not 0.0 <= self.band_probability <= 1.0:
            raise ValueError(f"band_probability: must be in [0, 1], got {self.band_probability}")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass
class _AnchorIndex:
    band: np.ndarray
    observed: np.ndarray


@dataclass
class CropSample:
    """A drawn crop: the scene index, the geometry, the chosen frames and the targets."""

    scene_index: int
    crop: CropGeometry
    frames: np.ndarray
    targets: dict[str, np.ndarray] = field(default_factory=dict)


class CropDataset(Dataset):
    """Crops with frames for the 3D network (see the module docstring).

    Item (``"features"`` mode): ``input`` (C + 1, X, Y, Z) float32, the 3D network's input.
    Item (``"images"`` mode): ``images`` (V, 3, H, W) float in [0, 1], ``K`` (V, 3, 3) at image
    resolution, ``T_world_cam`` (V, 4, 4) in the augmented frame, ``origin`` (3,).
    Both: ``tsdf`` (1, X, Y, Z) float32, ``observed`` (1, X, Y, Z) bool, ``semantic`` (X, Y, Z)
    int64, ``scene`` (int).

    Args:
        length: items per epoch (item ``i`` uses scene ``i % len(scenes)``).
        mode: ``"features"`` (needs ``cache_dir``) or ``"images"``.
        image_size: network image size (width, height).
        photometric: colour jitter of images (``"images"`` mode; None: none).
        max_depth: back-projection depth limit (``"features"`` mode), None: whole rays.
    """

    def __init__(
        self,
        scenes: list[TrainingScene],
        crop: CropConfig,
        length: int,
        seed: int = 0,
        mode: str = "features",
        cache_dir=None,
        image_size: tuple[int, int] = (384, 288),
        voxel_size: float = 0.04,
        photometric: PhotometricConfig | None = None,
        max_depth: float | None = None,
    ) -> None:
        if not scenes:
            raise ValueError("scenes: need at least one scene")
        if mode not in ("features", "images"):
            raise ValueError(f"mode: expected 'features' or 'images', got {mode!r}")
        if mode == "features" and cache_dir is None:
            raise ValueError("cache_dir: needed in 'features' mode")
        if length < 1:
            raise ValueError(f"length: need at least one item, got {length}")
        self.scenes = scenes
        self.crop = crop
        self.length = int(length)
        self.seed = int(seed)
        self.mode = mode
        self.cache_dir = cache_dir
        self.image_size = tuple(int(s) for s in image_size)
        self.voxel_size = float(voxel_size)
        self.photometric = photometric
        self.max_depth = max_depth
        self.epoch = 0
        self._anchors: dict[int, _AnchorIndex] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _anchor_index(self, scene_index: int, gt: GroundTruthArrays) -> _AnchorIndex:
        if scene_index not in self._anchors:
            observed = np.flatnonzero(gt.observed)
            band = np.flatnonzero(gt.observed & (np.abs(gt.tsdf) < 1.0))
            if observed.size == 0:
                raise ValueError(f"scene {self.scenes[scene_index].folder}: nothing observed")
            self._anchors[scene_index] = _AnchorIndex(band if band.size else observed, observed)
        return self._anchors[scene_index]

    def draw(self, index: int) -> CropSample:
        """The crop, frames and targets of item ``index`` (no features or images)."""
        scene_index = index % len(self.scenes)
        scene = self.scenes[scene_index]
        gt = load_ground_truth(scene.volume_file)
        anchors = self._anchor_index(scene_index, gt)
        rng = sample_rng(self.seed, self.epoch, index)
        config = self.crop
        extent = np.asarray(config.dims) * self.voxel_size
        for _ in range(config.max_tries):
            pool = anchors.band if rng.random() < config.band_probability else anchors.observed
            flat = int(pool[rng.integers(len(pool))])
            voxel = np.array(np.unravel_index(flat, gt.dims), dtype=np.float64)
            centre = gt.origin + (voxel + rng.uniform(-0.5, 0.5, 3)) * gt.voxel_size
            centre += rng.uniform(-config.jitter, config.jitter, 3) * extent
            angle = rng.uniform(0.0, 2.0 * np.pi) if config.rotate else 0.0
            shift = rng.uniform(-config.shift, config.shift, 3)
            crop = make_crop(centre, config.dims, self.voxel_size, angle, shift)
            score = frame_visibility(
                crop.corner_lattice_world(3), scene.poses, scene.K, scene.width, scene.height
            )
            candidates = np.flatnonzero(score >= config.min_visible)
            if len(candidates) >= config.min_frames:
                break
        else:
            raise ValueError(
                f"scene {scene.folder}: no crop seen by {config.min_frames} frames in "
                f"{config.max_tries} tries"
            )
        replace = len(candidates) < config.views
        frames = np.sort(rng.choice(candidates, size=config.views, replace=replace))
        truth = resample_ground_truth(gt, crop)
        targets = atlas_target(truth["tsdf"], truth["observed"], truth["semantic"])
        return CropSample(scene_index, crop, frames, targets)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.draw(index)
        scene = self.scenes[sample.scene_index]
        crop = sample.crop
        poses = torch.from_numpy(crop.poses(scene.poses[sample.frames])).float()
        K_net = network_camera(scene, self.image_size)
        item = {
            "tsdf": torch.from_numpy(sample.targets["tsdf"])[None],
            "observed": torch.from_numpy(sample.targets["observed"])[None],
            "semantic": torch.from_numpy(sample.targets["semantic"].astype(np.int64)),
            "scene": torch.tensor(sample.scene_index),
        }
        if self.mode == "features":
            features = load_scene_features(self.cache_dir, scene)
            maps = torch.from_numpy(np.stack([features[i] for i in sample.frames])).float()
            K_features = feature_intrinsics(torch.from_numpy(K_net).float(), FEATURE_STRIDE)
            with torch.no_grad():
                feature_sum, count = backproject_features(
                    maps,
                    K_features.expand(len(sample.frames), 3, 3).contiguous(),
                    poses,
                    torch.from_numpy(crop.origin).float(),
                    crop.voxel_size,
                    crop.dims,
                    self.max_depth,
                )
                item["input"] = volume_input(feature_sum[None], count[None])[0]
        else:
            width, height = self.image_size
            rng = sample_rng(self.seed + 1, self.epoch, index)
            images = []
            for i in sample.frames:
                image = resize_image_tensor(image_to_tensor(scene.rgb(int(i))), width, height)
                if self.photometric is not None:
                    image = photometric_jitter(image, rng, self.photometric)
                images.append(image)
            item["images"] = torch.stack(images)
            item["K"] = torch.from_numpy(K_net).float().expand(len(sample.frames), 3, 3).clone()
            item["T_world_cam"] = poses
            item["origin"] = torch.from_numpy(crop.origin).float()
        return item


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` that can start part-way through an epoch (``start_index`` items
    into this rank's share), so a resumed run continues with exactly the samples it would have
    seen. Works with one process too (``num_replicas=1, rank=0``)."""

    def __init__(self, dataset, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True):
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
        )
        self.start_index = 0

    def set_start(self, start_index: int) -> None:
        self.start_index = int(start_index)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start_index :])

    def __len__(self) -> int:
        return max(0, self.num_samples - self.start_index)


def steps_per_epoch(dataset_length: int, world_size: int, batch_size: int) -> int:
    """Optimiser steps in one epoch (incomplete last batches are dropped)."""
    per_rank = dataset_length // world_size
    steps = per_rank // batch_size
    if steps < 1:
        raise ValueError(
            f"dataset of {dataset_length} items is too small for {world_size} processes x "
            f"batch {batch_size}"
        )
    return steps


def stack_batch(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Default collation (stack each key)."""
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
