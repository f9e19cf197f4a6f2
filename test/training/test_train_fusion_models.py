"""`recon-ros train depth` and `recon-ros train refiner` end to end on tiny generated scenes:
checkpoints in their formats, validation records, and a stopped run that resumes where it
stopped."""

import json

import torch

from recon_ros.apps.cli import main
from recon_ros.core.depth_checkpoint import load_depth_net, save_depth_net
from recon_ros.core.depth_net import DepthNetConfig, MVSDepthNet
from recon_ros.core.refine_checkpoint import load_refine_net

from .conftest import TINY_IMAGE_SIZE


def history(run):
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_train_depth_validates_balances_classes_and_resumes(tiny_train, tmp_path):
    out = tmp_path / "depth"
    common = [
        "train", "depth", "--data", str(tiny_train), "--val-data", str(tiny_train), "--out",
        str(out), "--batch-size", "1", "--crop", "128", "96", "--val-every", "2",
        "--val-samples", "2", "--log-every", "1", "--threads", "1", "--planes", "16",
        "--semantic-balance", "0.5", "--keep-snapshots",
    ]  # fmt: skip
    assert main([*common, "--steps", "2"]) == 0
    first = history(out)
    assert [r["step"] for r in first if r["kind"] == "val"] == [2]
    assert main([*common, "--steps", "4"]) == 0
    records = history(out)
    assert records[: len(first)] == first  # the resumed run kept the record and went on
    assert [r["step"] for r in records if r["kind"] == "val"] == [2, 4]
    val = records[-1]
    assert 0.0 <= val["semantic_miou"] <= 1.0 and val["abs_rel"] > 0
    model, metadata = load_depth_net(out / "best.pt")
    assert metadata["trained"] is True and "--semantic-balance 0.5" in metadata["recipe"]
    assert model.config.planes == 16
    assert (out / "snapshots" / "step_2.pt").is_file()
    assert (out / "snapshots" / "step_4.pt").is_file()


def test_train_refiner_prepares_pairs_trains_and_resumes(tiny_train, tmp_path):
    torch.manual_seed(0)
    depth = save_depth_net(
        MVSDepthNet(DepthNetConfig(image_size=TINY_IMAGE_SIZE, planes=16, widths=(8, 8, 8, 8))),
        tmp_path / "depth.pt",
        trained=False,
    )
    out = tmp_path / "refiner"
    common = [
        "train", "refiner", "--data", str(tiny_train), "--val-data", str(tiny_train),
        "--depth-weights", str(depth), "--out", str(out), "--scenes", "1", "--val-scenes", "1",
        "--batch-size", "2", "--block", "16", "--val-every", "2", "--val-blocks", "2",
        "--log-every", "1", "--threads", "1",
    ]  # fmt: skip
    assert main([*common, "--steps", "2"]) == 0
    pairs = sorted((out / "pairs").rglob("*.npz"))
    assert [p.parent.name for p in pairs] == ["train", "val"]
    stamps = [p.stat().st_mtime_ns for p in pairs]
    assert main([*common, "--steps", "4"]) == 0
    assert [p.stat().st_mtime_ns for p in pairs] == stamps  # prepared once
    records = history(out)
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [2, 4]
    for key in ("refined_tsdf_l1", "fused_tsdf_l1", "refined_miou", "fused_miou"):
        assert val[-1][key] >= 0.0, key
    model, metadata = load_refine_net(out / "best.pt")
    assert metadata["trained"] is True and "train refiner" in metadata["recipe"]
    assert model.config.block == 16
