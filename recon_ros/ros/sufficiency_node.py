"""sufficiency_node: do the recent keyframes see the scene well enough to reconstruct it?

For each new keyframe (the reference) the conjugate-pair network estimates, per pixel, how many of
the m best-overlapping recent keyframes also see the 3D point under it. Inputs are those of
atlas_node (``image``, ``camera_info``, ``/tf`` and ``/tf_static`` or a pose topic), handled by the
same code. Outputs:

- ``~/sufficiency`` (recon_ros/FrameSufficiency): per-count pixel fractions, score, verdict, with
  the reference image's header and the partners' stamps;
- ``~/count_image`` (sensor_msgs/Image rgb8): the count map colour-mapped (red: no partner sees
  the pixel, green: all m do), at the reference image's size and frame, for RViz;
- ``~/counts`` (sensor_msgs/Image mono8): the raw counts 0..m;
- ``~/coverage`` (sensor_msgs/PointCloud2, transient local, in the world frame): the coverage
  layer (``core.coverage``), where the estimates put their counts in the world through the
  reference's plane-sweep depth: one point per cell of ``coverage_cell_size_m``, coloured by the
  best count any estimate gave it (red: no partner saw it; green: all m did), with fields
  ``count`` and ``estimates``: the surfaces still red need more views;
- ``/diagnostics``: the layer's summary (cells, share covered, the chunks with most cells not
  covered).
"""

from __future__ import annotations

import threading

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node

from recon_ros.io import image_conversions
from recon_ros.parameters import SUFFICIENCY_PARAMS
from recon_ros.ros.common import LATCHED_QOS, run_node
from recon_ros.ros.declare_parameters import declare_table
from recon_ros.ros.posed_input import InputSettings, PosedImageInput
from recon_ros.weights import default_sufficiency_weights, given_or_shipped


def count_palette(m: int) -> np.ndarray:
    """(m + 1, 3) uint8 colours: red (count 0) through yellow to green (count m)."""
    t = np.linspace(0.0, 1.0, m + 1)
    red = np.clip(2.0 * (1.0 - t), 0.0, 1.0)
    green = np.clip(2.0 * t, 0.0, 1.0)
    return (np.stack([red, green, np.zeros_like(t)], axis=1) * 220).astype(np.uint8)


class SufficiencyNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sufficiency_node", **kwargs)
        from recon_ros.sufficiency.estimator import SufficiencyEstimator

        input_group = MutuallyExclusiveCallbackGroup()
        inputs = InputSettings.declare(self)
        params = declare_table(self, SUFFICIENCY_PARAMS)
        weights = given_or_shipped(params["weights_path"], default_sufficiency_weights)
        self._estimator = SufficiencyEstimator.from_checkpoint(
            weights,
            device=params["device"],
            window=params["window"],
            k=params["k"],
            threshold=params["threshold"],
            min_overlap=params["min_overlap"],
            min_translation=params["keyframe_min_translation_m"],
            min_rotation_deg=params["keyframe_min_rotation_deg"],
        )
        self._palette = count_palette(self._estimator.m)
        self._input = PosedImageInput(self, inputs, input_group)

        from sensor_msgs.msg import Image

        from recon_ros.msg import FrameSufficiency

        self._result_pub = self.create_publisher(FrameSufficiency, "~/sufficiency", LATCHED_QOS)
        self._color_pub = self.create_publisher(Image, "~/count_image", LATCHED_QOS)
        self._counts_pub = self.create_publisher(Image, "~/counts", LATCHED_QOS)
        self._world_frame = inputs.world_frame
        self._coverage = None
        if params["coverage_cell_size_m"] > 0:
            from diagnostic_msgs.msg import DiagnosticArray
            from sensor_msgs.msg import PointCloud2

            from recon_ros.core.coverage import CoverageGrid

            self._coverage = CoverageGrid(
                params["coverage_cell_size_m"],
                self._estimator.m,
                self._estimator.k,
                max_cells=params["coverage_max_cells"],
            )
            self._estimator.keep_depth = True
            self._coverage_max_depth = params["coverage_max_depth_m"]
            self._coverage_source = ""
            self._coverage_chunk = params["coverage_chunk_size_m"]
            self._coverage_pub = self.create_publisher(PointCloud2, "~/coverage", LATCHED_QOS)
            self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.estimates = 0
        self._stop = threading.Event()
        self._worker_restarts = 0
        self._start_worker()
        # The worker catches everything per frame; this watchdog restarts it should it die.
        self.create_timer(1.0, self._supervise_worker)
        self.get_logger().info(
            f"sufficiency_node ready: weights {weights}, m = {self._estimator.m}, k = "
            f"{self._estimator.k}, threshold {self._estimator.threshold:g}, device "
            f"{self._estimator.device}; listening on "
            f"'{self.resolve_topic_name(self._input.image_topic)}'"
        )

    def _start_worker(self) -> None:
        self._worker = threading.Thread(target=self._loop, name="sufficiency", daemon=True)
        self._worker.start()

    def _supervise_worker(self) -> None:
        if self._worker.is_alive() or self._stop.is_set():
            return
        self._worker_restarts += 1
        self.get_logger().error(
            f"the sufficiency worker died; restarting it (restart {self._worker_restarts})"
        )
        self._start_worker()

    def _loop(self) -> None:
        while not self._stop.is_set():
            frame = None
            try:
                frame = self._input.next_frame(timeout_s=0.1)
                if frame is None:
                    continue
                result = self._estimator.update(
                    frame.rgb, frame.camera.K, frame.T_world_cam, frame.header
                )
                if result is not None and not self._stop.is_set():
                    counts = self._publish(result)
                    if self._coverage is not None:
                        self._publish_coverage(result, frame, counts)
            except Exception as error:  # one bad frame must never stop the estimates
                if not isinstance(error, ValueError) and (
                    self._stop.is_set() or not self.context.ok()
                ):
                    return  # shutting down: the context is gone, nothing to count or publish
                self._input.drop_failed(frame, error)

    def _publish(self, result) -> np.ndarray:
        """Publish the estimate; returns its counts at the reference image's size."""
        from recon_ros.msg import FrameSufficiency

        header = result.reference_stamp  # the reference image's header
        msg = FrameSufficiency()
        msg.header = header
        msg.reference_stamp = header.stamp
        msg.partner_stamps = [h.stamp for h in result.partner_stamps]
        msg.m = int(result.m)
        msg.count_fractions = [float(f) for f in result.count_fractions]
        msg.k = int(result.k)
        msg.score = float(result.score)
        msg.threshold = float(result.threshold)
        msg.sufficient = bool(result.sufficient)
        self._result_pub.publish(msg)
        counts = result.counts_full()
        colored = self._palette[np.minimum(counts, result.m)]
        self._color_pub.publish(
            image_conversions.rgb_to_image_msg(colored, header.stamp, header.frame_id, "rgb8")
        )
        self._counts_pub.publish(
            image_conversions.rgb_to_image_msg(
                counts.astype(np.uint8), header.stamp, header.frame_id, "mono8"
            )
        )
        self.estimates += 1
        return counts

    def _publish_coverage(self, result, frame, counts_full: np.ndarray) -> None:
        """Put the estimate's counts into the coverage grid; publish the grid and its summary.
        The counts go into the world through the frame's depth image when it has one registered
        to it (an RGB-D camera, ``use_depth``), else through the estimator's plane sweep."""
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

        from recon_ros.core.coverage import counts_for_depth
        from recon_ros.io.pointcloud_conversions import (
            array_to_pointcloud2,
            coverage_points_to_array,
        )
        from recon_ros.sufficiency.intrinsics import resize_nearest

        own = result.reference_stamp is frame.header  # the estimate is this frame's
        source = "the depth image" if own and frame.depth is not None else "the plane sweep"
        if source != self._coverage_source:
            self._coverage_source = source
            self.get_logger().info(f"coverage layer: counts put in the world through {source}")
        if own and frame.depth is not None:
            T_cam_depth = np.eye(4) if frame.T_cam_depth is None else frame.T_cam_depth
            K_depth = (frame.depth_camera or frame.camera).K
            counts = counts_for_depth(
                counts_full, frame.camera.K, frame.depth, K_depth, T_cam_depth
            )
            T_world_depth = np.asarray(result.T_world_cam) @ T_cam_depth
            self._coverage.add(
                counts, frame.depth, K_depth, T_world_depth, self._coverage_max_depth
            )
        elif result.depth is not None:
            counts = resize_nearest(result.counts, result.depth.shape)
            self._coverage.add(
                counts, result.depth, result.depth_K, result.T_world_cam, self._coverage_max_depth
            )
        else:
            return
        cells = self._coverage.cells()
        colours = self._palette[np.minimum(cells.best, result.m)]
        stamp = result.reference_stamp.stamp
        self._coverage_pub.publish(
            array_to_pointcloud2(
                coverage_points_to_array(cells.centres, colours, cells.best, cells.hits),
                stamp,
                self._world_frame,
            )
        )
        covered = self._coverage.covered()
        chunks = self._coverage.chunk_summary(self._coverage_chunk)
        lacking = sorted((c for c in chunks if c[2] > 0), key=lambda c: -c[2])
        share = float(covered.mean()) if len(covered) else 0.0
        values = {
            "cells": len(covered),
            "cells_covered_share": f"{share:.3f}",
            "chunks": len(chunks),
            "chunks_needing_views": len(lacking),
        }
        for rank, (index, total, short) in enumerate(lacking[:5]):
            centre = ", ".join(f"{(i + 0.5) * self._coverage_chunk:.1f}" for i in index)
            values[f"needs_views_{rank + 1}"] = f"({centre}) m: {short} of {total} cells"
        entry = DiagnosticStatus(
            level=DiagnosticStatus.OK,
            name=f"{self.get_fully_qualified_name()}: coverage",
            message=(
                f"{100 * share:.0f} % of {len(covered)} cells seen by at least k = "
                f"{self._estimator.k} partners; {len(lacking)} chunks need more views"
            ),
            hardware_id="recon_ros",
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )
        array = DiagnosticArray(status=[entry])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)

    def destroy_node(self):
        # Also called on a node whose start failed half way (rclpy destroys it at shutdown).
        stop, worker = getattr(self, "_stop", None), getattr(self, "_worker", None)
        if stop is not None:
            stop.set()
        if worker is not None:
            worker.join(timeout=5.0)
        return super().destroy_node()


def main(args=None) -> int:
    return run_node(SufficiencyNode, "sufficiency_node", num_threads=2, args=args)
