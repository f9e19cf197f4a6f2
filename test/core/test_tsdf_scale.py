"""The TSDF heads' output scale (Atlas's "label smoothing" 1.05): free space is reachable without
saturating tanh, eval outputs stay in [-1, 1], and older configs keep 1.0."""

import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.core.model3d import AtlasNet3D


def test_scale_multiplies_training_outputs_and_eval_clips():
    torch.manual_seed(0)
    plain = AtlasNet3D(5, base_channels=4, num_classes=2, clamp_threshold=1.0)
    scaled = AtlasNet3D(5, base_channels=4, num_classes=2, clamp_threshold=1.0, tsdf_scale=1.05)
    scaled.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for head in (plain.tsdf_heads[0], scaled.tsdf_heads[0]):
            head.bias.fill_(2.0)  # tanh(2 + ...) near 0.96: beyond 1 once scaled
    x = torch.rand(1, 5, 16, 16, 16)
    # The coarsest scale (nothing clamped there) shows the scale alone.
    a, b = plain(x).tsdf[0], scaled(x).tsdf[0]
    torch.testing.assert_close(b, 1.05 * a)
    assert b.max() > 1.0
    scaled.eval()
    assert all(t.abs().max() <= 1.0 for t in scaled(x).tsdf)


def test_config_round_trip_and_default():
    config = AtlasModelConfig.small(tsdf_scale=1.05)
    assert AtlasModelConfig.from_dict(config.to_dict()) == config
    assert AtlasModel(config).net3d.tsdf_scale == 1.05
    legacy = config.to_dict()
    del legacy["tsdf_scale"]  # checkpoints written before the field existed
    assert AtlasModelConfig.from_dict(legacy).tsdf_scale == 1.0
