"""Plane fill: RANSAC planes against their slow reference, textureless pixels of a planar class
take their plane's depth, others keep theirs."""

import pytest
import torch

from recon_ros.core.camera import pixel_rays
from recon_ros.core.plane_fill import (
    fit_planes,
    fit_planes_reference,
    fit_upright_planes,
    fit_upright_planes_reference,
    plane_depth,
    plane_fill,
    wall_feet,
)

K = torch.tensor([[60.0, 0, 39.5], [0, 60.0, 29.5], [0, 0, 1]])
FLOOR, WALL, TABLE = 0, 1, 3


def _two_planes_with_outliers() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    # a floor 1 m below the camera (y down) and a wall 3 m ahead, plus scattered outliers
    floor = torch.rand(150, 3, generator=generator) * torch.tensor([2.0, 0.0, 2.0]) + torch.tensor(
        [-1.0, 1.0, 1.0]
    )
    wall = torch.rand(100, 3, generator=generator) * torch.tensor([2.0, 1.5, 0.0]) + torch.tensor(
        [-1.0, -0.5, 3.0]
    )
    outliers = torch.rand(30, 3, generator=generator) * 2.0 + torch.tensor([-1.0, -1.0, 1.0])
    truth = torch.tensor([[0.0, -1.0, 0.0, 1.0], [0.0, 0.0, -1.0, 3.0]])
    return torch.cat([floor, wall, outliers]), truth


def test_fit_planes_finds_both_planes_as_its_reference_does():
    points, truth = _two_planes_with_outliers()
    fast = fit_planes(points, min_support=50, iterations=32, seed=1)
    slow = fit_planes_reference(points, min_support=50, iterations=32, seed=1)
    assert fast.shape == slow.shape == (2, 4)
    assert torch.allclose(fast, slow, atol=1e-4)
    # the larger plane first; each normal faces the camera (d > 0)
    for plane, expected in zip(fast, truth, strict=True):
        normal = plane[:3] * torch.sign(plane[:3] @ expected[:3])
        assert torch.allclose(normal, expected[:3], atol=2e-3)  # outliers near it pull a little
        assert abs(float(plane[3]) - float(expected[3])) < 5e-3


def test_fit_planes_without_enough_support_finds_none():
    points, _ = _two_planes_with_outliers()
    assert fit_planes(points[:40], min_support=50).shape == (0, 4)
    with pytest.raises(ValueError, match="points"):
        fit_planes(points[:, :2])


def test_plane_depth_meets_a_wall():
    rays = pixel_rays(K, 60, 80)
    wall = torch.tensor([[0.0, 0.0, -1.0, 2.5]])  # z = 2.5
    depth = plane_depth(wall, rays)
    assert torch.allclose(depth, torch.full((1, 60, 80), 2.5))
    behind = plane_depth(torch.tensor([[0.0, 0.0, 1.0, 2.5]]), rays)  # z = -2.5
    assert torch.all(behind == 0)


def test_textureless_floor_takes_the_plane_depth():
    """A floor 1 m below the camera in the lower half of the image, labelled floor, with a
    table patch on it. Textured stripes of the floor are exact (refined); the rest is 10 % off.
    Filling puts the floor on its plane; the table keeps its depth; a floor pixel 50 % off (a
    mislabelled object) keeps its depth."""
    height, width = 60, 80
    rays = pixel_rays(K, height, width)
    floor_depth = plane_depth(torch.tensor([[0.0, -1.0, 0.0, 1.0]]), rays)[0]  # y = 1
    lower = floor_depth > 0
    labels = torch.where(lower, FLOOR, WALL)
    labels[45:50, 30:40] = TABLE
    noise = 1.0 + 0.1 * torch.sign(
        torch.randn(height, width, generator=torch.Generator().manual_seed(0))
    )
    depth = torch.where(lower, floor_depth * noise, torch.zeros(height, width))
    refined = torch.zeros(height, width, dtype=torch.bool)
    refined[:, ::4] = lower[:, ::4]  # textured stripes
    depth[refined] = floor_depth[refined]
    depth[52, 10] = floor_depth[52, 10] * 1.5
    result = plane_fill(depth, refined, labels, K, (FLOOR, WALL), min_support=50)
    assert result.planes.shape[0] == 1
    floor = lower & (labels == FLOOR) & ~refined
    floor[52, 10] = False
    assert bool(result.filled[floor].all())
    assert torch.allclose(result.depth[floor], floor_depth[floor], rtol=1e-3)
    table = labels == TABLE
    assert torch.equal(result.depth[table], depth[table]) and not result.filled[table].any()
    assert float(result.depth[52, 10]) == pytest.approx(float(depth[52, 10]))
    assert torch.equal(result.depth[~lower], depth[~lower])  # unknown stays unknown


