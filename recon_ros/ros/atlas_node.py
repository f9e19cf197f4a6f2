"""atlas_node: posed RGB images in; a labelled TSDF mesh, a semantic point cloud and a status out.

Threads (MultiThreadedExecutor):
- input callbacks (image, CameraInfo, /tf, /tf_static, pose) only queue or store;
- one worker thread decodes queued images, waits a bounded time for their pose and integrates
  them into the rolling window (any exception drops that frame with a reason; a watchdog restarts
  the worker should it ever die);
- the "mapping" callback group (mutually exclusive) hands the window to the map periodically
  (running the 3D CNN of the atlas pipeline) and serves save/reset;
- the "output" group meshes the map and publishes mesh, cloud and window when the map changed;
- the "status" group publishes the status and runs the stall and worker watchdogs, so the status
  keeps its rate whatever meshing or the 3D CNN cost.

Topics (relative names, remap them): subscribes ``image``, ``camera_info``, ``/tf``,
``/tf_static`` (or ``pose`` / ``odometry``); publishes ``~/mesh`` (visualization_msgs/Marker,
TRIANGLE_LIST), ``~/semantic_cloud`` (sensor_msgs/PointCloud2: x y z rgb confidence label),
``~/window`` (the rolling volume's outline), ``~/occupancy`` (nav_msgs/OccupancyGrid: a 2D slice
of the map for planners) and ``~/status`` (recon_ros/AtlasStatus). Services:
``~/save_map`` (recon_ros/SaveMap), ``~/load_map`` (recon_ros/LoadMap), ``~/reset``
(std_srvs/Trigger).
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from recon_ros.core.memory import release_freed_memory
from recon_ros.io import mesh_conversions, occupancy_conversions, pointcloud_conversions
from recon_ros.parameters import CORE_PARAMS, NODE_PARAMS, resolve
from recon_ros.reconstruction import MappingPipeline
from recon_ros.ros.common import LATCHED_QOS, run_node, stops_with_context
from recon_ros.ros.declare_parameters import declare_table
from recon_ros.ros.posed_input import InputSettings, PosedImageInput


def _rss_mib() -> float:
    """Resident memory of this process (MiB)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return float("nan")


