"""`recon-ros train ifnet` and `recon-ros evaluate ifnet` end to end on tiny samples: each
regime trains, stops and resumes; the evaluation writes the paper's metrics per regime."""

import json

import pytest

from recon_ros.apps.cli import main
from recon_ros.ifnet.dataset import build_samples
from recon_ros.ifnet.frustum_grid import FrustumGrid
from recon_ros.ifnet.train import load_ifnet

GRID = FrustumGrid.in_front((16, 12, 12), 0.25, near=0.3)


@pytest.fixture(scope="module")
def samples(tiny_scenes, tmp_path_factory):
    root = tmp_path_factory.mktemp("ifnet_samples")
    build_samples(tiny_scenes, root / "train", frames_per_scene=4, image_size=(64, 64), grid=GRID)
    build_samples(tiny_scenes, root / "val", frames_per_scene=2, image_size=(64, 64), grid=GRID)
    return root


def _train(samples, out, regime, steps, *extra):
    argv = ["train", "ifnet", "--data", str(samples / "train"), "--val-data",
            str(samples / "val"), "--out", str(out), "--regime", regime, "--steps", str(steps),
            "--batch-size", "2", "--queries", "256", "--val-every", "2", "--val-samples", "2",
            "--log-every", "1", "--threads", "1", *extra]  # fmt: skip
    assert main(argv) == 0


