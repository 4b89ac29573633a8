"""The robot's side of the reliable uplink (issue 15, part 4); Robot uses it when given one.

On a ``reliable`` channel each sample gets a per-channel ``seq`` (1, 2, 3, ...) and stays in a
bounded buffer until the hub acknowledges it: ``ACK [6, channelId, seq]`` is cumulative (every
sample up to ``seq`` is stored). After a reconnect, WELCOME's ``[[channelId, lastStoredSeq], ...]``
drops what the hub already has and, for a robot that restarted with an empty buffer, continues the
numbering; what is left is sent again, in order. The robot numbers above any ACK it has received:
an ACK at or above the next ``seq`` (the hub holds samples of the channel from before a restart,
e.g. told when the channel is brought up with ADVERTISE) moves the numbering above it, and samples
numbered at or below it but never stored (the hub took them for duplicates) are numbered again
above it, to be sent again. The hub drops duplicates by ``seq``, so a replay
never doubles a sample. Pure bookkeeping: no sockets, no clock.

Bounds: at most ``max_samples`` samples and ``max_bytes`` encoded bytes across all channels. Past
either, the *oldest* unacknowledged samples are dropped (counted in ``dropped``): a robot offline
for long keeps its newest history rather than blocking its control loop.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from typing import Any, Deque, Dict, Iterable, Iterator, List, Tuple


@dataclass(frozen=True)
class Pending:
    """A sample waiting for its acknowledgement."""

    channel: int
    seq: int
    ts: int
    payload: Any
    size: int


class ReliableBuffer:
    """Unacknowledged samples of reliable channels, numbered per channel, bounded in count and bytes."""

    def __init__(self, max_samples: int = 10_000, max_bytes: int = 8 * 1024 * 1024) -> None:
        if max_samples < 1 or max_bytes < 1:
            raise ValueError("max_samples and max_bytes must be positive")
        self.max_samples = max_samples
        self.max_bytes = max_bytes
        self._next: Dict[int, int] = {}
        self._queues: Dict[int, Deque[Pending]] = {}
        # Arrival order across channels, for evicting the oldest sample of any channel.
        self._order: "OrderedDict[Tuple[int, int], None]" = OrderedDict()
        self.size_bytes = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._order)

    def next_seq(self, channel: int) -> int:
        return self._next.get(channel, 1)

    def push(self, channel: int, ts: int, payload: Any, size: int) -> Pending:
        """Numbers a new sample and keeps it until acknowledged; evicts the oldest past the bounds."""
        seq = self.next_seq(channel)
        self._next[channel] = seq + 1
        p = Pending(channel, seq, ts, payload, size)
        self._queues.setdefault(channel, deque()).append(p)
        self._order[(channel, seq)] = None
        self.size_bytes += size
        while len(self._order) > self.max_samples or (self.size_bytes > self.max_bytes and len(self._order) > 1):
            (ch, s), _ = self._order.popitem(last=False)
            q = self._queues[ch]
            old = q.popleft()
            assert old.seq == s, "per-channel queues are in seq order"
            self.size_bytes -= old.size
            self.dropped += 1
        return p

    def ack(self, channel: int, seq: int) -> int:
        """A cumulative acknowledgement: forgets the channel's samples up to ``seq``; returns how many.

        An ACK at or above the next ``seq`` acknowledges nothing this buffer numbered: the hub holds
        an older numbering of the channel (the robot restarted). The numbering moves above it and
        the samples waiting are numbered again after it, in order (see :meth:`pending` to send
        them again); nothing is forgotten."""
        if seq >= self.next_seq(channel):
            self._renumber(channel, seq + 1)
            return 0
        q = self._queues.get(channel)
        n = 0
        while q and q[0].seq <= seq:
            old = q.popleft()
            del self._order[(channel, old.seq)]
            self.size_bytes -= old.size
            n += 1
        return n

    def _renumber(self, channel: int, first: int) -> None:
        q = self._queues.get(channel)
        renamed: Dict[Tuple[int, int], Tuple[int, int]] = {}
        if q:
            new = deque(replace(old, seq=first + i) for i, old in enumerate(q))
            renamed = {(channel, old.seq): (channel, p.seq) for old, p in zip(q, new)}
            self._queues[channel] = new
            self._order = OrderedDict((renamed.get(k, k), None) for k in self._order)
        self._next[channel] = first + len(renamed)

    def resume(self, stored: Iterable[Tuple[int, int]]) -> None:
        """Applies WELCOME's ``[[channelId, lastStoredSeq], ...]``: acknowledges what the hub holds and
        never numbers a sample at or below it (a restarted robot continues the hub's numbering)."""
        for channel, last in stored:
            self.ack(channel, last)
            if self.next_seq(channel) <= last:
                self._next[channel] = last + 1

    def pending(self, channel: int) -> List[Pending]:
        return list(self._queues.get(channel, ()))

    def replay(self) -> Iterator[Pending]:
        """Every unacknowledged sample, in the order it was first pushed: what to send after a reconnect."""
        for ch, seq in list(self._order):
            q = self._queues[ch]
            yield q[seq - q[0].seq]
