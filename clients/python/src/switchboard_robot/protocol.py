"""The robot wire protocol ``sbr.v1``: tags, channel descriptors, frame encoding and decoding.

A frame is a 4-byte big-endian length, then that many bytes holding exactly one plain MessagePack
value: an array whose first element is the frame's integer tag. docs/protocol.md ("Robot protocol
(sbr.v1)") is the specification; this module knows bytes and shapes, nothing of sockets or timing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Union

import msgpack

from .errors import FrameTooLarge, ProtocolError

PROTOCOL_VERSION = 1

# Robot -> hub
HELLO = 1
TELEMETRY = 3
STATUS = 12
ADVERTISE = 13
WITHDRAW = 14
RENEW = 20
# Hub -> robot
WELCOME = 2
ACK = 6  # planned (issue 15): reliable uplink acknowledgement [6, channelId, seq]
ERROR = 5
COMMAND = 10
ESTOP = 11
CERTIFICATE = 21
# Both ways
HEARTBEAT = 4

# STATUS stages
ACCEPTED = 1
REJECTED = 2
COMPLETED = 3
FAILED = 4

#: The hub's default limit on a robot's frames (``SB_ROBOT_MAX_FRAME_BYTES``), body only.
DEFAULT_MAX_FRAME_BYTES = 65_536
#: Largest frame this library reads from the hub before it drops the link.
DEFAULT_MAX_INCOMING_FRAME_BYTES = 16 * 1024 * 1024

DELIVERY_CODES = {"latest": 0, "reliable": 1}
SCHEMA_ENCODINGS = ("jsonschema", "ros2msg", "ros2idl", "protobuf", "flatbuffer")

_HEADER = struct.Struct(">I")


@dataclass(frozen=True)
class Channel:
    """A telemetry channel, advertised in HELLO.

    ``delivery`` is ``"latest"`` (state: watchers may get only the newest sample, e.g. a pose) or
    ``"reliable"`` (every sample, in order, e.g. a log). ``encoding`` (``msgpack``, ``json``,
    ``raw``...) and ``schema`` (a schema *name*, e.g. ``geometry_msgs/Pose2D``) are hints passed
    to watchers. ``schema_encoding`` and ``schema_data`` carry the schema itself (e.g.
    ``"jsonschema"`` and its text) for tools such as Foxglove; they need a hub that knows the
    7-element channel descriptor (issue 15), and are left out of HELLO when unset.
    """

    id: int
    name: str
    encoding: str = "msgpack"
    schema: Optional[str] = None
    delivery: str = "latest"
    schema_encoding: Optional[str] = None
    schema_data: Optional[Union[str, bytes]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, int) or not 0 <= self.id <= 65_535:
            raise ValueError(f"channel id: an integer from 0 to 65535, not {self.id!r}")
        for what, value, most in (("name", self.name, 64), ("encoding", self.encoding, 64)):
            if not isinstance(value, str) or not 1 <= len(value) <= most:
                raise ValueError(f"channel {what}: a string of 1 to {most} characters")
        if self.schema is not None and (not isinstance(self.schema, str) or not 1 <= len(self.schema) <= 256):
            raise ValueError("channel schema: None or a string of 1 to 256 characters")
        if self.delivery not in DELIVERY_CODES:
            raise ValueError(f"channel delivery: 'latest' or 'reliable', not {self.delivery!r}")
        if self.schema_data is not None and self.schema_encoding is None:
            raise ValueError("schema_data needs a schema_encoding (e.g. 'jsonschema', 'ros2msg', 'protobuf')")
        if self.schema_bytes > 65_536:
            raise ValueError("schema_data: at most 64 KiB per channel (UTF-8 bytes for text)")

    @property
    def schema_bytes(self) -> int:
        """Size of ``schema_data`` as the hub counts it (UTF-8 bytes for text)."""
        d = self.schema_data
        return 0 if d is None else len(d.encode("utf-8")) if isinstance(d, str) else len(d)

    @property
    def reliable(self) -> bool:
        return self.delivery == "reliable"

    def descriptor(self) -> List[Any]:
        """The channel as HELLO carries it: 5 elements, or 7 with a schema attached."""
        d: List[Any] = [self.id, self.name, self.encoding, self.schema, DELIVERY_CODES[self.delivery]]
        if self.schema_encoding is not None or self.schema_data is not None:
            d += [self.schema_encoding, self.schema_data]
        return d


def check_channels(channels: Sequence[Channel]) -> None:
    """Raises ValueError for what the hub would refuse in HELLO: over 64 channels, repeated ids or names."""
    if len(channels) > 64:
        raise ValueError("at most 64 channels")
    if len({c.id for c in channels}) != len(channels) or len({c.name for c in channels}) != len(channels):
        raise ValueError("channel ids and names must be unique")
    if sum(c.schema_bytes for c in channels) > 262_144:
        raise ValueError("schema_data: at most 256 KiB per robot")


def encode(frame: Sequence[Any], max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> bytes:
    """One length-prefixed frame. Raises FrameTooLarge (nothing is sent) past ``max_frame_bytes``."""
    body: bytes = msgpack.packb(list(frame), use_bin_type=True, datetime=False)
    if len(body) > max_frame_bytes:
        raise FrameTooLarge(len(body), max_frame_bytes)
    return _HEADER.pack(len(body)) + body


def hello(channels: Sequence[Channel]) -> List[Any]:
    return [HELLO, PROTOCOL_VERSION, [c.descriptor() for c in channels]]


def advertise(channels: Sequence[Channel]) -> List[Any]:
    return [ADVERTISE, [c.descriptor() for c in channels]]


def withdraw(channel_ids: Sequence[int]) -> List[Any]:
    return [WITHDRAW, list(channel_ids)]


def telemetry(channel: int, ts: int, payload: Any, seq: Optional[int] = None) -> List[Any]:
    return [TELEMETRY, channel, ts, payload] if seq is None else [TELEMETRY, channel, ts, payload, seq]


def renew(csr_der: bytes) -> List[Any]:
    return [RENEW, bytes(csr_der)]


def status(command_id: str, stage: int, detail: Any = None) -> List[Any]:
    return [STATUS, command_id, stage, detail]


def frame_length(header: bytes, max_frame_bytes: int) -> int:
    """The body length a 4-byte header declares; ProtocolError past the limit (the stream is then lost)."""
    n: int = _HEADER.unpack(header)[0]
    if n > max_frame_bytes:
        raise ProtocolError(f"the hub sent a frame of {n} bytes; this robot reads at most {max_frame_bytes}")
    return n


def decode(body: bytes) -> List[Any]:
    """A frame body from the hub: an array with an integer tag, or ProtocolError."""
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except Exception as e:  # msgpack raises several unrelated types for bad input
        raise ProtocolError(f"the hub sent a frame that is not MessagePack: {e}") from e
    if not isinstance(value, list) or not value or not isinstance(value[0], int):
        raise ProtocolError("the hub sent a frame that is not an array with an integer tag")
    return value
