"""The robot's side of the command lifecycle: each COMMAND runs its handler as a task and gets
exactly one final STATUS.

States: received -> [accepted] -> completed | rejected | failed. A handler accepts with
:meth:`Command.accept` (optional: the protocol lets a robot skip it), rejects by raising
:class:`CommandRejected`, completes by returning its result and fails by raising anything else.
Each command has a deadline: the hub's ``timeoutMs``, counted from when the frame arrived, less a
margin so that the report reaches the hub before its own timer runs out. At the deadline the
library reports ``failed`` and cancels the handler; whatever the handler returns afterwards is
dropped, so no command is ever reported twice.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, Awaitable, Callable, Dict, Optional, Union

from . import protocol as p
from .errors import CommandRejected, FrameTooLarge

log = logging.getLogger("switchboard_robot")

#: A command handler: gets the command, returns its result (or an awaitable of it).
Handler = Callable[["Command"], Union[Any, Awaitable[Any]]]
#: Sends a STATUS frame: (commandId, stage, detail). May raise FrameTooLarge or TypeError.
SendStatus = Callable[[str, int, Any], None]

STAGE_NAMES = {p.ACCEPTED: "accepted", p.REJECTED: "rejected", p.COMPLETED: "completed", p.FAILED: "failed"}


class Command:
    """A command from a user, as its handler sees it."""

    def __init__(self, command_id: str, name: str, args: Any, timeout_ms: int, deadline: float, tracker: "CommandTracker") -> None:
        #: The hub's id for this command (quoted in every STATUS).
        self.id = command_id
        #: The command's name, as the user sent it.
        self.name = name
        #: Its arguments as the user sent them (None when they sent none).
        self.args = args
        #: How long the robot had to report, from when the frame arrived, ms.
        self.timeout_ms = timeout_ms
        #: When the library fails the command, on ``time.monotonic()``'s clock.
        self.deadline = deadline
        #: ``received``, ``accepted``, then one of ``completed``, ``rejected``, ``failed``.
        self.state = "received"
        self._tracker = tracker

    @property
    def final(self) -> bool:
        return self.state not in ("received", "accepted")

    def remaining(self) -> float:
        """Seconds left before the library fails this command (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def accept(self) -> None:
        """Reports ``accepted``: the robot is working on it. Idempotent; ignored once final."""
        if self.state == "received":
            self._tracker.report(self, p.ACCEPTED, None)

    def __repr__(self) -> str:
        return f"Command({self.name!r}, id={self.id}, state={self.state})"


class CommandTracker:
    """The commands in flight on one link; forgets each once it is final."""

    def __init__(self, send: SendStatus, margin_ms: float = 250.0) -> None:
        self._send = send
        self._margin_ms = margin_ms
        self.running: Dict[str, Command] = {}
        self._tasks: Dict[str, "asyncio.Task[None]"] = {}
        self._timers: Dict[str, asyncio.TimerHandle] = {}
        #: Results a handler produced after its command was already final (dropped), for tests.
        self.late = 0

    def deadline_for(self, timeout_ms: int, received: float) -> float:
        # Report before the hub's own timer (which started when it sent the frame) runs out.
        margin = min(self._margin_ms, timeout_ms * 0.2)
        return received + max(0.0, timeout_ms - margin) / 1000

    def start(self, command_id: str, name: str, args: Any, timeout_ms: int, handler: Optional[Handler]) -> Command:
        loop = asyncio.get_running_loop()
        cmd = Command(command_id, name, args, timeout_ms, self.deadline_for(timeout_ms, time.monotonic()), self)
        if command_id in self.running:
            log.warning("command %s arrived twice; the second is ignored", command_id)
            return self.running[command_id]
        if handler is None:
            self.report(cmd, p.REJECTED, f"unknown command {name!r}")
            return cmd
        self.running[command_id] = cmd
        self._timers[command_id] = loop.call_at(cmd.deadline, self._expire, cmd)
        self._tasks[command_id] = loop.create_task(self._run(cmd, handler), name=f"command {name} {command_id}")
        return cmd

    async def _run(self, cmd: Command, handler: Handler) -> None:
        try:
            result = handler(cmd)
            if inspect.isawaitable(result):
                result = await result
        except CommandRejected as e:
            self.report(cmd, p.REJECTED, e.reason)
        except asyncio.CancelledError:
            # Cancelled by the deadline, an e-stop or the end of the link: each reported (or not) already.
            if not cmd.final:
                self._forget(cmd)
            raise
        except Exception as e:  # a handler's failure is the command's outcome, not the robot's crash
            log.info("command %s %s failed: %r", cmd.name, cmd.id, e)
            self.report(cmd, p.FAILED, f"{type(e).__name__}: {e}")
        else:
            self.report(cmd, p.COMPLETED, result)

    def _expire(self, cmd: Command) -> None:
        if cmd.final:
            return
        self.report(cmd, p.FAILED, f"the robot's deadline passed ({cmd.timeout_ms} ms)")
        task = self._tasks.pop(cmd.id, None)
        if task is not None:
            task.cancel()

    def report(self, cmd: Command, stage: int, detail: Any) -> bool:
        """Sends a stage unless the command is already final; returns whether it was sent."""
        if cmd.final:
            if stage != p.ACCEPTED:
                self.late += 1
                log.info("command %s %s: %s after it was %s; not reported", cmd.name, cmd.id, STAGE_NAMES[stage], cmd.state)
            return False
        cmd.state = STAGE_NAMES[stage]
        if stage != p.ACCEPTED:
            self._forget(cmd)
        try:
            self._send(cmd.id, stage, detail)
        except (TypeError, ValueError, FrameTooLarge) as e:
            # The result cannot be sent (not MessagePack, or too large): the command failed after all.
            if stage == p.ACCEPTED:
                raise
            log.warning("command %s %s: its %s detail cannot be sent: %s", cmd.name, cmd.id, cmd.state, e)
            cmd.state = "failed"
            self._send(cmd.id, p.FAILED, f"the robot's {STAGE_NAMES[stage]} detail could not be sent: {e}")
        return True

    def fail_all(self, reason: str) -> int:
        """Reports every command in flight ``failed`` with ``reason`` and cancels its handler (an e-stop)."""
        n = 0
        for cmd in list(self.running.values()):
            task = self._tasks.pop(cmd.id, None)
            if self.report(cmd, p.FAILED, reason):
                n += 1
            if task is not None:
                task.cancel()
        return n

    def abandon(self) -> None:
        """The link ended: the hub has reported these commands ``lost``; cancel them, report nothing."""
        for cmd in list(self.running.values()):
            cmd.state = "failed"
            task = self._tasks.pop(cmd.id, None)
            self._forget(cmd)
            if task is not None:
                task.cancel()

    def _forget(self, cmd: Command) -> None:
        self.running.pop(cmd.id, None)
        timer = self._timers.pop(cmd.id, None)
        if timer is not None:
            timer.cancel()
        # The task stays referenced until it ends: a task only the loop knows of may be collected.
        task = self._tasks.get(cmd.id)
        if task is not None and task.done():
            self._tasks.pop(cmd.id, None)
        elif task is not None:
            command_id = cmd.id

            def drop(_: "asyncio.Task[None]") -> None:
                self._tasks.pop(command_id, None)

            task.add_done_callback(drop)
