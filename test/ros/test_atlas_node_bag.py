"""atlas_node end to end over DDS: the demo bag played live by bag_player (with /clock, the node on
use_sim_time), as on a robot, colour only (stereo depth from the shipped depth network). Mesh, cloud
and status arrive in the world frame, non-empty and inside the volumes the window covered; the
status accounts for every image sent; save_map and reset work. (How close the mesh lies to the
scene belongs to the trained-weights tests.)"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from nav_msgs.msg import OccupancyGrid
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from recon_ros.msg import AtlasStatus
from recon_ros.srv import LoadMap, SaveMap
from scipy.spatial import cKDTree
from sensor_msgs.msg import PointCloud2
from std_srvs.srv import Trigger
from visualization_msgs.msg import Marker, MarkerArray

from recon_ros.apps.demo import default_demo_bag
from recon_ros.io import mesh_conversions, pointcloud_conversions, transform_conversions
from recon_ros.io.bagfile import BagReader
from recon_ros.io.ply import read_ply
from recon_ros.io.tf_buffer import TransformBuffer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mesh_stream import EVERY_MESH, MeshView, caught_up_mesh, shown

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
IMAGE_TOPIC = "/camera/color/image_raw"


def camera_positions(bag_path) -> tuple[set[int], np.ndarray]:
    """The image stamps (ns) and the world positions of the camera at them."""
    buffer = TransformBuffer(cache_time_s=3600)
    stamps = []
    with BagReader(bag_path) as bag:
        for topic, _, _, msg in bag.messages(["/tf", "/tf_static", IMAGE_TOPIC]):
            if topic == IMAGE_TOPIC:
                stamps.append(
                    (transform_conversions.stamp_to_ns(msg.header.stamp), msg.header.frame_id)
                )
            else:
                buffer.set_tf_message(msg, static=topic == "/tf_static")
    positions = np.array([buffer.lookup("world", frame, ns)[:3, 3] for ns, frame in stamps])
    return {ns for ns, _ in stamps}, positions


@pytest.mark.timeout(600)
def test_demo_bag_replayed_live(ros_node, start_node, tmp_path):
    bag = default_demo_bag()
    image_stamps, positions = camera_positions(bag)
    images = len(image_stamps)
    atlas = start_node(
        "atlas_node",
        {
            "use_sim_time": True,
            "device": "cpu",
            # keep every frame (the counts below must match exactly): the player publishes
            # reliably, a reliable subscription gets all of it however busy the machine is
            "queue_size": 1000,
            "image_qos": "reliable",
            "cnn_period_s": 1.0,
            "publish_period_s": 0.25,
            "output_directory": str(tmp_path / "saved"),
        },
        remaps={"image": IMAGE_TOPIC, "camera_info": "/camera/color/camera_info"},
    )
    status = ros_node.collect(AtlasStatus, "/atlas_node/status", LATCHED)
    meshes = ros_node.collect(MarkerArray, "/atlas_node/mesh", EVERY_MESH)
    clouds = ros_node.collect(PointCloud2, "/atlas_node/semantic_cloud", LATCHED)
    grids = ros_node.collect(OccupancyGrid, "/atlas_node/occupancy", LATCHED)

    deadline = time.monotonic() + 120
    while ros_node.node.count_subscribers(IMAGE_TOPIC) == 0:
        assert atlas.alive(), atlas.log()
        assert time.monotonic() < deadline, "atlas_node never subscribed to the image topic"
        time.sleep(0.1)

    player = start_node(
        "bag_player",
        {"bag": str(bag), "rate": 2.0, "clock": True, "wait_for_subscribers": [IMAGE_TOPIC]},
    )

    def settled(m, _):
        accounted = m.frames_integrated + m.frames_not_keyframes + m.frames_dropped
        return m.frames_received == images and accounted == images

    # The bag's /clock stops when it ends; the node must still finish the frames it queued.
    try:
        final = status.wait_for(settled, 300, "every image accounted for", [atlas])
    except TimeoutError as error:  # the player has exited by now: show its side too
        raise TimeoutError(f"{error}\n--- bag_player ---\n{player.log()[-4000:]}") from None
    assert final.frames_dropped == 0, {d.reason: d.count for d in final.drops if d.count}
    assert final.frames_integrated > 0 and final.frames_not_keyframes > 0  # keyframe gating at work
    assert player.stop() == 0, player.log()
    # the mesh catches up with the last integrated frame (status.frames_in_mesh), with no new
    # frame to prompt it
    caught_up_mesh(status, meshes, final.frames_integrated, [atlas])
    meshes.wait_for(lambda _, all_: shown(all_), 60, "a non-empty mesh", [atlas])
    cloud_msg = clouds.wait_for(lambda m, _: m.width > 0, 60, "a non-empty cloud", [atlas])
    last = status.last
    with meshes._lock:
        messages = list(meshes.messages)
    chunk_markers = shown(messages)
    # one marker per chunk; a message carries only the chunks that changed
    assert len(chunk_markers) > 1 and len({m.id for m in chunk_markers}) == len(chunk_markers)
    sent = [sum(1 for m in msg.markers if m.points) for msg in messages]
    assert len(messages) > 1 and min(sent) < len(chunk_markers), sent
    marker = chunk_markers[0]

    # frames, stamps (the images', in bag time under use_sim_time) and bounds
    assert marker.header.frame_id == cloud_msg.header.frame_id == last.header.frame_id == "world"
    for msg in (marker, cloud_msg, last):
        assert transform_conversions.stamp_to_ns(msg.header.stamp) in image_stamps
    for m in chunk_markers:
        assert m.type == Marker.TRIANGLE_LIST and len(m.points) % 3 == 0
        assert len(m.colors) == len(m.points)
    window_extent = np.array(last.volume_dims) * last.voxel_size
    lower = positions.min(axis=0) - window_extent
    upper = positions.max(axis=0) + window_extent
    z_low = last.volume_origin.z - last.voxel_size
    z_high = last.volume_origin.z + window_extent[2]
    vertices = mesh_conversions.markers_to_mesh(chunk_markers).vertices
    cloud = pointcloud_conversions.pointcloud2_to_array(cloud_msg)
    xyz = np.stack([cloud["x"], cloud["y"], cloud["z"]], axis=1)
    for name, points in (("mesh", vertices), ("cloud", xyz)):
        assert np.all(points[:, :2] >= lower[:2]) and np.all(points[:, :2] <= upper[:2]), name
        assert np.all(points[:, 2] >= z_low) and np.all(points[:, 2] <= z_high), name
    assert [f.name for f in cloud_msg.fields] == ["x", "y", "z", "rgb", "confidence", "label"]

    # the occupancy slice (issue 10.6): occupied cells lie at the walls and furniture the mesh
    # shows between 0.1 and 1.0 m above the floor (z = 0 here), free cells before them
    grid = grids.wait_for(lambda m, _: m.info.width > 0, 60, "an occupancy grid", [atlas])
    assert grid.header.frame_id == "world" and np.isclose(grid.info.resolution, last.voxel_size)
    assert np.isclose(grid.info.origin.position.z, 0.1, atol=1e-6)
    cells = np.asarray(grid.data, np.int8).reshape(grid.info.height, grid.info.width)
    assert set(np.unique(cells).tolist()) <= {-1, 0, 100}
    occupied = np.argwhere(cells == 100)
    assert len(occupied) > 50 and np.sum(cells == 0) > len(occupied)
    centres = np.stack(
        [
            grid.info.origin.position.x + (occupied[:, 1] + 0.5) * grid.info.resolution,
            grid.info.origin.position.y + (occupied[:, 0] + 0.5) * grid.info.resolution,
        ],
        axis=1,
    )
    band = vertices[(vertices[:, 2] >= 0.1) & (vertices[:, 2] <= 1.0), :2]
    distance, _ = cKDTree(band).query(centres)
    # behind a surface by at most the truncation band (8 voxels of stereo depth)
    assert np.quantile(distance, 0.95) <= 8 * last.voxel_size + 0.05, np.quantile(distance, 0.95)
    labels = cloud["label"]
    # a class id, or 255 (no label vote reached that surface voxel): a small share at most
    assert np.all((labels < 9) | (labels == 255)) and np.mean(labels == 255) < 0.05
    assert np.all((cloud["confidence"] >= 0) & (cloud["confidence"] <= 1))
    timings = {t.name: t for t in last.timings}
    assert timings["fusion"].count >= final.frames_integrated  # the default fusion pipeline
    assert timings["depth"].count >= final.frames_integrated
    assert timings["merge"].count >= 1
    assert "window" in last.window_placement

    # save_map writes into the output directory only
    refused = ros_node.call(SaveMap, "/atlas_node/save_map", SaveMap.Request(name="../escape"))
    assert not refused.success and "refused" in refused.message
    saved = ros_node.call(
        SaveMap, "/atlas_node/save_map", SaveMap.Request(name="bag_test"), timeout=120
    )
    assert saved.success, saved.message
    assert saved.mesh_path == str(tmp_path / "saved" / "bag_test" / "mesh.ply")
    ply = read_ply(saved.mesh_path)
    assert len(ply["faces"]) > 0 and set(ply) >= {
        "vertices",
        "faces",
        "colors",
        "label",
        "confidence",
    }
    assert saved.map_path == str(tmp_path / "saved" / "bag_test" / "map")
    assert (tmp_path / "saved" / "bag_test" / "map" / "map.json").is_file()

    # a subscriber that comes late gets every chunk, not only the last changes (compared with
    # what the first subscriber shows at the same moment: a last update may still be arriving)
    late = ros_node.collect(MarkerArray, "/atlas_node/mesh", EVERY_MESH)

    views = {id(late): MeshView(), id(meshes): MeshView()}

    def shown_ids(collector) -> set:
        with collector._lock:
            messages = list(collector.messages)
        return {m.id for m in views[id(collector)](messages)}

    late.wait_for(lambda _, __: shown_ids(late) == shown_ids(meshes), 60, "the whole map", [atlas])
    with late._lock:  # the whole map comes after a DELETEALL, which heals any lost update
        assert any(m.markers and m.markers[0].action == Marker.DELETEALL for m in late.messages)

    # reset clears the map: every mesh chunk is deleted and the status shows no chunks
    assert ros_node.call(Trigger, "/atlas_node/reset", Trigger.Request()).success
    # (generous: whole-map copies for the late subscriber, tens of MB each, may still be
    # decoding ahead of the DELETEs on a loaded machine)
    view = views[id(meshes)]
    meshes.wait_for(
        lambda _, all_: not view(all_), 120, "every mesh chunk deleted after reset", [atlas]
    )

    # load_map brings the saved map back (issue 10.6); a folder without a map changes nothing
    missing = ros_node.call(LoadMap, "/atlas_node/load_map", LoadMap.Request(path="nowhere"))
    assert not missing.success and "no saved map" in missing.message
    loaded = ros_node.call(
        LoadMap, "/atlas_node/load_map", LoadMap.Request(path="bag_test"), timeout=60
    )
    assert loaded.success and loaded.chunks > 0, loaded.message

    def triangles(_, all_) -> int:
        return sum(len(m.points) // 3 for m in view(all_))

    meshes.wait_for(  # the saved mesh, triangle for triangle
        lambda m, all_: triangles(m, all_) == len(ply["faces"]), 120, "the loaded mesh", [atlas]
    )
    assert atlas.alive() and "Traceback" not in atlas.log()
