"""bag_player: publish a rosbag2 (sqlite3 or mcap) into the ROS graph at its recorded rate, like
``ros2 bag play`` (rosbag2_py is not on PyPI), so atlas_node is exercised exactly as on a robot.

Messages go out as the serialized bytes stored in the bag. /tf_static is republished latched
(transient local) with every static transform seen so far in one message, as tf2's static
broadcaster does, so late subscribers get the whole static tree. With ``clock`` the player also
publishes /clock from the bag's time, for nodes run with ``use_sim_time``.

Run: ``ros2 run recon_ros bag_player --ros-args -p bag:=PATH -p rate:=2.0`` or
``recon-ros play PATH --rate 2``.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from pathlib import Path

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.serialization import deserialize_message, serialize_message

from recon_ros.ros.common import LATCHED_QOS, RELIABLE_STREAM_QOS, ignore_further_interrupts
from recon_ros.ros.declare_parameters import declare


def message_class(msgtype: str):
    """The rclpy class of a type name such as ``sensor_msgs/msg/Image``."""
    package, _, name = msgtype.rpartition("/")
    return getattr(importlib.import_module(package.replace("/", ".")), name)


class BagPlayer(Node):
    def __init__(self, **kwargs):
        super().__init__("bag_player", **kwargs)
        self.bag = declare(
            self, "bag", "", "rosbag2 folder or file (sqlite3 .db3 or .mcap) to play."
        )
        self.rate = declare(
            self, "rate", 1.0, "Playback speed relative to the recording.", (0.01, 100.0)
        )
        self.topics = declare(self, "topics", [""], "Topics to play; empty: all.")
        self.publish_clock = declare(self, "clock", False, "Publish /clock from the bag's time.")
        self.wait_for = declare(
            self,
            "wait_for_subscribers",
            [""],
            "Topics that must have a subscriber before playback starts (at most wait_timeout_s).",
        )
        self.wait_count = declare(
            self,
            "wait_for_subscriber_count",
            1,
            "How many subscribers each of wait_for_subscribers must have (two nodes on one "
            "image topic: 2, or the first matched starts playback before the other hears it).",
            (1, 100),
        )
        self.wait_timeout_s = declare(
            self, "wait_timeout_s", 10.0, "Longest wait for subscribers.", (0.0, 600.0)
        )
        self.start_delay_s = declare(
            self,
            "start_delay_s",
            0.5,
            "Pause after subscribers matched, for discovery to settle.",
            (0.0, 60.0),
        )
        self.topics = [t for t in self.topics if t]
        self.wait_for = [t for t in self.wait_for if t]
        if not self.bag:
            raise ValueError("parameter 'bag' is empty: give the rosbag2 to play")
        if not Path(self.bag).exists():
            raise FileNotFoundError(f"bag '{self.bag}' does not exist")
        self.published = 0
        self.finished = threading.Event()
        self._clock_pub = None
        if self.publish_clock:
            from rosgraph_msgs.msg import Clock

            self._clock_type = Clock
            self._clock_pub = self.create_publisher(Clock, "/clock", 10)

    def _publish_clock(self, stamp_ns: int) -> None:
        if self._clock_pub is None:
            return
        msg = self._clock_type()
        msg.clock.sec, msg.clock.nanosec = divmod(int(stamp_ns), 1_000_000_000)
        self._clock_pub.publish(msg)

    def _wait_for_subscribers(self, publishers: dict) -> None:
        deadline = time.monotonic() + self.wait_timeout_s
        for topic in self.wait_for:
            pub = publishers.get(topic)
            if pub is None:
                self.get_logger().warning(
                    f"wait_for_subscribers: topic '{topic}' is not in the bag"
                )
                continue
            while pub.get_subscription_count() < self.wait_count and time.monotonic() < deadline:
                time.sleep(0.05)
            if pub.get_subscription_count() < self.wait_count:
                self.get_logger().warning(
                    f"{pub.get_subscription_count()} of {self.wait_count} subscribers on "
                    f"'{topic}' after {self.wait_timeout_s} s; playing anyway"
                )
        time.sleep(self.start_delay_s)

    def play(self) -> int:
        """Publish the bag; returns the number of messages published."""
        from rosbags.rosbag2 import Reader
        from tf2_msgs.msg import TFMessage

        path = Path(self.bag)
        with Reader(path if path.is_dir() else path.parent) as reader:  # a rosbag2 folder
            connections = [
                c for c in reader.connections if not self.topics or c.topic in self.topics
            ]
            missing = sorted(set(self.topics) - {c.topic for c in connections})
            if missing:
                self.get_logger().warning(f"topics not in the bag: {missing}")
            publishers = {}
            for c in connections:
                if c.topic not in publishers:
                    qos = LATCHED_QOS if c.topic == "/tf_static" else RELIABLE_STREAM_QOS
                    publishers[c.topic] = self.create_publisher(
                        message_class(c.msgtype), c.topic, qos
                    )
            self.get_logger().info(
                f"playing {path.name}: {sum(c.msgcount for c in connections)} messages on "
                f"{len(publishers)} topics, {reader.duration / 1e9:.1f} s at rate {self.rate:g}"
            )
            self._wait_for_subscribers(publishers)
            static = {}
            start_wall, start_bag = None, None
            for connection, stamp_ns, raw in reader.messages(connections=connections):
                if start_wall is None:
                    start_wall, start_bag = time.monotonic(), stamp_ns
                due = start_wall + (stamp_ns - start_bag) / 1e9 / self.rate
                while (delay := due - time.monotonic()) > 0:
                    if not rclpy.ok():
                        return self.published
                    time.sleep(min(delay, 0.02))
                data = raw
                if connection.topic == "/tf_static":
                    for transform in deserialize_message(raw, TFMessage).transforms:
                        static[transform.child_frame_id] = transform
                    data = serialize_message(TFMessage(transforms=list(static.values())))
                try:
                    self._publish_clock(stamp_ns)
                    publishers[connection.topic].publish(data)
                except Exception:
                    if rclpy.ok():
                        raise
                    return self.published  # Ctrl-C: the context went while publishing
                self.published += 1
        self.get_logger().info(f"finished: {self.published} messages published")
        self.finished.set()
        return self.published


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        player = BagPlayer()
    except (ValueError, FileNotFoundError) as error:
        rclpy.logging.get_logger("bag_player").fatal(str(error))
        rclpy.try_shutdown()
        return 1
    except KeyboardInterrupt:  # Ctrl-C while starting: nothing was played
        ignore_further_interrupts()
        rclpy.try_shutdown()
        return 0
    executor = SingleThreadedExecutor()
    executor.add_node(player)

    def spin() -> None:
        # Ctrl-C shuts the context down under the spinning thread: nothing to report
        with contextlib.suppress(ExternalShutdownException):
            executor.spin()

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        player.play()
        time.sleep(0.5)  # let reliable writers deliver the last messages before the process exits
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_interrupts()  # a Ctrl-C as playback ends must not cut the teardown short
        executor.shutdown()
        spinner.join(timeout=5.0)  # the spinning thread must be out of rcl before teardown
        player.destroy_node()
        rclpy.try_shutdown()
    return 0
