"""The fusion stage: stereo waits for a partner with baseline, the geometric consistency check
keeps depths an earlier keyframe confirms and drops the others, and colour of an unregistered
depth camera is sampled where its pixels land in the colour image."""

import numpy as np
import torch

from recon_ros.core.camera import PinholeCamera
from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet
from recon_ros.core.fusion_stage import (
    DepthFusionStage,
    StereoSettings,
    _Keyframe,
    sample_at_depth_pixels,
)
from recon_ros.core.geometry import look_at_pose

SMALL = DepthNetConfig(image_size=(64, 48), planes=16, widths=(8, 8, 8, 8))
K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])


def test_stereo_waits_for_a_partner_with_baseline():
    torch.manual_seed(0)
    stage = DepthFusionStage(MVSDepthNet(SMALL).eval(), "mvs")
    camera = PinholeCamera.from_matrix(K, 64, 48)
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    first = stage.depth_for_keyframe(image, camera, look_at_pose([0, 0, 1], [0, 3, 1]))
    assert first.source == "waiting"
    # 1 cm away: still no stereo baseline
    close = stage.depth_for_keyframe(image, camera, look_at_pose([0.01, 0, 1], [0, 3, 1]))
    assert close.source == "waiting"
    moved = stage.depth_for_keyframe(image, camera, look_at_pose([0.2, 0, 1], [0.2, 3, 1]))
    assert moved.source == "mvs" and moved.partners >= 1
    assert moved.depth.shape == (24, 32) and moved.labels.shape == (24, 32)
    assert stage.last_result is moved


def test_consistency_keeps_confirmed_depth_only():
    stage = DepthFusionStage(None, "sensor", StereoSettings(min_consistent_views=1))
    K_half = np.array([[25.0, 0, 15.5], [0, 25.0, 11.5], [0, 0, 1]])
    T_ref = np.eye(4)
    T_judge = np.eye(4)
    T_judge[0, 3] = 0.1
    wall = torch.full((24, 32), 2.0)
    judge = _Keyframe(
        torch.zeros(8, 24, 32), torch.zeros(1, 24, 32), K, T_judge, wall.clone(), K_half
    )
    depth = wall.clone()
    depth[10, 10] = 1.0  # an outlier: the judge sees the wall there
    kept = stage._consistent(depth, K_half, T_ref, [judge])
    assert kept[10, 10] == 0.0
    inner = kept[:, 4:-4]  # away from the border the judge cannot see
    assert (inner > 0).float().mean() > 0.95
    assert torch.equal(stage._consistent(depth, K_half, T_ref, []), depth)  # no judge: as is


def test_unregistered_depth_samples_colour_where_it_lands():
    colour = torch.zeros(3, 48, 64)
    colour[0, :, 32:] = 1.0  # right half red
    depth = torch.full((24, 32), 2.0)
    K_depth = np.array([[25.0, 0, 15.5], [0, 25.0, 11.5], [0, 0, 1]])
    T = np.eye(4)
    T[0, 3] = 0.4  # depth camera 0.4 m right of the colour camera: the scene shifts left in it
    sampled = sample_at_depth_pixels(colour, K, depth, K_depth, T)
    # colour-image column of depth column c: 50 * ((c - 15.5) / 25 * 2 + 0.4) / 2 + 31.5
    columns = 50 * ((np.arange(32) - 15.5) / 25 * 2 + 0.4) / 2 + 31.5
    expected = (columns >= 32) & (columns < 63.5)
    red = sampled[0, 12].numpy() > 0.5
    assert np.array_equal(red[1:-1], expected[1:-1])


def _textured_wall_view(
    T_world_cam: np.ndarray, wall_y: float = 1.5, camera: PinholeCamera | None = None
) -> np.ndarray:
    """RGB image (48, 64), or ``camera``'s size, of a wall of 8 cm random grey blocks at world
    y = ``wall_y``."""
    camera = camera or PinholeCamera.from_matrix(K, 64, 48)
    Kc = camera.K
    texture = np.random.default_rng(5).integers(0, 256, (200, 200), dtype=np.uint8)
    v, u = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    rays = np.stack([(u - Kc[0, 2]) / Kc[0, 0], (v - Kc[1, 2]) / Kc[1, 1], np.ones_like(u)], -1)
    direction = rays @ T_world_cam[:3, :3].T
    origin = T_world_cam[:3, 3]
    hit = origin + ((wall_y - origin[1]) / direction[..., 1])[..., None] * direction
    ix = np.clip(((hit[..., 0] + 8.0) / 0.08).astype(int), 0, 199)
    iz = np.clip(((hit[..., 2] + 8.0) / 0.08).astype(int), 0, 199)
    return np.repeat(texture[iz, ix][..., None], 3, axis=-1)


