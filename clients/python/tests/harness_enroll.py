"""Enrolment for test/python-enroll.test.ts: makes the robot's key (if absent) and enrolls it with a
bootstrap token against a real hub, printing one JSON line: {"event": "enrolled", "robotId", ...}
or {"event": "enroll_failed", "code", "error", "retryable", "status", "retries"}; "retry" lines
come before it for each retry. Exit code 0 on success, 2 on an EnrollmentError.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from typing import Any

from switchboard_robot import Backoff, EnrollmentError, enroll


def emit(**event: Any) -> None:
    print(json.dumps(event, default=repr), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    for name in ("url", "token", "name", "key", "cert", "ca"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--attempts", type=int, default=1)
    a = ap.parse_args()
    had_key = os.path.exists(a.key)
    retries = 0

    def on_retry(e: EnrollmentError, delay: float) -> None:
        nonlocal retries
        retries += 1
        emit(event="retry", code=e.code, delay=delay)

    try:
        e = enroll(a.url, a.token, a.name, a.key, a.cert, a.ca, attempts=a.attempts, backoff=Backoff(0.05, 0.1), on_retry=on_retry)
    except EnrollmentError as err:
        emit(event="enroll_failed", code=err.code, error=type(err).__name__, retryable=err.retryable, status=err.status, retries=retries, message=str(err))
        return 2
    emit(event="enrolled", robotId=e.robot_id, name=e.name, ownerId=e.owner_id, fingerprint=e.fingerprint, madeKey=not had_key,
         keyMode=oct(stat.S_IMODE(os.stat(a.key).st_mode)), retries=retries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
