"""``recon-ros train atlas``: training of the Atlas model on generated scenes, in stages.

Stages (each resumable, each in its own folder ``OUT/<stage>``):

``backbone``
    The 2D backbone with auxiliary heads (per-pixel semantic cross-entropy and log-depth L1,
    ``heads``) on single frames: cheap 2D training. Leaves ``backbone.pt``.
``volume``
    The backbone frozen; its features of every frame cached on disk once (``feature_cache``);
    the 3D network trained on random crops with ``--views`` frames that see them, rotation about z
    and translation augmentation, the multi-scale log-L1 TSDF loss on observed voxels plus fully
    unobserved columns with the coarse-to-fine clamp, and cross-entropy on the semantic head
    (``core.losses``). Leaves ``atlas.pt`` (a ``core.checkpoint`` file: backbone + 3D network).
``finetune``
    End to end (images -> backbone -> back-projection -> 3D network), from ``atlas.pt`` of the
    volume stage, with a small learning rate. Leaves ``atlas.pt``.
``end2end``
    The paper's recipe: end to end from random weights (GPU scale: 160x160x64 crops, 50 frames).

Recipes: a CPU (few cores, hours), one GPU and a cluster are in recon_ros/weights/atlas_default.md.
Several GPUs: ``torchrun --standalone --nproc_per_node N -m recon_ros.apps.cli train atlas ...``.
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.core.atomic_io import atomic_write
from recon_ros.core.checkpoint import load_atlas_model, save_checkpoint
from recon_ros.core.classes import IGNORE_LABEL
from recon_ros.core.confusion import confusion_matrix, mean_iou
from recon_ros.core.losses import (
    downsample_tsdf_target,
    log_transform,
    multiscale_tsdf_loss,
    unobserved_column_mask,
)
from recon_ros.training.data import (
    CropConfig,
    CropDataset,
    FrameDataset,
    FramePairDataset,
    PhotometricConfig,
)
from recon_ros.training.engine import EngineConfig, Stage, run_stage
from recon_ros.training.feature_cache import build_feature_cache, file_sha256
from recon_ros.training.heads import (
    BackboneWithHeads,
    descriptor_nce,
    log_depth_l1,
    weighted_cross_entropy,
)
from recon_ros.training.scenes import (
    balanced_class_weights,
    class_frequencies,
    load_training_scenes,
)

BACKBONE_FORMAT = "recon_ros.atlas_backbone"
STAGES = ("backbone", "volume", "finetune", "end2end")


#: Atlas's output scale of the TSDF heads ("label smoothing", see ``core.model3d``).
ATLAS_TSDF_SCALE = 1.05
#: Config fields the 2D backbone depends on (a backbone fits any config that shares them).
BACKBONE_FIELDS = (
    "feature_channels",
    "backbone_widths",
    "fpn_channels",
    "merge_channels",
    "image_size",
)


def model_config_for(
    size: str, image_size: tuple[int, int] | None = None, tsdf_scale: float = ATLAS_TSDF_SCALE
) -> AtlasModelConfig:
    """``"default"`` -> ``AtlasModelConfig()``, ``"small"`` -> ``AtlasModelConfig.small()``,
    with the network ``image_size`` (width, height) when given and the heads' ``tsdf_scale``."""
    overrides = {"tsdf_scale": float(tsdf_scale)}
    if image_size is not None:
        overrides["image_size"] = tuple(image_size)
    if size == "default":
        return AtlasModelConfig(**overrides)
    if size == "small":
        return AtlasModelConfig.small(**overrides)
    raise ValueError(f"model size: expected 'default' or 'small', got {size!r}")


