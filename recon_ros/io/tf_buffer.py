"""A transform buffer with tf2's semantics, ROS-free: the one path for poses, on robots and in CI.

tf2_ros is not on PyPI, so atlas_node subscribes to /tf and /tf_static itself and fills this buffer;
the offline replay fills the same buffer from a bag. Semantics follow tf2:

- frames form a tree: every child frame has one parent (the latest message decides);
- static transforms hold at all times; dynamic ones are kept for ``cache_time_s`` behind the newest
  stamp of their frame (and at most ``max_entries_per_frame``), and are interpolated in time
  (linear translation, spherical-linear rotation);
- a lookup chains through parents up to the common ancestor of the two frames;
- asking outside the stored time span raises ``ExtrapolationError`` saying by how much, instead of
  guessing; an unknown frame raises ``FrameNotFoundError``; frames in different trees raise
  ``ConnectivityError``.

All times are integer nanoseconds. The buffer is thread-safe.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass

import numpy as np

from recon_ros.core.geometry import quaternion_to_matrix
from recon_ros.io.transform_conversions import stamp_to_ns, translation_quaternion


class TransformError(LookupError):
    """A transform could not be looked up; the message says why."""


class FrameNotFoundError(TransformError):
    pass


class ConnectivityError(TransformError):
    pass


class ExtrapolationError(TransformError):
    """The requested time lies outside the data of one link of the chain.

    ``future`` tells whether the time is past the newest data (waiting may help) or before the
    oldest (it never will)."""

    def __init__(self, message: str, future: bool):
        super().__init__(message)
        self.future = future


@dataclass(frozen=True)
class _Sample:
    stamp_ns: int
    translation: np.ndarray  # (3,)
    rotation: np.ndarray  # (4,) unit quaternion x, y, z, w


def _slerp(q0: np.ndarray, q1: np.ndarray, fraction: float) -> np.ndarray:
    """Spherical-linear interpolation of unit quaternions, along the shorter arc."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: normalised lerp is exact enough and stable
        q = q0 + fraction * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - fraction) * theta) * q0 + np.sin(fraction * theta) * q1) / np.sin(theta)


