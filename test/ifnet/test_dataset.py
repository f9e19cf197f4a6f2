"""IF-Net samples from a generated scene: the stored signed distance agrees with the frame's own
depth, builds are resumable and byte-identical, queries are deterministic by seed."""

import pytest
import torch

from recon_ros.ifnet.dataset import SingleViewSamples, build_samples, sdf_at
from recon_ros.ifnet.frustum_grid import FrustumGrid, backproject_depth

GRID = FrustumGrid.in_front((24, 20, 20), 0.15, near=0.3)


def test_samples_agree_with_the_frames_depth(tiny_scenes, tmp_path):
    out = tmp_path / "samples"
    assert build_samples(tiny_scenes, out, frames_per_scene=3, image_size=(64, 48), grid=GRID) == 3
    before = {p.name: p.read_bytes() for p in out.glob("*.npz")}
    assert build_samples(tiny_scenes, out, frames_per_scene=3, image_size=(64, 48), grid=GRID) == 3
    assert before == {p.name: p.read_bytes() for p in out.glob("*.npz")}
    samples = SingleViewSamples(out, queries=512, seed=3)
    item = samples[0]
    assert item["image"].shape == (3, 48, 64) and item["sdf"].shape == GRID.dims
    # the depth's own points lie on the surface; halfway to them lies free space
    points, valid = backproject_depth(item["depth"][None], item["K"][None])
    points = points[0][valid[0]][::7]
    inside_grid = (GRID.normalised(GRID.to_grid(points)).abs() <= 1).all(dim=1)
    points = points[inside_grid]
    assert len(points) > 50
    on_surface = sdf_at(item["sdf"], GRID, points)
    assert torch.quantile(on_surface.abs(), 0.9) < 0.6 * GRID.voxel_size
    halfway = sdf_at(item["sdf"], GRID, points * 0.5)
    inside = GRID.normalised(GRID.to_grid(points * 0.5)).abs().max(dim=1).values <= 1
    assert (halfway[inside] > 0).float().mean() > 0.95
    # queries: both labels present, the same for the same seed, others for another
    assert 0.05 < float(item["occupied"].mean()) < 0.95
    assert torch.equal(SingleViewSamples(out, 512, seed=3)[0]["queries"], item["queries"])
    assert not torch.equal(SingleViewSamples(out, 512, seed=4)[0]["queries"], item["queries"])


def test_augmented_items_keep_depth_and_distances_together(tiny_scenes, tmp_path):
    """Mirrored and recoloured items: the depth's points still lie on the (mirrored) surface,
    some items are mirrored (their depth differs from the plain item's), the colours change."""
    out = tmp_path / "samples"
    build_samples(tiny_scenes, out, frames_per_scene=2, image_size=(64, 48), grid=GRID)
    plain = SingleViewSamples(out, queries=256, seed=0)[0]
    augmented = SingleViewSamples(out, queries=256, seed=0, augment=True)
    mirrored = 0
    for epoch in range(6):
        augmented.epoch = epoch
        item = augmented[0]
        assert not torch.equal(item["image"], plain["image"])
        mirrored += not torch.equal(item["depth"], plain["depth"])
        points, valid = backproject_depth(item["depth"][None], item["K"][None])
        points = points[0][valid[0]][::5]
        points = points[(GRID.normalised(GRID.to_grid(points)).abs() <= 1).all(dim=1)]
        on_surface = sdf_at(item["sdf"], GRID, points)
        assert torch.quantile(on_surface.abs(), 0.9) < 0.6 * GRID.voxel_size
    assert 0 < mirrored < 6
    again = SingleViewSamples(out, 256, 0, augment=True)
    again.epoch = augmented.epoch
    assert torch.equal(augmented[0]["image"], again[0]["image"])


def test_samples_refuse_a_folder_without_index(tmp_path):
    with pytest.raises(ValueError, match=r"no index\.json"):
        SingleViewSamples(tmp_path)
