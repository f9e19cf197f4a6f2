"""Experiment (not part of the shipped pipeline): does the volume stage escape the "everything is
free space" solution when the 3D network also sees the per-voxel *variance* of the back-projected
features across views (a multi-view consistency cue, as in MVS cost volumes), not only Atlas's
mean?

Same data, backbone, crops, loss and schedule as ``recon-ros train atlas --stage volume``; the
only change is the network input: mean (C), variance (C) and the observed flag. Run from the
repository root, e.g.::

    PYTHONPATH=. .venv/bin/python tools/experiments/atlas_variance_probe.py \\
        --stage volume --train-data data/atlas/train --val-data data/atlas/val \\
        --out runs/atlas_var --backbone runs/atlas2/backbone/backbone.pt \\
        --cache-dir runs/atlas2/feature_cache --crop 48 48 48 --views 32 --steps 600 ...

and compare ``voxel_sign_accuracy`` in ``runs/atlas_var/volume/metrics.csv`` with the fraction
of positive targets (the value an all-free prediction gets).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from recon_ros.core.atlas_model import average_features
from recon_ros.core.backproject import backproject_features
from recon_ros.core.model3d import AtlasNet3D
from recon_ros.training import atlas_train, data


class VarianceCropDataset(data.CropDataset):
    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(index)
        sample = self.draw(index)
        scene = self.scenes[sample.scene_index]
        crop = sample.crop
        features = data.load_scene_features(self.cache_dir, scene)
        maps = torch.from_numpy(np.stack([features[i] for i in sample.frames])).float()
        poses = torch.from_numpy(crop.poses(scene.poses[sample.frames])).float()
        K_net = torch.from_numpy(data.network_camera(scene, self.image_size)).float()
        K_features = data.feature_intrinsics(K_net, data.FEATURE_STRIDE)
        with torch.no_grad():
            squares, count = backproject_features(
                maps * maps,
                K_features.expand(len(sample.frames), 3, 3).contiguous(),
                poses,
                torch.from_numpy(crop.origin).float(),
                crop.voxel_size,
                crop.dims,
                self.max_depth,
            )
        channels = item["input"].shape[0] - 1
        mean = item["input"][:channels]
        variance = (average_features(squares[None], count[None])[0] - mean * mean).clamp_min(0)
        item["input"] = torch.cat([mean, variance.sqrt(), item["input"][channels:]], dim=0)
        return item


class VarianceVolumeStage(atlas_train.VolumeStage):
    def build_model(self):
        c = self.model_config
        return AtlasNet3D(
            in_channels=2 * c.feature_channels + 1,
            base_channels=c.base_channels_3d,
            num_classes=c.num_classes,
            encoder_blocks=c.encoder_blocks,
            decoder_blocks=c.decoder_blocks,
            clamp_threshold=c.clamp_threshold,
            tsdf_scale=c.tsdf_scale,
        )

    def dataset(self):
        base = super().dataset()
        base.__class__ = VarianceCropDataset
        return base

    def val_dataset(self):
        base = super().val_dataset()
        if base is not None:
            base.__class__ = VarianceCropDataset
        return base

    def export(self, model, out_dir, summary):
        return {}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    atlas_train.add_train_parser(sub)
    args = parser.parse_args(["atlas", *argv])
    for key, value in atlas_train.STAGE_DEFAULTS[args.stage].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    stage = VarianceVolumeStage(args)
    summary = atlas_train.run_stage(stage, atlas_train.engine_config(args))
    print(summary.get("steps"), summary.get("best_score"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
