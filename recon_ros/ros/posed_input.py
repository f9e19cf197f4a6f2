"""Posed images for the nodes: image + CameraInfo subscriptions, the camera pose from TF (or from a
pose / odometry topic), a bounded frame queue, and drops counted by reason with throttled warnings.

Callbacks only queue messages or fill buffers; ``next_frame`` (called from a node's worker thread)
decodes, waits a bounded time for the pose at the image stamp, and either returns a
``PosedFrame`` or counts and logs why the image was dropped. Silence is the failure users report
most of mapping nodes, so every dropped image is accounted for under a named reason.
"""

from __future__ import annotations

import collections
import threading
import time
import traceback
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data

from recon_ros.io import camera_info_conversions, transform_conversions
from recon_ros.io.posed_frames import (
    DEPTH_STAMP_TOLERANCE_NS,
    DROP_REASONS,
    FrameDropped,
    PosedFrame,
    attach_depth,
    posed_frame,
)
from recon_ros.io.tf_buffer import ExtrapolationError, TransformBuffer, TransformError
from recon_ros.parameters import INPUT_PARAMS
from recon_ros.ros.common import POSE_QOS, RELIABLE_STREAM_QOS, TF_QOS, TF_STATIC_QOS
from recon_ros.ros.declare_parameters import declare_table


