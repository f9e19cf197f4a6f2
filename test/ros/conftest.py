"""Fixtures for tests over a real ROS graph: nodes run as their installed executables in child
processes, the test talks to them over DDS with an rclpy node of its own (recon_ros.ros.graph)."""

from __future__ import annotations

import pytest

from recon_ros.ros.graph import NodeProcess, ObserverNode


@pytest.fixture
def ros_node(request):
    name = "".join(c if c.isalnum() else "_" for c in f"test_{request.node.name}")[:60]
    node = ObserverNode(name)
    yield node
    node.close()


@pytest.fixture
def start_node(tmp_path):
    processes: list[NodeProcess] = []

    def start(
        name: str, params: dict | None = None, remaps: dict | None = None, args=()
    ) -> NodeProcess:
        process = NodeProcess(name, tmp_path / f"{name}_{len(processes)}.log", params, remaps, args)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()
