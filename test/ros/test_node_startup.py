"""Nodes that cannot start say why in one line and exit 1: no traceback, no AttributeError from a
half-built node (issue 9.6)."""

import pytest


@pytest.mark.parametrize(
    ("name", "params", "cause"),
    [
        ("atlas_node", {"voxel_size_m": -5.0}, "voxel_size_m out of range"),
        ("sufficiency_node", {"weights_path": "BAD"}, "is not a loadable weights-only torch file"),
        ("atlas_node", {"depth_weights_path": "BAD"}, "is not a loadable weights-only torch file"),
        ("object_node", {"weights_path": "BAD"}, "is not a loadable weights-only torch file"),
        ("object_node", {"threshold": 2.0}, "threshold"),
        ("rig_node", {"weights_path": "BAD"}, "is not a loadable weights-only torch file"),
        ("rig_node", {"weights_path": "BAD", "grid_corner": [1.0, 2.0]}, "grid_corner"),
        ("ifnet_node", {"weights_path": "BAD"}, "is not a loadable weights-only torch file"),
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


def test_parameter_files_apply_in_a_namespace(ros_node, start_node, tmp_path):
    """Issue 10.2: the installed config and a user file keyed ``/**/atlas_node`` reach a node
    started in a namespace (as PushROSNamespace or namespace:= starts it), and the offline
    replay reads the same keys."""
    import yaml
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from recon_ros.msg import AtlasStatus

    from recon_ros.parameters import load_params_file

    user = tmp_path / "robot.yaml"
    user.write_text(
        yaml.safe_dump(
            {
                "/**/atlas_node": {
                    "ros__parameters": {
                        "voxel_size_m": 0.08,
                        "window_dims": [32, 32, 32],
                        "chunk_size": 8,
                        "device": "cpu",
                    }
                }
            }
        )
    )
    assert load_params_file(user)["voxel_size_m"] == 0.08
    node = start_node(
        "atlas_node",
        None,
        remaps={"__ns": "/robot1"},
        args=("--ros-args", "--params-file", str(user)),
    )
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    status = ros_node.collect(AtlasStatus, "/robot1/atlas_node/status", latched)
    first = status.wait_for(lambda m, _: True, 90, "the namespaced node's status", [node])
    assert abs(first.voxel_size - 0.08) < 1e-6 and list(first.volume_dims) == [32, 32, 32]
