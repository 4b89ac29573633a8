"""Backoff bounds and the reliable-uplink buffer (numbering, cumulative acks, resume, bounds)."""

import unittest

from switchboard_robot import Backoff, ReliableBuffer


class BackoffTest(unittest.TestCase):
    def test_equal_jitter_bounds_double_up_to_the_maximum(self) -> None:
        low, high = Backoff(0.25, 30, rand=lambda: 0.0), Backoff(0.25, 30, rand=lambda: 1.0)
        lows = [low.next_delay() for _ in range(10)]
        highs = [high.next_delay() for _ in range(10)]
        self.assertEqual(highs[:8], [0.25, 0.5, 1, 2, 4, 8, 16, 30])
        self.assertEqual(lows[:3], [0.125, 0.25, 0.5])
        self.assertEqual((lows[-1], highs[-1]), (15, 30))

    def test_reset_starts_over_and_huge_attempts_do_not_overflow(self) -> None:
        b = Backoff(1, 8, rand=lambda: 1.0)
        b.attempt = 10_000
        self.assertEqual(b.next_delay(), 8)
        b.reset()
        self.assertEqual(b.next_delay(), 1)

    def test_bad_bounds(self) -> None:
        with self.assertRaises(ValueError):
            Backoff(0, 1)
        with self.assertRaises(ValueError):
            Backoff(2, 1)


class ReliableBufferTest(unittest.TestCase):
    def test_numbers_per_channel_from_1(self) -> None:
        b = ReliableBuffer()
        self.assertEqual([b.push(2, 0, i, 10).seq for i in range(3)], [1, 2, 3])
        self.assertEqual(b.push(5, 0, "x", 10).seq, 1)
        self.assertEqual(len(b), 4)

    def test_acks_are_cumulative_and_idempotent(self) -> None:
        b = ReliableBuffer()
        for i in range(5):
            b.push(2, 0, i, 10)
        self.assertEqual(b.ack(2, 3), 3)
        self.assertEqual([x.seq for x in b.pending(2)], [4, 5])
        self.assertEqual(b.ack(2, 3), 0, "a repeated ack changes nothing")
        self.assertEqual(b.ack(9, 3), 0, "an ack of an unknown channel changes nothing")
        self.assertEqual(b.size_bytes, 20)

    def test_replay_in_push_order_across_channels(self) -> None:
        b = ReliableBuffer()
        b.push(1, 0, "a1", 1)
        b.push(2, 0, "b1", 1)
        b.push(1, 0, "a2", 1)
        b.ack(1, 1)
        self.assertEqual([(x.channel, x.seq, x.payload) for x in b.replay()], [(2, 1, "b1"), (1, 2, "a2")])

    def test_resume_drops_what_the_hub_stored_and_continues_its_numbering(self) -> None:
        b = ReliableBuffer()
        for i in range(4):
            b.push(2, 0, i, 1)
        b.resume([(2, 2), (7, 41)])
        self.assertEqual([x.seq for x in b.replay()], [3, 4], "what the hub has is not sent again")
        self.assertEqual(b.push(7, 0, "after a restart", 1).seq, 42, "a restarted robot continues the hub's numbering")
        self.assertEqual(b.push(2, 0, "next", 1).seq, 5)

    def test_an_ack_beyond_the_numbering_moves_it_and_renumbers_what_waits(self) -> None:
        # A restarted robot brings its channel up with ADVERTISE; the hub answers ACK [2, 100].
        b = ReliableBuffer()
        b.push(3, 0, "other", 1)
        for i in range(3):
            b.push(2, 0, i, 1)
        self.assertEqual(b.ack(2, 100), 0, "nothing this buffer numbered is acknowledged")
        self.assertEqual([(x.seq, x.payload) for x in b.pending(2)], [(101, 0), (102, 1), (103, 2)])
        self.assertEqual([(x.channel, x.seq) for x in b.replay()], [(3, 1), (2, 101), (2, 102), (2, 103)], "arrival order kept")
        self.assertEqual(b.push(2, 0, "next", 1).seq, 104)
        self.assertEqual(b.ack(2, 100), 0, "the hub's duplicate ACKs change nothing now")
        self.assertEqual(b.ack(2, 102), 2)
        self.assertEqual([x.seq for x in b.pending(2)], [103, 104])
        empty = ReliableBuffer()
        empty.ack(7, 41)
        self.assertEqual(empty.push(7, 0, "x", 1).seq, 42, "with nothing waiting: the numbering continues after the ACK")
        w = ReliableBuffer()
        w.push(2, 0, "offline", 1)
        w.resume([(2, 9)])
        self.assertEqual([x.seq for x in w.replay()], [10], "WELCOME beyond the numbering: renumbered, not dropped")

    def test_bounded_by_count_and_bytes_dropping_the_oldest(self) -> None:
        b = ReliableBuffer(max_samples=3, max_bytes=1_000)
        for i in range(5):
            b.push(1 + i % 2, 0, i, 10)
        self.assertEqual(len(b), 3)
        self.assertEqual(b.dropped, 2)
        self.assertEqual([x.payload for x in b.replay()], [2, 3, 4])
        c = ReliableBuffer(max_samples=100, max_bytes=25)
        for i in range(4):
            c.push(1, 0, i, 10)
        self.assertEqual(([x.seq for x in c.replay()], c.size_bytes, c.dropped), ([3, 4], 20, 2))
        big = ReliableBuffer(max_samples=10, max_bytes=5)
        big.push(1, 0, "one sample larger than the bound is kept alone", 50)
        self.assertEqual(len(big), 1)


if __name__ == "__main__":
    unittest.main()
