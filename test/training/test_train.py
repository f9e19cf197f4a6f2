"""Short training runs on tiny generated scenes: every stage runs, the loss falls, a run resumes
exactly, and the outputs load."""

import json

import pytest
import torch

from recon_ros.apps.cli import build_parser
from recon_ros.core.checkpoint import load_atlas_model
from recon_ros.training.atlas_train import STAGE_DEFAULTS, build_stage, engine_config
from recon_ros.training.engine import load_state, lr_factor, run_stage

from .conftest import TINY_IMAGE_SIZE

#: Options of every tiny run: small model and images, tiny crops, no workers, one thread.
TINY_OPTIONS = [
    "--model-size",
    "small",
    "--num-workers",
    "0",
    "--threads",
    "1",
    "--quiet",
    "--samples-per-epoch",
    "8",
    "--crop",
    "16",
    "16",
    "16",
    "--views",
    "4",
    "--val-crops",
    "2",
    "--val-frames",
    "2",
    "--warmup-steps",
    "2",
]


def parse(tiny_train, out, stage, *extra):
    argv = [
        *f"train atlas --stage {stage} --out {out}".split(),
        *("--train-data", str(tiny_train), "--val-data", str(tiny_train / "scene_0001")),
        *("--image-size", *map(str, TINY_IMAGE_SIZE)),
        *TINY_OPTIONS,
        *extra,
    ]
    args = build_parser(argv).parse_args(argv)
    for key, value in STAGE_DEFAULTS[stage].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def train(args):
    return run_stage(build_stage(args), engine_config(args))


@pytest.fixture(scope="module")
def run_dir(tiny_train, tmp_path_factory):
    """A run folder with a trained backbone (the stages below start from it)."""
    out = tmp_path_factory.mktemp("run")
    summary = train(parse(tiny_train, out, "backbone", *["--steps", "2", "--batch-size", "2"]))
    assert summary["finished"] and summary["steps"] == 2
    return out


def test_backbone_stage_outputs(run_dir):
    folder = run_dir / "backbone"
    names = "backbone.pt last.pt best.pt curves.png metrics.csv history.json summary.json"
    for name in names.split():
        assert (folder / name).is_file(), name
    history = json.loads((folder / "history.json").read_text())
    assert [h["step"] for h in history if h["kind"] == "val"] == [0, 2]
    payload = torch.load(folder / "backbone.pt", weights_only=True)
    assert payload["format"] == "recon_ros.atlas_backbone" and payload["backbone"]


def test_volume_stage_lowers_the_loss(tiny_train, run_dir):
    options = ["--steps", "25", "--lr", "3e-3", "--val-every", "0", "--no-rotate"]
    summary = train(parse(tiny_train, run_dir, "volume", *options))
    history = json.loads((run_dir / "volume" / "history.json").read_text())
    val = [h for h in history if h["kind"] == "val"]
    assert [h["step"] for h in val] == [0, 25]
    assert val[-1]["loss"] < val[0]["loss"]
    assert val[-1]["tsdf"] < 0.8 * val[0]["tsdf"], (val[0]["tsdf"], val[-1]["tsdf"])
    model, metadata = load_atlas_model(summary["artifacts"]["atlas"])
    assert metadata["trained"] is True
    assert model.config.image_size == TINY_IMAGE_SIZE
    # The exported model carries the stage's backbone.
    backbone = torch.load(run_dir / "backbone" / "backbone.pt", weights_only=True)["backbone"]
    for name, value in backbone.items():
        torch.testing.assert_close(model.backbone.state_dict()[name], value)


def test_a_stopped_run_resumes_exactly(tiny_train, run_dir, tmp_path):
    common = [
        *[
            "--steps",
            "3",
            "--val-every",
            "0",
            "--checkpoint-every",
            "1",
            "--lr",
            "1e-3",
            "--val-crops",
            "1",
        ],
        *("--cache-dir", str(run_dir / "feature_cache")),
        *("--backbone", str(run_dir / "backbone" / "backbone.pt")),
    ]
    train(parse(tiny_train, tmp_path / "a", "volume", *common))
    stopped = parse(tiny_train, tmp_path / "b", "volume", *common, "--max-minutes", "0")
    first = train(stopped)
    assert first["steps"] == 1 and not first["finished"]
    stopped.max_minutes = None
    resumed = train(stopped)
    assert resumed["steps"] == 3 and resumed["finished"]
    a = load_state(tmp_path / "a" / "volume" / "last.pt")["model"]
    b = load_state(tmp_path / "b" / "volume" / "last.pt")["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_finetune_stage_from_the_volume_checkpoint(tiny_train, run_dir):
    if not (run_dir / "volume" / "atlas.pt").is_file():
        pytest.skip("needs the volume stage")
    options = ["--steps", "1", "--views", "2", "--val-crops", "1"]
    summary = train(parse(tiny_train, run_dir, "finetune", *options))
    model, _ = load_atlas_model(summary["artifacts"]["atlas"])
    assert model.config.feature_channels == 16


def test_schedule_warms_up_then_decays():
    assert lr_factor(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
    assert 0.1 < lr_factor(55, 100, 10, 0.1) < 1.0


def test_schedule_holds_then_anneals():
    # a constant-rate run resumed to anneal: base until the hold step, then cosine to the end
    from recon_ros.training.run_folder import FINAL_LR_FRACTION, scheduled_lr

    assert scheduled_lr(0, 200, 1.0, 0, hold=100) == pytest.approx(1.0)
    assert scheduled_lr(99, 200, 1.0, 0, hold=100) == pytest.approx(1.0)
    assert scheduled_lr(100, 200, 1.0, 0, hold=100) == pytest.approx(1.0)
    assert scheduled_lr(150, 200, 1.0, 0, hold=100) == pytest.approx(0.5 * (1 + FINAL_LR_FRACTION))
    assert scheduled_lr(200, 200, 1.0, 0, hold=100) == pytest.approx(FINAL_LR_FRACTION)
    assert scheduled_lr(5, 200, 1.0, 10, hold=100) == pytest.approx(0.6)  # warm-up first
