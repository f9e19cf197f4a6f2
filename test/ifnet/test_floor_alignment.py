"""Aligning predicted depth to the floor: against its per-pixel reference, a known scale error
is taken out, images with too little floor keep their scale, snapping flattens the floor and
leaves the rest, gradients reach the depth, and a model configured for it aligns only where the
floor is known."""

import dataclasses

import numpy as np
import pytest
import torch

from recon_ros.ifnet.floor_alignment import align_depth_to_floor, align_depth_to_floor_reference
from recon_ros.ifnet.floor_prior import floor_depth
from recon_ros.ifnet.ifnet import SingleViewIFNet

K = torch.tensor([[[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]]])
DOWNCAST_UP = torch.tensor([[0.0, -0.97, -0.24]])  # looking 14 degrees down


def _scene(scale: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, 24, 32) a predicted depth: the floor from 1.2 m below, a box in front of it, all
    times ``scale`` with 2 % noise; and the floor's true depth."""
    floor = floor_depth(K, DOWNCAST_UP, torch.tensor([1.2]), (24, 32), 8.0)
    truth = torch.where(floor > 0, floor, torch.full_like(floor, 5.0))
    truth[:, 4:16, 10:20] = 1.5  # an object in front of the floor and the far wall
    noise = torch.from_numpy(np.random.default_rng(seed).normal(1, 0.02, (1, 24, 32)))
    return truth * scale * noise.float(), floor


@pytest.mark.parametrize("scale", [0.9, 1.0, 1.08])
def test_alignment_matches_its_reference_and_removes_the_scale(scale):
    predicted, floor = _scene(scale, seed=1)
    aligned, scales = align_depth_to_floor(predicted, floor)
    reference, reference_scale = align_depth_to_floor_reference(
        predicted[0].numpy(), floor[0].numpy()
    )
    assert scales[0].item() == pytest.approx(reference_scale, rel=1e-5)
    np.testing.assert_allclose(aligned[0].numpy(), reference, rtol=1e-5)
    assert scales[0].item() == pytest.approx(1 / scale, rel=0.01)
    assert (aligned[0, 4:16, 10:20].median() / 1.5).item() == pytest.approx(1.0, abs=0.015)


def test_snapping_flattens_the_floor_and_leaves_the_rest():
    predicted, floor = _scene(1.04, seed=4)
    aligned, scales = align_depth_to_floor(predicted, floor, snap=0.05)
    reference, reference_scale = align_depth_to_floor_reference(
        predicted[0].numpy(), floor[0].numpy(), snap=0.05
    )
    np.testing.assert_allclose(aligned[0].numpy(), reference, rtol=1e-5)
    assert scales[0].item() == pytest.approx(reference_scale, rel=1e-5)
    visible = floor[0] > 0
    visible[4:16, 10:20] = False  # the box hides the floor there
    # 2 % noise: nearly every floor pixel snaps onto the floor exactly
    assert (aligned[0][visible] == floor[0][visible]).float().mean() > 0.95
    box = aligned[0, 4:16, 10:20]
    assert torch.allclose(box, predicted[0, 4:16, 10:20] * scales[0])  # off the floor: scaled only
    with pytest.raises(ValueError, match="snap"):
        align_depth_to_floor(predicted, floor, snap=1.5)


def test_images_with_too_little_floor_keep_their_scale():
    predicted, floor = _scene(1.05, seed=2)
    sky = torch.zeros_like(floor)
    sky[:, -1, :3] = floor[:, -1, :3]  # 3 floor pixels of 768: under 2 %
    aligned, scales = align_depth_to_floor(
        torch.cat([predicted, predicted]), torch.cat([floor, sky])
    )
    assert scales[1].item() == 1.0 and torch.equal(aligned[1], predicted[0])
    assert scales[0].item() != 1.0
    assert align_depth_to_floor_reference(predicted[0].numpy(), sky[0].numpy())[1] == 1.0
    with pytest.raises(ValueError, match="shape"):
        align_depth_to_floor(predicted, floor[:, :10])


def test_gradients_reach_the_depth():
    predicted, floor = _scene(1.05, seed=3)
    predicted.requires_grad_(True)
    aligned, scales = align_depth_to_floor(predicted, floor)
    aligned.sum().backward()
    # the scale is a constant for autograd: d(sum)/d(depth) is the scale everywhere
    assert torch.allclose(predicted.grad, torch.full_like(predicted, scales[0].item()))


def test_a_floor_align_model_aligns_only_with_a_known_floor(tiny_ifnet_config):
    torch.manual_seed(0)
    config = dataclasses.replace(
        tiny_ifnet_config, floor_input=True, floor_align=True, floor_snap=0.05
    )
    model = SingleViewIFNet(config).eval()
    images = torch.rand(2, 3, 32, 32)
    K2 = torch.tensor([[[30.0, 0, 15.5], [0, 30.0, 15.5], [0, 0, 1]]] * 2)
    up = DOWNCAST_UP.repeat(2, 1)
    height = torch.tensor([1.2, float("nan")])
    with torch.no_grad():
        raw = model.predict_depth(images, K2, up, height, align=False)
        aligned = model.predict_depth(images, K2, up, height)
    floor = floor_depth(K2, up, height, (32, 32), config.max_depth)
    expected, _ = align_depth_to_floor(raw, floor, snap=0.05)
    assert torch.allclose(aligned, expected)
    assert torch.equal(aligned[1], raw[1])  # no floor known: the prediction as it is
