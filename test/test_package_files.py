"""The package's static files agree with the code: config/atlas.yaml lists every parameter the nodes
declare, with the code's defaults; the launch file and CMake install what they name."""

import ast
import re
from pathlib import Path

import yaml

from recon_ros.parameters import (
    ALL_PARAMS,
    IFNET_PARAMS,
    INPUT_PARAMS,
    OBJECT_PARAMS,
    RIG_PARAMS,
    SUFFICIENCY_PARAMS,
    config_yaml,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]


def test_config_lists_every_parameter_with_its_default():
    config = yaml.safe_load((REPO / "config" / "atlas.yaml").read_text())
    for node, table in (
        ("atlas_node", ALL_PARAMS),
        ("sufficiency_node", INPUT_PARAMS + SUFFICIENCY_PARAMS),
        ("object_node", OBJECT_PARAMS),
        ("rig_node", RIG_PARAMS),
        ("ifnet_node", IFNET_PARAMS),
    ):
        values = config[f"/**/{node}"]["ros__parameters"]  # applies in any namespace
        assert list(values) == [p.name for p in table], node
        for p in table:
            assert values[p.name] == p.default, f"{node}.{p.name}"
    resolve(config["/**/atlas_node"]["ros__parameters"])  # in range and known
    assert (REPO / "config" / "atlas.yaml").read_text() == config_yaml(), (
        "config/atlas.yaml is stale: python -m recon_ros.parameters > config/atlas.yaml"
    )


def test_launch_file_starts_installed_executables_with_the_installed_config():
    cmake = (REPO / "CMakeLists.txt").read_text()
    installed = set(
        re.search(r"PROGRAMS (.+?)\s+DESTINATION lib", cmake, re.S)
        .group(1)
        .replace("scripts/", "")
        .split()
    )
    for name in installed:
        assert (REPO / "scripts" / name).stat().st_mode & 0o111, f"scripts/{name} is not executable"
    helper = (REPO / "recon_ros" / "ros" / "launch_helpers.py").read_text()
    assert '"config", "atlas.yaml"' in helper
    for launch_file in ("atlas.launch.py", "rig.launch.py", "ifnet.launch.py"):
        launch = (REPO / "launch" / launch_file).read_text()
        calls = [node for node in ast.walk(ast.parse(launch)) if isinstance(node, ast.Call)]
        executables = {
            kw.value.value
            for node in calls
            for kw in node.keywords
            if kw.arg == "executable" and isinstance(kw.value, ast.Constant)
        } | {  # single nodes through the package's launch helper
            node.args[0].value
            for node in calls
            if getattr(node.func, "id", "") == "single_node_launch_description"
        }
        assert executables and executables - {"rviz2"} <= installed, launch_file
        assert '"config", "atlas.yaml"' in launch or "single_node_launch_description" in launch
    assert "atlas.rviz" in (REPO / "launch" / "atlas.launch.py").read_text()
    assert "install(DIRECTORY launch config demo" in cmake
    rviz = yaml.safe_load((REPO / "config" / "atlas.rviz").read_text())
    topics = {d.get("Topic", {}).get("Value") for d in rviz["Visualization Manager"]["Displays"]}
    assert {
        "/atlas_node/mesh",
        "/atlas_node/semantic_cloud",
        "/sufficiency_node/count_image",
    } <= topics


def test_interfaces_listed_in_cmake_exist():
    cmake = (REPO / "CMakeLists.txt").read_text()
    for path in re.findall(r'"((?:msg|srv)/\w+\.(?:msg|srv))"', cmake):
        assert (REPO / path).is_file(), path
    on_disk = {p.relative_to(REPO).as_posix() for p in REPO.glob("msg/*.msg")} | {
        p.relative_to(REPO).as_posix() for p in REPO.glob("srv/*.srv")
    }
    assert on_disk == set(re.findall(r'"((?:msg|srv)/\w+\.(?:msg|srv))"', cmake))
