"""The band-balanced TSDF loss against the core loss, and the clamp warm-up."""

import argparse

import pytest
import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.core.losses import multiscale_tsdf_loss
from recon_ros.training.atlas_train import NO_CLAMP, VolumeStage, band_balanced_tsdf_loss


def test_band_balance_at_the_band_fraction_is_the_core_loss():
    """With band_share equal to the band's share of the supervised voxels the balanced loss is
    the plain mean of the core loss (checked at the full-resolution scale)."""
    torch.manual_seed(0)
    target = torch.rand(1, 1, 8, 8, 8) * 2.4 - 1.2
    target = target.clamp(-1, 1)
    observed = torch.rand(1, 1, 8, 8, 8) < 0.7
    prediction = torch.rand(1, 1, 8, 8, 8) * 2 - 1
    clamp = torch.zeros_like(observed)
    core, _ = multiscale_tsdf_loss([prediction], [clamp], target, observed)
    supervised = observed  # every column holds an observed voxel with this density
    share = float((supervised & (target.abs() < 1)).sum() / supervised.sum())
    balanced, _ = band_balanced_tsdf_loss([prediction], [clamp], target, observed, share)
    torch.testing.assert_close(balanced, core)
    even, _ = band_balanced_tsdf_loss([prediction], [clamp], target, observed, 0.5)
    assert not torch.allclose(even, core)
    with pytest.raises(ValueError, match="band_share"):
        band_balanced_tsdf_loss([prediction], [clamp], target, observed, 1.5)


def test_clamp_warmup_switches_the_threshold():
    stage = VolumeStage.__new__(VolumeStage)  # only the hook's state is needed
    stage.args = argparse.Namespace(clamp_warmup_steps=3)
    stage.model_config = AtlasModelConfig.small()
    model = AtlasModel(stage.model_config)
    stage.begin_step(model, 2)
    assert model.net3d.clamp_threshold == NO_CLAMP
    stage.begin_step(model.net3d, 3)
    assert model.net3d.clamp_threshold == 0.99
