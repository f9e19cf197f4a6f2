"""Training samples: frames, crops (features and images), the feature cache, the sampler."""

import numpy as np
import pytest
import torch

from recon_ros.core.atlas_model import AtlasModel, AtlasModelConfig
from recon_ros.training.data import (
    CropConfig,
    CropDataset,
    FrameDataset,
    ResumableDistributedSampler,
    steps_per_epoch,
)
from recon_ros.training.feature_cache import build_feature_cache, load_scene_features
from recon_ros.training.scenes import (
    balanced_class_weights,
    class_frequencies,
    load_training_scenes,
)

from .conftest import TINY_IMAGE_SIZE


@pytest.fixture(scope="module")
def scenes(tiny_train):
    return load_training_scenes(tiny_train)


@pytest.fixture(scope="module")
def cache(scenes, tmp_path_factory):
    torch.manual_seed(0)
    backbone = AtlasModel(AtlasModelConfig.small(image_size=TINY_IMAGE_SIZE)).backbone
    folder = tmp_path_factory.mktemp("cache")
    build_feature_cache(scenes, backbone, folder, TINY_IMAGE_SIZE, "test", progress=False)
    return folder


def test_scenes_and_frames(scenes):
    assert [s.name for s in scenes] == ["scene_0000", "scene_0001"]
    assert scenes[0].num_frames == 10 and scenes[0].poses.shape == (10, 4, 4)
    data = FrameDataset(scenes, TINY_IMAGE_SIZE, seed=3)
    item = data[4]
    assert item["image"].shape == (3, 96, 128)
    assert item["depth"].shape == item["semantic"].shape == (24, 32)
    assert item["image"].min() >= 0 and item["image"].max() <= 1
    assert torch.equal(data[4]["image"], item["image"])  # deterministic by (seed, epoch, index)
    data.set_epoch(1)
    assert not torch.equal(data[4]["image"], item["image"])
    frequencies = class_frequencies(scenes, 9)
    assert frequencies.sum() == pytest.approx(1.0) and frequencies[1] > 0  # walls
    weights = balanced_class_weights(frequencies)
    assert np.sum(weights * frequencies) == pytest.approx(1.0)
    assert weights[frequencies > 0].argmax() == frequencies[frequencies > 0].argmin()


def test_feature_cache(scenes, cache):
    features = load_scene_features(cache, scenes[1])
    assert features.shape == (10, 16, 24, 32) and features.dtype == np.float16
    other = AtlasModel(AtlasModelConfig.small(image_size=TINY_IMAGE_SIZE)).backbone
    with pytest.raises(ValueError, match="feature cache"):
        build_feature_cache(scenes, other, cache, TINY_IMAGE_SIZE, "another", progress=False)


def test_feature_crops(scenes, cache):
    config = CropConfig(dims=(16, 16, 16), views=4)
    data = CropDataset(
        scenes,
        config,
        length=6,
        seed=1,
        mode="features",
        cache_dir=cache,
        image_size=TINY_IMAGE_SIZE,
    )
    item = data[3]
    assert item["input"].shape == (17, 16, 16, 16)
    assert item["tsdf"].shape == item["observed"].shape == (1, 16, 16, 16)
    assert item["semantic"].shape == (16, 16, 16) and item["semantic"].dtype == torch.int64
    seen = item["input"][-1]
    assert seen.sum() > 0  # the frames see the crop
    assert torch.equal(data[3]["input"], item["input"])
    labelled = item["semantic"] != 255
    assert labelled.any() and bool(item["observed"][0][labelled].all())
    assert item["tsdf"].min() >= -1 and item["tsdf"].max() <= 1
    sample = data.draw(3)
    assert len(sample.frames) == 4 and sample.scene_index == 3 % 2


def test_image_crops(scenes):
    config = CropConfig(dims=(16, 16, 8), views=3, rotate=False)
    data = CropDataset(scenes, config, length=2, mode="images", image_size=TINY_IMAGE_SIZE)
    item = data[0]
    assert item["images"].shape == (3, 3, 96, 128)
    assert item["K"].shape == (3, 3, 3) and item["T_world_cam"].shape == (3, 4, 4)
    assert item["origin"].shape == (3,)
    with pytest.raises(ValueError, match="cache_dir"):
        CropDataset(scenes, config, length=2, mode="features")


def test_sampler_resumes_where_it_stopped():
    data = list(range(20))
    full = ResumableDistributedSampler(data, num_replicas=2, rank=1, seed=5)
    full.set_epoch(3)
    order = list(full)
    assert len(order) == 10
    resumed = ResumableDistributedSampler(data, num_replicas=2, rank=1, seed=5)
    resumed.set_epoch(3)
    resumed.set_start(4)
    assert list(resumed) == order[4:] and len(resumed) == 6
    other = ResumableDistributedSampler(data, num_replicas=2, rank=0, seed=5)
    other.set_epoch(3)
    assert not set(other) & set(order)  # ranks share nothing
    assert steps_per_epoch(20, 2, 3) == 3
    with pytest.raises(ValueError, match="too small"):
        steps_per_epoch(3, 2, 2)
