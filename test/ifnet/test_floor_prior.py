"""The floor prior: against its per-pixel reference, unknown floors give zero channels, the
generated samples' floor lies behind (or on) everything they see, and a model with the prior
trains and completes scenes."""

import numpy as np
import pytest
import torch

from recon_ros.ifnet.dataset import SingleViewSamples, build_samples
from recon_ros.ifnet.floor_prior import floor_channels, floor_depth, floor_depth_reference
from recon_ros.ifnet.frustum_grid import FrustumGrid

GRID = FrustumGrid.in_front((16, 12, 12), 0.25, near=0.3)


def _camera(seed):
    rng = np.random.default_rng(seed)
    K = np.array([[40.0 + 10 * rng.random(), 0, 15.5 + rng.random()], [0, 45.0, 11.5], [0, 0, 1]])
    pitch = np.deg2rad(rng.uniform(-40, 10))
    roll = np.deg2rad(rng.uniform(-10, 10))
    up = np.array([np.sin(roll), -np.cos(pitch) * np.cos(roll), np.sin(pitch)])
    return K, up / np.linalg.norm(up), rng.uniform(0.3, 1.8)


def test_floor_depth_matches_its_reference():
    cameras = [_camera(seed) for seed in range(3)]
    K = torch.tensor(np.stack([c[0] for c in cameras]), dtype=torch.float32)
    up = torch.tensor(np.stack([c[1] for c in cameras]), dtype=torch.float32)
    height = torch.tensor([c[2] for c in cameras], dtype=torch.float32)
    fast = floor_depth(K, up, height, (24, 32), max_depth=8.0).numpy()
    for b, (K_b, up_b, height_b) in enumerate(cameras):
        reference = floor_depth_reference(K_b, up_b, height_b, (24, 32), max_depth=8.0)
        assert np.array_equal(fast[b] > 0, reference > 0) or (
            np.mean((fast[b] > 0) != (reference > 0)) < 0.01  # float32 at the horizon
        )
        both = (fast[b] > 0) & (reference > 0)
        assert both.sum() > 50
        np.testing.assert_allclose(fast[b][both], reference[both], rtol=1e-4)
    # looking level from 1 m: the floor's lowest image row is nearest
    assert fast[0][-1].max() < fast[0][both.any(axis=1)][0].max() + 1e-6


def test_unknown_floors_give_zero_channels():
    K = torch.tensor([[[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]]] * 2)
    up = torch.tensor([[0.0, -1.0, 0.0]] * 2)
    height = torch.tensor([1.0, float("nan")])
    channels = floor_channels(K, up, height, (24, 32), 8.0)
    assert channels.shape == (2, 2, 24, 32)
    assert channels[0, 1].eq(1).all() and channels[0, 0, -1].gt(0).all()
    assert channels[0, 0, :11].eq(0).all()  # above the horizon: no floor
    assert channels[1].eq(0).all()
    assert floor_channels(K, None, None, (24, 32), 8.0).eq(0).all()
    with pytest.raises(ValueError, match="height"):
        floor_depth(K, up, height[:1], (24, 32), 8.0)


def test_nothing_a_sample_sees_lies_beyond_its_floor(tiny_scenes, tmp_path):
    """The generated floor prior is right: every pixel's true depth is at most the floor's
    depth there, and many pixels are the floor itself; old samples get the prior added."""
    out = tmp_path / "samples"
    build_samples(tiny_scenes, out, frames_per_scene=3, image_size=(64, 48), grid=GRID)
    samples = SingleViewSamples(out)
    on_floor = 0
    for index in range(len(samples)):
        item = samples[index]
        floor = floor_depth(item["K"][None], item["up"][None], item["height"][None], (48, 64), 8.0)[
            0
        ]
        seen = (floor > 0) & (item["depth"] > 0)
        assert (item["depth"][seen] <= floor[seen] * 1.02 + 0.02).float().mean() > 0.99
        on_floor += int(((item["depth"] - floor).abs() < 0.02 * floor)[seen].sum())
    assert on_floor > 200
    # samples written before the prior existed get it on the next build, the rest unchanged
    from recon_ros.datasets.io import read_npz, write_npz

    name = samples.names[0]
    fresh = (out / name).read_bytes()
    arrays = read_npz(out / name)
    write_npz(out / name, {k: v for k, v in arrays.items() if k not in ("up_cam", "camera_height")})
    build_samples(tiny_scenes, out, frames_per_scene=3, image_size=(64, 48), grid=GRID)
    assert (out / name).read_bytes() == fresh


def test_a_model_with_the_floor_prior_trains_and_completes(tiny_scenes, tmp_path):
    from recon_ros.core.camera import PinholeCamera
    from recon_ros.ifnet.ifnet import SingleViewIFNet
    from recon_ros.ifnet.infer import complete_scene
    from recon_ros.ifnet.train import _trainable, config_for, regime_losses

    out = tmp_path / "samples"
    build_samples(tiny_scenes, out, frames_per_scene=2, image_size=(64, 64), grid=GRID)
    data = SingleViewSamples(out, 128, 0, augment=True)
    torch.manual_seed(0)
    model = SingleViewIFNet(config_for(data, floor_input=True)).train()
    assert model.depth_net.stem[0].in_channels == 5
    batch = {key: torch.stack([data[i][key] for i in range(2)]) for key in data[0]}
    optimiser = torch.optim.Adam(_trainable(model, "depth"), lr=1e-3)
    first = regime_losses(model, batch, "depth")["total"]
    for _ in range(4):
        loss = regime_losses(model, batch, "depth")["total"]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(regime_losses(model, batch, "depth")["total"].detach()) < float(first.detach())
    model.eval()
    camera = PinholeCamera(80.0, 80.0, 63.5, 47.5, 128, 96)
    rgb = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    with_floor = complete_scene(model, rgb, camera, up=np.array([0, -1.0, 0]), height=1.2)
    without = complete_scene(model, rgb, camera)
    assert not np.array_equal(with_floor.depth, without.depth)  # the prior is used
    with pytest.raises(ValueError, match="up"):
        complete_scene(model, rgb, camera, up=np.zeros(3), height=1.2)
    with pytest.raises(ValueError, match="height"):
        complete_scene(model, rgb, camera, up=np.array([0, -1.0, 0]), height=float("nan"))
