"""AtlasModel forward pass and checkpoints."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig, feature_intrinsics
from recon_ros.core.camera import PinholeCamera
from recon_ros.core.checkpoint import (
    load_atlas_model,
    load_checkpoint,
    save_checkpoint,
    write_untrained_checkpoint,
)
from recon_ros.core.geometry import look_at_pose
from recon_ros.core.losses import atlas_loss

SHIPPED = Path(__file__).resolve().parents[2] / "recon_ros" / "weights" / "atlas_untrained.pt"


def tiny_config(**overrides) -> AtlasModelConfig:
    return AtlasModelConfig.small(
        backbone_widths=(4, 8, 8, 8, 8),
        fpn_channels=8,
        merge_channels=8,
        feature_channels=4,
        base_channels_3d=4,
        encoder_blocks=(1, 1, 1, 1),
        decoder_blocks=(1, 1, 1),
        image_size=(64, 64),
        **overrides,
    )


def test_feature_intrinsics_match_camera_resize():
    camera = PinholeCamera(300.0, 310.0, 191.5, 143.5, 384, 288)
    expected = camera.resized(96, 72).K
    np.testing.assert_allclose(feature_intrinsics(torch.tensor(camera.K)).numpy(), expected)


def test_forward_train_is_differentiable_end_to_end():
    torch.manual_seed(0)
    model = AtlasModel(tiny_config())
    images = torch.rand(1, 2, 3, 64, 64, requires_grad=False)
    K = torch.tensor([[150.0, 0, 31.5], [0, 150.0, 31.5], [0, 0, 1]]).expand(1, 2, 3, 3)
    poses = [look_at_pose([1.2, 0.2 * i, 0.6], [0.3, 0.3, 0.3]) for i in range(2)]
    T = torch.tensor(np.stack(poses), dtype=torch.float32)[None]
    dims = (16, 16, 16)
    out = model.forward_train(images, K, T, torch.zeros(1, 3), 0.04, dims)
    assert out.tsdf[-1].shape == (1, 1, *dims) and out.semantic_logits.shape == (1, 9, *dims)
    assert out.observed.dtype == torch.bool and 0 < out.observed.float().mean() < 1
    target = torch.ones(1, 1, *dims)
    labels = torch.full((1, *dims), 255, dtype=torch.long)
    labels[..., :4] = 0
    loss, _ = atlas_loss(
        out.tsdf, out.clamp_masks, out.semantic_logits, target, out.observed, labels
    )
    loss.backward()
    assert model.backbone.stem[0].weight.grad.abs().sum() > 0  # gradient reaches the 2D CNN
    assert model.net3d.stem[0].weight.grad.abs().sum() > 0


def test_checkpoint_round_trip_and_errors(tmp_path):
    torch.manual_seed(1)
    model = AtlasModel(tiny_config())
    path = save_checkpoint(model, tmp_path / "m.pt", trained=True, recipe="test", extra={"f": 0.5})
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary
    loaded, metadata = load_atlas_model(path, "cpu")
    assert metadata["trained"] is True and metadata["recipe"] == "test"
    assert metadata["model_config"]["class_names"][0] == "floor"
    json.dumps(metadata)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    with pytest.raises(FileNotFoundError, match="no file"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a loadable"):
        load_checkpoint(tmp_path / "text.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match=r"not a recon_ros\.atlas checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    # Weights of one architecture under another's config.
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["model_config"]["base_channels_3d"] = 8
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="architecture mismatch"):
        load_atlas_model(tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="differs from the expected"):
        load_atlas_model(path, expected_config=tiny_config(voxel_size=0.05))


def test_shipped_untrained_checkpoint_is_reproducible(tmp_path):
    assert SHIPPED.stat().st_size < 10 * 1024 * 1024
    model, metadata = load_atlas_model(SHIPPED, "cpu")
    assert metadata["trained"] is False and "untrained" in SHIPPED.name
    assert model.config == AtlasModelConfig.small()
    rebuilt = write_untrained_checkpoint(tmp_path / "again.pt", seed=metadata["extra"]["seed"])
    shipped_state, _ = load_checkpoint(SHIPPED)
    rebuilt_state, rebuilt_metadata = load_checkpoint(rebuilt)
    assert rebuilt_metadata["recipe"] == metadata["recipe"]
    assert shipped_state.keys() == rebuilt_state.keys()
    for name, tensor in shipped_state.items():
        if "running_" in name:
            # BatchNorm statistics: sums of convolution outputs, whose order oneDNN picks by CPU
            # and threads, so they agree to float precision of the layer's scale (a fixed 1e-6
            # failed near zero on another machine: 2.6e-6 on a layer whose largest value is 1.2)
            scale = float(tensor.abs().max())
            torch.testing.assert_close(rebuilt_state[name], tensor, rtol=1e-4, atol=1e-4 * scale)
        else:  # weights come from the seeded generator: exact
            assert torch.equal(rebuilt_state[name], tensor), name
