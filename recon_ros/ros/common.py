"""What the nodes share: QoS profiles and the start-up and spin of a node in its own process."""

from __future__ import annotations

import functools
import signal
import threading

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Outputs that late subscribers (an RViz started later) need: the latest message is kept.
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
#: tf2_ros's listener profiles: /tf reliable and volatile, /tf_static reliable and latched.
TF_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
TF_STATIC_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)


#: Pose and odometry inputs: best effort like sensor data (matches any publisher), but deep
#: enough for the bursts of a 100-200 Hz odometry source between two executor turns.
POSE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)

#: A stream where every message counts: what the bag player publishes with (as ``ros2 bag play``)
#: and what image and CameraInfo inputs subscribe with under ``image_qos: reliable`` (the depth
#: absorbs executor stalls). A best-effort publisher does not match it, which is why sensor data
#: stays the inputs' default.
RELIABLE_STREAM_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=100,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def stops_with_context(callback):
    """Decorate a node method run by a timer: it does nothing once the node's context is shut
    down, and an error raised because the context went while it ran (rclpy's SIGINT handler
    shuts the context down at once, while other executor threads may be publishing: "publisher's
    context is invalid") ends it quietly instead of surfacing as an unretrieved exception."""

    @functools.wraps(callback)
    def guarded(node, *args, **kwargs):
        if not node.context.ok():
            return None
        try:
            return callback(node, *args, **kwargs)
        except Exception:
            if node.context.ok():
                raise
            return None

    return guarded


def ignore_further_interrupts() -> None:
    """Ignore SIGINT from here on, for a process that is already tearing down.

    rclpy's SIGINT handler ends by raising KeyboardInterrupt in the main thread, wherever it is.
    A Ctrl-C (or a supervisor's SIGINT) that lands during teardown would skip the rest of it and
    end the process by the signal (exit status -2) instead of 0, although there is nothing left
    to stop. Only the main thread may change signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_node(node_class, name: str, num_threads: int, args=None) -> int:
    """Create ``node_class()`` and spin it on a multi-threaded executor until shutdown.

    A node that cannot start (bad parameter, missing weights) logs why and returns 1 rather than
    printing a traceback.
    """
    from rclpy.exceptions import ParameterException

    rclpy.init(args=args)
    try:
        node = node_class()
    except (ValueError, FileNotFoundError, RuntimeError, ParameterException) as error:
        rclpy.logging.get_logger(name).fatal(f"cannot start: {error}")
        rclpy.try_shutdown()
        return 1
    executor = MultiThreadedExecutor(num_threads=num_threads)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        ignore_further_interrupts()
        # Stop the node's workers and let running callbacks finish before the context goes, so
        # nothing publishes on a dead context and no thread is left inside torch at exit.
        executor.shutdown(timeout_sec=3.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
