#!/usr/bin/env python3
"""An example rover: publishes its pose (a ``latest`` channel, 10 Hz) and a log (a ``reliable``
channel), drives on the ``drive`` command within the command's deadline, and stops at once on an
emergency stop. Reconnects by itself; exits on a refusal that retrying cannot fix.

    python3 examples/rover.py --host 127.0.0.1 --port 8443 \\
        --cert rover.crt --key rover.key --ca robot-ca.crt

``drive`` takes ``{"speed": m/s, "seconds": s}`` (speed at most 2 m/s).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
import time
from typing import Any

from switchboard_robot import Channel, Command, CommandRejected, RefusedError, ReliableBuffer, Robot


class Rover:
    """A pretend drive train: integrates speed into a pose."""

    def __init__(self) -> None:
        self.x = self.y = self.theta = 0.0
        self.speed = 0.0

    def step(self, dt: float) -> None:
        self.x += math.cos(self.theta) * self.speed * dt
        self.y += math.sin(self.theta) * self.speed * dt
        self.theta = (self.theta + 0.1 * self.speed * dt) % (2 * math.pi)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--cert", required=True, help="the robot's certificate (PEM)")
    ap.add_argument("--key", required=True, help="the robot's private key (PEM)")
    ap.add_argument("--ca", required=True, help="the CA of the hub's certificate (robot-ca.crt)")
    ap.add_argument("--server-name", help="the name in the hub's certificate (default: --host)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    rover = Rover()
    robot = Robot(
        a.host,
        a.port,
        cert=a.cert,
        key=a.key,
        ca=a.ca,
        server_hostname=a.server_name,
        channels=[
            Channel(1, "pose", "msgpack", "geometry_msgs/Pose2D", "latest"),
            Channel(2, "log", "json", None, "reliable"),
        ],
        # Log lines written while the link is down are kept and sent, once each, when it is back.
        reliable_buffer=ReliableBuffer(),
    )

    def log(text: str) -> None:
        logging.info(text)
        robot.publish("log", {"ts": time.time(), "text": text})

    @robot.command("drive")
    async def drive(cmd: Command) -> Any:
        args = cmd.args if isinstance(cmd.args, dict) else {}
        speed, seconds = float(args.get("speed", 0.5)), float(args.get("seconds", 1.0))
        if abs(speed) > 2:
            raise CommandRejected(f"speed {speed} m/s is over the 2 m/s limit")
        if seconds > cmd.remaining():
            raise CommandRejected(f"{seconds} s of driving does not fit in the {cmd.remaining():.1f} s left")
        cmd.accept()
        log(f"driving at {speed} m/s for {seconds} s")
        rover.speed = speed
        try:
            await asyncio.sleep(seconds)
        finally:
            rover.speed = 0.0  # also when cancelled: by the deadline, an e-stop or a lost link
        return {"x": rover.x, "y": rover.y}

    @robot.on_estop
    def estop() -> None:
        # Runs the moment ESTOP arrives, before the library reports it: stop motion here, now.
        rover.speed = 0.0
        log("emergency stop")

    robot.on_connect = lambda w: log(f"connected as {w.robot_id}")

    async def telemetry() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            rover.step(now - last)
            last = now
            robot.publish("pose", {"x": round(rover.x, 3), "y": round(rover.y, 3), "theta": round(rover.theta, 3)})

    loop_task = asyncio.get_running_loop().create_task(telemetry())
    try:
        await robot.run()
    except RefusedError as e:
        logging.error("the hub refused this robot (%s): %s; not retrying", e.code, e)
        return 2
    finally:
        loop_task.cancel()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except KeyboardInterrupt:
        sys.exit(130)
