"""`recon-ros generate --objects`, `recon-ros train r2n2` (both couplings, resumable) and
`recon-ros evaluate r2n2` end to end on a few object samples."""

import json

import torch

from recon_ros.apps.cli import main


def test_generate_train_resume_evaluate(tmp_path, capsys):
    data = tmp_path / "objects"
    assert main(["generate", str(data), "--objects", "3", "--seed", "9",
                 "--object-views", "3"]) == 0  # fmt: skip
    assert "3 object samples" in capsys.readouterr().out

    def train(out, neighbourhood, steps):
        argv = ["train", "r2n2", "--data", str(data), "--val-data", str(data), "--out",
                str(out), "--neighbourhood", str(neighbourhood), "--steps", str(steps),
                "--batch-size", "2", "--val-every", "2", "--val-samples", "3",
                "--log-every", "1", "--threads", "1"]  # fmt: skip
        assert main(argv) == 0

    train(tmp_path / "k3", 3, 2)
    train(tmp_path / "k3", 3, 3)
    assert "resumed at step 2" in capsys.readouterr().out
    train(tmp_path / "k1", 1, 2)
    # fine-tuning: another run from k3's weights, occupied voxels weighted, the rate annealed
    argv = ["train", "r2n2", "--data", str(data), "--val-data", str(data), "--out",
            str(tmp_path / "tuned"), "--init", str(tmp_path / "k3" / "best.pt"), "--steps", "2",
            "--decay-from", "1", "--occupied-weight", "3", "--batch-size", "2", "--val-every",
            "2", "--val-samples", "3", "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    tuned = torch.load(tmp_path / "tuned" / "best.pt", weights_only=True)
    recipe = tuned["metadata"]["recipe"]
    assert "--init" in recipe and "--occupied-weight 3.0" in recipe
    capsys.readouterr()
    assert main([a.replace("tuned", "k1tuned") for a in argv] + ["--neighbourhood", "1"]) != 0
    assert "has neighbourhood 3, not --neighbourhood 1" in capsys.readouterr().err
    out = tmp_path / "eval"
    assert main(["evaluate", "r2n2", "--data", str(data), "--out", str(out), "--checkpoints",
                 str(tmp_path / "k3" / "best.pt"), str(tmp_path / "k1" / "best.pt"),
                 "--threads", "1"]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert 0.0 <= results["iou"] <= 1.0 and 0.0 <= results["iou_1x1x1"] <= 1.0
    views = results["3x3x3"]["views"]
    assert sorted(views) == ["1", "2", "3", "4", "5"]
    assert set(views["3"]["classes"]) == {"table", "chair", "nightstand"}
