"""`recon-ros`: every command's module loads and registers the command it is listed under."""

import pytest

from recon_ros.cli import COMMANDS, EVALUATORS, TRAINERS, build_parser, main


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
