"""atlas_node with an RGB-D camera, end to end over DDS: the demo bag played live with its depth
topic (16UC1 millimetres in the depth optical frame, linked to the colour frame by TF), the node
fusing the sensor's depth. Every image is accounted for, and the published mesh lies where the
scene is: rendered from the recorded depth views, it explains the recorded depth."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recon_ros.msg import AtlasStatus
from visualization_msgs.msg import MarkerArray

from recon_ros.apps.demo import default_demo_bag
from recon_ros.io import mesh_conversions
from recon_ros.io.bagfile import BagReader
from recon_ros.training.evaluation import mesh_depth_agreement

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bag_views import depth_views
from mesh_stream import EVERY_MESH, caught_up_mesh

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
IMAGE_TOPIC = "/camera/color/image_raw"
DEPTH_TOPIC = "/camera/depth/image_raw"
DEPTH_INFO_TOPIC = "/camera/depth/camera_info"


@pytest.mark.timeout(600)
def test_sensor_depth_mapped_live(ros_node, start_node, tmp_path):
    bag = default_demo_bag()
    with BagReader(bag) as reader:
        images = reader.topics[IMAGE_TOPIC].count
    atlas = start_node(
        "atlas_node",
        {
            "use_sim_time": True,
            "device": "cpu",
            "queue_size": 1000,
            "image_qos": "reliable",
            "use_depth": True,
            "depth_source": "sensor",
            "tf_timeout_s": 2.0,
            "cnn_period_s": 1.0,
            "publish_period_s": 0.25,
            "output_directory": str(tmp_path / "saved"),
        },
        remaps={
            "image": IMAGE_TOPIC,
            "camera_info": "/camera/color/camera_info",
            "depth/image": DEPTH_TOPIC,
            "depth/camera_info": DEPTH_INFO_TOPIC,
        },
    )
    status = ros_node.collect(AtlasStatus, "/atlas_node/status", LATCHED)
    meshes = ros_node.collect(MarkerArray, "/atlas_node/mesh", EVERY_MESH)
    deadline = time.monotonic() + 120
    while ros_node.node.count_subscribers(DEPTH_TOPIC) == 0:
        assert atlas.alive(), atlas.log()
        assert time.monotonic() < deadline, "atlas_node never subscribed to the depth topic"
        time.sleep(0.1)
    player = start_node(
        "bag_player",
        {
            "bag": str(bag),
            "rate": 2.0,
            "clock": True,
            "start_delay_s": 1.0,  # both sides of every match settled (DDS discovery)
            # every input subscription matched first: a message sent before is lost to it
            "wait_for_subscribers": [
                IMAGE_TOPIC,
                "/camera/color/camera_info",
                DEPTH_TOPIC,
                DEPTH_INFO_TOPIC,
            ],
        },
    )

    def settled(m, _):
        accounted = m.frames_integrated + m.frames_not_keyframes + m.frames_dropped
        return m.frames_received == images and accounted == images

    try:
        final = status.wait_for(settled, 300, "every image accounted for", [atlas])
    except TimeoutError as error:
        raise TimeoutError(f"{error}\n--- bag_player ---\n{player.log()[-4000:]}") from None
    dropped = {d.reason: d.count for d in final.drops if d.count}
    # Every image accounted for. The first colour image sometimes finds no CameraInfo yet (seen
    # on 1 run in 3 on this machine: the first CameraInfo does not reach the node although every
    # subscription was matched before playing); it is counted and logged, never silent.
    assert set(dropped) <= {"no_camera_info"} and dropped.get("no_camera_info", 0) <= 1, dropped
    assert final.frames_integrated > 5
    assert player.stop() == 0, player.log()
    integrated = final.frames_integrated

    # the mesh of every integrated frame (a mesh that lags the last frames misses their depth)
    markers = caught_up_mesh(status, meshes, integrated, [atlas])
    mesh = mesh_conversions.markers_to_mesh([m for m in markers if m.points])
    timings = {t.name: t for t in status.last.timings}
    assert timings["fusion"].count >= integrated
    views = depth_views(bag, DEPTH_TOPIC, DEPTH_INFO_TOPIC, every=3)
    agreement = mesh_depth_agreement(mesh.vertices, mesh.faces, views)
    print(f"mesh-depth agreement {agreement:.3f}")
    assert agreement > 0.8, agreement
    assert atlas.alive() and "Traceback" not in atlas.log()