def test_regimes_train_resume_and_evaluate(samples, tmp_path, capsys):
    _train(samples, tmp_path / "depth", "depth", 2)
    _train(samples, tmp_path / "viability", "viability", 2)
    _train(samples, tmp_path / "viability", "viability", 4)  # resumes at step 2
    assert "resumed at step 2" in capsys.readouterr().out
    _train(samples, tmp_path / "pre", "pretrained", 2, "--depth-init",
           str(tmp_path / "depth" / "best.pt"), "--depth-weight", "0.5",
           "--occupied-weight", "2", "--init", str(tmp_path / "viability" / "best.pt"))  # fmt: skip
    assert (
        "--init " + str(tmp_path / "viability" / "best.pt")
        in (load_ifnet(tmp_path / "pre" / "best.pt")[1]["recipe"])
    )
    # several sample folders train as one
    _train(samples, tmp_path / "two", "viability", 1, "--data", str(samples / "train"),
           str(samples / "val"))  # fmt: skip
    assert (
        "--data " + str(samples / "train") + " " + str(samples / "val")
        in (load_ifnet(tmp_path / "two" / "best.pt")[1]["recipe"])
    )
    model, metadata = load_ifnet(tmp_path / "viability" / "best.pt")
    assert metadata["extra"]["regime"] == "viability" and model.grid.dims == GRID.dims
    out = tmp_path / "eval"
    argv = ["evaluate", "ifnet", "--data", str(samples / "val"), "--out", str(out),
            "--checkpoints", str(tmp_path / "pre" / "best.pt"),
            str(tmp_path / "viability" / "best.pt"), "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["regimes"]) == {"pretrained", "viability"}
    for key in ("iou", "chamfer_l2", "normal_consistency"):
        assert key in results
    assert 0.0 <= results["iou"] <= 1.0
    depth_row = results["regimes"]["pretrained"]  # the depth it got, measured beside
    assert depth_row["depth_log_l1"] > 0 and depth_row["depth_scale_error"] >= 0
    assert "depth_log_l1" not in results["regimes"]["viability"]
    assert results["iou"] == results["regimes"]["pretrained"]["iou"]
    with pytest.raises(SystemExit):
        main(["train", "ifnet", "--data", "x"])


def test_the_pretrained_regime_leaves_the_frozen_depth_net_untouched(samples):
    """With ``depth_weight`` 0 the depth U-Net is frozen in the pretrained regime, batch-norm
    statistics included: a training step changes the IF-Net, not one value of the U-Net's
    state."""
    import torch

    from recon_ros.ifnet.dataset import SingleViewSamples
    from recon_ros.ifnet.ifnet import SingleViewIFNet
    from recon_ros.ifnet.train import _trainable, config_for, regime_losses

    data = SingleViewSamples(samples / "train", 256, 0)
    torch.manual_seed(0)
    model = SingleViewIFNet(config_for(data)).train()
    before = {k: v.clone() for k, v in model.depth_net.state_dict().items()}
    ifnet_before = [p.clone() for p in model.ifnet.parameters()]
    optimiser = torch.optim.Adam(_trainable(model, "pretrained", 0.0), lr=1e-3)
    batch = {key: torch.stack([data[i][key] for i in range(2)]) for key in data[0]}
    losses = regime_losses(model, batch, "pretrained", depth_weight=0.0)
    assert set(losses) == {"total", "occupancy_bce"}
    losses["total"].backward()
    optimiser.step()
    after = model.depth_net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.depth_net.training  # handed back in the mode it was in
    changed = zip(ifnet_before, model.ifnet.parameters(), strict=True)
    assert any(not torch.equal(a, b) for a, b in changed)


def test_the_pretrained_regime_goes_on_learning_depth(samples):
    """With a depth weight the U-Net trains too, on the depth loss beside the occupancy loss,
    its batch norm on its running statistics (left untouched); occupied points weigh more with
    ``occupied_weight``."""
    import torch

    from recon_ros.ifnet.dataset import SingleViewSamples
    from recon_ros.ifnet.ifnet import SingleViewIFNet
    from recon_ros.ifnet.train import _trainable, config_for, regime_losses

    data = SingleViewSamples(samples / "train", 256, 0)
    torch.manual_seed(0)
    model = SingleViewIFNet(config_for(data)).train()
    batch = {key: torch.stack([data[i][key] for i in range(2)]) for key in data[0]}
    statistics = {k: v.clone() for k, v in model.depth_net.named_buffers()}
    losses = regime_losses(model, batch, "pretrained", depth_weight=0.5)
    assert all(torch.equal(v, statistics[k]) for k, v in model.depth_net.named_buffers())
    assert model.depth_net.training  # handed back in the mode it was in
    expected = losses["occupancy_bce"] + 0.5 * losses["depth_log_l1"]
    assert torch.allclose(losses["total"], expected)
    before = [p.clone() for p in model.depth_net.parameters()]
    optimiser = torch.optim.Adam(_trainable(model, "pretrained", 0.5), lr=1e-3)
    losses["total"].backward()
    optimiser.step()
    after = model.depth_net.parameters()
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    torch.manual_seed(0)
    plain = regime_losses(model, batch, "viability")["occupancy_bce"]
    torch.manual_seed(0)
    heavier = regime_losses(model, batch, "viability", occupied_weight=3.0)["occupancy_bce"]
    assert heavier > plain
    with pytest.raises(ValueError, match="occupied_weight"):
        regime_losses(model, batch, "viability", occupied_weight=0.0)


def test_a_floor_prior_model_evaluates_with_and_without_it(samples, tmp_path):
    _train(samples, tmp_path / "floor", "depth", 2, "--floor")
    model, metadata = load_ifnet(tmp_path / "floor" / "best.pt")
    assert model.config.floor_input and "--floor" in metadata["recipe"]
    out = tmp_path / "eval"
    argv = ["evaluate", "ifnet", "--data", str(samples / "val"), "--out", str(out),
            "--checkpoints", str(tmp_path / "floor" / "best.pt"),
            str(tmp_path / "floor" / "best.pt"), "--threads", "1"]  # fmt: skip
    assert main(argv) == 0
    regimes = json.loads((out / "results.json").read_text())["regimes"]
    assert len(regimes) == 4  # the second checkpoint's rows are told apart by its path
    assert {"depth, floor prior", "depth, floor prior withheld"} < set(regimes)
    assert regimes["depth, floor prior"]["floor_prior"]
    assert not regimes["depth, floor prior withheld"]["floor_prior"]
    # the pretrained regime with the prior: the IF-Net from a viability run without it
    _train(samples, tmp_path / "via", "viability", 1)
    _train(samples, tmp_path / "pre", "pretrained", 1, "--floor", "--init",
           str(tmp_path / "via" / "best.pt"), "--depth-init",
           str(tmp_path / "floor" / "best.pt"))  # fmt: skip
    pretrained, _ = load_ifnet(tmp_path / "pre" / "best.pt")
    assert pretrained.config.floor_input
    # the parts put together are validated before the first step (a candidate for best.pt)
    history = [json.loads(line) for line in (tmp_path / "pre" / "history.jsonl").open()]
    assert next(h["step"] for h in history if h["kind"] == "val") == 0
