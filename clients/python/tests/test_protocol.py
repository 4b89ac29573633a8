"""Frames against the exact bytes docs/protocol.md shows, channel descriptors, limits, errors."""

import unittest

from switchboard_robot import Channel, FrameTooLarge, ProtocolError
from switchboard_robot import protocol as p

ID = "a1c5e9d3-6b2f-4a8e-8d7c-3f9b1e5a2c64"


def hexbytes(s: str) -> bytes:
    return bytes.fromhex(" ".join(s.split()))


class FramesTest(unittest.TestCase):
    def test_hello_is_the_documented_58_bytes(self) -> None:
        channels = [Channel(1, "pose", "msgpack", "geometry_msgs/Pose2D"), Channel(2, "log", "json", delivery="reliable")]
        want = hexbytes(
            """00 00 00 36 93 01 01 92 95 01 a4 70 6f 73 65 a7 6d 73 67 70 61 63 6b b4 67 65 6f 6d 65 74 72 79
            5f 6d 73 67 73 2f 50 6f 73 65 32 44 00 95 02 a3 6c 6f 67 a4 6a 73 6f 6e c0 01"""
        )
        self.assertEqual(p.encode(p.hello(channels)), want)

    def test_status_and_heartbeat_are_the_documented_bytes(self) -> None:
        self.assertEqual(p.encode([p.HEARTBEAT]), hexbytes("00 00 00 02 91 04"))
        want = hexbytes(
            """00 00 00 2a 94 0c d9 24 61 31 63 35 65 39 64 33 2d 36 62 32 66 2d 34 61 38 65 2d 38 64 37 63 2d
            33 66 39 62 31 65 35 61 32 63 36 34 01 c0"""
        )
        self.assertEqual(p.encode(p.status(ID, p.ACCEPTED)), want)

    def test_decodes_the_documented_welcome_and_error(self) -> None:
        welcome = hexbytes(
            """93 02 d9 24 37 62 33 65 39 66 32 61 2d 34 63 31 64 2d 34 65 38 62 2d 39 61 36 66 2d
            32 64 35 63 38 65 31 62 30 61 34 37 cd 13 88"""
        )
        self.assertEqual(p.decode(welcome), [2, "7b3e9f2a-4c1d-4e8b-9a6f-2d5c8e1b0a47", 5000])
        error = p.encode([p.ERROR, "TIMEOUT", "send HELLO within 10000 ms", None])
        self.assertEqual(len(error), 42)
        self.assertEqual(p.decode(error[4:]), [5, "TIMEOUT", "send HELLO within 10000 ms", None])

    def test_telemetry_carries_an_epoch_ms_timestamp_and_any_payload(self) -> None:
        frame = p.encode(p.telemetry(1, 1795317766218, b"\x00\x01"))
        self.assertEqual(p.decode(frame[4:]), [3, 1, 1795317766218, b"\x00\x01"])
        self.assertEqual(p.telemetry(2, 5, "x", seq=7), [3, 2, 5, "x", 7])

    def test_a_frame_over_the_limit_is_refused_before_sending(self) -> None:
        with self.assertRaises(FrameTooLarge) as e:
            p.encode(p.telemetry(1, 1, b"x" * 70_000))
        self.assertEqual(e.exception.limit, 65_536)
        self.assertGreater(e.exception.size, 70_000)
        self.assertEqual(len(p.encode(p.telemetry(1, 1, b"x" * 70_000), max_frame_bytes=80_000)) > 70_000, True)

    def test_an_incoming_length_over_the_limit_is_a_protocol_error(self) -> None:
        self.assertEqual(p.frame_length(b"\x00\x00\x01\x00", 256), 256)
        with self.assertRaises(ProtocolError):
            p.frame_length(b"\x00\x00\x01\x01", 256)

    def test_bad_bodies_are_protocol_errors(self) -> None:
        for body in (b"\xc1", b"\x01", b"\x90", b"\x91\xa1x"):
            with self.subTest(body=body), self.assertRaises(ProtocolError):
                p.decode(body)

    def test_map_keys_that_are_not_strings_are_read(self) -> None:
        self.assertEqual(p.decode(p.encode([10, ID, "go", {1: "a"}, 100])[4:])[3], {1: "a"})


class ChannelTest(unittest.TestCase):
    def test_descriptor_has_5_elements_or_7_with_a_schema(self) -> None:
        self.assertEqual(Channel(3, "cam", "raw").descriptor(), [3, "cam", "raw", None, 0])
        c = Channel(4, "state", "json", "State", "reliable", schema_encoding="jsonschema", schema_data='{"type":"object"}')
        self.assertEqual(c.descriptor(), [4, "state", "json", "State", 1, "jsonschema", '{"type":"object"}'])
        self.assertTrue(c.reliable)
        self.assertEqual(Channel(5, "n", schema_encoding="ros2msg").descriptor(), [5, "n", "msgpack", None, 0, "ros2msg", None])

    def test_schemas_are_bounded_per_robot(self) -> None:
        big = "x" * 60_000
        with self.assertRaises(ValueError):
            p.check_channels([Channel(i, f"c{i}", schema_encoding="jsonschema", schema_data=big) for i in range(5)])

    def test_invalid_channels_are_refused_locally(self) -> None:
        bad = [
            dict(id=70_000, name="x"),
            dict(id=-1, name="x"),
            dict(id=1, name=""),
            dict(id=1, name="x" * 65),
            dict(id=1, name="x", delivery="sometimes"),
            dict(id=1, name="x", schema="s" * 257),
            dict(id=1, name="x", schema_data="{}"),
            dict(id=1, name="x", schema_encoding="jsonschema", schema_data="é" * 40_000),
            dict(id=1, name="x", schema_encoding="protobuf", schema_data=b"x" * 65_537),
        ]
        for kw in bad:
            with self.subTest(kw=kw), self.assertRaises(ValueError):
                Channel(**kw)  # type: ignore[arg-type]

    def test_hello_rules(self) -> None:
        with self.assertRaises(ValueError):
            p.check_channels([Channel(1, "a"), Channel(1, "b")])
        with self.assertRaises(ValueError):
            p.check_channels([Channel(1, "a"), Channel(2, "a")])
        with self.assertRaises(ValueError):
            p.check_channels([Channel(i, f"c{i}") for i in range(65)])
        p.check_channels([Channel(i, f"c{i}") for i in range(64)])


if __name__ == "__main__":
    unittest.main()