class AtlasNode(Node):
    def __init__(self, **kwargs):
        super().__init__("atlas_node", **kwargs)
        # Separate groups, so a slow stage never starves another: images and poses arrive on
        # one; the window's hand-over to the map (and save/reset) on another; meshing and the
        # mesh/cloud outputs on a third; the status and watchdogs on their own, on time whatever
        # the rest costs.
        self._input_group = MutuallyExclusiveCallbackGroup()
        self._mapping_group = MutuallyExclusiveCallbackGroup()
        self._output_group = MutuallyExclusiveCallbackGroup()
        self._status_group = MutuallyExclusiveCallbackGroup()

        inputs = InputSettings.declare(self)
        self._declare_parameters()
        self._pipeline = MappingPipeline(self._values)
        self._reconstructor = self._pipeline.reconstructor
        self._description = self._pipeline.description
        self._startup_warnings = list(self._pipeline.warnings)
        for warning in self._startup_warnings:
            self.get_logger().warning(warning)
        self._input = PosedImageInput(
            self,
            inputs,
            self._input_group,
            require_depth=self._reconstructor.config.depth_source == "sensor",
        )
        self._world_frame = inputs.world_frame

        from visualization_msgs.msg import MarkerArray

        # One marker per map chunk, only the changed ones per message (a whole-map marker is
        # tens of MB); a new subscriber gets every chunk on the next publish period.
        self._mesh_pub = self.create_publisher(MarkerArray, "~/mesh", LATCHED_QOS)
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import OccupancyGrid
        from sensor_msgs.msg import PointCloud2
        from std_srvs.srv import Trigger

        from recon_ros.msg import AtlasStatus
        from recon_ros.srv import LoadMap, SaveMap

        self._cloud_pub = self.create_publisher(PointCloud2, "~/semantic_cloud", LATCHED_QOS)
        self._window_pub = self.create_publisher(self._marker_type(), "~/window", LATCHED_QOS)
        self._occupancy_pub = self.create_publisher(OccupancyGrid, "~/occupancy", LATCHED_QOS)
        self._status_pub = self.create_publisher(AtlasStatus, "~/status", LATCHED_QOS)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(
            SaveMap, "~/save_map", self._on_save, callback_group=self._mapping_group
        )
        self.create_service(
            LoadMap, "~/load_map", self._on_load, callback_group=self._mapping_group
        )
        self.create_service(Trigger, "~/reset", self._on_reset, callback_group=self._mapping_group)
        # Processing periods are compute scheduling, measured on the steady clock: with
        # use_sim_time a bag's /clock stops when it ends, and the last frames must still be mapped.
        # Outputs carry the stamps of the images they come from (bag time under use_sim_time).
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(
            self._cnn_period, self._on_cnn_timer, callback_group=self._mapping_group, clock=steady
        )
        self.create_timer(
            self._publish_period,
            self._on_publish_timer,
            callback_group=self._output_group,
            clock=steady,
        )
        self.create_timer(
            self._publish_period,
            self._on_status_timer,
            callback_group=self._status_group,
            clock=steady,
        )

        self._counts_lock = threading.Lock()
        # (map version, frames in the map at that version), replaced as one tuple so the
        # publishing thread never pairs a version with another version's frame count
        self._map_state = (0, 0)
        self._published_version = 0
        self._frames_in_mesh = 0  # frames in the map the last published mesh shows
        # chunk key -> (chunk stamp, mesh_conversions.SerializedMarker)
        self._marker_cache: dict = {}
        self._marker_ids: dict = {}  # chunk key -> marker id, stable while the chunk exists
        self._next_marker_id = 1
        self._mesh_subscribers = 0
        self._whole_mesh_due: list[float] = []  # monotonic times: every chunk goes out then
        self._last_whole_mesh = time.monotonic()
        self._last_header = None
        self._window_note = ""
        self._started = time.monotonic()

        self._stop = threading.Event()
        self._worker_restarts = 0
        self._last_restart = -math.inf
        self._health = (0, "starting")  # diagnostic level and message
        self._last_progress = (0, time.monotonic())  # (frames processed, when that changed)
        self._start_worker()
        window = self._reconstructor.window
        self.get_logger().info(
            f"atlas_node ready: {self._description}, device {self._reconstructor.device}, "
            f"window {tuple(window.dims)} voxels of {window.voxel_size * 100:.1f} cm, world frame "
            f"'{self._world_frame}', poses from {inputs.pose_source}; listening on "
            f"'{self.resolve_topic_name(self._input.image_topic)}' and "
            f"'{self.resolve_topic_name('camera_info')}'"
        )

    @staticmethod
    def _marker_type():
        from visualization_msgs.msg import Marker

        return Marker

    def _declare_parameters(self) -> None:
        core = declare_table(self, CORE_PARAMS)
        node = declare_table(self, NODE_PARAMS)
        self._values = resolve({**core, **node})
        self._cnn_period = node["cnn_period_s"]
        self._publish_period = node["publish_period_s"]
        self._mesh_refresh_period = node["mesh_refresh_period_s"]
        self._color_mode = node["mesh_color_mode"]
        self._output_directory = Path(node["output_directory"]).expanduser()
        self._publish_window = node["publish_window"]
        self._publish_occupancy = node["publish_occupancy"]
        self._occupancy_band = (node["occupancy_min_height_m"], node["occupancy_max_height_m"])
        if self._occupancy_band[1] < self._occupancy_band[0]:
            raise ValueError(
                f"occupancy_max_height_m {self._occupancy_band[1]} is below "
                f"occupancy_min_height_m {self._occupancy_band[0]}"
            )
        self._stall_warning_s = node["stall_warning_s"]

    # --- integration worker -------------------------------------------------------------

    def _start_worker(self) -> None:
        self._worker = threading.Thread(
            target=self._integrate_loop, name="atlas_integrate", daemon=True
        )
        self._worker.start()

    def _supervise_worker(self) -> bool:
        """Restart the integration worker if it ever died (it catches everything per frame, so
        this is the last line of defence), saying so at ERROR; returns whether it did."""
        if self._worker.is_alive() or self._stop.is_set():
            return False
        self._worker_restarts += 1
        self._last_restart = time.monotonic()
        self.get_logger().error(
            f"the integration worker died; restarting it (restart {self._worker_restarts})"
        )
        self._start_worker()
        return True

    def _integrate_loop(self) -> None:
        while not self._stop.is_set():
            frame = None
            try:
                frame = self._input.next_frame(timeout_s=0.1)
                if frame is None:
                    continue
                result = self._pipeline.offer(frame)
            except Exception as error:  # one bad frame must never stop mapping
                if not isinstance(error, ValueError) and (
                    self._stop.is_set() or not self.context.ok()
                ):
                    return  # shutting down: the context is gone, nothing to count or publish
                self._input.drop_failed(frame, error)
                continue
            if result.integrated:
                with self._counts_lock:
                    self._last_header = frame.header

    # --- mapping group: CNN, publishing, services ---------------------------------------

    @stops_with_context
    def _on_cnn_timer(self) -> None:
        if self._pipeline.update():
            self._map_changed()

    def _map_changed(self) -> None:
        """The map changed (update, load, reset): the next publish period sends its mesh."""
        self._map_state = (self._map_state[0] + 1, self._pipeline.frames_mapped())

    def _stamp(self):
        with self._counts_lock:
            header = self._last_header
        return header.stamp if header is not None else self.get_clock().now().to_msg()

    @stops_with_context
    def _on_publish_timer(self) -> None:
        now = time.monotonic()
        subscribers = self._mesh_pub.get_subscription_count()
        if subscribers > self._mesh_subscribers:
            # A late subscriber: every chunk now and twice more (after 1 s and 3 s, by the
            # clock), since its reader may match well after the count rises on a busy machine.
            # Not every period: a whole map is tens of MB, and each copy costs every subscriber
            # its decoding time, so a stream of them would delay the updates queued behind.
            self._whole_mesh_due = [now, now + 1.0, now + max(3 * self._publish_period, 3.0)]
        self._mesh_subscribers = subscribers
        due = [t for t in self._whole_mesh_due if t <= now]
        self._whole_mesh_due = [t for t in self._whole_mesh_due if t > now]
        refresh = self._mesh_refresh_period
        everything = bool(due) or (refresh > 0 and now - self._last_whole_mesh >= refresh)
        if everything:
            self._last_whole_mesh = now
        version, frames_mapped = self._map_state
        if version != self._published_version:
            self._published_version = version
            self._publish_map(everything)
            self._frames_in_mesh = frames_mapped
        elif everything:
            self._mesh_pub.publish(self._mesh_markers(self._stamp(), everything=True))

    @stops_with_context
    def _on_status_timer(self) -> None:
        note = self._reconstructor.window_note
        if note != self._window_note:
            self._window_note = note
            self.get_logger().info(note)
        self._warn_if_stalled()
        self._publish_status()

    def _mesh_markers(self, stamp, everything: bool = False) -> bytes:
        """The map's mesh as a serialized MarkerArray of TRIANGLE_LIST markers, one per chunk
        (namespace ``atlas_mesh``, an id per chunk): the chunks whose mesh changed since the
        last publish, and DELETE markers for chunks gone (reset, eviction). ``everything``
        starts with a DELETEALL and then sends every chunk: a subscriber that lost a message
        (a reader queue overwritten on a busy machine) is whole again, stale chunks included.
        A chunk's marker is built only when its mesh changes (the Python Point objects are the
        cost) and kept as CDR bytes (``mesh_conversions.SerializedMarker``: a third of the
        memory)."""
        from visualization_msgs.msg import Marker

        chunks = self._reconstructor.mesh_chunks(color_by=self._color_mode)
        cache, markers = {}, []
        if everything:
            clear = mesh_conversions.triangle_list_marker(
                [], [], stamp, self._world_frame, "atlas_mesh", 0
            )
            clear.action = Marker.DELETEALL
            markers.append(mesh_conversions.SerializedMarker(clear))
        for key, chunk_stamp, mesh in chunks:
            entry = self._marker_cache.get(key)
            changed = entry is None or entry[0] != chunk_stamp
            if changed:
                if key not in self._marker_ids:
                    self._marker_ids[key] = self._next_marker_id
                    self._next_marker_id += 1
                corners, colors = mesh_conversions.triangle_corners(mesh)
                marker = mesh_conversions.triangle_list_marker(
                    corners, colors, stamp, self._world_frame, "atlas_mesh", self._marker_ids[key]
                )
                entry = (chunk_stamp, mesh_conversions.SerializedMarker(marker))
            cache[key] = entry
            if changed or everything:
                markers.append(entry[1])
        for key in self._marker_cache.keys() - cache.keys():
            gone = mesh_conversions.triangle_list_marker(
                [], [], stamp, self._world_frame, "atlas_mesh", self._marker_ids.pop(key)
            )
            gone.action = Marker.DELETE
            markers.append(mesh_conversions.SerializedMarker(gone))
        self._marker_cache = cache
        return mesh_conversions.marker_array_bytes(markers, stamp)

    def _publish_map(self, everything: bool = False) -> None:
        stamp = self._stamp()
        self._mesh_pub.publish(self._mesh_markers(stamp, everything))
        points = self._reconstructor.semantic_points()
        cloud = pointcloud_conversions.semantic_points_to_array(
            points.xyz, points.rgb, points.label, points.confidence
        )
        self._cloud_pub.publish(
            pointcloud_conversions.array_to_pointcloud2(cloud, stamp, self._world_frame)
        )
        if self._publish_occupancy:
            grid = self._reconstructor.occupancy_slice(*self._occupancy_band)
            self._occupancy_pub.publish(
                occupancy_conversions.occupancy_grid_msg(
                    grid.cells, grid.origin, grid.rotation, grid.resolution, stamp,
                    self._world_frame,
                )
            )  # fmt: skip
        if self._publish_window:
            window = self._reconstructor.window
            size = np.asarray(window.dims) * window.voxel_size
            corner = np.asarray(window.origin) - 0.5 * window.voxel_size
            self._window_pub.publish(
                mesh_conversions.box_outline_marker(corner, size, stamp, self._world_frame)
            )
        # The whole map's mesh and cloud were just built and freed (larger as the map grows):
        # give those pages back, or the node's resident size creeps over a long run.
        release_freed_memory()

    def status_message(self):
        from geometry_msgs.msg import Point

        from recon_ros.msg import AtlasStatus, DropCount, StageTiming

        received, drops = self._input.counts()
        integrated, not_keyframes, cnn_updates = self._pipeline.counts()
        stats = self._reconstructor.stats
        window = self._reconstructor.window
        msg = AtlasStatus()
        msg.header.stamp = self._stamp()
        msg.header.frame_id = self._world_frame
        msg.frames_received = received
        msg.frames_integrated = integrated
        msg.frames_not_keyframes = not_keyframes
        msg.frames_dropped = sum(drops.values())
        msg.drops = [DropCount(reason=r, count=c) for r, c in drops.items()]
        msg.cnn_updates = cnn_updates
        msg.frames_in_mesh = self._frames_in_mesh
        origin = np.asarray(window.origin, dtype=float)
        msg.volume_origin = Point(x=origin[0], y=origin[1], z=origin[2])
        msg.volume_dims = [int(d) for d in window.dims]
        msg.window_placement = self._reconstructor.window_note
        msg.voxel_size = float(window.voxel_size)
        msg.map_chunks = int(stats.map_chunks)
        msg.map_chunks_evicted = int(stats.map_chunks_evicted)
        msg.device = str(self._reconstructor.device)
        msg.timings = [
            StageTiming(name=name, last_ms=t.last_ms, mean_ms=t.mean_ms, count=t.count)
            for name, t in stats.timings.items()
        ]
        return msg

    def _publish_status(self) -> None:
        status = self.status_message()
        self._status_pub.publish(status)
        self._publish_diagnostics(status)

    def _warn_if_stalled(self) -> None:
        """Watchdogs: restart a dead worker, warn when mapping stalls; the verdict goes to
        /diagnostics (``self._health``: level, message)."""
        from diagnostic_msgs.msg import DiagnosticStatus

        restarted = self._supervise_worker()
        now = time.monotonic()
        self._health = (DiagnosticStatus.OK, "mapping")
        if restarted or now - self._last_restart < 60.0:
            self._health = (
                DiagnosticStatus.ERROR,
                f"the integration worker died and was restarted ({self._worker_restarts} times)",
            )
            return
        last_image = self._input.last_image_wall_time
        if last_image is None:
            if now - self._started > self._stall_warning_s:
                topic = self.resolve_topic_name(self._input.image_topic)
                text = (
                    f"no image received on '{topic}' for {now - self._started:.0f} s "
                    f"({self.count_publishers(topic)} publishers): check the remapping and QoS"
                )
                self._input.warn("no_images", text)
                self._health = (DiagnosticStatus.WARN, text)
            else:
                self._health = (DiagnosticStatus.OK, "waiting for images")
            return
        received, drops = self._input.counts()
        integrated, not_keyframes, _ = self._pipeline.counts()
        processed = integrated + not_keyframes
        if received and not integrated and now - self._started > self._stall_warning_s:
            reason, count = max(drops.items(), key=lambda item: item[1])
            if count:
                text = (
                    f"{received} images received and none integrated; most dropped for "
                    f"'{reason}' ({count}), see the warnings above"
                )
                self._input.warn("nothing_integrated", text)
                self._health = (DiagnosticStatus.WARN, text)
            return
        # Later stalls: images keep arriving but none has been processed for a while.
        if processed != self._last_progress[0]:
            self._last_progress = (processed, now)
            return
        idle = now - self._last_progress[1]
        if integrated and idle > self._stall_warning_s and now - last_image < self._stall_warning_s:
            reason, count = max(drops.items(), key=lambda item: item[1])
            cause = (
                f"most drops so far for '{reason}' ({count}), see the warnings above"
                if count
                else "none dropped: one frame has taken all that time (an overloaded CPU?)"
            )
            text = (
                f"images keep arriving but none was integrated for {idle:.0f} s "
                f"({self._input.pending()} queued; {cause})"
            )
            self._input.warn("integration_stalled", text)
            self._health = (DiagnosticStatus.WARN, text)
        elif now - last_image > self._stall_warning_s:
            self._health = (DiagnosticStatus.OK, f"idle: no image for {now - last_image:.0f} s")

    def _publish_diagnostics(self, status) -> None:
        """The status as a standard diagnostic_msgs/DiagnosticArray on /diagnostics, for
        rqt_robot_monitor, the diagnostic aggregator and Foxglove."""
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        level, message = self._health
        if level == DiagnosticStatus.OK and self._startup_warnings:
            level, message = DiagnosticStatus.WARN, "; ".join(self._startup_warnings)
        values = {
            "frames_received": status.frames_received,
            "frames_integrated": status.frames_integrated,
            "frames_not_keyframes": status.frames_not_keyframes,
            "frames_dropped": status.frames_dropped,
            **{f"dropped_{d.reason}": d.count for d in status.drops},
            "map_chunks": status.map_chunks,
            "map_chunks_evicted": status.map_chunks_evicted,
            "device": status.device,
            "window_placement": status.window_placement,
            "refinement": self._reconstructor.refinement_note,
            "worker_restarts": self._worker_restarts,
            "rss_mib": f"{_rss_mib():.0f}",
            **{f"{t.name}_ms": f"{t.mean_ms:.1f}" for t in status.timings},
        }
        entry = DiagnosticStatus(
            level=level,
            name=f"{self.get_fully_qualified_name()}: reconstruction",
            message=message,
            hardware_id="recon_ros",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[entry])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def _on_save(self, request, response):
        try:
            self._on_cnn_timer()  # everything integrated goes into the save
            saved = self._pipeline.save(self._output_directory, request.name, self._color_mode)
        except ValueError as error:
            response.success = False
            response.message = str(error)
            self.get_logger().warn(response.message)
            return response
        except OSError as error:
            response.success = False
            response.message = f"saving failed: {error}"
            self.get_logger().error(response.message)
            return response
        response.success = True
        response.mesh_path = str(saved.mesh_path)
        response.map_path = str(saved.map_path)
        response.message = (
            f"saved {saved.triangles} triangles and the map into {saved.folder} (mesh.ply, map/)"
        )
        self.get_logger().info(response.message)
        return response

    def _on_load(self, request, response):
        try:
            folder, chunks = self._pipeline.load(self._output_directory, request.path)
        except (ValueError, OSError) as error:
            response.success = False
            response.message = f"map not loaded, the current one is kept: {error}"
            self.get_logger().warn(response.message)
            return response
        self._map_changed()
        response.success = True
        response.chunks = chunks
        response.message = (
            f"loaded {chunks} map chunks from {folder}; the window starts afresh and the "
            "next frames map into the loaded map"
        )
        self.get_logger().info(response.message)
        return response

    def _on_reset(self, request, response):
        del request
        discarded = self._input.clear()
        self._pipeline.reset()
        self._map_changed()
        response.success = True
        response.message = (
            f"map, window and transform history cleared; {discarded} queued images discarded "
            f"(counted as 'reset')"
        )
        self.get_logger().info(response.message)
        return response

    def destroy_node(self):
        # Also called on a node whose start failed half way (rclpy destroys it at shutdown).
        stop, worker = getattr(self, "_stop", None), getattr(self, "_worker", None)
        if stop is not None:
            stop.set()
        if worker is not None:
            worker.join(timeout=5.0)
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(AtlasNode, "atlas_node", num_threads=5, args=args)
