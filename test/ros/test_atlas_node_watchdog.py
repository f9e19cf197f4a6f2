"""Issue 9.1, the last line of defence: should atlas_node's integration worker ever die (it
catches every per-frame error, so only a bug could end it), the status watchdog restarts it and
reports ERROR on /diagnostics. A real AtlasNode in this process, its worker ended by hand."""

from __future__ import annotations

import threading

import rclpy
from diagnostic_msgs.msg import DiagnosticStatus
from rclpy.parameter import Parameter

from recon_ros.ros.atlas_node import AtlasNode


def test_a_dead_worker_is_restarted_and_reported():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = AtlasNode(context=context, parameter_overrides=[Parameter("device", value="cpu")])
    try:
        assert node._worker.is_alive()
        dead = threading.Thread(target=lambda: None)  # a worker that has ended
        dead.start()
        dead.join()
        running, node._worker = node._worker, dead
        node._warn_if_stalled()
        assert node._worker is not dead and node._worker.is_alive()
        assert node._worker_restarts == 1
        level, message = node._health
        assert level == DiagnosticStatus.ERROR and "restarted" in message
        node._warn_if_stalled()  # alive again: no second restart
        assert node._worker_restarts == 1
        node._stop.set()
        running.join(timeout=5.0)
        assert not running.is_alive()
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)
