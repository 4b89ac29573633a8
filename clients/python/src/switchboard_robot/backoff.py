"""Reconnect delays: exponential with "equal jitter", the scheme of the hub's TypeScript SDK.

Attempt ``n`` (0 for the first retry) waits a random time in ``[c/2, c]`` with
``c = min(maximum, initial * 2**n)``: half fixed, half random, so a fleet dropped at once (a hub
restart) spreads its reconnects while each robot still waits a minimum. Defaults: 0.25 s up to
30 s, so the bounds are 0.125-0.25 s for the first retry and 15-30 s from the 8th on.
"""

from __future__ import annotations

import random
from typing import Callable, Optional


class Backoff:
    """Delays between connection attempts; :meth:`reset` once a link has proved stable."""

    def __init__(self, initial: float = 0.25, maximum: float = 30.0, rand: Optional[Callable[[], float]] = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("backoff: 0 < initial <= maximum (seconds)")
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0
        self._rand = rand or random.random

    def ceiling(self, attempt: int) -> float:
        return float(min(self.maximum, self.initial * 2.0 ** min(max(attempt, 0), 30)))

    def next_delay(self) -> float:
        """The delay before the next attempt, in seconds; each call moves one attempt on."""
        c = self.ceiling(self.attempt)
        self.attempt += 1
        return c / 2 + self._rand() * c / 2

    def reset(self) -> None:
        self.attempt = 0
