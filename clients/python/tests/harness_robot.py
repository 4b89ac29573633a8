"""A robot for test/python-robot.test.ts: runs switchboard_robot against a real hub and reports
what happens as JSON lines on stdout; takes instructions as JSON lines on stdin.

Events (stdout): {"event": "welcome" | "retry" | "disconnected" | "command" | "cancelled" |
"estop" | "hub_error" | "ended" | "published", ...}. Instructions (stdin): {"op": "publish",
"channel", "payload", "tag"}, {"op": "advertise", "channel": {...}}, {"op": "withdraw",
"channels": [...]}, {"op": "renew"} (event "renew_failed" on a RenewalError; "renewed" from
the on_renewed callback), {"op": "close"}. ``--renew-before-days N``: automatic renewal.

Commands: ``drive`` (accepted, then completed with its args), ``refuse`` (rejected), ``hang``
(accepted, never finishes by itself: the library fails it at the deadline; when cancelled it
returns a result anyway, which must not be sent), anything else goes to the generic handler
(completed with its name).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from datetime import timedelta
from typing import Any

from switchboard_robot import (
    Backoff,
    CertificateNotYetValid,
    Channel,
    Command,
    CommandRejected,
    FrameTooLarge,
    ReliableBuffer,
    RenewalError,
    Robot,
    SwitchboardError,
)


def emit(**event: Any) -> None:
    print(json.dumps(event, default=repr), flush=True)


async def main() -> int:
    ap = argparse.ArgumentParser()
    for name in ("host", "cert", "key", "ca"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--no-check", action="store_true", help="skip the pre-connect certificate check")
    ap.add_argument("--reliable", action="store_true", help="the acknowledged uplink (a ReliableBuffer)")
    ap.add_argument("--renew-before-days", type=float, help="automatic renewal within this many days of expiry")
    a = ap.parse_args()

    robot = Robot(
        a.host,
        a.port,
        cert=a.cert,
        key=a.key,
        ca=a.ca,
        channels=[
            Channel(1, "pose", "msgpack", "geometry_msgs/Pose2D"),
            Channel(2, "log", "json", delivery="reliable"),
        ],
        check_certificate=not a.no_check,
        backoff=Backoff(initial=0.2, maximum=1.0),
        connect_timeout=5.0,
        reliable_buffer=ReliableBuffer() if a.reliable else None,
        renew_before=timedelta(days=a.renew_before_days) if a.renew_before_days else None,
    )
    attempts = 0
    robot.on_connect = lambda w: emit(event="welcome", robotId=w.robot_id, heartbeatMs=w.heartbeat_ms, attempts=attempts)
    robot.on_disconnect = lambda e: emit(event="disconnected", code=e.code, retryable=e.retryable, error=type(e).__name__)
    robot.on_retry = lambda e, d: emit(event="retry", code=e.code, error=type(e).__name__, delay=d)
    robot.on_hub_error = lambda code, msg, ref: emit(event="hub_error", code=code, message=msg, ref=ref)
    robot.on_renewed = lambda r: emit(event="renewed", notAfter=r.not_after.isoformat(), certPem=r.cert_pem)
    original_connect = robot.connect

    async def counted_connect() -> Any:
        nonlocal attempts
        attempts += 1
        return await original_connect()

    robot.connect = counted_connect  # type: ignore[method-assign]

    @robot.command("drive")
    async def drive(cmd: Command) -> Any:
        emit(event="command", name=cmd.name, id=cmd.id, args=cmd.args, timeoutMs=cmd.timeout_ms)
        cmd.accept()
        await asyncio.sleep(0)
        return {"drove": cmd.args}

    @robot.command("refuse")
    def refuse(cmd: Command) -> Any:
        emit(event="command", name=cmd.name, id=cmd.id)
        raise CommandRejected("not today")

    @robot.command("hang")
    async def hang(cmd: Command) -> Any:
        emit(event="command", name=cmd.name, id=cmd.id, timeoutMs=cmd.timeout_ms)
        cmd.accept()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            emit(event="cancelled", id=cmd.id, state=cmd.state)
            return "a late result"  # must not reach the hub: the command is final

    @robot.command()
    async def anything(cmd: Command) -> Any:
        emit(event="command", name=cmd.name, id=cmd.id, generic=True)
        return {"generic": cmd.name}

    @robot.on_estop
    def estop() -> None:
        emit(event="estop", running=[c.name for c in robot.running_commands()])

    # stdin is read by a daemon thread (an executor thread would hold up asyncio.run's exit).
    loop = asyncio.get_running_loop()
    lines: "asyncio.Queue[str]" = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    threading.Thread(target=read_stdin, daemon=True).start()

    async def instructions() -> None:
        while True:
            line = await lines.get()
            if not line:
                await robot.close()
                return
            op = json.loads(line)
            if op["op"] == "publish":
                try:
                    emit(event="published", channel=op["channel"], tag=op.get("tag"), sent=robot.publish(op["channel"], op["payload"]))
                except FrameTooLarge as e:
                    emit(event="published", channel=op["channel"], tag=op.get("tag"), sent=False, error="FrameTooLarge", size=e.size, limit=e.limit)
            elif op["op"] == "advertise":
                c = op["channel"]
                channel = Channel(c["id"], c["name"], c["encoding"], c.get("schema"), c["delivery"], c.get("schemaEncoding"), c.get("schemaData"))
                emit(event="advertised", sent=robot.advertise([channel]))
            elif op["op"] == "buffer":
                b = robot.reliable_buffer
                emit(event="buffer", pending=[[x.channel, x.seq] for x in b.replay()] if b is not None else None, dropped=b.dropped if b is not None else None)
            elif op["op"] == "withdraw":
                emit(event="withdrawn", sent=robot.withdraw(op["channels"]))
            elif op["op"] == "renew":
                try:
                    await robot.renew()
                except RenewalError as e:
                    emit(event="renew_failed", code=e.code, retryable=e.retryable, retryAfter=e.retry_after, message=str(e))
            elif op["op"] == "close":
                await robot.close()
                return

    instructions_task = asyncio.get_running_loop().create_task(instructions())  # referenced: kept alive
    try:
        await robot.run()
    except SwitchboardError as e:
        not_before = e.not_before.isoformat() if isinstance(e, CertificateNotYetValid) and e.not_before else None
        emit(event="ended", code=e.code, error=type(e).__name__, retryable=e.retryable, message=str(e), attempts=attempts, notBefore=not_before)
        return 2
    emit(event="ended", code=None, attempts=attempts)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
