"""atlas_node's mesh stream as RViz sees it, for the DDS tests: the subscription profile that
keeps every message, and the markers shown after a list of MarkerArray messages."""

from __future__ import annotations

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
