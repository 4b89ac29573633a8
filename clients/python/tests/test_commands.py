"""The command state machine without a hub: stages, deadlines, late results, e-stop, a lost link."""

import asyncio
import unittest
from typing import Any, List, Tuple

from switchboard_robot import CommandRejected
from switchboard_robot import protocol as p
from switchboard_robot.commands import Command, CommandTracker


class Sent:
    def __init__(self) -> None:
        self.frames: List[Tuple[str, int, Any]] = []

    def __call__(self, cid: str, stage: int, detail: Any) -> None:
        p.encode(p.status(cid, stage, detail))  # what the link does: may raise for bad details
        self.frames.append((cid, stage, detail))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


class CommandTrackerTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.sent = Sent()
        self.t = CommandTracker(self.sent, margin_ms=20)

    async def test_accepted_then_completed_with_the_result(self) -> None:
        async def h(cmd: Command) -> Any:
            cmd.accept()
            cmd.accept()  # idempotent
            await asyncio.sleep(0)
            return {"ok": cmd.args}

        self.t.start("c1", "go", {"x": 1}, 5_000, h)
        await settle()
        self.assertEqual(self.sent.frames, [("c1", p.ACCEPTED, None), ("c1", p.COMPLETED, {"ok": {"x": 1}})])
        self.assertEqual(self.t.running, {})

    async def test_a_plain_function_may_skip_accepted(self) -> None:
        self.t.start("c1", "go", None, 5_000, lambda cmd: 42)
        await settle()
        self.assertEqual(self.sent.frames, [("c1", p.COMPLETED, 42)])

    async def test_rejected_and_failed(self) -> None:
        def reject(cmd: Command) -> Any:
            raise CommandRejected({"why": "battery low"})

        async def fail(cmd: Command) -> Any:
            cmd.accept()
            raise RuntimeError("wheel stuck")

        self.t.start("r", "go", None, 5_000, reject)
        self.t.start("f", "go", None, 5_000, fail)
        await settle()
        self.assertIn(("r", p.REJECTED, {"why": "battery low"}), self.sent.frames)
        self.assertIn(("f", p.FAILED, "RuntimeError: wheel stuck"), self.sent.frames)

    async def test_no_handler_is_rejected_at_once(self) -> None:
        self.t.start("u", "fly", None, 5_000, None)
        self.assertEqual(self.sent.frames, [("u", p.REJECTED, "unknown command 'fly'")])

    async def test_the_deadline_fails_it_once_and_drops_the_late_result(self) -> None:
        cancelled = asyncio.Event()

        async def slow(cmd: Command) -> Any:
            cmd.accept()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.set()
                return "too late"  # swallowed cancellation: the result must still not be sent

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        cmd = self.t.start("d", "go", None, 100, slow)
        self.assertAlmostEqual(cmd.deadline - t0, 0.08, delta=0.02, msg="100 ms less a margin of at most a fifth")
        await asyncio.wait_for(cancelled.wait(), 2)
        await settle()
        self.assertEqual(self.sent.frames, [("d", p.ACCEPTED, None), ("d", p.FAILED, "the robot's deadline passed (100 ms)")])
        self.assertEqual(self.t.late, 1)
        self.assertEqual(cmd.state, "failed")
        self.assertEqual(cmd.remaining(), 0.0)

    async def test_margin_is_capped_at_a_fifth_of_the_timeout(self) -> None:
        t = CommandTracker(self.sent, margin_ms=250)
        self.assertAlmostEqual(t.deadline_for(10_000, 0), 9.75)
        self.assertAlmostEqual(t.deadline_for(100, 0), 0.08)

    async def test_fail_all_reports_and_cancels_every_command(self) -> None:
        async def forever(cmd: Command) -> Any:
            cmd.accept()
            await asyncio.sleep(10)

        self.t.start("a", "go", None, 5_000, forever)
        self.t.start("b", "go", None, 5_000, forever)
        await settle()
        self.assertEqual(self.t.fail_all("emergency stop"), 2)
        await settle()
        self.assertEqual(sorted(f for f in self.sent.frames if f[1] == p.FAILED), [("a", p.FAILED, "emergency stop"), ("b", p.FAILED, "emergency stop")])
        self.assertEqual(self.t.running, {})

    async def test_abandon_cancels_and_reports_nothing(self) -> None:
        started = asyncio.Event()

        async def forever(cmd: Command) -> Any:
            started.set()
            await asyncio.sleep(10)

        self.t.start("a", "go", None, 5_000, forever)
        await started.wait()
        self.t.abandon()
        await settle()
        self.assertEqual(self.sent.frames, [])
        self.assertEqual(self.t.running, {})

    async def test_a_result_that_cannot_be_sent_becomes_failed(self) -> None:
        self.t.start("x", "go", None, 5_000, lambda cmd: object())
        self.t.start("y", "go", None, 5_000, lambda cmd: b"x" * 70_000)
        await settle()
        self.assertEqual([(c, s) for c, s, _ in self.sent.frames], [("x", p.FAILED), ("y", p.FAILED)])
        self.assertIn("could not be sent", self.sent.frames[0][2])


if __name__ == "__main__":
    unittest.main()
