"""Robot against a scripted hub over real mutual TLS (the test PKI in fixtures/): HELLO, WELCOME,
heartbeats both ways and the 3x silence rule, refusals and retry decisions, e-stops, frame limits."""

import asyncio
import os
import ssl
import unittest
from typing import Any, Awaitable, Callable, List, Optional

from switchboard_robot import (
    Backoff,
    Channel,
    CertificateRevoked,
    ConnectionLost,
    FrameTooLarge,
    ProtocolError,
    ReliableBuffer,
    Robot,
    SwitchboardError,
)
from switchboard_robot import protocol as p

FIX = os.path.join(os.path.dirname(__file__), "fixtures")
ROBOT_ID = "7b3e9f2a-4c1d-4e8b-9a6f-2d5c8e1b0a47"


class Peer:
    """The hub's side of one connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> List[Any]:
        n = p.frame_length(await self.reader.readexactly(4), 1 << 20)
        return p.decode(await self.reader.readexactly(n))

    async def read_until(self, tag: int) -> List[Any]:
        while True:
            f = await self.read()
            if f[0] == tag:
                return f

    def send(self, frame: List[Any]) -> None:
        self.writer.write(p.encode(frame, 1 << 24))

    def raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def welcome(self, heartbeat_ms: int = 5_000) -> List[Any]:
        hello = await self.read()
        self.send([p.WELCOME, ROBOT_ID, heartbeat_ms])
        return hello

    async def refuse(self, code: str, message: str = "no") -> None:
        self.send([p.ERROR, code, message, None])
        await self.writer.drain()
        self.writer.close()


Script = Callable[[Peer], Awaitable[None]]


class FakeHub:
    """A TLS server requiring a client certificate; each connection runs the next script."""

    def __init__(self, scripts: List[Script]) -> None:
        self.scripts = scripts
        self.connections = 0
        self.errors: List[BaseException] = []
        self.server: Optional[asyncio.AbstractServer] = None

    async def start(self) -> int:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=os.path.join(FIX, "ca.crt"))
        ctx.load_cert_chain(os.path.join(FIX, "server.crt"), os.path.join(FIX, "server.key"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ctx)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script = self.scripts[min(self.connections, len(self.scripts) - 1)]
        self.connections += 1
        try:
            await script(Peer(reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except BaseException as e:  # surfaced by the test
            self.errors.append(e)
        finally:
            writer.close()

    async def stop(self) -> None:
        if self.server:
            self.server.close()


class RobotTest(unittest.IsolatedAsyncioTestCase):
    async def hub(self, *scripts: Script) -> Robot:
        self.fake = FakeHub(list(scripts))
        port = await self.fake.start()
        self.addAsyncCleanup(self.fake.stop)
        robot = Robot(
            "127.0.0.1",
            port,
            cert=os.path.join(FIX, "robot.crt"),
            key=os.path.join(FIX, "robot.key"),
            ca=os.path.join(FIX, "ca.crt"),
            channels=[Channel(1, "pose"), Channel(2, "log", "json", delivery="reliable")],
            backoff=Backoff(0.01, 0.02),
            connect_timeout=3,
        )
        self.addAsyncCleanup(robot.close)
        return robot

    async def test_hello_welcome_and_telemetry(self) -> None:
        got: "asyncio.Queue[List[Any]]" = asyncio.Queue()

        async def script(peer: Peer) -> None:
            await got.put(await peer.welcome())
            await got.put(await peer.read_until(p.TELEMETRY))
            await peer.read()

        robot = await self.hub(script)
        self.assertFalse(robot.publish("pose", {"x": 1}), "nothing is sent before WELCOME")
        w = await robot.connect()
        self.assertEqual((w.robot_id, w.heartbeat_ms, robot.robot_id, robot.connected), (ROBOT_ID, 5_000, ROBOT_ID, True))
        self.assertEqual(await got.get(), [p.HELLO, 1, [[1, "pose", "msgpack", None, 0], [2, "log", "json", None, 1]]])
        self.assertTrue(robot.publish("log", "hi", ts=7))
        self.assertEqual(await got.get(), [p.TELEMETRY, 2, 7, "hi"])
        with self.assertRaises(KeyError):
            robot.publish("camera", b"")
        with self.assertRaises(FrameTooLarge):
            robot.publish(1, b"x" * 70_000)

    async def test_advertise_and_withdraw_while_connected_and_in_the_next_hello(self) -> None:
        got: "asyncio.Queue[List[Any]]" = asyncio.Queue()

        async def script(peer: Peer) -> None:
            await got.put(await peer.welcome())
            while True:
                f = await peer.read()
                if f[0] != p.HEARTBEAT:
                    await got.put(f)

        robot = await self.hub(script, script)
        await robot.connect()
        await got.get()
        battery = Channel(3, "battery", "json", "Battery", schema_encoding="jsonschema", schema_data='{"type":"object"}')
        self.assertTrue(robot.advertise([battery]))
        self.assertEqual(await got.get(), [p.ADVERTISE, [[3, "battery", "json", "Battery", 0, "jsonschema", '{"type":"object"}']]])
        self.assertTrue(robot.publish("battery", {"percent": 80}, ts=1))
        self.assertEqual(await got.get(), [p.TELEMETRY, 3, 1, {"percent": 80}])
        with self.assertRaises(ValueError):
            robot.advertise([Channel(4, "pose")])  # a name channel 1 holds
        self.assertTrue(robot.withdraw(["pose"]))
        self.assertEqual(await got.get(), [p.WITHDRAW, [1]])
        with self.assertRaises(KeyError):
            robot.publish("pose", 1)
        await robot.close()
        await robot.connect()
        hello = await got.get()
        self.assertEqual([c[1] for c in hello[2]], ["log", "battery"], "the next HELLO carries the current channels")

    async def test_schemas_too_large_for_hello_follow_in_advertise_frames(self) -> None:
        got: "asyncio.Queue[List[Any]]" = asyncio.Queue()

        async def script(peer: Peer) -> None:
            await got.put(await peer.welcome())
            for _ in range(2):
                await got.put(await peer.read_until(p.ADVERTISE))
            await peer.read_until(-1)

        robot = await self.hub(script)
        big = [Channel(10 + i, f"s{i}", "json", schema_encoding="jsonschema", schema_data="x" * 40_000) for i in range(2)]
        robot.advertise(big)
        await robot.connect()
        hello, a1, a2 = await got.get(), await got.get(), await got.get()
        self.assertEqual([c[0] for c in hello[2]], [1, 2], "HELLO without the schemas")
        self.assertEqual([(a1[0], a1[1][0][0]), (a2[0], a2[1][0][0])], [(p.ADVERTISE, 10), (p.ADVERTISE, 11)], "one ADVERTISE each")

    async def test_advertise_frames_are_as_few_as_fit(self) -> None:
        # The hub takes 10 ADVERTISE / WITHDRAW a second (bursts of 20): 8 channels whose schemas
        # do not fit HELLO together go in 2 frames, not one each.
        got: "asyncio.Queue[List[Any]]" = asyncio.Queue()

        async def script(peer: Peer) -> None:
            await got.put(await peer.welcome())
            for _ in range(2):
                await got.put(await peer.read_until(p.ADVERTISE))
            await peer.read_until(-1)

        robot = await self.hub(script)
        many = [Channel(10 + i, f"s{i}", "json", schema_encoding="jsonschema", schema_data="x" * 15_000) for i in range(8)]
        robot.advertise(many)
        await robot.connect()
        hello, a1, a2 = await got.get(), await got.get(), await got.get()
        self.assertEqual([c[0] for c in hello[2]], [1, 2], "HELLO without the schemas")
        self.assertEqual([c[0] for c in a1[1]] + [c[0] for c in a2[1]], list(range(10, 18)), "two frames carry all eight")

    async def test_reliable_uplink_numbers_keeps_until_acked_and_replays(self) -> None:
        got: "asyncio.Queue[List[Any]]" = asyncio.Queue()
        cut = asyncio.Event()

        async def first(peer: Peer) -> None:
            await peer.welcome()
            for _ in range(3):
                await got.put(await peer.read_until(p.TELEMETRY))
            peer.send([p.ACK, 2, 2])
            await cut.wait()
            peer.writer.transport.abort()  # a drop: sample 3 was never acknowledged

        async def second(peer: Peer) -> None:
            hello = await peer.read()
            await got.put(hello)
            peer.send([p.WELCOME, ROBOT_ID, 5_000, [[2, 2]]])  # the hub stored 1 and 2
            while True:
                await got.put(await peer.read_until(p.TELEMETRY))

        robot = await self.hub(first, second)
        robot.reliable_buffer = ReliableBuffer()
        await robot.connect()
        for i in range(3):
            self.assertTrue(robot.publish("log", f"line {i + 1}", ts=i))
        self.assertTrue(robot.publish("pose", {"x": 1}, ts=9), "latest channels are not numbered")
        self.assertEqual([await got.get() for _ in range(3)], [[p.TELEMETRY, 2, i, f"line {i + 1}", i + 1] for i in range(3)])
        ended: "asyncio.Future[SwitchboardError]" = asyncio.get_running_loop().create_future()
        robot.on_disconnect = ended.set_result
        cut.set()
        await asyncio.wait_for(ended, 3)
        self.assertEqual([x.seq for x in robot.reliable_buffer.replay()], [3], "acked samples are forgotten")
        self.assertTrue(robot.publish("log", "line 4 (offline)", ts=4), "kept while offline")
        await robot.connect()
        await got.get()  # HELLO
        self.assertEqual(await got.get(), [p.TELEMETRY, 2, 2, "line 3", 3], "the unacknowledged sample first")
        self.assertEqual(await got.get(), [p.TELEMETRY, 2, 4, "line 4 (offline)", 4])
        robot.publish("log", "line 5", ts=5)
        self.assertEqual(await got.get(), [p.TELEMETRY, 2, 5, "line 5", 5])

    async def test_a_restarted_robot_continues_the_hubs_numbering(self) -> None:
        got: "asyncio.Queue[List[Any]]" = asyncio.Queue()

        async def script(peer: Peer) -> None:
            await peer.read()
            peer.send([p.WELCOME, ROBOT_ID, 5_000, [[2, 41]]])
            await got.put(await peer.read_until(p.TELEMETRY))
            await peer.read_until(-1)

        robot = await self.hub(script)
        robot.reliable_buffer = ReliableBuffer()
        await robot.connect()
        robot.publish("log", "after a restart", ts=1)
        self.assertEqual(await got.get(), [p.TELEMETRY, 2, 1, "after a restart", 42])

    async def test_heartbeats_both_ways_and_3x_silence_closes(self) -> None:
        beats: List[float] = []
        loop = asyncio.get_running_loop()

        async def silent_hub(peer: Peer) -> None:
            await peer.welcome(heartbeat_ms=100)
            while True:
                if (await peer.read())[0] == p.HEARTBEAT:
                    beats.append(loop.time())

        robot = await self.hub(silent_hub)
        ended: "asyncio.Future[SwitchboardError]" = loop.create_future()
        robot.on_disconnect = ended.set_result
        t0 = loop.time()
        await robot.connect()
        why = await asyncio.wait_for(ended, 3)
        elapsed = loop.time() - t0
        self.assertEqual((why.code, why.retryable), ("HEARTBEAT_TIMEOUT", True))
        self.assertGreaterEqual(elapsed, 0.3, "not before 3 heartbeats of silence")
        self.assertLess(elapsed, 0.6)
        self.assertGreaterEqual(len(beats), 2, "the robot sent heartbeats while it had nothing else to send")

    async def test_a_terminal_refusal_is_raised_and_never_retried(self) -> None:
        async def refuse(peer: Peer) -> None:
            await peer.refuse("CERTIFICATE_REVOKED", "this certificate was revoked")

        robot = await self.hub(refuse)
        with self.assertRaises(CertificateRevoked) as e:
            await asyncio.wait_for(robot.run(), 5)
        self.assertEqual((e.exception.code, e.exception.retryable), ("CERTIFICATE_REVOKED", False))
        self.assertEqual(self.fake.connections, 1)

    async def test_retryable_closes_reconnect_with_backoff(self) -> None:
        retries: List[Any] = []

        async def unavailable(peer: Peer) -> None:
            await peer.refuse("UNAVAILABLE", "try later")

        async def shutdown_after_welcome(peer: Peer) -> None:
            await peer.welcome()
            await peer.refuse("SHUTDOWN", "bye")

        async def stay(peer: Peer) -> None:
            await peer.welcome()
            await peer.read_until(-1)

        robot = await self.hub(unavailable, shutdown_after_welcome, stay)
        robot.on_retry = lambda e, d: retries.append((e.code, d))
        welcomed = asyncio.Event()
        robot.on_connect = lambda w: welcomed.set() if self.fake.connections == 3 else None
        runner = asyncio.ensure_future(robot.run())
        await asyncio.wait_for(welcomed.wait(), 5)
        self.assertEqual([c for c, _ in retries], ["UNAVAILABLE", "SHUTDOWN"])
        self.assertTrue(all(0.005 <= d <= 0.02 for _, d in retries), retries)
        await robot.close()
        await asyncio.wait_for(runner, 3)
        self.assertFalse(runner.cancelled())

    async def test_non_closing_errors_and_unknown_frames_keep_the_link(self) -> None:
        errors: List[Any] = []
        done = asyncio.Event()

        async def script(peer: Peer) -> None:
            await peer.welcome()
            peer.send([p.ERROR, "RATE_LIMITED", "slow down", None])
            peer.send([99, "from a newer hub"])
            peer.send([p.ESTOP, "s1"])
            await peer.read_until(p.STATUS)
            done.set()
            await peer.read_until(-1)

        robot = await self.hub(script)

        def buggy(code: str, message: str, ref: Optional[str]) -> None:
            errors.append(code)
            raise RuntimeError("a bug in the application's callback")

        robot.on_hub_error = buggy
        await robot.connect()
        await asyncio.wait_for(done.wait(), 3)
        self.assertEqual(errors, ["RATE_LIMITED"])
        self.assertTrue(robot.connected, "a failing callback does not end the link")

    async def test_estop_is_always_answered(self) -> None:
        statuses: "asyncio.Queue[List[Any]]" = asyncio.Queue()

        async def script(peer: Peer) -> None:
            await peer.welcome()
            peer.send([p.ESTOP, "s1"])
            await statuses.put(await peer.read_until(p.STATUS))
            peer.send([p.ESTOP, "s2"])
            await statuses.put(await peer.read_until(p.STATUS))
            await peer.read_until(-1)

        robot = await self.hub(script)
        await robot.connect()
        self.assertEqual(await statuses.get(), [p.STATUS, "s1", p.FAILED, "this robot has no e-stop handler"])
        stopped: List[str] = []

        async def stop() -> None:
            stopped.append("motors off")

        robot.on_estop(stop)
        self.assertEqual(await statuses.get(), [p.STATUS, "s2", p.COMPLETED, "stopped"])
        self.assertEqual(stopped, ["motors off"])

    async def test_an_oversized_frame_from_the_hub_drops_the_link(self) -> None:
        async def script(peer: Peer) -> None:
            await peer.welcome()
            await peer.read_until(p.TELEMETRY)  # once the robot is connected
            peer.raw(b"\x7f\xff\xff\xff")
            await peer.read_until(-1)

        robot = await self.hub(script)
        loop = asyncio.get_running_loop()
        ended: "asyncio.Future[SwitchboardError]" = loop.create_future()
        robot.on_disconnect = ended.set_result
        await robot.connect()
        robot.publish("pose", 1)
        why = await asyncio.wait_for(ended, 3)
        self.assertIsInstance(why, ProtocolError)
        self.assertTrue(why.retryable)

    async def test_close_ends_run_while_it_backs_off(self) -> None:
        robot = await self.hub(lambda peer: asyncio.sleep(0))
        robot.port = 1  # nothing listens on port 1
        robot.backoff = Backoff(5, 10)
        retrying = asyncio.Event()
        robot.on_retry = lambda e, d: retrying.set()
        runner = asyncio.ensure_future(robot.run())
        await asyncio.wait_for(retrying.wait(), 3)
        await robot.close()
        await asyncio.wait_for(runner, 1)  # not after the 2.5-5 s delay

    async def test_nothing_listening_is_retryable(self) -> None:
        robot = await self.hub(lambda peer: asyncio.sleep(0))
        await self.fake.stop()
        robot.port = 1  # nothing listens on port 1
        with self.assertRaises(ConnectionLost) as e:
            await robot.connect()
        self.assertEqual((e.exception.code, e.exception.retryable), ("CONNECT_FAILED", True))


if __name__ == "__main__":
    unittest.main()
