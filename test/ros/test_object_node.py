"""object_node over DDS (issue 12.2): ``~/reconstruct_object`` answers with the occupancy and mesh
the ROS-free API gives for the same views and checkpoint, publishes the mesh latched for RViz,
and refuses bad requests with a reason while it keeps serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recon_ros.srv import ReconstructObject
from visualization_msgs.msg import Marker

from recon_ros.io import image_conversions
from recon_ros.r2n2.data import object_sample
from recon_ros.r2n2.model import ConvLSTMR2N2
from recon_ros.r2n2.reconstruct import reconstruct_object
from recon_ros.r2n2.train import load_r2n2, save_r2n2

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


@pytest.mark.timeout(300)
def test_reconstruct_object_service(ros_node, start_node, tmp_path, tiny_r2n2_config):
    torch.manual_seed(0)
    weights = save_r2n2(
        ConvLSTMR2N2(tiny_r2n2_config), tmp_path / "r2n2.pt", False, "test: untrained", {}
    )
    node = start_node("object_node", {"weights_path": str(weights), "device": "cpu"})
    meshes = ros_node.collect(Marker, "/object_node/mesh", LATCHED)
    views = object_sample(7, "chair", views=3)["images"]
    stamp = ros_node.node.get_clock().now().to_msg()
    # bgr8 on the wire, as many camera drivers send: the node must turn it back into RGB
    request = ReconstructObject.Request(
        views=[image_conversions.rgb_to_image_msg(v, stamp, "cam", "bgr8") for v in views],
        size_m=0.8,
        frame_id="gripper",
    )
    answer = ros_node.call(ReconstructObject, "/object_node/reconstruct_object", request, 120)
    assert answer.success, answer.message
    model, _ = load_r2n2(weights, "cpu")
    expected = reconstruct_object(model, list(views), None, 0.4, 0.8)
    assert answer.grid_size == 32
    np.testing.assert_allclose(
        np.asarray(answer.occupancy).reshape(32, 32, 32), expected.occupancy, atol=1e-5
    )
    assert answer.mesh.header.frame_id == "gripper"
    assert len(answer.mesh.points) == 3 * expected.mesh.num_faces
    if expected.mesh.num_faces:
        corners = np.array([[p.x, p.y, p.z] for p in answer.mesh.points])
        assert np.all(np.abs(corners) <= 0.4 + 1e-4)  # inside the 0.8 m cube around the origin
    latched = meshes.wait_for(lambda m, _: True, 30, "the latched mesh", [node])
    assert latched.header.frame_id == "gripper"

    # bad requests: refused with the reason, and the node still serves
    empty = ros_node.call(
        ReconstructObject, "/object_node/reconstruct_object", ReconstructObject.Request(), 60
    )
    assert not empty.success and "no views" in empty.message
    mismatched = ReconstructObject.Request(views=request.views, masks=request.views[:1])
    refused = ros_node.call(ReconstructObject, "/object_node/reconstruct_object", mismatched, 60)
    assert not refused.success and "masks" in refused.message
    truncated = image_conversions.rgb_to_image_msg(views[1], stamp, "cam")
    truncated.data = truncated.data[:10]
    broken = ReconstructObject.Request(views=[request.views[0], truncated])
    refused = ros_node.call(ReconstructObject, "/object_node/reconstruct_object", broken, 60)
    assert not refused.success and "view 1" in refused.message
    again = ros_node.call(ReconstructObject, "/object_node/reconstruct_object", request, 120)
    assert again.success and list(again.occupancy) == list(answer.occupancy)
    assert node.alive() and "Traceback" not in node.log()
    assert "request refused" in node.log()
