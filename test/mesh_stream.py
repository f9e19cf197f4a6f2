"""atlas_node's mesh stream as RViz sees it, for the DDS tests: the subscription profile that
keeps every message, and the markers shown after a list of MarkerArray messages."""

from __future__ import annotations

import time

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from recon_ros.io import mesh_conversions

# The mesh goes out as changes: a depth-1 reader can have one overwritten before it is taken
# and then lacks those chunks until the next whole refresh, so the tests keep every message.
EVERY_MESH = QoSProfile(
    depth=500, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


def shown(messages) -> list:
    """The mesh markers a MarkerArray subscriber (RViz) shows after ``messages``."""
    state: dict = {}
    for msg in messages:
        mesh_conversions.apply_marker_array(state, msg)
    return list(state.values())


class MeshView:
    """``shown`` of a growing message list, applying only the messages new since the last call
    (a whole map is tens of MB: re-applying every message at every poll made the waits
    quadratic)."""

    def __init__(self) -> None:
        self.state: dict = {}
        self.applied = 0

    def __call__(self, messages) -> list:
        for msg in messages[self.applied :]:
            mesh_conversions.apply_marker_array(self.state, msg)
        self.applied = len(messages)
        return list(self.state.values())


def caught_up_mesh(status, meshes, integrated: int, processes, quiet_s: float = 1.5) -> list:
    """The markers shown once atlas_node's mesh shows every one of ``integrated`` frames: the
    status reports ``frames_in_mesh`` after that mesh went out, and the mesh stream has then
    been quiet for ``quiet_s`` (a message of several MB may still be in transit)."""
    status.wait_for(
        lambda m, _: m.frames_in_mesh >= integrated, 120, "the mesh of every frame", processes
    )
    deadline = time.monotonic() + 60
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        with meshes._lock:
            received = len(meshes.messages)
        if received != count:
            count, since = received, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
        time.sleep(0.05)
    with meshes._lock:
        return shown(meshes.messages)
