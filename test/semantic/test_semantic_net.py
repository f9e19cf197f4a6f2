"""The semantic network: its geometry input against a pixel-by-pixel reference, shapes and input
checks, a few training steps lowering its loss, the checkpoint round trip, the training samples'
depth kinds, and the fusion stage taking its labels (stereo, registered and unregistered sensor
depth)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet
from recon_ros.core.fusion_stage import (
    DepthFusionStage,
    depth_in_colour_view,
    depth_in_colour_view_reference,
)
from recon_ros.core.geometry import look_at_pose
from recon_ros.core.semantic_net import (
    SemanticNet,
    SemanticNetConfig,
    geometry_channels,
    geometry_channels_reference,
    load_semantic_net,
    save_semantic_net,
    up_in_camera,
)
from recon_ros.semantic.dataset import corrupt_depth

TINY = SemanticNetConfig(image_size=(64, 64), widths=(8, 8, 8, 8, 8), decoder_width=8)
K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])


def test_geometry_channels_match_the_reference():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 5.0, (2, 1, 6, 7)).astype(np.float32)
    depth[0, 0, 2, 3] = 0.0  # unknown
    Ks = np.stack([K, K * [[0.5], [0.5], [1]]]).astype(np.float32)
    up = np.array([[0, -1.0, 0], [0.6, -0.8, 0]], np.float32)
    fast = geometry_channels(torch.from_numpy(depth), torch.from_numpy(Ks), torch.from_numpy(up))
    slow = geometry_channels_reference(depth, Ks, up)
    assert np.allclose(fast.numpy(), slow, atol=1e-5)
    assert fast[0, 1, 2, 3] == 0 and fast[0, 2, 2, 3] == 0  # unknown depth: no height
    with pytest.raises(ValueError, match="depth"):
        geometry_channels(torch.zeros(2, 6, 7), torch.from_numpy(Ks), torch.from_numpy(up))


def test_up_in_camera_in_a_z_up_and_a_y_down_world():
    # REP 103 world: a level camera looking along +y has gravity-up along its -y (image up).
    level = look_at_pose([0, 0, 1.2], [0, 3, 1.2])
    assert np.allclose(up_in_camera(level), [0, -1, 0], atol=1e-9)
    # the same camera in a visual-SLAM world (y down): up is -y in the world, still image-up
    to_slam = np.array([[1, 0, 0, 0], [0, 0, -1, 0], [0, 1, 0, 0], [0, 0, 0, 1.0]])
    assert np.allclose(up_in_camera(to_slam @ level), [0, -1, 0], atol=1e-9)


def test_shapes_and_input_checks():
    net = SemanticNet(TINY).eval()
    images = torch.rand(2, 3, 64, 64)
    depth = torch.rand(2, 1, 64, 64) * 3
    Ks = torch.as_tensor(np.stack([K, K]), dtype=torch.float32)
    up = torch.tensor([[0, -1.0, 0]] * 2)
    assert net(images, depth, Ks, up).shape == (2, TINY.num_classes, 64, 64)
    with pytest.raises(ValueError, match="multiples of 32"):
        net(torch.rand(1, 3, 48, 64), torch.rand(1, 1, 48, 64), Ks[:1], up[:1])
    with pytest.raises(ValueError, match="depth"):
        net(images, depth[:, :, :32], Ks, up)
    with pytest.raises(ValueError, match="image_size"):
        SemanticNetConfig(image_size=(100, 64))


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    net = SemanticNet(TINY)
    images = torch.rand(4, 3, 64, 64)
    depth = torch.rand(4, 1, 64, 64) * 3 + 0.5
    labels = (depth[:, 0] > 2.0).long() + 3 * (images[:, 0] > 0.5).long()
    Ks = torch.as_tensor(np.stack([K] * 4), dtype=torch.float32)
    up = torch.tensor([[0, -1.0, 0]] * 4)
    optimiser = torch.optim.Adam(net.parameters(), 1e-2)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(net(images, depth, Ks, up), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.6 * losses[0]


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    net = SemanticNet(TINY).eval()
    path = save_semantic_net(net, tmp_path / "semantic.pt", trained=True, recipe="test")
    loaded, metadata = load_semantic_net(path)
    assert metadata["trained"] is True and loaded.config == TINY
    args = (
        torch.rand(1, 3, 64, 64),
        torch.rand(1, 1, 64, 64),
        torch.eye(3)[None],
        torch.ones(1, 3),
    )
    assert torch.equal(net(*args), loaded(*args))


def test_depth_kinds_of_the_training_samples():
    depth = np.full((48, 64), 2.0, np.float32)
    depth[:4] = 0.0
    assert not corrupt_depth(depth, "none", np.random.default_rng(0)).any()
    sensor = corrupt_depth(depth, "sensor", np.random.default_rng(0))
    assert not sensor[:4].any()
    kept = sensor[4:] > 0
    assert kept.mean() > 0.9 and np.abs(sensor[4:][kept] / 2.0 - 1).mean() < 0.02
    stereo = corrupt_depth(depth, "stereo", np.random.default_rng(0))
    assert 0.5 < (stereo[4:] > 0).mean() < 0.96  # holes where stereo is unsure
    again = corrupt_depth(depth, "stereo", np.random.default_rng(0))
    assert np.array_equal(stereo, again)  # deterministic by seed
    with pytest.raises(ValueError, match="kind"):
        corrupt_depth(depth, "lidar", np.random.default_rng(0))


def test_depth_in_colour_view_matches_the_reference():
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.5, 3.0, (12, 16)).astype(np.float32)
    depth[3, 4] = 0.0
    K_depth = np.array([[12.0, 0, 7.5], [0, 12.0, 5.5], [0, 0, 1]])
    K_colour = np.array([[20.0, 0, 9.5], [0, 20.0, 7.5], [0, 0, 1]])
    colour = PinholeCamera.from_matrix(K_colour, 20, 16)
    T = np.eye(4)
    T[0, 3] = 0.05
    fast = depth_in_colour_view(torch.from_numpy(depth), K_depth, colour, T)
    slow = depth_in_colour_view_reference(depth, K_depth, colour, T)
    assert np.allclose(fast.numpy(), slow, atol=1e-5)
    assert (slow > 0).mean() > 0.3


@pytest.mark.parametrize("registered", [True, False])
@pytest.mark.parametrize("combine", [True, False])
def test_the_stage_takes_its_labels_from_the_semantic_network(registered, combine):
    torch.manual_seed(0)
    depth_net = MVSDepthNet(
        DepthNetConfig(image_size=(64, 48), planes=16, widths=(8, 8, 8, 8))
    ).eval()
    semantic = SemanticNet(TINY).eval()
    with torch.no_grad():  # a network that calls everything class 4
        semantic.head.weight.zero_()
        semantic.head.bias.zero_()
        semantic.head.bias[4] = 30.0  # outweighs the untrained head when combined
    stage = DepthFusionStage(depth_net, "auto", semantic_net=semantic, combine_labels=combine)
    camera = PinholeCamera.from_matrix(K, 64, 48)
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    depth = np.full((24, 32), 2.0, np.float32)
    depth_camera = camera.resized(32, 24)
    T_cam_depth = None
    if not registered:
        T_cam_depth = np.eye(4)
        T_cam_depth[0, 3] = 0.02
    result = stage.depth_for_keyframe(
        image,
        camera,
        look_at_pose([0, 0, 1], [0, 3, 1]),
        depth=depth,
        depth_camera=depth_camera,
        T_cam_depth=T_cam_depth,
    )
    assert result.source == "sensor" and result.labels.shape == (24, 32)
    labelled = result.labels[result.labels != 255]
    assert len(labelled) > 0.8 * 24 * 32 and bool((labelled == 4).all())
    # stereo: the keyframe after a partner with baseline
    stage = DepthFusionStage(depth_net, "mvs", semantic_net=semantic, combine_labels=combine)
    stage.depth_for_keyframe(image, camera, look_at_pose([0, 0, 1], [0, 3, 1]))
    moved = stage.depth_for_keyframe(image, camera, look_at_pose([0.2, 0, 1], [0.2, 3, 1]))
    assert moved.source == "mvs" and bool((moved.labels == 4).all())


def test_the_sessions_up_holds_for_a_camera_pitched_towards_the_floor():
    # 60 degrees down at a table: the image-up direction is nearer to the horizontal axis than
    # to z, so a per-frame guess is wrong; the session's up (z) is not.
    steep = look_at_pose([0, 0, 1.5], [0, 0.6, 1.5 - 0.6 * np.tan(np.radians(60))])
    truth = steep[:3, :3].T @ np.array([0, 0, 1.0])
    assert not np.allclose(up_in_camera(steep), truth, atol=1e-6)
    assert np.allclose(up_in_camera(steep, (2, 1.0)), truth)
    stage = DepthFusionStage(None, "sensor")
    stage.set_up(2, 1)
    assert stage.world_up == (2, 1.0)
    with pytest.raises(ValueError, match="up axis"):
        stage.set_up(3, 1)


def test_combined_labels_are_the_product_of_both_networks():
    torch.manual_seed(2)
    depth_net = MVSDepthNet(
        DepthNetConfig(image_size=(64, 48), planes=16, widths=(8, 8, 8, 8))
    ).eval()
    semantic = SemanticNet(TINY).eval()
    camera = PinholeCamera.from_matrix(K, 64, 48)
    image = torch.rand(3, 48, 64)
    depth = torch.full((24, 32), 2.0)
    head = torch.randn(TINY.num_classes, 24, 32)
    T = look_at_pose([0, 0, 1], [0, 3, 1])
    alone = DepthFusionStage(depth_net, semantic_net=semantic, combine_labels=False)
    both = DepthFusionStage(depth_net, semantic_net=semantic, combine_labels=True)
    with torch.no_grad():
        sem = alone._semantic_logits(image, camera, depth, T, head_logits=head)
        combined = both._semantic_logits(image, camera, depth, T, head_logits=head)
    assert torch.allclose(sem.exp().sum(0), torch.ones(24, 32), atol=1e-4)  # log-probabilities
    expected = sem + F.log_softmax(head, dim=0)
    assert torch.allclose(combined, expected, atol=1e-5)
