"""One connection to the hub, from the TLS handshake to its end: the streams, what the hub knows
of the robot's channels on it, its commands in flight, and why it ended. Robot drives it."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from . import protocol as p
from .commands import CommandTracker
from .errors import SwitchboardError

log = logging.getLogger("switchboard_robot")


@dataclass(frozen=True)
class Welcome:
    """What the hub said when it welcomed this robot."""

    robot_id: str
    heartbeat_ms: int


def run_callback(fn: Optional[Callable[..., None]], *args: Any) -> None:
    """Calls an application callback; its failure is logged, never the link's or the loop's end."""
    if fn is None:
        return
    try:
        fn(*args)
    except Exception:
        log.exception("switchboard: callback %r failed", fn)


class Link:
    """One connection, from TLS handshake to close; ``ended`` resolves with why it ended."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, send_status: Callable[[str, int, Any], None], margin_ms: float) -> None:
        self.reader = reader
        self.writer = writer
        self.last_read = time.monotonic()
        self.last_write = time.monotonic()
        self.welcome: Optional[Welcome] = None
        self.welcomed: "asyncio.Future[Welcome]" = asyncio.get_running_loop().create_future()
        self.ended: "asyncio.Future[SwitchboardError]" = asyncio.get_running_loop().create_future()
        #: The ERROR the hub closed the link with (it arrives just before the close).
        self.closing_error: Optional[SwitchboardError] = None
        self.commands = CommandTracker(send_status, margin_ms)
        self.tasks: List["asyncio.Task[Any]"] = []
        self.opened_at = time.monotonic()
        #: The channels the hub knows on this link (from HELLO, then ADVERTISE and WITHDRAW), by id.
        self.channels: Dict[int, p.Channel] = {}

    def write(self, data: bytes) -> bool:
        if self.ended.done() or self.writer.is_closing():
            return False
        self.writer.write(data)
        self.last_write = time.monotonic()
        return True

    def buffered(self) -> int:
        return self.writer.transport.get_write_buffer_size()

    def abort(self, why: SwitchboardError) -> None:
        """Drops the link at once; the read loop then ends it with ``why``."""
        if self.closing_error is None:
            self.closing_error = why
        self.drop()

    def drop(self) -> None:
        """Aborts the transport (no-op if it is already gone)."""
        try:
            self.writer.transport.abort()
        except AttributeError:  # Python 3.11's SSL transport, once closed, has no protocol to abort
            pass
