"""`recon-ros`: every command's module loads and registers the command it is listed under."""

import pytest

from recon_ros.apps.cli import COMMANDS, EVALUATORS, TRAINERS, build_parser, main


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_parses_its_own_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser([command, "--help"]).parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: recon-ros {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("group", "model"), [("train", m) for m in TRAINERS] + [("evaluate", m) for m in EVALUATORS]
)
def test_train_and_evaluate_register_each_model(group, model):
    argv = [group, model, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        build_parser(argv).parse_args(argv)
    assert exit_info.value.code == 0


def test_unknown_input_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "no_such_bag"), "-o", str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err


def test_installed_command_generates_with_two_workers(tmp_path):
    """The installed `recon-ros` script guards its entry point, so the spawned workers of
    `generate -j 2` import it without re-running the command (which hung before)."""
    import shutil
    import subprocess

    command = shutil.which("recon-ros")
    assert command, "recon-ros is not on PATH (the colcon install)"
    result = subprocess.run(
        [command, "generate", str(tmp_path / "data"), "--scenes", "2", "--width", "64",
         "--height", "48", "--frames", "3", "--voxel-sizes", "--no-mesh", "-j", "2"],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "data").glob("scene_*")) == [
        "scene_0000",
        "scene_0001",
    ]
