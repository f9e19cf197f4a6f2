"""The DDP path for real: two processes on the gloo backend train a couple of steps and end with
identical weights (gradients were averaged), rank 0 writing the outputs."""

import json

import torch

from recon_ros.core.atlas_model import AtlasModelConfig
from recon_ros.core.checkpoint import write_untrained_checkpoint
from recon_ros.training.atlas_train import train_from_argv
from recon_ros.training.distributed import spawn_local

from .conftest import TINY_IMAGE_SIZE


def test_two_processes_train_in_step(tiny_train, tmp_path):
    backbone = write_untrained_checkpoint(
        tmp_path / "backbone.pt", config=AtlasModelConfig.small(image_size=TINY_IMAGE_SIZE)
    )
    argv = [
        "train", "atlas", "--stage", "volume", "--train-data", str(tiny_train),
        "--val-data", str(tiny_train / "scene_0001"), "--out", str(tmp_path / "run"),
        "--backbone", str(backbone), "--model-size", "small",
        "--image-size", *map(str, TINY_IMAGE_SIZE), "--steps", "2", "--samples-per-epoch", "8",
        "--crop", "16", "16", "16", "--views", "3", "--val-crops", "1", "--num-workers", "0",
        "--threads", "1", "--device", "cpu", "--quiet",
    ]  # fmt: skip
    spawn_local(2, train_from_argv, argv, str(tmp_path / "rank{rank}.pt"))
    first = torch.load(tmp_path / "rank0.pt", weights_only=True)
    second = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for name, value in first.items():
        if "running" in name or "num_batches" in name:
            continue  # batch-norm statistics stay per process on the CPU
        torch.testing.assert_close(value, second[name], rtol=0, atol=0, msg=name)
    summary = json.loads((tmp_path / "run" / "volume" / "summary.json").read_text())
    assert summary["description"]["world_size"] == 2 and summary["steps"] == 2
    assert (tmp_path / "run" / "volume" / "atlas.pt").is_file()
