"""Run nodes as their installed executables in child processes (as `ros2 run` starts them) and
watch them over DDS from an rclpy node of our own: used by the demo and by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import yaml


def executable(name: str) -> str:
    from ament_index_python.packages import get_package_prefix

    path = Path(get_package_prefix("recon_ros")) / "lib" / "recon_ros" / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: build the package (`make build`)")
    return str(path)


class NodeProcess:
    """A node executable in a child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        log_path: Path,
        params: dict | None = None,
        remaps: dict | None = None,
        args=(),
    ):
        self.log_path = log_path
        command = [executable(name), *args, "--ros-args"]
        if params is not None:
            params_file = log_path.with_suffix(".params.yaml")
            params_file.write_text(yaml.safe_dump({name: {"ros__parameters": params}}))
            command += ["--params-file", str(params_file)]
        for old, new in (remaps or {}).items():
            command += ["-r", f"{old}:={new}"]
        env = dict(os.environ, PYTHONUNBUFFERED="1", RCUTILS_COLORIZED_OUTPUT="0")
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """The log once ``text`` appears in it (or once ``timeout`` has passed)."""
        deadline = time.monotonic() + timeout
        while text not in self.log() and time.monotonic() < deadline and self.alive():
            time.sleep(0.1)
        return self.log()

    def stop(self, timeout: float = 10.0) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()
        return self.process.returncode


class Collector:
    """Keeps every message of one topic; ``wait_for`` polls a condition on them."""

    def __init__(self, node, msg_type, topic: str, qos):
        self.messages = []
        self._lock = threading.Lock()
        self.subscription = node.create_subscription(msg_type, topic, self._store, qos)

    def _store(self, msg) -> None:
        with self._lock:
            self.messages.append(msg)

    @property
    def last(self):
        with self._lock:
            return self.messages[-1] if self.messages else None

    def wait_for(self, condition, timeout: float, what: str = "", processes=()):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                messages = list(self.messages)
            if messages and condition(messages[-1], messages):
                return messages[-1]
            for process in processes:
                if not process.alive():
                    raise RuntimeError(f"{process.log_path.name} exited:\n{process.log()[-4000:]}")
            time.sleep(0.05)
        with self._lock:
            received = len(self.messages)
            last = repr(self.messages[-1])[:2000] if self.messages else "none"
        detail = "\n".join(f"--- {p.log_path.name} ---\n{p.log()[-4000:]}" for p in processes)
        raise TimeoutError(
            f"timed out after {timeout} s waiting for {what or 'a message'} "
            f"({received} received; last: {last})\n{detail}"
        )


def images_accounted_for(expected: int, quiet_s: float = 3.0, stall_s: float | None = None):
    """A ``Collector.wait_for`` condition on atlas_node's status: every image the node received
    is accounted for (integrated + not keyframes + dropped), and either ``expected`` images
    arrived or none arrived for ``quiet_s`` (best-effort transport, or a loaded reader, may lose
    some). With ``stall_s``, raises TimeoutError once no new image was accounted for that long:
    a stalled node fails, a slow one does not."""
    received = {"count": -1, "since": time.monotonic()}
    accounted = {"count": -1, "since": time.monotonic()}

    def condition(m, _) -> bool:
        now = time.monotonic()
        if m.frames_received != received["count"]:
            received.update(count=m.frames_received, since=now)
        done = m.frames_integrated + m.frames_not_keyframes + m.frames_dropped
        if done != accounted["count"]:
            accounted.update(count=done, since=now)
        elif stall_s is not None and now - accounted["since"] > stall_s:
            raise TimeoutError(
                f"atlas_node accounted for no new image in {stall_s:.0f} s ({done} of "
                f"{m.frames_received} received)"
            )
        arrived = m.frames_received >= expected or now - received["since"] > quiet_s
        return done == m.frames_received and arrived

    return condition


class ObserverNode:
    """rclpy nodes of our own in their own context, spun in background threads: they watch
    topics and call services of the nodes under observation."""

    def __init__(self, name: str):
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        # Subscriptions on one node, service clients on another, each spun by its own thread:
        # a reply is then not queued behind the decoding of a large message (a whole map is
        # tens of MB), and each topic's messages are still stored in order.
        self.node = rclpy.create_node(name, context=self.context)
        self._client_node = rclpy.create_node(f"{name}_client", context=self.context)
        self._stop = threading.Event()
        self._executors, self._threads = [], []
        for node in (self.node, self._client_node):
            executor = SingleThreadedExecutor(context=self.context)
            executor.add_node(node)
            thread = threading.Thread(target=self._spin, args=(executor,), daemon=True)
            thread.start()
            self._executors.append(executor)
            self._threads.append(thread)

    def _spin(self, executor) -> None:
        # Our own loop rather than executor.spin(): close() can then wait for the callback in
        # progress to end before anything it uses is destroyed.
        while not self._stop.is_set() and self.context.ok():
            executor.spin_once(timeout_sec=0.1)

    def collect(self, msg_type, topic: str, qos) -> Collector:
        return Collector(self.node, msg_type, topic, qos)

    def matched_publisher(self, msg_type, topic: str, qos, timeout: float = 30.0):
        """A publisher on ``topic`` once some subscription has matched it (what is published
        before would be lost); raises TimeoutError after ``timeout``."""
        publisher = self.node.create_publisher(msg_type, topic, qos)
        deadline = time.monotonic() + timeout
        while publisher.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscriber matched {topic} within {timeout} s")
            time.sleep(0.05)
        return publisher

    def call(self, srv_type, name: str, request, timeout: float = 30.0):
        client = self._client_node.create_client(srv_type, name)
        if not client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"service {name} did not appear within {timeout} s")
        future = client.call_async(request)
        deadline = time.monotonic() + timeout
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not future.done():
            raise TimeoutError(f"service {name} did not answer within {timeout} s")
        return future.result()

    def close(self) -> None:
        import rclpy

        # The spinning thread must be gone before the executor and node are destroyed (a
        # callback still running would use them) and before the interpreter exits (a thread
        # still inside rclpy at exit aborts the process).
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30.0)
        for executor in self._executors:
            executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        self._client_node.destroy_node()
        rclpy.try_shutdown(context=self.context)
