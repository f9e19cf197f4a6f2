"""rosbag2 reading and writing without ROS, on top of the ``rosbags`` package.

``BagReader`` opens a rosbag2 folder in either storage (sqlite3 or mcap, detected from its
``metadata.yaml``) and yields deserialised messages. rosbags messages carry the same field names
as rclpy's (``msg.header.stamp.sec``, ``msg.height``, ``msg.data`` ...), so the duck-typed
converters of ``recon_ros.io`` (``*_conversions``) accept both; only the container of byte arrays
differs (numpy arrays here, ``array.array`` or ``bytes`` in rclpy).

``BagWriter`` writes a new bag (mcap by default) with helpers for the messages recon_ros needs:
``sensor_msgs/msg/Image``, ``sensor_msgs/msg/CameraInfo`` and ``tf2_msgs/msg/TFMessage`` on ``/tf``
and ``/tf_static``. The bag is written into a hidden temporary folder beside ``path`` and moved into
place when the writer closes without error, so a crashed run never leaves a half-written bag under
the final name.

Types come from the rosbags ROS 2 Jazzy typestore; the messages used here are identical in Humble,
Jazzy and Kilted. Bags are written in rosbag2 metadata version 9 (Jazzy and later) by default;
``version=8`` gives Iron's format (QoS profiles as a YAML string). Humble's rosbag2 does not read
metadata newer than its own: there, delete ``metadata.yaml`` and run ``ros2 bag reindex`` (the
workaround rosbag2's maintainers give, ros2/rosbag2#1895), which loses the recorded QoS.

Example::

    with BagWriter("out_bag", storage="mcap") as bag:
        bag.write_image("/camera/color/image_raw", rgb, stamp_ns, "camera_color_optical_frame")
    with BagReader("out_bag") as bag:
        for topic, msgtype, stamp_ns, msg in bag.messages(["/camera/color/image_raw"]):
            ...
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from rosbags.interfaces import (
    MessageDefinitionFormat,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_types_from_idl, get_types_from_msg, get_typestore

from recon_ros.core.geometry import matrix_to_quaternion

IMAGE_TYPE = "sensor_msgs/msg/Image"
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
TF_TYPE = "tf2_msgs/msg/TFMessage"

#: Image encodings the writer builds from numpy arrays: encoding -> (dtype, channels).
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}

STORAGES = ("mcap", "sqlite3")

# rosbag2 records "infinite" durations as the largest rmw time, split into seconds and nanoseconds.
_INFINITE = QosTime(sec=9223372036, nsec=854775807)
_ZERO = QosTime(sec=0, nsec=0)


def _qos(depth: int, durability: QosDurability) -> Qos:
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth=depth,
        reliability=QosReliability.RELIABLE,
        durability=durability,
        deadline=_INFINITE,
        lifespan=_INFINITE,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=_INFINITE,
        avoid_ros_namespace_conventions=False,
    )


#: Offered QoS of ordinary publishers (reliable, volatile, keep last 10).
QOS_DEFAULT = _qos(10, QosDurability.VOLATILE)
#: Offered QoS of tf2's StaticTransformBroadcaster (reliable, transient local, keep last 1). rosbag2
#: players republish a topic latched when all its recorded publishers offered transient local.
QOS_TF_STATIC = _qos(1, QosDurability.TRANSIENT_LOCAL)
#: Offered QoS of tf2's TransformBroadcaster (reliable, volatile, keep last 100).
QOS_TF = _qos(100, QosDurability.VOLATILE)


class TopicInfo(NamedTuple):
    """What a bag holds on one topic."""

    msgtype: str
    count: int


class BagMessage(NamedTuple):
    """One message read from a bag; unpacks as ``(topic, msgtype, timestamp_ns, msg)``.

    ``timestamp_ns`` is the bag's record time (when the recorder received the message), not the
    header stamp.
    """

    topic: str
    msgtype: str
    timestamp_ns: int
    msg: Any


def default_typestore():
    """The rosbags typestore used for reading and writing (ROS 2 Jazzy message definitions)."""
    return get_typestore(Stores.ROS2_JAZZY)


def detect_storage(path: str | os.PathLike) -> str:
    """Storage of the rosbag2 folder ``path``: ``"sqlite3"`` or ``"mcap"``.

    Read from ``metadata.yaml`` when present, else guessed from the data files' extensions.
    """
    path = Path(path)
    if not path.is_dir():
        raise ValueError(f"path: {path} is not a rosbag2 folder")
    metadata = path / "metadata.yaml"
    if metadata.is_file():
        for line in metadata.read_text(encoding="utf8").splitlines():
            key, _, value = line.strip().partition(":")
            if key == "storage_identifier":
                return value.strip()
    if any(path.glob("*.mcap")):
        return "mcap"
    if any(path.glob("*.db3")):
        return "sqlite3"
    raise ValueError(f"path: no metadata.yaml, .mcap or .db3 file in {path}")


class BagReader:
    """Reads a rosbag2 folder (sqlite3 or mcap) and deserialises its messages with rosbags.

    Use as a context manager::

        with BagReader(path) as bag:
            print(bag.topics)  # {"/tf": TopicInfo("tf2_msgs/msg/TFMessage", 120), ...}
            for topic, msgtype, stamp_ns, msg in bag.messages(["/tf"]):
                ...

    Message types missing from the typestore (custom interfaces) are registered from the
    definitions the bag carries.
    """

    def __init__(self, path: str | os.PathLike, typestore=None):
        self.path = Path(path)
        if not self.path.exists():
            raise ValueError(f"path: {self.path} does not exist")
        self.storage = detect_storage(self.path)
        self.typestore = typestore if typestore is not None else default_typestore()
        self._reader: Reader | None = None

    def open(self) -> BagReader:
        if self._reader is None:
            reader = Reader(self.path)
            reader.open()
            self._reader = reader
            self._register_bag_types()
        return self

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> BagReader:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _require_open(self) -> Reader:
        if self._reader is None:
            raise RuntimeError("BagReader is not open; use it as a context manager or call open()")
        return self._reader

    def _register_bag_types(self) -> None:
        known = set(self.typestore.fielddefs)
        new_types: dict = {}
        for connection in self._require_open().connections:
            if connection.msgtype in known or connection.msgtype in new_types:
                continue
            definition = connection.msgdef
            if definition.format == MessageDefinitionFormat.MSG:
                new_types.update(get_types_from_msg(definition.data, connection.msgtype))
            elif definition.format == MessageDefinitionFormat.IDL:
                new_types.update(get_types_from_idl(definition.data))
        new_types = {name: fields for name, fields in new_types.items() if name not in known}
        if new_types:
            self.typestore.register(new_types)

    @property
    def topics(self) -> dict[str, TopicInfo]:
        """Topic name -> ``TopicInfo(msgtype, count)``."""
        reader = self._require_open()
        result: dict[str, TopicInfo] = {}
        for name, info in reader.topics.items():
            result[name] = TopicInfo(info.msgtype or "", int(info.msgcount))
        return result

    @property
    def start_ns(self) -> int:
        """Record time of the first message (ns)."""
        return int(self._require_open().start_time)

    @property
    def end_ns(self) -> int:
        """Record time just after the last message (ns), as rosbags reports it."""
        return int(self._require_open().end_time)

    @property
    def message_count(self) -> int:
        return int(self._require_open().message_count)

    def offered_qos(self, topic: str) -> list[Qos]:
        """QoS profiles the recorded publishers of ``topic`` offered (from the bag metadata)."""
        profiles: list[Qos] = []
        for connection in self._require_open().connections:
            if connection.topic == topic:
                profiles.extend(getattr(connection.ext, "offered_qos_profiles", []) or [])
        return profiles

    def messages(
        self,
        topics: Iterable[str] | None = None,
        start_ns: int | None = None,
        stop_ns: int | None = None,
    ) -> Iterator[BagMessage]:
        """Yield ``BagMessage(topic, msgtype, timestamp_ns, msg)`` in record-time order.

        Args:
            topics: topics to read; ``None`` reads all. Topics the bag lacks are ignored.
            start_ns: first record time to yield (inclusive), or ``None``.
            stop_ns: record time to stop before (exclusive), or ``None``.
        """
        reader = self._require_open()
        if isinstance(topics, str):
            raise ValueError("topics: pass a list of topic names, not a single string")
        connections = reader.connections
        if topics is not None:
            wanted = set(topics)
            connections = [c for c in connections if c.topic in wanted]
            if not connections:
                return
        for connection, timestamp, raw in reader.messages(connections, start_ns, stop_ns):
            msg = self.typestore.deserialize_cdr(raw, connection.msgtype)
            yield BagMessage(connection.topic, connection.msgtype, int(timestamp), msg)


class BagWriter:
    """Writes a new rosbag2 folder (mcap or sqlite3) with helpers for images, intrinsics and TF.

    Use as a context manager; the bag appears at ``path`` only when the block ends without error::

        with BagWriter("scene.bag", storage="mcap") as bag:
            bag.write_camera_info("/camera/color/camera_info", K, 640, 480, stamp, frame_id="cam")
            bag.write_image("/camera/color/image_raw", rgb, stamp, "cam")
            bag.write_transforms([("world", "cam", T_world_cam)], stamp, static=True)

    Topics are registered on first use with the message type and offered QoS given then (images
    and camera info: reliable/volatile; ``/tf_static``: transient local, as tf2 offers it).

    Args:
        path: the bag folder to create.
        storage: ``"mcap"`` or ``"sqlite3"``.
        overwrite: replace an existing folder at ``path`` (otherwise that is an error).
        version: rosbag2 metadata version, 8 or 9.
        typestore: rosbags typestore; default ROS 2 Jazzy definitions.
        compression: ``None``; ``"storage"`` (mcap only): zstd chunk compression inside the mcap
            file, which every mcap reader decodes; or ``"message"``: rosbag2's per-message zstd
            compression (``ros2 bag`` reads it with its zstd plugin).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        storage: str = "mcap",
        *,
        overwrite: bool = False,
        version: int = 9,
        typestore=None,
        compression: str | None = None,
    ):
        if storage not in STORAGES:
            raise ValueError(f"storage: expected one of {STORAGES}, got {storage!r}")
        if version not in (8, 9):
            raise ValueError(f"version: rosbag2 metadata version 8 or 9, got {version!r}")
        self.path = Path(path)
        if self.path.exists() and not overwrite:
            raise ValueError(f"path: {self.path} exists (pass overwrite=True to replace it)")
        if compression not in (None, "storage", "message"):
            raise ValueError(
                f"compression: expected None, 'storage' or 'message', got {compression!r}"
            )
        if compression == "storage" and storage != "mcap":
            raise ValueError("compression: 'storage' compression needs the mcap storage")
        self.storage = storage
        self.version = version
        self.compression = compression
        self.typestore = typestore if typestore is not None else default_typestore()
        self._writer: Writer | None = None
        self._tmp_root: Path | None = None
        self._connections: dict[str, Any] = {}
        self._overwrite = overwrite

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> BagWriter:
        if self._writer is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp_root = Path(
            tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        )
        plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
        writer = Writer(
            self._tmp_root / self.path.name, version=self.version, storage_plugin=plugin
        )
        if self.compression is not None:
            mode = (
                CompressionMode.STORAGE
                if self.compression == "storage"
                else CompressionMode.MESSAGE
            )
            writer.set_compression(mode, CompressionFormat.ZSTD)
        writer.open()
        self._writer = writer
        return self

    def close(self) -> None:
        """Finish the bag and move it to ``path``."""
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.close()
        assert self._tmp_root is not None
        if self.path.exists():
            if not self._overwrite:
                raise ValueError(f"path: {self.path} appeared while writing; not replacing it")
            if self.path.is_dir():
                shutil.rmtree(self.path)
            else:
                self.path.unlink()
        os.replace(self._tmp_root / self.path.name, self.path)
        shutil.rmtree(self._tmp_root, ignore_errors=True)
        self._tmp_root = None

    def abort(self) -> None:
        """Drop everything written so far; ``path`` is left untouched."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.abort()
        if self._tmp_root is not None:
            shutil.rmtree(self._tmp_root, ignore_errors=True)
            self._tmp_root = None

    def __enter__(self) -> BagWriter:
        return self.open()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- generic -----------------------------------------------------------------------------
    def add_topic(self, topic: str, msgtype: str, qos: Sequence[Qos] | Qos | None = None) -> None:
        """Register ``topic`` with ``msgtype`` and offered QoS (default ``QOS_DEFAULT``)."""
        if self._writer is None:
            raise RuntimeError("BagWriter is not open; use it as a context manager or call open()")
        if not topic.startswith("/"):
            raise ValueError(f"topic: ROS 2 topic names in bags are absolute, got {topic!r}")
        if topic in self._connections:
            if self._connections[topic].msgtype != msgtype:
                raise ValueError(
                    f"msgtype: topic {topic} already holds {self._connections[topic].msgtype}, "
                    f"not {msgtype}"
                )
            return
        if qos is None:
            qos = QOS_DEFAULT
        profiles = [qos] if isinstance(qos, Qos) else list(qos)
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=profiles
        )

    def write(self, topic: str, msgtype: str, stamp_ns: int, msg, qos=None) -> None:
        """Serialise ``msg`` (a rosbags message of ``msgtype``) onto ``topic`` at record time
        ``stamp_ns``; registers the topic on first use with ``qos``."""
        if stamp_ns < 0:
            raise ValueError(f"stamp_ns: record time must be non-negative, got {stamp_ns}")
        self.add_topic(topic, msgtype, qos)
        data = self.typestore.serialize_cdr(msg, msgtype)
        assert self._writer is not None
        self._writer.write(self._connections[topic], int(stamp_ns), data)

    def message_class(self, msgtype: str):
        """The rosbags class of ``msgtype`` (e.g. ``"geometry_msgs/msg/Point"``)."""
        return self.typestore.types[msgtype]

    # -- message builders --------------------------------------------------------------------
    def header(self, stamp_ns: int, frame_id: str):
        """``std_msgs/Header`` with the stamp ``stamp_ns`` (ns since the epoch)."""
        types = self.typestore.types
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=frame_id
        )

    def image_message(self, image: np.ndarray, stamp_ns: int, frame_id: str, *, encoding=None):
        """``sensor_msgs/Image`` from a numpy image.

        Args:
            image: (H, W, 3) uint8 for ``rgb8``/``bgr8`` (channels in that order), (H, W) uint8 for
                ``mono8``, (H, W) uint16 for ``16UC1`` (e.g. depth in mm), (H, W) float32 for
                ``32FC1`` (e.g. depth in m).
            encoding: one of ``IMAGE_ENCODINGS``; default inferred from the dtype and shape
                (uint8 with 3 channels -> rgb8).
        """
        image = np.asarray(image)
        if encoding is None:
            encoding = _infer_encoding(image)
        if encoding not in IMAGE_ENCODINGS:
            raise ValueError(
                f"encoding: expected one of {sorted(IMAGE_ENCODINGS)}, got {encoding!r}"
            )
        dtype, channels = IMAGE_ENCODINGS[encoding]
        expected_ndim = 3 if channels > 1 else 2
        if (
            image.dtype != dtype
            or image.ndim != expected_ndim
            or (channels > 1 and image.shape[2] != channels)
        ):
            raise ValueError(
                f"image: encoding {encoding} needs {dtype} with shape "
                f"{f'(H, W, {channels})' if channels > 1 else '(H, W)'}, "
                f"got {image.dtype} {image.shape}"
            )
        height, width = image.shape[:2]
        data = np.ascontiguousarray(image.astype(image.dtype.newbyteorder("<"), copy=False))
        return self.typestore.types[IMAGE_TYPE](
            header=self.header(stamp_ns, frame_id),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=0,
            step=width * channels * dtype.itemsize,
            data=data.view(np.uint8).reshape(-1),
        )

    def camera_info_message(
        self,
        K: np.ndarray,
        width: int,
        height: int,
        stamp_ns: int,
        frame_id: str,
        *,
        distortion: Sequence[float] | None = None,
    ):
        """``sensor_msgs/CameraInfo`` of a pinhole camera with intrinsics ``K`` (3, 3).

        Distortion model ``plumb_bob`` with ``distortion`` (5 coefficients, default zeros); R is
        the identity and P = [K | 0], as for an unrectified monocular camera.
        """
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K: expected shape (3, 3), got {K.shape}")
        if int(width) <= 0 or int(height) <= 0:
            raise ValueError(f"width, height: must be positive, got {width}x{height}")
        d = np.zeros(5) if distortion is None else np.asarray(distortion, dtype=np.float64)
        if d.shape != (5,):
            raise ValueError(f"distortion: plumb_bob takes 5 coefficients, got shape {d.shape}")
        P = np.zeros((3, 4))
        P[:, :3] = K
        types = self.typestore.types
        return types[CAMERA_INFO_TYPE](
            header=self.header(stamp_ns, frame_id),
            height=int(height),
            width=int(width),
            distortion_model="plumb_bob",
            d=d,
            k=K.reshape(-1).copy(),
            r=np.eye(3).reshape(-1),
            p=P.reshape(-1),
            binning_x=0,
            binning_y=0,
            roi=types["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )

    def transform_message(self, parent: str, child: str, T_parent_child: np.ndarray, stamp_ns: int):
        """``geometry_msgs/TransformStamped`` of the rigid transform ``T_parent_child`` (4, 4)
        (maps points in ``child`` to ``parent``)."""
        T = np.asarray(T_parent_child, dtype=np.float64)
        if T.shape != (4, 4):
            raise ValueError(f"T_parent_child: expected shape (4, 4), got {T.shape}")
        qx, qy, qz, qw = (float(v) for v in matrix_to_quaternion(T[:3, :3]))
        types = self.typestore.types
        return types["geometry_msgs/msg/TransformStamped"](
            header=self.header(stamp_ns, parent),
            child_frame_id=child,
            transform=types["geometry_msgs/msg/Transform"](
                translation=types["geometry_msgs/msg/Vector3"](
                    x=float(T[0, 3]), y=float(T[1, 3]), z=float(T[2, 3])
                ),
                rotation=types["geometry_msgs/msg/Quaternion"](x=qx, y=qy, z=qz, w=qw),
            ),
        )

    # -- writers -----------------------------------------------------------------------------
    def write_image(
        self,
        topic: str,
        image: np.ndarray,
        stamp_ns: int,
        frame_id: str,
        *,
        encoding: str | None = None,
        record_ns: int | None = None,
    ) -> None:
        """Write a ``sensor_msgs/Image`` (see ``image_message``) stamped ``stamp_ns``, recorded at
        ``record_ns`` (default the stamp)."""
        msg = self.image_message(image, stamp_ns, frame_id, encoding=encoding)
        self.write(topic, IMAGE_TYPE, stamp_ns if record_ns is None else record_ns, msg)

    def write_camera_info(
        self,
        topic: str,
        K: np.ndarray,
        width: int,
        height: int,
        stamp_ns: int,
        *,
        frame_id: str,
        distortion: Sequence[float] | None = None,
        record_ns: int | None = None,
    ) -> None:
        """Write a ``sensor_msgs/CameraInfo`` (see ``camera_info_message``)."""
        msg = self.camera_info_message(K, width, height, stamp_ns, frame_id, distortion=distortion)
        self.write(topic, CAMERA_INFO_TYPE, stamp_ns if record_ns is None else record_ns, msg)

    def write_transforms(
        self,
        transforms: Iterable[tuple[str, str, np.ndarray]],
        stamp_ns: int,
        static: bool = False,
        record_ns: int | None = None,
    ) -> None:
        """Write one ``tf2_msgs/TFMessage`` of ``(parent, child, T_parent_child)`` triples on
        ``/tf`` or, with ``static``, on ``/tf_static`` (offered transient local, as tf2 does)."""
        items = [self.transform_message(p, c, T, stamp_ns) for p, c, T in transforms]
        if not items:
            raise ValueError("transforms: at least one (parent, child, T) triple is needed")
        msg = self.typestore.types[TF_TYPE](transforms=items)
        topic, qos = ("/tf_static", QOS_TF_STATIC) if static else ("/tf", QOS_TF)
        self.write(topic, TF_TYPE, stamp_ns if record_ns is None else record_ns, msg, qos=qos)


def _infer_encoding(image: np.ndarray) -> str:
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return "rgb8"
    if image.dtype == np.uint8 and image.ndim == 2:
        return "mono8"
    if image.dtype == np.uint16 and image.ndim == 2:
        return "16UC1"
    if image.dtype == np.float32 and image.ndim == 2:
        return "32FC1"
    raise ValueError(
        f"image: cannot infer an encoding for {image.dtype} {image.shape}; pass encoding="
    )