def test_plane_fill_checks_its_inputs():
    depth = torch.ones(6, 8)
    with pytest.raises(ValueError, match="labels"):
        plane_fill(depth, depth > 0, torch.zeros(6, 7, dtype=torch.long), K, (0,))
    with pytest.raises(ValueError, match="K"):
        plane_fill(depth, depth > 0, torch.zeros(6, 8, dtype=torch.long), K[:2], (0,))


def _room_corner(height: int = 60, width: int = 80):
    """A camera 1.2 m above a floor (y down) facing two walls that meet in a corner (planes
    z = 3 and x = 1.5, upright on the floor): exact depth and labels (floor, wall)."""
    rays = pixel_rays(K, height, width)
    planes = torch.tensor([[0.0, -1.0, 0.0, 1.2], [0.0, 0.0, -1.0, 3.0], [-1.0, 0.0, 0.0, 1.5]])
    depth_per_plane = plane_depth(planes, rays)
    depth_per_plane[depth_per_plane <= 0] = float("inf")
    depth, which = depth_per_plane.min(dim=0)
    labels = torch.where(which == 0, FLOOR, WALL)
    return depth, labels, planes, rays


def test_upright_planes_match_their_reference_and_stand_on_the_floor():
    _, labels, planes, rays = _room_corner()
    feet = wall_feet(labels, rays, planes[0], FLOOR, WALL)
    assert len(feet) > 40
    # every foot lies on the floor plane
    assert torch.allclose(feet @ planes[0, :3] + planes[0, 3], torch.zeros(len(feet)), atol=1e-4)
    up = planes[0, :3]
    fast = fit_upright_planes(feet, up, min_support=10, iterations=32, seed=2)
    slow = fit_upright_planes_reference(feet, up, min_support=10, iterations=32, seed=2)
    assert fast.shape == slow.shape == (2, 4)
    assert torch.allclose(fast, slow, atol=1e-4)
    for plane in fast:
        assert abs(float(plane[:3] @ up)) < 1e-5  # upright
        # it is one of the two walls, within a pixel (4-5 cm at 2-3 m with this 60 px focal
        # length: the side wall's junction is a staircase in the image)
        error = [float((plane - wall).abs().max()) for wall in planes[1:]]
        assert min(error) < 0.05, (plane, error)
    with pytest.raises(ValueError, match="up"):
        fit_upright_planes(feet, torch.zeros(3))


def test_plain_walls_take_planes_through_their_feet():
    """The floor is textured (refined, exact); both walls are plain (unrefined, 8 % off).
    Without the feet the walls keep their error; with them they land on their planes."""
    depth, labels, _, _ = _room_corner()
    generator = torch.Generator().manual_seed(5)
    wrong = depth * (1 + 0.08 * torch.randn(depth.shape, generator=generator).clamp(-2, 2))
    refined = labels == FLOOR
    start = torch.where(refined, depth, wrong)
    walls = labels == WALL

    def median_error(result):
        return float(((result.depth - depth).abs() / depth)[walls].median())

    without = plane_fill(start, refined, labels, K, (FLOOR, WALL), min_support=50)
    with_feet = plane_fill(
        start, refined, labels, K, (FLOOR, WALL), min_support=50, wall_class=WALL,
        base_classes=(FLOOR,), feet_min_support=10,
    )  # fmt: skip
    assert median_error(without) > 0.04
    assert median_error(with_feet) < 0.01
    assert bool(with_feet.filled[walls].float().mean() > 0.9)
    # no floor plane, no feet: walls keep their depth
    no_floor = plane_fill(
        start, torch.zeros_like(refined), labels, K, (FLOOR, WALL), wall_class=WALL,
        base_classes=(FLOOR,),
    )  # fmt: skip
    assert torch.equal(no_floor.depth, start)