def test_fine_sweep_gives_depth_at_the_input_size_on_the_wall():
    """An untrained network is the 16-plane NCC sweep (planes about 25 % of depth apart at
    1.5 m); with the fine sweep the depth comes at the input size, and on the wall."""
    camera = PinholeCamera.from_matrix(K, 64, 48)
    poses = [look_at_pose([x, 0, 1], [x, 3, 1]) for x in (0.0, 0.15, 0.3)]
    errors = {}
    for fine in (False, True):
        torch.manual_seed(0)
        stage = DepthFusionStage(
            MVSDepthNet(SMALL).eval(), "mvs", StereoSettings(fine_sweep=fine, min_confidence=0.0)
        )
        for T in poses:
            result = stage.depth_for_keyframe(_textured_wall_view(T), camera, T)
        assert result.source == "mvs" and result.partners == 2
        expected = (48, 64) if fine else (24, 32)
        assert result.depth.shape == expected and result.labels.shape == expected
        assert result.rgb.shape == (3, *expected) and result.confidence.shape == expected
        assert np.allclose(result.K, K if fine else np.array(
            [[25.0, 0, 15.5], [0, 25.0, 11.5], [0, 0, 1]]))  # fmt: skip
        rows, cols = expected
        inner = result.depth[rows // 4 : -rows // 4, cols // 4 : -cols // 4]
        errors[fine] = ((inner - 1.5).abs() / 1.5)[inner > 0]
    assert float(errors[True].median()) < 0.02
    assert float((errors[True] < 0.05).float().mean()) > 0.9


def test_fine_sweep_at_the_cameras_resolution():
    """A camera twice the network's input: with ``fine_max_width`` the fine sweep (and so the
    depth, labels and colour) comes at the camera's size, capped at that width, on the wall."""
    camera = PinholeCamera.from_matrix(K, 64, 48).resized(128, 96)
    poses = [look_at_pose([x, 0, 1], [x, 3, 1]) for x in (0.0, 0.15, 0.3)]
    cases = ((0, (48, 64)), (96, (72, 96)), (128, (96, 128)), (1000, (96, 128)))
    # and with plane fill on (whatever the untrained labels say, the wall stays on the wall)
    for (limit, size), fill in zip((*cases, (128, (96, 128))), (False,) * 4 + (True,), strict=True):
        torch.manual_seed(0)
        settings = StereoSettings(
            fine_sweep=True, min_confidence=0.0, fine_max_width=limit, plane_fill=fill
        )
        stage = DepthFusionStage(MVSDepthNet(SMALL).eval(), "mvs", settings)
        for T in poses:
            result = stage.depth_for_keyframe(_textured_wall_view(T, camera=camera), camera, T)
        assert result.source == "mvs" and result.depth.shape == size
        assert result.rgb.shape == (3, *size) and result.labels.shape == size
        assert np.allclose(result.K, camera.resized(size[1], size[0]).K)
        rows, cols = size
        inner = result.depth[rows // 4 : -rows // 4, cols // 4 : -cols // 4]
        errors = ((inner - 1.5).abs() / 1.5)[inner > 0]
        assert float(errors.median()) < 0.02, (limit, float(errors.median()))


def test_guessed_depth_weighs_less_than_matched_depth():
    """A textured wall with a plain grey band: the fine sweep matches the blocks, not the band,
    where the depth stays the network's guess. ``guess_weight`` scales the fusion weight of the
    guessed pixels only; the matched ones keep theirs."""
    camera = PinholeCamera.from_matrix(K, 64, 48)
    poses = [look_at_pose([x, 0, 1], [x, 3, 1]) for x in (0.0, 0.15, 0.3)]
    confidence = {}
    for weight in (1.0, 0.3):
        torch.manual_seed(0)
        settings = StereoSettings(fine_sweep=True, min_confidence=0.0, guess_weight=weight)
        stage = DepthFusionStage(MVSDepthNet(SMALL).eval(), "mvs", settings)
        for T in poses:
            image = _textured_wall_view(T, camera=camera)
            image[18:30] = 128  # plain: nothing to match
            result = stage.depth_for_keyframe(image, camera, T)
        assert result.source == "mvs"
        confidence[weight] = result.confidence
    used = confidence[1.0] > 0
    ratio = confidence[0.3][used] / confidence[1.0][used]
    kept = torch.isclose(ratio, torch.tensor(1.0))
    scaled = torch.isclose(ratio, torch.tensor(0.3))
    assert bool((kept | scaled).all())
    band = torch.zeros_like(used)
    band[20:28] = True
    assert float(scaled[band[used]].float().mean()) > 0.8  # the plain band: guessed
    assert float(kept[~band[used]].float().mean()) > 0.5  # the blocks: matched