class ThrottledLogger:
    """Warnings at most once per ``period_s`` per key, saying how many were held back."""

    def __init__(self, logger, period_s: float):
        self._logger = logger
        self._period = period_s
        self._last: dict[str, float] = {}
        self._held: collections.Counter = collections.Counter()
        self._lock = threading.Lock()

    def warn(self, key: str, text: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._period:
                self._held[key] += 1
                return False
            held, self._held[key] = self._held[key], 0
            self._last[key] = now
        suffix = f" ({held} more like this in the last {self._period:g} s)" if held else ""
        self._logger.warning(text + suffix)
        return True


def store_tf_message(buffer, msg, static: bool, throttled: ThrottledLogger) -> None:
    """A tf2_msgs/TFMessage into a ``TransformBuffer``; each transform it refuses gets a
    throttled warning naming the topic and why."""
    topic = "/tf_static" if static else "/tf"
    for problem in buffer.set_tf_message(msg, static=static):
        throttled.warn("bad_tf", f"ignored a transform on {topic}: {problem}")


@dataclass
class InputSettings:
    world_frame: str
    camera_frame: str
    image_transport: str
    image_qos: str
    pose_source: str
    pose_frame: str
    tf_timeout_s: float
    tf_max_future_s: float
    tf_max_translation_m: float
    tf_cache_time_s: float
    queue_size: int
    max_image_pixels: int
    log_throttle_s: float
    use_depth: bool = False

    @staticmethod
    def declare(node: Node) -> InputSettings:
        return InputSettings(**declare_table(node, INPUT_PARAMS))


class PosedImageInput:
    """The subscriptions and bookkeeping for posed images of one camera; see the module doc."""

    def __init__(
        self,
        node: Node,
        settings: InputSettings,
        callback_group=None,
        require_depth: bool = False,
    ):
        from geometry_msgs.msg import PoseStamped
        from nav_msgs.msg import Odometry
        from sensor_msgs.msg import CameraInfo, Image
        from tf2_msgs.msg import TFMessage

        self.settings = settings
        self._node = node
        self._log = ThrottledLogger(node.get_logger(), settings.log_throttle_s)
        self.tf = TransformBuffer(
            cache_time_s=settings.tf_cache_time_s,
            max_translation_m=settings.tf_max_translation_m,
            root_frame=settings.world_frame,
        )
        self._poses = TransformBuffer(
            cache_time_s=settings.tf_cache_time_s, max_translation_m=settings.tf_max_translation_m
        )
        self._queue: collections.deque = collections.deque()  # (image, monotonic arrival time)
        self._queue_cv = threading.Condition()
        self._camera_info = None
        # Recent CameraInfo by stamp: an image pairs with the one of its own stamp when it came,
        # not with whatever arrived last before the worker got to it.
        self._camera_infos: dict[int, object] = {}
        self._camera_info_lock = threading.Lock()
        self._paired_camera_info = False  # CameraInfo stamps have matched image stamps
        self._found_pose = False  # a pose was found for an image: start-up is over
        self._found_depth = False  # the same for depth images
        self._counts_lock = threading.Lock()
        self.received = 0
        self.drops: collections.Counter = collections.Counter({r: 0 for r in DROP_REASONS})
        self.last_image_wall_time: float | None = None
        self.newest_image_stamp_ns = 0
        #: Transforms refused for a stamp far in the future (``tf_max_future_s``).
        self.transforms_refused = 0
        # Depth images wait here for the colour image of their stamp (bounded).
        self.require_depth = require_depth
        self._depth_msgs: collections.deque = collections.deque(maxlen=60)
        self._depth_info = None
        self._depth_lock = threading.Lock()

        group = callback_group
        if settings.image_transport == "compressed":
            from sensor_msgs.msg import CompressedImage

            self.image_topic = "image/compressed"
            image_type = CompressedImage
        else:
            self.image_topic = "image"
            image_type = Image
        image_qos = (
            RELIABLE_STREAM_QOS if settings.image_qos == "reliable" else qos_profile_sensor_data
        )
        self.image_sub = node.create_subscription(
            image_type, self.image_topic, self._on_image, image_qos, callback_group=group
        )
        self.camera_info_sub = node.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info, image_qos, callback_group=group
        )
        if settings.use_depth:
            node.create_subscription(
                Image, "depth/image", self._on_depth, image_qos, callback_group=group
            )
            node.create_subscription(
                CameraInfo,
                "depth/camera_info",
                self._on_depth_info,
                image_qos,
                callback_group=group,
            )
        node.create_subscription(TFMessage, "/tf", self._on_tf, TF_QOS, callback_group=group)
        node.create_subscription(
            TFMessage, "/tf_static", self._on_tf_static, TF_STATIC_QOS, callback_group=group
        )
        if settings.pose_source == "pose":
            node.create_subscription(
                PoseStamped, "pose", self._on_pose, POSE_QOS, callback_group=group
            )
        elif settings.pose_source == "odometry":
            node.create_subscription(
                Odometry,
                "odometry",
                self._on_odometry,
                POSE_QOS,
                callback_group=group,
            )

    # --- callbacks: only store -----------------------------------------------------------

    def _on_image(self, msg) -> None:
        with self._counts_lock:
            self.received += 1
            self.last_image_wall_time = time.monotonic()
            self.newest_image_stamp_ns = max(
                self.newest_image_stamp_ns, transform_conversions.stamp_to_ns(msg.header.stamp)
            )
        with self._queue_cv:
            if len(self._queue) >= self.settings.queue_size:
                old, _ = self._queue.popleft()
                self.drop(
                    "queue_full",
                    f"frame queue full ({self.settings.queue_size}): dropped the oldest image "
                    f"(stamp {transform_conversions.stamp_to_ns(old.header.stamp) / 1e9:.3f}); "
                    "integration is slower than the input: raise keyframe thresholds or lower "
                    "the image rate",
                )
            self._queue.append((msg, time.monotonic()))
            self._queue_cv.notify()

    def _on_camera_info(self, msg) -> None:
        with self._camera_info_lock:
            self._camera_info = msg
            self._camera_infos[transform_conversions.stamp_to_ns(msg.header.stamp)] = msg
            while len(self._camera_infos) > 2 * max(self.settings.queue_size, 10):
                self._camera_infos.pop(next(iter(self._camera_infos)))

    def _on_depth(self, msg) -> None:
        with self._depth_lock:
            self._depth_msgs.append(msg)

    def _on_depth_info(self, msg) -> None:
        with self._depth_lock:
            self._depth_info = msg

    def _from_the_future(self, header, what: str) -> bool:
        """Whether a pose is stamped more than ``tf_max_future_s`` after the node's clock and the
        newest image (then it is refused, counted and logged)."""
        now_ns = max(self._node.get_clock().now().nanoseconds, self.newest_image_stamp_ns)
        ahead_ns = transform_conversions.stamp_to_ns(header.stamp) - now_ns
        if ahead_ns <= int(self.settings.tf_max_future_s * 1e9):
            return False
        with self._counts_lock:
            self.transforms_refused += 1
            refused = self.transforms_refused
        self._log.warn(
            "future_tf",
            f"ignored {what} stamped {ahead_ns / 1e9:.1f} s after the node's clock and newest "
            f"image (tf_max_future_s {self.settings.tf_max_future_s:g}; {refused} refused so far)",
        )
        return True

    def _store_transforms(self, msg, static: bool) -> None:
        topic = "/tf_static" if static else "/tf"
        if not static:
            kept = [
                t
                for t in msg.transforms
                if not self._from_the_future(
                    t.header,
                    f"a transform on {topic} '{t.header.frame_id}' -> '{t.child_frame_id}'",
                )
            ]
            if len(kept) != len(msg.transforms):
                msg = type(msg)(transforms=kept)
        store_tf_message(self.tf, msg, static, self._log)

    def _on_tf(self, msg) -> None:
        self._store_transforms(msg, static=False)

    def _on_tf_static(self, msg) -> None:
        self._store_transforms(msg, static=True)

    def _store_pose(self, header, child_frame: str, pose, topic: str) -> None:
        if self._from_the_future(header, f"a pose on '{topic}'"):
            return
        try:
            t, q = transform_conversions.translation_quaternion(pose.position, pose.orientation)
            self._poses.set_transform(
                header.frame_id, child_frame, transform_conversions.stamp_to_ns(header.stamp), t, q
            )
        except ValueError as error:
            self._log.warn("bad_pose_msg", f"ignored a message on '{topic}': {error}")

    def _on_pose(self, msg) -> None:
        child = self.settings.pose_frame or self.settings.camera_frame or "__camera__"
        self._store_pose(msg.header, child, msg.pose, self._node.resolve_topic_name("pose"))

    def _on_odometry(self, msg) -> None:
        self._store_pose(
            msg.header, msg.child_frame_id, msg.pose.pose, self._node.resolve_topic_name("odometry")
        )

    # --- worker side ---------------------------------------------------------------------

    def drop(self, reason: str, detail: str) -> None:
        with self._counts_lock:
            self.drops[reason] += 1
            total = self.drops[reason]
        self._log.warn(reason, f"dropped image [{reason}, {total} so far]: {detail}")

    def drop_failed(self, frame: PosedFrame | None, error: Exception) -> None:
        """Count a frame a worker could not process: ``rejected`` for the core's ValueError (bad
        input it names), ``internal_error`` with the traceback for anything else."""
        where = f"stamp {frame.stamp_ns / 1e9:.3f}: " if frame is not None else ""
        if isinstance(error, ValueError):
            self.drop("rejected", f"{where}{error}")
            return
        self.drop(
            "internal_error",
            f"{where}{type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}",
        )

    def warn(self, key: str, text: str) -> None:
        self._log.warn(key, text)

    def pending(self) -> int:
        with self._queue_cv:
            return len(self._queue)

    def clear(self) -> int:
        """A reset: discard the queued images (counted as dropped for ``reset``) and the dynamic
        transform history (a bad transform must not outlive a reset). Returns the images
        discarded."""
        with self._queue_cv:
            discarded = len(self._queue)
            self._queue.clear()
        if discarded:
            with self._counts_lock:
                self.drops["reset"] += discarded
        self.tf.clear_dynamic()
        self._poses.clear_dynamic()
        return discarded

    def counts(self) -> tuple[int, dict[str, int]]:
        with self._counts_lock:
            return self.received, dict(self.drops)

    def next_frame(self, timeout_s: float) -> PosedFrame | None:
        """The next image as a PosedFrame; None when none arrived within ``timeout_s`` or when the
        image was dropped (counted and logged)."""
        with self._queue_cv:
            if not self._queue and not self._queue_cv.wait_for(
                lambda: bool(self._queue), timeout_s
            ):
                return None
            msg, arrived = self._queue.popleft()
        return self._decode(msg, arrived)

    def _wait_deadline(self, arrived: float, started_up: bool) -> float:
        """Until when an image waits for its CameraInfo, pose or depth: tf_timeout_s after it
        arrived once the first such data has come (a worker that is behind then never waits on
        data that did not come), tf_timeout_s from now before that (start-up, a late DDS
        match: the images queued meanwhile are not all dropped at once)."""
        return (arrived if started_up else time.monotonic()) + self.settings.tf_timeout_s

    def _camera_info_for(self, msg, arrived: float):
        """The CameraInfo for an image: the one of its stamp, else the newest, after waiting
        (until ``_wait_deadline``) for one stamped no earlier than the image when the newest is
        older (a camera driver sends the pair together, but DDS may deliver the image first)."""
        stamp_ns = transform_conversions.stamp_to_ns(msg.header.stamp)
        with self._camera_info_lock:
            deadline = self._wait_deadline(arrived, self._camera_info is not None)
        while True:
            with self._camera_info_lock:
                info = self._camera_infos.get(stamp_ns, self._camera_info)
            info_ns = (
                transform_conversions.stamp_to_ns(info.header.stamp) if info is not None else None
            )
            if info_ns == stamp_ns:
                self._paired_camera_info = True
            # Drivers whose CameraInfo is latched or stamped otherwise are not waited for.
            waiting = info is None or (self._paired_camera_info and info_ns < stamp_ns)
            if not waiting or time.monotonic() >= deadline:
                return info
            time.sleep(0.005)

    def _decode(self, msg, arrived: float) -> PosedFrame | None:
        info = self._camera_info_for(msg, arrived)
        if info is not None and camera_info_conversions.has_distortion(info):
            self._log.warn(
                "distortion",
                "CameraInfo declares lens distortion, which is not modelled: subscribe to a "
                "rectified image (image_rect) for accurate geometry",
            )
        hint = ""
        if info is None:  # only the "no CameraInfo" drop names the topic and its publishers
            topic = self._node.resolve_topic_name("camera_info")
            hint = f" on '{topic}' ({self._node.count_publishers(topic)} publishers)"
        try:
            frame = posed_frame(
                msg,
                info,
                lambda frame_id, stamp_ns: self._lookup_pose(frame_id, stamp_ns, arrived),
                self.settings.camera_frame,
                hint,
                self.settings.max_image_pixels,
            )
            if self.settings.use_depth:
                self._pair_depth(frame, arrived)
            return frame
        except FrameDropped as dropped:
            self.drop(dropped.reason, dropped.detail)
            return None

    def _matching_depth(self, stamp_ns: int):
        with self._depth_lock:
            best = min(
                self._depth_msgs,
                key=lambda m: abs(transform_conversions.stamp_to_ns(m.header.stamp) - stamp_ns),
                default=None,
            )
            info = self._depth_info
        if best is None:
            return None, info
        offset = abs(transform_conversions.stamp_to_ns(best.header.stamp) - stamp_ns)
        return (best if offset <= DEPTH_STAMP_TOLERANCE_NS else None), info

    def _pair_depth(self, frame: PosedFrame, arrived: float) -> None:
        """Attach the depth image of the frame's stamp, waiting for it until ``_wait_deadline``."""
        deadline = self._wait_deadline(arrived, self._found_depth)
        while True:
            depth, info = self._matching_depth(frame.stamp_ns)
            if depth is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.005)
        self._found_depth = self._found_depth or depth is not None
        if depth is None:
            topic = self._node.resolve_topic_name("depth/image")
            detail = (
                f"image stamp {frame.stamp_ns / 1e9:.3f}: no depth image within "
                f"{DEPTH_STAMP_TOLERANCE_NS / 1e6:.0f} ms on '{topic}' "
                f"({self._node.count_publishers(topic)} publishers)"
            )
            if self.require_depth:
                raise FrameDropped("no_depth", detail)
            self._log.warn("no_depth", detail + "; mapped with stereo depth instead")
            return
        attach_depth(frame, depth, info, self.tf.lookup, self.settings.max_image_pixels)

    def _lookup_once(self, frame_id: str, stamp_ns: int) -> np.ndarray:
        world = self.settings.world_frame
        if self.settings.pose_source == "tf":
            return self.tf.lookup(world, frame_id, stamp_ns)
        if self.settings.pose_source == "pose":
            body = self.settings.pose_frame or self.settings.camera_frame or "__camera__"
        else:
            frames = [f for f in self._poses.frames() if f != world]
            body = frames[0] if len(frames) == 1 else None
            if body is None:
                raise TransformError(
                    f"expected odometry of one child frame in '{world}', have frames {frames}"
                )
        T_world_body = self._poses.lookup(world, body, stamp_ns)
        if body in ("__camera__", frame_id):
            return T_world_body
        return T_world_body @ self.tf.lookup(body, frame_id, stamp_ns)

    def _lookup_pose(self, frame_id: str, stamp_ns: int, arrived: float) -> np.ndarray:
        """The pose at the image stamp, waiting for data until ``_wait_deadline`` (``arrived``:
        when the image came, monotonic)."""
        deadline = self._wait_deadline(arrived, self._found_pose)
        while True:
            try:
                pose = self._lookup_once(frame_id, stamp_ns)
                self._found_pose = True
                return pose
            except ExtrapolationError as error:
                if not error.future or time.monotonic() >= deadline:
                    raise
            except TransformError:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.005)
