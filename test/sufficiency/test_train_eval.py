"""A tiny train + evaluate round trip through the command-line functions, resume, benchmark."""

import argparse
import json

import numpy as np
import pytest
import torch

from recon_ros.apps.benchmarks.sufficiency import add_parser as add_bench_parser
from recon_ros.apps.benchmarks.sufficiency import benchmark_sufficiency, format_report
from recon_ros.datasets.layout import SceneFolderWriter
from recon_ros.sufficiency.checkpoint import load_checkpoint, load_model
from recon_ros.sufficiency.evaluate import add_evaluate_parser
from recon_ros.sufficiency.sources import open_sequences
from recon_ros.sufficiency.synthetic import ToySequence
from recon_ros.sufficiency.train import add_train_parser


def cli() -> argparse.ArgumentParser:
    """The parser layout of ``recon-ros``: ``train`` and ``evaluate`` with subcommands."""
    parser = argparse.ArgumentParser(prog="recon-ros")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_parser(commands.add_parser("train").add_subparsers(dest="what", required=True))
    add_evaluate_parser(commands.add_parser("evaluate").add_subparsers(dest="what", required=True))
    add_bench_parser(commands)
    return parser


TRAIN = (
    "train sufficiency --toy 2 --toy-frames 8 --m 2 --window 3 --size 24 32 --width 8 "
    "--batch-size 4 --device cpu --quiet --seed 3"
)


def run(argv: str) -> int:
    args = cli().parse_args(argv.split())
    return args.func(args)


def test_train_resume_evaluate(tmp_path):
    out = tmp_path / "run"
    assert run(f"{TRAIN} --epochs 1 --out {out}") == 0
    assert {"best.pt", "last.pt", "curves.png", "history.json"} <= {p.name for p in out.iterdir()}
    first = json.loads((out / "history.json").read_text())
    assert len(first) == 1
    # Resume: the second call continues from last.pt instead of starting over.
    assert run(f"{TRAIN} --epochs 3 --out {out}") == 0
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1, 2] and history[0] == first[0]
    ckpt = load_checkpoint(out / "last.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "metadata"} <= set(ckpt)
    meta = ckpt["metadata"]
    assert meta["m"] == 2 and meta["input_size"] == [24, 32] and len(meta["classes"]) == 3
    assert meta["recipe"]["lr"] == 1e-3 and meta["sample"]["window"] == 3

    # The same seed gives the same run (a fresh folder, one epoch).
    again = tmp_path / "again"
    assert run(f"{TRAIN} --epochs 1 --out {again}") == 0
    assert json.loads((again / "history.json").read_text()) == first
    a = load_model(out / "best.pt")[0].state_dict()
    assert all(torch.isfinite(v.float()).all() for v in a.values())

    report = tmp_path / "eval"
    assert (
        run(
            f"evaluate sufficiency --toy 1 --toy-seed 7 --toy-frames 8 --checkpoint {out}/best.pt "
            f"--out {report} --device cpu --quiet --partners overlap"
        )
        == 0
    )
    metrics = json.loads((report / "metrics.json").read_text())
    assert 0.0 <= metrics["pixel_accuracy"] <= 1.0 and metrics["samples"] == 8 - 2
    assert len(metrics["confusion"]) == 3 and metrics["count_mae"] >= 0
    assert (report / "confusion.png").stat().st_size > 0
    assert "pixel accuracy" in (report / "metrics.md").read_text()


def test_benchmark_runs_small():
    result = benchmark_sufficiency((24, 32), 2, iterations=1, warmup=0, devices=("cpu",))
    assert result["rows"][0]["what"].startswith("labels")
    assert all(r["per_s"] > 0 for r in result["rows"])
    assert "vs labels" in format_report(result)


def write_scene_folder(folder, seq) -> None:
    """A toy sequence in the generated-scene folder layout of recon_ros.datasets."""
    with SceneFolderWriter(folder) as writer:
        for i in range(len(seq)):
            f = seq[i]
            zeros = np.zeros(f.depth.shape)
            writer.write_frame(i, f.rgb, f.depth, zeros, zeros, f.T_world_cam)
        writer.write_metadata(
            {
                "camera": {"width": seq.width, "height": seq.height, "K": seq.K.tolist()},
                "frames": {
                    "count": len(seq),
                    "frame_rate": 5.0,
                    "stamps_ns": [int(2e8) * i for i in range(len(seq))],
                },
            },
            seq.K,
        )


def test_train_on_dataset_folders(tmp_path):
    root = tmp_path / "data"
    for i in range(2):
        write_scene_folder(root / f"scene_{i:04d}", ToySequence(i, num_frames=6, hw=(30, 40)))
    seqs = open_sequences([root])
    assert [s.name for s in seqs] == ["scene_0000", "scene_0001"]
    assert seqs[0][2].stamp_ns == int(4e8)
    out = tmp_path / "run"
    argv = (
        f"train sufficiency --data {root} --m 2 --window 3 --size 24 32 --width 8 --epochs 1 "
        f"--device cpu --quiet --out {out}"
    )
    assert run(argv) == 0
    meta = load_checkpoint(out / "last.pt")["metadata"]
    assert meta["recipe"]["sample"]["m"] == 2


def test_train_evaluate_with_frustum_input(tmp_path):
    out = tmp_path / "run"
    argv = f"{TRAIN} --epochs 1 --out {out} --inputs rgb+frustum --threads 1"
    assert run(argv) == 0
    meta = load_checkpoint(out / "best.pt")["metadata"]
    assert meta["inputs"] == "rgb+frustum" and meta["sample"]["inputs"] == "rgb+frustum"
    assert load_model(out / "best.pt")[0].in_channels == 3 * 3 + 2 * 2
    # Resuming with the other input kind is refused.
    with pytest.raises(ValueError, match="inputs"):
        run(f"{TRAIN} --epochs 2 --out {out}")
    report = tmp_path / "eval"
    argv = (
        f"evaluate sufficiency --toy 1 --toy-seed 7 --toy-frames 8 --checkpoint {out}/best.pt "
        f"--out {report} --device cpu --quiet --threads 1 --reference-stride 2 --partners overlap"
    )
    assert run(argv) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["samples"] == 3 and metrics["sample"]["inputs"] == "rgb+frustum"