def _matrix(translation: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = quaternion_to_matrix(rotation)
    T[:3, 3] = translation
    return T


def _seconds(ns: int) -> str:
    return f"{ns / 1e9:.3f}"


class _Link:
    """The transform parent <- child over time."""

    def __init__(self, parent: str, static: bool):
        self.parent = parent
        self.static = static
        self.stamps: list[int] = []
        self.samples: list[_Sample] = []

    def insert(self, sample: _Sample, cache_ns: int, max_entries: int) -> None:
        if self.static:
            self.stamps, self.samples = [sample.stamp_ns], [sample]
            return
        i = bisect.bisect_left(self.stamps, sample.stamp_ns)
        if i < len(self.stamps) and self.stamps[i] == sample.stamp_ns:
            self.samples[i] = sample  # same stamp again: the newer message wins
        else:
            self.stamps.insert(i, sample.stamp_ns)
            self.samples.insert(i, sample)
        oldest_kept = self.stamps[-1] - cache_ns
        drop = max(bisect.bisect_left(self.stamps, oldest_kept), len(self.stamps) - max_entries)
        if drop > 0:
            del self.stamps[:drop]
            del self.samples[:drop]

    def at(self, stamp_ns: int | None, child: str) -> np.ndarray:
        """T_parent_child at a time (None: the latest)."""
        if self.static or stamp_ns is None:
            s = self.samples[-1]
            return _matrix(s.translation, s.rotation)
        first, last = self.stamps[0], self.stamps[-1]
        if stamp_ns > last:
            raise ExtrapolationError(
                f"lookup would require extrapolation into the future: requested time "
                f"{_seconds(stamp_ns)} but the latest data of '{self.parent}' -> '{child}' is at "
                f"{_seconds(last)} ({(stamp_ns - last) / 1e9:.3f} s later)",
                future=True,
            )
        if stamp_ns < first:
            raise ExtrapolationError(
                f"lookup would require extrapolation into the past: requested time "
                f"{_seconds(stamp_ns)} but the earliest data of '{self.parent}' -> '{child}' is "
                f"at {_seconds(first)} ({(first - stamp_ns) / 1e9:.3f} s earlier)",
                future=False,
            )
        i = bisect.bisect_left(self.stamps, stamp_ns)
        if self.stamps[i] == stamp_ns:
            s = self.samples[i]
            return _matrix(s.translation, s.rotation)
        a, b = self.samples[i - 1], self.samples[i]
        fraction = (stamp_ns - a.stamp_ns) / (b.stamp_ns - a.stamp_ns)
        translation = a.translation + fraction * (b.translation - a.translation)
        return _matrix(translation, _slerp(a.rotation, b.rotation, fraction))

    def latest_stamp(self) -> int | None:
        return None if self.static else self.stamps[-1]


#: Largest translation a transform may carry (metres): UTM coordinates fit, 1e18 m does not (the
#: window's voxel index would overflow).
MAX_TRANSLATION_M = 1e7


class TransformBuffer:
    """Time-indexed tree of transforms; see the module docstring."""

    def __init__(
        self,
        cache_time_s: float = 10.0,
        max_entries_per_frame: int = 100_000,
        max_translation_m: float = MAX_TRANSLATION_M,
        root_frame: str | None = None,
    ):
        """``root_frame`` (a node's world frame): no dynamic transform may give it a parent, so
        one message hanging the world under the camera cannot block every later pose, whichever
        arrives first (a static parent, such as earth -> map on /tf_static, is accepted)."""
        if cache_time_s <= 0:
            raise ValueError(f"cache_time_s must be positive, got {cache_time_s}")
        self.max_translation_m = float(max_translation_m)
        self._cache_ns = int(cache_time_s * 1e9)
        self._max_entries = int(max_entries_per_frame)
        self.root_frame = root_frame.lstrip("/") if root_frame else None
        self._links: dict[str, _Link] = {}  # keyed by child frame
        self._lock = threading.Lock()

    # --- filling ---------------------------------------------------------------------------

    def set_transform(
        self,
        parent: str,
        child: str,
        stamp_ns: int,
        translation,
        rotation_xyzw,
        static: bool = False,
    ) -> None:
        """Store T_parent_child. Raises ValueError for empty or equal frame ids and bad values."""
        parent, child = parent.lstrip("/"), child.lstrip("/")
        if not parent or not child:
            raise ValueError(f"transform with empty frame id: '{parent}' -> '{child}'")
        if parent == child:
            raise ValueError(f"transform from frame '{child}' to itself")
        if child == self.root_frame and not static:
            raise ValueError(
                f"transform '{parent}' -> '{child}' would give the world frame '{child}' a "
                "parent; it is the root of the map's transform tree"
            )
        translation = np.asarray(translation, dtype=np.float64).reshape(3)
        rotation = np.asarray(rotation_xyzw, dtype=np.float64).reshape(4)
        if not (np.all(np.isfinite(translation)) and np.all(np.isfinite(rotation))):
            raise ValueError(f"transform '{parent}' -> '{child}' is not finite")
        if np.abs(translation).max() > self.max_translation_m:
            raise ValueError(
                f"transform '{parent}' -> '{child}' moves {np.abs(translation).max():.3g} m, "
                f"more than tf_max_translation_m = {self.max_translation_m:g}"
            )
        norm = float(np.linalg.norm(rotation))
        if abs(norm - 1.0) > 1e-2:
            raise ValueError(
                f"transform '{parent}' -> '{child}' has a non-unit quaternion (norm {norm:.4f})"
            )
        sample = _Sample(int(stamp_ns), translation, rotation / norm)
        with self._lock:
            ancestor, seen = parent, 0
            while ancestor in self._links and seen <= len(self._links):
                if ancestor == child:
                    break
                ancestor = self._links[ancestor].parent
                seen += 1
            if ancestor == child:
                # tf2 would keep it and every lookup through either frame would fail until the
                # tree is mended: refuse it instead.
                raise ValueError(
                    f"transform '{parent}' -> '{child}' would close a loop ('{parent}' already "
                    f"descends from '{child}')"
                )
            link = self._links.get(child)
            if link is None or link.parent != parent or link.static != static:
                link = _Link(parent, static)  # tf2: a new parent (or kind) replaces the old link
                self._links[child] = link
            link.insert(sample, self._cache_ns, self._max_entries)

    def set_transform_msg(self, msg, static: bool = False) -> None:
        """Store a geometry_msgs/TransformStamped (rclpy or rosbags message)."""
        t, q = translation_quaternion(msg.transform.translation, msg.transform.rotation)
        self.set_transform(
            msg.header.frame_id, msg.child_frame_id, stamp_to_ns(msg.header.stamp), t, q, static
        )

    def set_tf_message(self, msg, static: bool = False) -> list[str]:
        """Store every transform of a tf2_msgs/TFMessage; returns the reasons of those rejected."""
        problems = []
        for transform in msg.transforms:
            try:
                self.set_transform_msg(transform, static)
            except ValueError as error:
                problems.append(str(error))
        return problems

    def clear(self) -> None:
        with self._lock:
            self._links.clear()

    def clear_dynamic(self) -> int:
        """Forget every non-static link (a reset); returns how many were forgotten."""
        with self._lock:
            dynamic = [child for child, link in self._links.items() if not link.static]
            for child in dynamic:
                del self._links[child]
        return len(dynamic)

    # --- queries -------------------------------------------------------------------------

    def frames(self) -> list[str]:
        with self._lock:
            names = set(self._links)
            names.update(link.parent for link in self._links.values())
        return sorted(names)

    def _chain(self, frame: str) -> list[str]:
        """The frame and its ancestors up to its root."""
        chain = [frame]
        while chain[-1] in self._links:
            chain.append(self._links[chain[-1]].parent)
            if len(chain) > len(self._links) + 1:
                raise ConnectivityError(f"the transform tree has a loop through '{frame}'")
        return chain

    def lookup(self, target: str, source: str, stamp_ns: int | None) -> np.ndarray:
        """``T_target_source`` (4x4): maps points in ``source`` to ``target`` at ``stamp_ns``.

        ``stamp_ns=None`` asks for the latest time at which every link of the chain has data (tf2's
        time zero). Raises a ``TransformError`` subclass."""
        target, source = target.lstrip("/"), source.lstrip("/")
        if target == source:
            return np.eye(4)
        with self._lock:
            known = set(self._links) | {link.parent for link in self._links.values()}
            for frame in (source, target):
                if frame not in known:
                    listed = ", ".join(sorted(known)) or "none"
                    raise FrameNotFoundError(
                        f"frame '{frame}' does not exist in the transform tree (known: {listed})"
                    )
            source_chain = self._chain(source)
            target_chain = self._chain(target)
            common = next((f for f in source_chain if f in set(target_chain)), None)
            if common is None:
                raise ConnectivityError(
                    f"'{source}' and '{target}' are in unconnected trees (roots "
                    f"'{source_chain[-1]}' and '{target_chain[-1]}')"
                )
            links = source_chain[: source_chain.index(common)]
            links += target_chain[: target_chain.index(common)]
            if stamp_ns is None:
                latest = [self._links[c].latest_stamp() for c in links]
                latest = [t for t in latest if t is not None]
                stamp_ns = min(latest) if latest else None
            T_common_source = np.eye(4)
            for child in source_chain[: source_chain.index(common)]:
                T_common_source = self._links[child].at(stamp_ns, child) @ T_common_source
            T_common_target = np.eye(4)
            for child in target_chain[: target_chain.index(common)]:
                T_common_target = self._links[child].at(stamp_ns, child) @ T_common_target
        return np.linalg.inv(T_common_target) @ T_common_source

    def can_transform(self, target: str, source: str, stamp_ns: int | None) -> bool:
        try:
            self.lookup(target, source, stamp_ns)
        except TransformError:
            return False
        return True