def confusion(prediction: torch.Tensor, labels: torch.Tensor, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = label, columns = prediction, over labels != IGNORE_LABEL."""
    return confusion_matrix(prediction.cpu(), labels.cpu(), num_classes, IGNORE_LABEL).numpy()


def band_balanced_tsdf_loss(
    predictions: list[torch.Tensor],
    clamp_masks: list[torch.Tensor],
    target: torch.Tensor,
    observed: torch.Tensor,
    band_share: float = 0.5,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``core.losses.multiscale_tsdf_loss`` with the supervised voxels of each scale split in
    two: the truncation band (``|t*| < 1``) and the rest (free space, deep inside solids, the
    all-unobserved columns); the scale's loss is ``band_share`` x the band's mean log-L1 plus
    the rest's share of the rest's mean (either mean alone when the other set is empty).

    With the plain mean, band voxels are a tenth of the supervised ones: early in training the
    network settles on "empty everywhere", which costs little, and leaves it slowly. Balancing
    makes surfaces half of the objective from the first step. Same voxels, same clamp, same
    transform as the core loss; only the weighting differs.

    Args:
        predictions, clamp_masks: per scale, coarse to fine (``Atlas3DOutput``).
        target: (B, 1, X, Y, Z); observed: (B, 1, X, Y, Z) bool.

    Returns:
        The sum over scales and the per-scale losses.
    """
    if not 0.0 <= band_share <= 1.0:
        raise ValueError(f"band_share: must be in [0, 1], got {band_share}")
    per_scale = []
    for prediction, clamp_mask in zip(predictions, clamp_masks, strict=True):
        factor = target.shape[-1] // prediction.shape[-1]
        scaled_target, scaled_observed = downsample_tsdf_target(target, observed, factor)
        supervised = (scaled_observed | unobserved_column_mask(scaled_observed)) & ~clamp_mask
        error = (log_transform(prediction) - log_transform(scaled_target)).abs()
        band = supervised & (scaled_target.abs() < 1.0)
        rest = supervised & ~band
        n_band, n_rest = band.sum(), rest.sum()
        if int(n_band) == 0 and int(n_rest) == 0:
            per_scale.append(prediction.sum() * 0.0)
            continue
        band_mean = (error * band).sum() / n_band.clamp(min=1)
        rest_mean = (error * rest).sum() / n_rest.clamp(min=1)
        if int(n_band) == 0:
            per_scale.append(rest_mean)
        elif int(n_rest) == 0:
            per_scale.append(band_mean)
        else:
            per_scale.append(band_share * band_mean + (1.0 - band_share) * rest_mean)
    return sum(per_scale), per_scale


def atlas_training_loss(
    tsdf: list[torch.Tensor],
    clamp_masks: list[torch.Tensor],
    semantic_logits: torch.Tensor | None,
    batch: dict[str, torch.Tensor],
    semantic_weight: float,
    class_weights: torch.Tensor | None,
    band_share: float | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Atlas loss (``core.losses.multiscale_tsdf_loss``, or ``band_balanced_tsdf_loss`` with
    ``band_share``) plus ``semantic_weight`` x the (optionally class-weighted) cross-entropy of
    the semantic head. Computed in float32."""
    predictions = [t.float() for t in tsdf]
    if band_share is None:
        total, per_scale = multiscale_tsdf_loss(
            predictions, clamp_masks, batch["tsdf"].float(), batch["observed"]
        )
    else:
        total, per_scale = band_balanced_tsdf_loss(
            predictions, clamp_masks, batch["tsdf"].float(), batch["observed"], band_share
        )
    parts = {f"tsdf_scale{i}": loss.detach() for i, loss in enumerate(per_scale)}
    parts["tsdf"] = total.detach()
    # Share of full-resolution voxels clamped by the coarser scales (1.0: nothing learns there).
    parts["clamped_fine"] = clamp_masks[-1].float().mean().detach()
    if semantic_logits is not None and semantic_weight > 0:
        semantic = weighted_cross_entropy(semantic_logits.float(), batch["semantic"], class_weights)
        parts["semantic"] = semantic.detach()
        total = total + semantic_weight * semantic
    parts["loss"] = total.detach()
    return total, parts


class AtlasStageBase(Stage):
    """Shared pieces: scenes, class weights, the clamp warm-up, the validation of crops."""

    def begin_step(self, model: nn.Module, step: int) -> None:
        """Clamp warm-up: for the first ``--clamp-warmup-steps`` steps the 3D network clamps
        nothing (its threshold is set above any output), so every scale learns from every
        supervised voxel while the coarse heads are still poor; then the model's own threshold
        (Atlas's 0.99) gates the finer scales. Validation always uses the model's threshold."""
        net3d = _net3d(model)
        if net3d is None:
            return
        warming = step < getattr(self.args, "clamp_warmup_steps", 0)
        net3d.clamp_threshold = NO_CLAMP if warming else self.model_config.clamp_threshold

    def validate_mode(self, model: nn.Module) -> None:
        net3d = _net3d(model)
        if net3d is not None:
            net3d.clamp_threshold = self.model_config.clamp_threshold

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.model_config = model_config_for(args.model_size, args.image_size, args.tsdf_scale)
        self.train_scenes = load_training_scenes(args.train_data, self.model_config.voxel_size)
        self.val_scenes = (
            load_training_scenes(args.val_data, self.model_config.voxel_size)
            if args.val_data
            else []
        )
        self.class_weights: torch.Tensor | None = None
        if args.class_balance > 0:
            frequencies = class_frequencies(self.train_scenes, self.model_config.num_classes)
            weights = balanced_class_weights(frequencies, args.class_balance)
            self.class_weights = torch.tensor(weights, dtype=torch.float32)

    def describe(self) -> dict:
        return {
            "model_config": self.model_config.to_dict(),
            "train_scenes": [str(s.folder) for s in self.train_scenes],
            "train_seeds": [s.seed for s in self.train_scenes],
            "val_scenes": [str(s.folder) for s in self.val_scenes],
            "val_seeds": [s.seed for s in self.val_scenes],
            "class_weights": None
            if self.class_weights is None
            else [round(float(w), 4) for w in self.class_weights],
            "command": "recon-ros " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        }


#: A clamp threshold above every output (the heads give at most ``tsdf_scale`` <= 2).
NO_CLAMP = 3.0


def _net3d(model: nn.Module):
    """The ``AtlasNet3D`` of a stage's model (the 3D network itself or an ``AtlasModel``)."""
    if isinstance(model, AtlasModel):
        return model.net3d
    return model if hasattr(model, "clamp_threshold") else None


def _crop_config(args: argparse.Namespace) -> CropConfig:
    return CropConfig(dims=tuple(args.crop), views=args.views, rotate=not args.no_rotate)


class BackboneStage(AtlasStageBase):
    """Stage ``backbone`` (module docstring)."""

    name = "backbone"

    def build_model(self) -> nn.Module:
        backbone = AtlasModel(self.model_config).backbone
        model = BackboneWithHeads(backbone, self.model_config.num_classes)
        if self.args.init:
            # Continue from an earlier backbone.pt (backbone and heads).
            payload = torch.load(self.args.init, map_location="cpu", weights_only=True)
            if not isinstance(payload, dict) or payload.get("format") != BACKBONE_FORMAT:
                raise ValueError(f"init: {self.args.init} is not a backbone.pt")
            model.backbone.load_state_dict(payload["backbone"])
            model.heads.load_state_dict(payload["heads"])
        return model

    def dataset(self) -> FrameDataset | FramePairDataset:
        kind = FramePairDataset if self.args.descriptor_weight > 0 else FrameDataset
        return kind(
            self.train_scenes,
            self.model_config.image_size,
            seed=self.args.seed,
            augment=True,
            frames_per_scene=self.args.frames_per_scene,
        )

    def compute_loss(self, model, batch, device):
        pairs = batch["image"].ndim == 5  # (B, 2, 3, H, W) from FramePairDataset
        images = batch["image"].flatten(0, 1) if pairs else batch["image"]
        labels = batch["semantic"].flatten(0, 1) if pairs else batch["semantic"]
        depths = batch["depth"].flatten(0, 1) if pairs else batch["depth"]
        logits, log_depth, features = model(images)
        semantic = weighted_cross_entropy(logits.float(), labels, self.class_weights)
        depth = log_depth_l1(log_depth.float(), depths)
        total = semantic + self.args.depth_weight * depth
        parts = {"semantic": semantic.detach(), "log_depth": depth.detach()}
        if pairs and self.args.descriptor_weight > 0:
            descriptor = descriptor_nce(
                features.float().unflatten(0, (-1, 2)), batch["grid"], batch["valid"]
            )
            total = total + self.args.descriptor_weight * descriptor
            parts["descriptor"] = descriptor.detach()
        parts["loss"] = total.detach()
        return total, parts

    def validate(self, model, device) -> dict[str, float]:
        if not self.val_scenes:
            return {"score": float("nan")}
        data = FrameDataset(
            self.val_scenes,
            self.model_config.image_size,
            augment=False,
            frames_per_scene=self.args.val_frames,
        )
        k = self.model_config.num_classes
        matrix = np.zeros((k, k), dtype=np.int64)
        losses, abs_rel = [], []
        for start in range(0, len(data), 8):
            items = [data[i] for i in range(start, min(len(data), start + 8))]
            batch = {key: torch.stack([it[key] for it in items]).to(device) for key in items[0]}
            logits, log_depth, _ = model(batch["image"])
            _, parts = self.compute_loss(model, batch, device)
            losses.append(float(parts["loss"]))
            matrix += confusion(logits.argmax(1), batch["semantic"], k)
            valid = batch["depth"] > 0
            depth = torch.exp(log_depth[valid])
            target = batch["depth"][valid]
            abs_rel.append(float(((depth - target).abs() / target).mean()))
        loss = float(np.mean(losses))
        return {
            "score": loss,
            "loss": loss,
            "pixel_accuracy": float(np.trace(matrix) / max(1, matrix.sum())),
            "miou_2d": mean_iou(matrix),
            "depth_abs_rel": float(np.mean(abs_rel)),
        }

    def export(self, model, out_dir: Path, summary: dict) -> dict[str, str]:
        best = out_dir / "best.pt"
        state = model.state_dict()
        source = "last"
        if best.is_file():
            from recon_ros.training.engine import load_state

            state = load_state(best)["model"]
            source = "best"
        backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
        heads = {k[len("heads.") :]: v for k, v in state.items() if k.startswith("heads.")}
        payload = {
            "format": BACKBONE_FORMAT,
            "model_config": self.model_config.to_dict(),
            "backbone": backbone,
            "heads": heads,
            "metadata": json.loads(json.dumps({"source": source, "summary": summary}, default=str)),
        }
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        path = out_dir / "backbone.pt"
        atomic_write(path, lambda f: f.write(buffer.getvalue()))
        return {"backbone": str(path)}


def load_backbone(path: str | Path, config: AtlasModelConfig) -> tuple[nn.Module, str]:
    """The backbone of a ``backbone.pt`` (or of an Atlas checkpoint) for ``config``, and the
    file's SHA-256.

    Raises:
        ValueError: the file is neither, or its architecture differs from ``config``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"backbone: no file at {path}; run the backbone stage first")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = AtlasModel(config)
    if isinstance(payload, dict) and payload.get("format") == BACKBONE_FORMAT:
        stored = AtlasModelConfig.from_dict(payload["model_config"])
        state = payload["backbone"]
    else:
        atlas, _ = load_atlas_model(path, "cpu")
        stored, state = atlas.config, atlas.backbone.state_dict()
    differing = [f for f in BACKBONE_FIELDS if getattr(stored, f) != getattr(config, f)]
    if differing:
        raise ValueError(f"backbone: {path} was trained for another backbone ({differing})")
    model.backbone.load_state_dict(state)
    return model.backbone, file_sha256(path)


class VolumeLossMixin:
    """The 3D stages' loss (multi-scale TSDF and semantic terms of the stage's ``forward``) and
    their validation over crops."""

    def _loss(self, batch, tsdf, masks, logits):
        return atlas_training_loss(
            tsdf,
            masks,
            logits,
            batch,
            self.args.semantic_weight,
            self.class_weights,
            self.args.band_share,
        )

    def compute_loss(self, model, batch, device):
        return self._loss(batch, *self.forward(model, batch))

    def validate_crops(self, model, device, data) -> dict[str, float]:
        """Mean loss terms over the crops of ``data``, plus voxel L1 and sign accuracy of the
        fine TSDF in the observed truncation band and the voxel mIoU of the semantic head."""
        k = self.model_config.num_classes
        matrix = np.zeros((k, k), dtype=np.int64)
        sums: dict[str, float] = {}
        l1_sum, l1_count, sign_ok = 0.0, 0, 0
        for i in range(len(data)):
            batch = {key: value[None].to(device) for key, value in data[i].items()}
            tsdf, masks, logits = self.forward(model, batch)
            _, parts = self._loss(batch, tsdf, masks, logits)
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + float(value)
            target = batch["tsdf"]
            band = batch["observed"] & (target < 1.0)
            prediction = tsdf[-1].float()
            l1_sum += float((prediction - target).abs()[band].sum())
            l1_count += int(band.sum())
            sign_ok += int(((prediction >= 0) == (target >= 0))[band].sum())
            if logits is not None:
                matrix += confusion(logits.argmax(1), batch["semantic"], k)
        metrics = {key: value / len(data) for key, value in sums.items()}
        metrics["voxel_l1"] = l1_sum / max(1, l1_count)
        metrics["voxel_sign_accuracy"] = sign_ok / max(1, l1_count)
        metrics["voxel_miou"] = mean_iou(matrix)
        metrics["score"] = metrics["loss"]
        return metrics


class VolumeStage(VolumeLossMixin, AtlasStageBase):
    """Stage ``volume`` (module docstring): the 3D network on cached features."""

    name = "volume"

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.backbone_path = Path(args.backbone or Path(args.out) / "backbone" / "backbone.pt")
        self.cache_dir = Path(args.cache_dir or Path(args.out) / "feature_cache")
        self.backbone, self.backbone_sha = load_backbone(self.backbone_path, self.model_config)
        self.crop = _crop_config(args)

    def prepare(self, context) -> None:
        if context.is_main:
            build_feature_cache(
                self.train_scenes + self.val_scenes,
                self.backbone,
                self.cache_dir,
                self.model_config.image_size,
                self.backbone_sha,
                device=context.device,
                progress=not self.args.quiet,
            )

    def build_model(self) -> nn.Module:
        return AtlasModel(self.model_config).net3d

    def dataset(self) -> CropDataset:
        return CropDataset(
            self.train_scenes,
            self.crop,
            length=self.args.samples_per_epoch,
            seed=self.args.seed,
            mode="features",
            cache_dir=self.cache_dir,
            image_size=self.model_config.image_size,
            voxel_size=self.model_config.voxel_size,
            max_depth=self.model_config.max_depth,
        )

    def val_dataset(self) -> CropDataset | None:
        if not self.val_scenes:
            return None
        return CropDataset(
            self.val_scenes,
            self.crop,
            length=self.args.val_crops,
            seed=self.args.seed + 7919,
            mode="features",
            cache_dir=self.cache_dir,
            image_size=self.model_config.image_size,
            voxel_size=self.model_config.voxel_size,
            max_depth=self.model_config.max_depth,
        )

    def forward(self, model, batch):
        outputs = model(batch["input"])
        return outputs.tsdf, outputs.clamp_masks, outputs.semantic_logits

    def validate(self, model, device) -> dict[str, float]:
        self.validate_mode(model)
        data = self.val_dataset()
        if data is None:
            return {"score": float("nan")}
        return self.validate_crops(model, device, data)

    def assemble(self, net3d_state: dict) -> AtlasModel:
        model = AtlasModel(self.model_config)
        model.backbone.load_state_dict(self.backbone.state_dict())
        model.net3d.load_state_dict(net3d_state)
        return model.eval()

    def export(self, model, out_dir: Path, summary: dict) -> dict[str, str]:
        return export_atlas(self, self.assemble(_best_state(out_dir, model)), out_dir, summary)


def _best_state(out_dir: Path, model: nn.Module) -> dict:
    from recon_ros.training.engine import load_state

    best = out_dir / "best.pt"
    return load_state(best)["model"] if best.is_file() else model.state_dict()


def export_atlas(stage: AtlasStageBase, model: AtlasModel, out_dir: Path, summary: dict) -> dict:
    """``out_dir/atlas.pt``: a ``core.checkpoint`` file with the recipe and summary."""
    description = summary.get("description", {})
    recipe = (
        f"stage {stage.name}: {description.get('settings', {}).get('command', '')}; "
        f"{summary['steps']} steps, {summary['train_seconds'] / 3600:.2f} h of training time on "
        f"{description.get('device', '?')} x {description.get('world_size', 1)}"
    )
    extra = json.loads(json.dumps({"summary": summary}, default=str))
    path = save_checkpoint(model, out_dir / "atlas.pt", trained=True, recipe=recipe, extra=extra)
    return {"atlas": str(path)}


class EndToEndStage(VolumeLossMixin, AtlasStageBase):
    """Stages ``finetune`` (from ``--init``) and ``end2end`` (from random weights): images ->
    ``AtlasModel.forward_train``."""

    def __init__(self, args: argparse.Namespace, name: str) -> None:
        super().__init__(args)
        self.name = name
        self.crop = _crop_config(args)
        self.init_path = None
        if name == "finetune":
            self.init_path = Path(args.init or Path(args.out) / "volume" / "atlas.pt")
            if not self.init_path.is_file():
                raise ValueError(f"init: no checkpoint at {self.init_path}; train 'volume' first")

    def build_model(self) -> nn.Module:
        if self.init_path is not None:
            model, _ = load_atlas_model(self.init_path, "cpu", expected_config=self.model_config)
            model.train()
            if self.args.freeze_backbone_bn:
                for module in model.backbone.modules():
                    if isinstance(module, nn.BatchNorm2d):
                        module.eval()
                        module.requires_grad_(False)
            return model
        return AtlasModel(self.model_config)

    def _data(self, scenes, length, seed, photometric) -> CropDataset:
        return CropDataset(
            scenes,
            self.crop,
            length=length,
            seed=seed,
            mode="images",
            image_size=self.model_config.image_size,
            voxel_size=self.model_config.voxel_size,
            photometric=photometric,
        )

    def dataset(self) -> CropDataset:
        return self._data(
            self.train_scenes, self.args.samples_per_epoch, self.args.seed, PhotometricConfig()
        )

    def forward(self, model, batch):
        outputs = model(
            batch["images"],
            batch["K"],
            batch["T_world_cam"],
            batch["origin"],
            self.model_config.voxel_size,
            self.crop.dims,
        )
        return outputs.tsdf, outputs.clamp_masks, outputs.semantic_logits

    def validate(self, model, device) -> dict[str, float]:
        self.validate_mode(model)
        if not self.val_scenes:
            return {"score": float("nan")}
        data = self._data(self.val_scenes, self.args.val_crops, self.args.seed + 7919, None)
        return self.validate_crops(model, device, data)

    def export(self, model, out_dir: Path, summary: dict) -> dict[str, str]:
        final = AtlasModel(self.model_config)
        final.load_state_dict(_best_state(out_dir, model))
        return export_atlas(self, final.eval(), out_dir, summary)


def build_stage(args: argparse.Namespace) -> Stage:
    """The ``Stage`` named by ``args.stage``."""
    if args.stage == "backbone":
        return BackboneStage(args)
    if args.stage == "volume":
        return VolumeStage(args)
    if args.stage in ("finetune", "end2end"):
        return EndToEndStage(args, args.stage)
    raise ValueError(f"stage: expected one of {STAGES}, got {args.stage!r}")


def engine_config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        out_dir=str(Path(args.out) / args.stage),
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps,
        final_lr_fraction=args.final_lr_fraction,
        grad_clip=args.grad_clip if args.grad_clip > 0 else None,
        num_workers=args.num_workers,
        threads=args.threads,
        device=args.device,
        seed=args.seed,
        amp=not args.no_amp,
        log_every=args.log_every,
        val_every=args.val_every,
        checkpoint_every=args.checkpoint_every,
        resume=not args.no_resume,
        progress=not args.quiet,
        max_minutes=args.max_minutes,
    )


#: Per-stage defaults of the options whose good value depends on the stage.
STAGE_DEFAULTS = {
    "backbone": {"steps": 2000, "batch_size": 8, "lr": 1e-3},
    "volume": {"steps": 4000, "batch_size": 1, "lr": 5e-4},
    "finetune": {"steps": 500, "batch_size": 1, "lr": 5e-5},
    "end2end": {"steps": 20000, "batch_size": 1, "lr": 5e-4},
}


def export_only(stage: Stage, out_dir: Path) -> int:
    """Write the stage's artifact from its ``best.pt`` (else ``last.pt``) without training, e.g.
    to evaluate a run that is still going."""
    from recon_ros.training.engine import load_state

    last = out_dir / "last.pt"
    if not last.is_file():
        raise ValueError(f"export: no {last}; nothing trained yet")
    state = load_state(last)
    model = stage.build_model()
    model.load_state_dict(state["model"])
    summary = {
        "stage": stage.name,
        "steps": int(state["step"]),
        "finished": False,
        "best_score": float(state["best_score"]),
        "train_seconds": float(state["train_seconds"]),
        "description": state.get("description", {}),
    }
    artifacts = stage.export(model, out_dir, summary)
    print(json.dumps({"stage": stage.name, "step": summary["steps"], **artifacts}))
    return 0


def run(args: argparse.Namespace) -> int:
    """Entry point of ``recon-ros train atlas``."""
    for key, value in STAGE_DEFAULTS[args.stage].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    stage = build_stage(args)
    config = engine_config(args)
    if args.export_only:
        return export_only(stage, Path(config.out_dir))
    summary = run_stage(stage, config)
    if summary.get("artifacts"):
        print(json.dumps({"stage": args.stage, **summary["artifacts"]}))
    elif not summary["finished"]:
        print(f"stopped at step {summary['steps']} of {config.steps}; run again to resume")
    return 0


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``atlas`` under ``recon-ros train``."""
    p = subparsers.add_parser(
        "atlas",
        help="train the Atlas model (stages: backbone, volume, finetune, end2end)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--stage", choices=STAGES, required=True)
    p.add_argument("--train-data", nargs="+", required=True, help="dataset folder(s) of scenes")
    p.add_argument("--val-data", nargs="*", default=[], help="validation dataset folder(s)")
    p.add_argument("--out", default="runs/atlas", help="run folder; each stage in OUT/<stage>")
    p.add_argument("--model-size", choices=("default", "small"), default="default")
    p.add_argument(
        "--tsdf-scale",
        type=float,
        default=ATLAS_TSDF_SCALE,
        help="TSDF heads output SCALE * tanh (Atlas: 1.05; 1.0 saturates)",
    )
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("W", "H"),
        help="network image size, multiples of 32 (default 384 288)",
    )
    p.add_argument("--backbone", help="volume stage: backbone.pt (default OUT/backbone/)")
    p.add_argument(
        "--init",
        help="finetune stage: Atlas checkpoint (default OUT/volume/atlas.pt); backbone stage: "
        "a backbone.pt to continue from",
    )
    p.add_argument("--cache-dir", help="volume stage: feature cache (default OUT/feature_cache)")
    e = EngineConfig()
    p.add_argument("--steps", type=int, default=None, help="optimiser steps (stage default)")
    p.add_argument("--batch-size", type=int, default=None, help="per process (stage default)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (stage default)")
    p.add_argument("--weight-decay", type=float, default=e.weight_decay)
    p.add_argument("--warmup-steps", type=int, default=e.warmup_steps)
    p.add_argument("--final-lr-fraction", type=float, default=e.final_lr_fraction)
    p.add_argument("--grad-clip", type=float, default=5.0, help="gradient norm clip (0: none)")
    c = CropConfig()
    p.add_argument("--crop", type=int, nargs=3, default=list(c.dims), metavar=("X", "Y", "Z"))
    p.add_argument("--views", type=int, default=c.views, help="frames per crop")
    p.add_argument("--no-rotate", action="store_true", help="no rotation augmentation")
    p.add_argument("--samples-per-epoch", type=int, default=1000)
    p.add_argument("--val-crops", type=int, default=16, help="validation crops (3D stages)")
    p.add_argument("--val-frames", type=int, default=10, help="validation frames per scene (2D)")
    p.add_argument("--frames-per-scene", type=int, default=None, help="backbone stage frames")
    p.add_argument("--semantic-weight", type=float, default=1.0)
    p.add_argument(
        "--band-share",
        type=float,
        default=None,
        help="balance the TSDF loss: this share on the truncation band, the rest elsewhere "
        "(default: the plain mean of core.losses)",
    )
    p.add_argument("--depth-weight", type=float, default=1.0, help="backbone stage log-depth")
    p.add_argument(
        "--descriptor-weight",
        type=float,
        default=0.0,
        help="backbone stage: weight of the multi-view descriptor loss on frame pairs (0: off)",
    )
    p.add_argument(
        "--class-balance",
        type=float,
        default=0.5,
        help="class weights (median/frequency)^POWER in the cross-entropy (0: plain)",
    )
    p.add_argument("--freeze-backbone-bn", action="store_true", help="finetune: keep 2D BN")
    p.add_argument(
        "--clamp-warmup-steps",
        type=int,
        default=0,
        help="3D stages: no coarse-to-fine clamp for the first N steps (default 0: Atlas)",
    )
    p.add_argument("--num-workers", type=int, default=e.num_workers)
    p.add_argument("--threads", type=int, default=e.threads, help="torch threads")
    p.add_argument("--device", default=e.device, help="auto, cpu, cuda")
    p.add_argument("--seed", type=int, default=e.seed)
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--log-every", type=int, default=e.log_every)
    p.add_argument("--val-every", type=int, default=e.val_every)
    p.add_argument("--checkpoint-every", type=int, default=e.checkpoint_every)
    p.add_argument("--no-resume", action="store_true", help="ignore OUT/<stage>/last.pt")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (resumable) after this")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="write OUT/<stage>/atlas.pt (backbone.pt) from best.pt of a run, no training",
    )
    p.set_defaults(func=run)
    return p


def train_from_argv(rank: int, argv: list[str], state_file: str | None = None) -> dict:
    """Parse ``recon-ros train atlas`` arguments (``["train", "atlas", ...]``) and train; with
    ``state_file``, save this process's final weights there with ``{rank}`` replaced by the rank
    (used to check that DDP processes end identical). Module-level for ``spawn_local``."""
    parser = argparse.ArgumentParser(prog="recon-ros")
    train = parser.add_subparsers(dest="command").add_parser("train")
    add_train_parser(train.add_subparsers(dest="model"))
    args = parser.parse_args(argv)
    for key, value in STAGE_DEFAULTS[args.stage].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    summary = run_stage(build_stage(args), engine_config(args))
    if state_file is not None:
        state = {k: v.detach().cpu() for k, v in summary["model"].state_dict().items()}
        torch.save(state, state_file.format(rank=rank))
    return summary
