"""Nodes that cannot start say why in one line and exit 1: no traceback, no AttributeError from a
half-built node (issue 9.6)."""

import pytest


@pytest.mark.parametrize(
    ("name", "params", "cause"),
    [
        ("atlas_node", {"voxel_size_m": -5.0}, "voxel_size_m out of range"),
        ("sufficiency_node", {"weights_path": "BAD"}, "is not a loadable weights-only torch file"),
        ("atlas_node", {"depth_weights_path": "BAD"}, "is not a loadable weights-only torch file"),
    ],
)
def test_a_node_that_cannot_start_says_why(name, params, cause, start_node, tmp_path):
    if params.get("weights_path") == "BAD" or params.get("depth_weights_path") == "BAD":
        bad = tmp_path / "garbage.pt"
        bad.write_bytes(b"not a checkpoint at all")
        params = {k: str(bad) if v == "BAD" else v for k, v in params.items()}
    node = start_node(name, params)
    assert node.process.wait(60) == 1
    log = node.log()
    assert "cannot start" in log and cause in log, log
    assert "Traceback" not in log and "AttributeError" not in log, log
