"""Read what a damaged MCAP bag still holds: a recorder killed mid-write leaves a file without its
summary and footer, which bag readers (rosbags, rosbag2) refuse whole. This reader walks the
records from the start (chunks decompressed with the codecs rosbags ships) and stops, saying
where, at the first record that is cut off, so a replay maps everything before it.

It offers the part of ``bagfile.BagReader``'s interface the replay uses (``topics``,
``messages``, ``offered_qos``) and is ROS-free.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from recon_ros.io.bagfile import BagMessage, BagReader, TopicInfo, default_typestore, detect_storage

MAGIC = b"\x89MCAP0\r\n"
_SCHEMA, _CHANNEL, _MESSAGE, _CHUNK, _DATA_END = 0x03, 0x04, 0x05, 0x06, 0x0F


def _string(data: bytes, offset: int) -> tuple[str, int]:
    (length,) = struct.unpack_from("<I", data, offset)
    start = offset + 4
    return data[start : start + length].decode("utf8"), start + length


class SalvagedMcap:
    """The readable records of a (damaged) ``.mcap`` file, in file order.

    Attributes (after construction, which reads the file once):
        stopped: why reading stopped before the end (None: the records ran to a clean end).
        bytes_read / file_size: how far the readable records reach.
    """

    def __init__(self, path: str | Path, typestore=None) -> None:
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("*.mcap"))
            if not files:
                raise ValueError(f"bag: no .mcap file in {path}")
            path = files[0]
        self.path = path
        self.typestore = typestore if typestore is not None else default_typestore()
        self._data = path.read_bytes()
        if not self._data.startswith(MAGIC):
            raise ValueError(f"bag: {path} is not an MCAP file (no MCAP magic at its start)")
        self.file_size = len(self._data)
        self.schemas: dict[int, tuple[str, str]] = {}  # id -> (type name, definition)
        self.channels: dict[int, tuple[str, int]] = {}  # id -> (topic, schema id)
        self.stopped: str | None = None
        self.bytes_read = len(MAGIC)
        self._counts: dict[str, int] = {}
        for channel, _, _ in self._raw_messages():
            topic = self.channels[channel][0]
            self._counts[topic] = self._counts.get(topic, 0) + 1
        self._register_types()

    # --- records ------------------------------------------------------------------------

    def _records(self, data: bytes, start: int, top_level: bool) -> Iterator[tuple[int, bytes]]:
        position = start
        while position < len(data):
            if len(data) - position < 9:
                if top_level:
                    self.stopped = f"a record header cut off at byte {position}"
                return
            opcode = data[position]
            (length,) = struct.unpack_from("<Q", data, position + 1)
            end = position + 9 + length
            if end > len(data):
                if top_level:
                    self.stopped = (
                        f"a record (opcode 0x{opcode:02x}) at byte {position} is cut off: it "
                        f"declares {length} bytes, {len(data) - position - 9} remain"
                    )
                return
            yield opcode, data[position + 9 : end]
            position = end
            if top_level:
                self.bytes_read = position
                if opcode == _DATA_END:
                    return

    def _chunk_records(self, body: bytes) -> Iterator[tuple[int, bytes]]:
        from rosbags.rosbag2.storage_mcap import DECOMPRESSORS

        offset = 8 + 8  # message start and end time
        (uncompressed_size,) = struct.unpack_from("<Q", body, offset)
        offset += 8 + 4  # size, crc
        compression, offset = _string(body, offset)
        (length,) = struct.unpack_from("<Q", body, offset)
        payload = body[offset + 8 : offset + 8 + length]
        try:
            records = DECOMPRESSORS[compression](payload, uncompressed_size)
        except Exception as error:  # a damaged chunk: say so, keep what came before it
            self.stopped = f"a chunk compressed with '{compression}' does not decompress ({error})"
            return
        yield from self._records(records, 0, top_level=False)

    def _raw_messages(self) -> Iterator[tuple[int, int, bytes]]:
        """(channel id, log time ns, CDR bytes) of every readable message, schemas and channels
        collected on the way."""
        for opcode, body in self._records(self._data, len(MAGIC), top_level=True):
            records = self._chunk_records(body) if opcode == _CHUNK else [(opcode, body)]
            batch = []
            for inner_opcode, inner in records:
                if inner_opcode == _SCHEMA:
                    (schema_id,) = struct.unpack_from("<H", inner, 0)
                    name, offset = _string(inner, 2)
                    _, offset = _string(inner, offset)  # encoding (ros2msg)
                    definition, _ = _string(inner, offset)
                    self.schemas[schema_id] = (name, definition)
                elif inner_opcode == _CHANNEL:
                    channel_id, schema_id = struct.unpack_from("<HH", inner, 0)
                    topic, _ = _string(inner, 4)
                    self.channels[channel_id] = (topic, schema_id)
                elif inner_opcode == _MESSAGE:
                    channel_id, _, log_time = struct.unpack_from("<HIQ", inner, 0)
                    if channel_id in self.channels:
                        batch.append((channel_id, log_time, inner[22:]))
            yield from sorted(batch, key=lambda item: item[1])

    def _register_types(self) -> None:
        from rosbags.typesys import get_types_from_msg

        known = set(self.typestore.fielddefs)
        new_types: dict = {}
        for name, definition in self.schemas.values():
            if name not in known and name not in new_types and definition:
                new_types.update(get_types_from_msg(definition, name))
        new_types = {k: v for k, v in new_types.items() if k not in known}
        if new_types:
            self.typestore.register(new_types)

    # --- the BagReader interface the replay uses ---------------------------------------------

    @property
    def start_ns(self) -> int:
        return min((t for _, t, _ in self._raw_messages()), default=0)

    @property
    def end_ns(self) -> int:
        return max((t for _, t, _ in self._raw_messages()), default=0) + 1

    @property
    def topics(self) -> dict[str, TopicInfo]:
        types = {
            topic: self.schemas.get(schema, ("", ""))[0] for topic, schema in self.channels.values()
        }
        return {topic: TopicInfo(types[topic], count) for topic, count in self._counts.items()}

    def offered_qos(self, topic: str) -> list:
        return []

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        wanted = set(topics) if topics is not None else None
        for channel, log_time, raw in self._raw_messages():
            topic, schema = self.channels[channel]
            if wanted is not None and topic not in wanted:
                continue
            msgtype = self.schemas[schema][0]
            yield BagMessage(topic, msgtype, log_time, self.typestore.deserialize_cdr(raw, msgtype))

    def __enter__(self) -> SalvagedMcap:
        return self

    def __exit__(self, *exc) -> None:
        self._data = b""


@contextlib.contextmanager
def readable_bag(path: str | Path) -> Iterator[tuple[object, str | None]]:
    """``(reader, damage)``: a ``BagReader``, or for an MCAP bag the readers refuse (cut off by a
    killed recorder, or a broken metadata.yaml) a ``SalvagedMcap`` and a sentence saying what
    was wrong and how far it could be read.

    Raises:
        ValueError: a bag that cannot be read at all, naming the file.
    """
    try:
        reader = BagReader(path).open()
    except Exception as error:  # rosbags raises ReaderError, YAML and OS errors for bad bags
        try:
            storage = detect_storage(path)
        except ValueError:
            storage = "mcap" if any(Path(path).glob("*.mcap")) else None
        if storage != "mcap":
            raise ValueError(
                f"bag {path}: cannot be read ({type(error).__name__}: {error})"
            ) from error
        salvage = SalvagedMcap(path)
        read = sum(info.count for info in salvage.topics.values())
        damage = (
            f"the bag is damaged ({type(error).__name__}: {error}); read {read} messages from "
            f"{salvage.path.name} record by record, up to byte {salvage.bytes_read} of "
            f"{salvage.file_size}" + (f", where {salvage.stopped}" if salvage.stopped else "")
        )
        yield salvage, damage
        return
    try:
        yield reader, None
    finally:
        reader.close()
