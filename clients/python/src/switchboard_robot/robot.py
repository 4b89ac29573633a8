"""A robot's connection to a Switchboard hub: mutual TLS, HELLO with its channels, telemetry,
heartbeats both ways, commands and emergency stops, and a connect loop with backoff that never
retries a refusal that cannot succeed.

One :class:`Robot` holds at most one link at a time. Everything runs on one asyncio event loop;
handlers and callbacks run on it too, so a handler that blocks (a long ``time.sleep``, a blocking
driver call) delays heartbeats and e-stops: use ``await`` or ``loop.run_in_executor``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import ssl
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, Set, Union

from . import protocol as p
from .backoff import Backoff
from datetime import datetime, timedelta, timezone

from .certs import check_validity, read_validity
from .commands import Command, Handler
from .errors import CLOSING_BEFORE_WELCOME, CLOSING_CODES, CertificateNotYetValid, ConnectionLost, FrameTooLarge, SwitchboardError, error_for_code, error_for_ssl
from .keys import DEFAULT_KEY_TYPE, finish_pending_pair
from .link import Link, Welcome, run_callback
from .reliable import ReliableBuffer
from .renewal import RENEWED, Renewed, Renewer

log = logging.getLogger("switchboard_robot")

PathLike = Union[str, "os.PathLike[str]"]
#: Called at once on ESTOP: it must stop motion before it returns (or before its awaitable ends).
EStopHandler = Callable[[], Union[None, Awaitable[None]]]

#: A link that stayed up this long resets the backoff (shorter ones keep it growing).
STABLE_LINK_S = 10.0
#: How long an e-stop handler's awaitable may take before the stop is reported failed (the hub waits 10 s).
ESTOP_REPORT_S = 9.0
#: A ``latest`` sample is dropped rather than queued while this much is waiting to be written.
LATEST_DROP_BUFFER_BYTES = 1024 * 1024


class Robot:
    """A robot: its identity (certificate, key), the hub's address and CA, and its channels.

    Typical use::

        robot = Robot("hub.example", 8443, cert="robot.crt", key="robot.key", ca="robot-ca.crt",
                      channels=[Channel(1, "pose"), Channel(2, "log", "json", delivery="reliable")])

        @robot.command("drive")
        async def drive(cmd):
            cmd.accept()
            await motors.drive(cmd.args["speed"], timeout=cmd.remaining())
            return {"ok": True}

        @robot.on_estop
        def stop():
            motors.off()          # must stop motion at once

        await robot.run()         # connects, reconnects with backoff; raises on a refusal
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        cert: PathLike,
        key: PathLike,
        ca: PathLike,
        channels: Sequence[p.Channel] = (),
        server_hostname: Optional[str] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        check_certificate: bool = True,
        max_frame_bytes: int = p.DEFAULT_MAX_FRAME_BYTES,
        max_incoming_frame_bytes: int = p.DEFAULT_MAX_INCOMING_FRAME_BYTES,
        connect_timeout: float = 10.0,
        backoff: Optional[Backoff] = None,
        command_margin_ms: float = 250.0,
        estop_cancels_commands: bool = True,
        reliable_buffer: Optional[ReliableBuffer] = None,
        renew_before: Optional[timedelta] = None,
    ) -> None:
        """
        :param host, port: the hub's robot endpoint (``SB_ROBOT_PORT``, 8443 by default).
        :param cert, key: files (PEM) of the robot's certificate and private key.
        :param ca: file (PEM) of the CA that signed the hub's certificate (``robot-ca.crt``).
        :param channels: the telemetry channels advertised in HELLO.
        :param server_hostname: the name the hub's certificate must carry and the SNI sent
            (default: ``host``).
        :param ssl_context: a ready context instead of one built from cert, key and ca.
        :param check_certificate: check ``cert``'s validity period before each attempt and refuse
            to dial with an expired or not-yet-valid one.
        :param max_frame_bytes: the hub's frame limit (``SB_ROBOT_MAX_FRAME_BYTES``); a larger
            frame raises FrameTooLarge instead of being sent (the hub would close the link).
        :param max_incoming_frame_bytes: the largest frame read from the hub.
        :param connect_timeout: seconds for TCP, TLS, HELLO and WELCOME together.
        :param backoff: reconnect delays (default: 0.25 s to 30 s, equal jitter).
        :param command_margin_ms: a command is failed this much before its deadline (at most a
            fifth of its timeout), so the report reaches the hub before its own timer ends.
        :param estop_cancels_commands: an e-stop fails and cancels every command in flight.
        :param reliable_buffer: turns on the acknowledged uplink for ``reliable`` channels (a
            ``seq`` per sample, kept until the hub's ACK, replayed after a reconnect). Needs a hub
            that acknowledges (issue 15); off by default until hubs do.
        :param renew_before: renew the certificate over the link (:meth:`renew`) once it is within
            this long of its expiry, checked at each connection and daily, e.g. ``timedelta(days=30)``.
            Needs the ``cryptography`` package (``switchboard-robot[enroll]``).
        """
        p.check_channels(channels)
        self.host = host
        self.port = port
        self.cert = cert
        self.key = key
        self.ca = ca
        self.channels: List[p.Channel] = list(channels)
        self.server_hostname = server_hostname or host
        self.check_certificate = check_certificate
        self.max_frame_bytes = max_frame_bytes
        self.max_incoming_frame_bytes = max_incoming_frame_bytes
        self.connect_timeout = connect_timeout
        self.backoff = backoff or Backoff()
        self.command_margin_ms = command_margin_ms
        self.estop_cancels_commands = estop_cancels_commands
        self.reliable_buffer = reliable_buffer
        self._ssl = ssl_context
        self._by_id: Dict[int, p.Channel] = {}
        self._by_name: Dict[str, p.Channel] = {}
        self._set_channels(self.channels)
        self._handlers: Dict[str, Handler] = {}
        self._fallback: Optional[Handler] = None
        self._estop: Optional[EStopHandler] = None
        self._link: Optional[Link] = None
        self._closing = False
        self._running = False
        self._wake: Optional[asyncio.Event] = None
        self._renewer = Renewer(self, renew_before)
        #: Called with the Welcome after each successful connect.
        self.on_connect: Optional[Callable[[Welcome], None]] = None
        #: Called with why a welcomed link ended.
        self.on_disconnect: Optional[Callable[[SwitchboardError], None]] = None
        #: Called in run() with a failed attempt's error and the delay before the next one (s).
        self.on_retry: Optional[Callable[[SwitchboardError, float], None]] = None
        #: Called with (code, message, ref) for every ERROR frame (RATE_LIMITED, UNKNOWN_COMMAND...).
        self.on_hub_error: Optional[Callable[[str, str, Optional[str]], None]] = None
        #: Called with the Renewed once a renewed certificate and key are saved (before reconnecting).
        self.on_renewed: Optional[Callable[[Renewed], None]] = None

    # ---- registration ----

    def command(self, name: Optional[str] = None) -> Callable[[Handler], Handler]:
        """Decorator: the handler of command ``name``, or of every command without one of its own
        when ``name`` is None. A command no handler takes is rejected ("unknown command")."""

        def register(fn: Handler) -> Handler:
            self.add_command(name, fn)
            return fn

        return register

    def add_command(self, name: Optional[str], handler: Handler) -> None:
        if name is None:
            self._fallback = handler
        else:
            self._handlers[name] = handler

    def on_estop(self, fn: EStopHandler) -> EStopHandler:
        """Decorator: the emergency-stop handler. It is called at once when ESTOP arrives, before
        anything else, and must stop all motion before it returns (or, if it is async, before its
        awaitable ends, within 9 s). The stop is then reported ``completed``, or ``failed`` if the
        handler raised; without a handler every stop is reported ``failed``."""
        self._estop = fn
        return fn

    # ---- state ----

    @property
    def connected(self) -> bool:
        """True while a link is welcomed and open."""
        return self._link is not None and self._link.welcome is not None and not self._link.ended.done()

    @property
    def robot_id(self) -> Optional[str]:
        link = self._link
        return link.welcome.robot_id if link and link.welcome else None

    @property
    def heartbeat_ms(self) -> Optional[int]:
        link = self._link
        return link.welcome.heartbeat_ms if link and link.welcome else None

    def running_commands(self) -> List[Command]:
        return list(self._link.commands.running.values()) if self._link else []

    # ---- telemetry ----

    def channel(self, channel: Union[int, str]) -> p.Channel:
        """A channel advertised in HELLO, by id or name (KeyError otherwise)."""
        c = self._by_id.get(channel) if isinstance(channel, int) else self._by_name.get(channel)
        if c is None:
            raise KeyError(f"no channel {channel!r} was advertised")
        return c

    def publish(self, channel: Union[int, str], payload: Any, ts: Optional[int] = None) -> bool:
        """Sends one telemetry sample (``ts``: ms since the epoch, default now).

        Returns False when the sample was not sent: no link, or (``latest`` channels only) over
        1 MiB already waiting to be written, where a newer sample will do. With a
        ``reliable_buffer``, a sample on a ``reliable`` channel is kept until the hub acknowledges
        it and sent (again) after a reconnect: True then means it is on its way. Raises
        FrameTooLarge if the frame exceeds ``max_frame_bytes`` and KeyError for a channel not
        advertised.
        """
        c = self.channel(channel)
        ts = int(time.time() * 1000) if ts is None else ts
        buffer = self.reliable_buffer if c.reliable else None
        seq = buffer.next_seq(c.id) if buffer is not None else None
        data = p.encode(p.telemetry(c.id, ts, payload, seq), self.max_frame_bytes)
        if buffer is not None:
            buffer.push(c.id, ts, payload, len(data))
            if self.connected and self._link is not None:
                self._link.write(data)
            return True
        link = self._link
        if link is None or link.welcome is None:
            return False
        if not c.reliable and link.buffered() > LATEST_DROP_BUFFER_BYTES:
            return False
        return link.write(data)

    def advertise(self, channels: Sequence[p.Channel]) -> bool:
        """Adds channels, or replaces those with the same id, at any time (``ADVERTISE``).

        Sent at once when connected (one frame, or as few as fit when together they are over the
        frame limit), and part of HELLO on every later connection. Returns whether it was sent now.
        Raises ValueError for what the hub would refuse (over 64 channels, a name another channel
        holds, schemas over 256 KiB in all) and FrameTooLarge for a channel whose descriptor alone
        is over the frame limit; nothing changes then.
        """
        merged = {c.id: c for c in self.channels}
        for c in channels:
            merged[c.id] = c
        after = list(merged.values())
        p.check_channels(after)
        frames = self._advertise_frames(channels)
        self._set_channels(after)
        link = self._link
        if link is None or link.welcome is None or link.ended.done():
            return False
        for f in frames:
            link.write(f)
        link.channels.update((c.id, c) for c in channels)
        return True

    def _advertise_frames(self, channels: Sequence[p.Channel]) -> List[bytes]:
        """As few ADVERTISE frames as fit (the hub takes 10 a second, bursts of 20); FrameTooLarge
        for a channel that fits in none."""
        frames: List[bytes] = []
        batch: List[p.Channel] = []
        frame: Optional[bytes] = None
        for c in channels:
            try:
                frame = p.encode(p.advertise(batch + [c]), self.max_frame_bytes)
                batch.append(c)
            except FrameTooLarge:
                if not batch:
                    raise
                assert frame is not None
                frames.append(frame)
                batch = [c]
                frame = p.encode(p.advertise(batch), self.max_frame_bytes)
        if batch and frame is not None:
            frames.append(frame)
        return frames

    def withdraw(self, channels: Sequence[Union[int, str]]) -> bool:
        """Removes channels (by id or name; KeyError for one not advertised) (``WITHDRAW``).
        Returns whether it was sent now; later connections do not advertise them."""
        ids = [self.channel(c).id for c in channels]
        self._set_channels([c for c in self.channels if c.id not in ids])
        link = self._link
        if link is None or link.welcome is None or not link.write(p.encode(p.withdraw(ids))):
            return False
        for i in ids:
            link.channels.pop(i, None)
        return True

    def _set_channels(self, channels: List[p.Channel]) -> None:
        self.channels = channels
        self._by_id = {c.id: c for c in channels}
        self._by_name = {c.name: c for c in channels}

    def _hello(self, link: Link) -> bytes:
        """HELLO with every channel; if that is over the frame limit, without the channels that carry
        a schema, which :meth:`_sync_channels` then advertises after WELCOME."""
        try:
            frame = p.encode(p.hello(self.channels), self.max_frame_bytes)
            hello = self.channels
        except FrameTooLarge:
            hello = [c for c in self.channels if c.schema_data is None]
            frame = p.encode(p.hello(hello), self.max_frame_bytes)
        link.channels = {c.id: c for c in hello}
        return frame

    def _sync_channels(self, link: Link) -> None:
        """After WELCOME: tells the hub of the channels HELLO did not carry (left out for size, or
        changed while connecting), in one ADVERTISE if it fits, else one per channel."""
        gone = [i for i in link.channels if i not in self._by_id]
        if gone:
            link.write(p.encode(p.withdraw(gone)))
            for i in gone:
                del link.channels[i]
        changed = [c for c in self.channels if link.channels.get(c.id) != c]
        if not changed:
            return
        fits: List[p.Channel] = []
        for c in changed:
            try:
                self._advertise_frames([c])
                fits.append(c)
            except FrameTooLarge as e:  # advertise() refuses such a channel; only the constructor lets one in
                log.error("switchboard: channel %s cannot be advertised: %s", c.name, e)
        changed = fits
        if not changed:
            return
        for f in self._advertise_frames(changed):
            link.write(f)
        link.channels.update((c.id, c) for c in changed)

    async def drain(self) -> None:
        """Waits until the link's write buffer has drained (flow control for bulk telemetry)."""
        link = self._link
        if link is not None and not link.ended.done():
            try:
                await link.writer.drain()
            except (ConnectionError, OSError):
                pass  # the read loop reports the loss

    # ---- connecting ----

    def _context(self) -> ssl.SSLContext:
        # Read from the files at every attempt, like the validity check: a robot whose certificate
        # was renewed replaces the files and reconnects with the new one.
        if self._ssl is not None:
            return self._ssl
        finish_pending_pair(self.cert, self.key)  # a renewal a crash interrupted
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=os.fspath(self.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(os.fspath(self.cert), os.fspath(self.key))
        return ctx

    async def connect(self) -> Welcome:
        """One attempt: checks the certificate's dates, dials, says HELLO and waits for WELCOME.

        Raises a RefusedError subclass when the hub (or the certificate check) refuses this robot,
        ConnectionLost (or a subclass) when the attempt failed in a way worth retrying.
        """
        if self._link is not None and not self._link.ended.done():
            raise RuntimeError("already connected")
        if self.check_certificate:
            check_validity(self.cert)
        ctx = self._context()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=ctx, server_hostname=self.server_hostname),
                self.connect_timeout,
            )
        except ssl.SSLError as e:
            raise error_for_ssl(e) from e
        except asyncio.TimeoutError as e:
            raise ConnectionLost(f"no TLS connection to {self.host}:{self.port} within {self.connect_timeout} s", "CONNECT_FAILED") from e
        except OSError as e:
            raise ConnectionLost(f"cannot reach {self.host}:{self.port}: {e}", "CONNECT_FAILED") from e
        link = Link(reader, writer, lambda cid, stage, detail: self._send(link, p.status(cid, stage, detail)), self.command_margin_ms)
        self._link = link
        link.tasks.append(asyncio.get_running_loop().create_task(self._read_loop(link), name="switchboard read loop"))
        link.write(self._hello(link))
        waiting: Set["asyncio.Future[Any]"] = {link.welcomed, link.ended}
        done, _ = await asyncio.wait(waiting, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        if link.welcomed in done and not link.ended.done():
            welcome = link.welcomed.result()
            run_callback(self.on_connect, welcome)
            return welcome
        if not done:
            link.abort(ConnectionLost(f"no WELCOME within {self.connect_timeout} s", "WELCOME_TIMEOUT"))
        raise await link.ended

    async def run(self) -> None:
        """Connects and stays connected until :meth:`close`: reconnects after every retryable end
        (with :class:`Backoff` delays), and raises the error of a refusal that is not retryable
        (a revoked, expired or not yet valid certificate, REPLACED, a protocol violation) without
        retrying it. After a renewal it reconnects at once, with the new certificate."""
        self._running = True
        try:
            await self._run()
        finally:
            self._running = False

    async def renew(self, *, reconnect: bool = True, key_type: str = DEFAULT_KEY_TYPE, write_ca: bool = False) -> Renewed:
        """Renews the certificate over the live link (``RENEW``) for a new key made here, saves the
        new key and certificate over ``key`` and ``cert`` (the old pair stays until the new one is
        saved), and reconnects with them (run() at once; without run(), this method). ``write_ca``
        also replaces ``ca`` with the robot CA the hub sent. Raises RenewalError (the current
        certificate stays; ``retryable``, ``retry_after``), MissingDependency without ``cryptography``."""
        return await self._renewer.renew(reconnect, key_type, write_ca)

    async def _run(self) -> None:
        self._closing = False
        self._wake = asyncio.Event()
        while not self._closing:
            try:
                await self.connect()
            except SwitchboardError as e:
                if not e.retryable or self._closing:
                    if self._closing:
                        return
                    raise
                await self._pause(e)
                continue
            link = self._link
            assert link is not None
            if self._closing:  # close() was called while this attempt was dialling
                await self.close()
                return
            why = await asyncio.shield(link.ended)
            if self._closing:
                return
            if not why.retryable:
                raise why
            if time.monotonic() - link.opened_at >= STABLE_LINK_S:
                self.backoff.reset()
            if why.code != RENEWED:  # a renewal switches to its certificate at once
                await self._pause(why)

    async def _pause(self, why: SwitchboardError) -> None:
        delay = self.backoff.next_delay()
        log.warning("switchboard: %s; reconnecting in %.2f s", why, delay)
        run_callback(self.on_retry, why, delay)
        assert self._wake is not None
        try:
            await asyncio.wait_for(self._wake.wait(), delay)
        except asyncio.TimeoutError:
            pass

    async def close(self) -> None:
        """Closes the link (the hub sees the robot go offline at once) and ends :meth:`run`."""
        self._closing = True
        if self._wake is not None:
            self._wake.set()
        link = self._link
        if link is None or link.ended.done():
            return
        link.closing_error = link.closing_error or ConnectionLost("closed by the robot", "CLOSED")
        link.writer.close()
        try:
            await asyncio.wait_for(asyncio.shield(link.ended), 2.0)
        except asyncio.TimeoutError:
            link.drop()
            await link.ended

    # ---- the link ----

    def _send(self, link: Link, frame: List[Any]) -> None:
        link.write(p.encode(frame, self.max_frame_bytes))

    async def _read_loop(self, link: Link) -> None:
        why: SwitchboardError
        try:
            while True:
                header = await link.reader.readexactly(4)
                body = await link.reader.readexactly(p.frame_length(header, self.max_incoming_frame_bytes))
                link.last_read = time.monotonic()
                self._dispatch(link, p.decode(body))
        except asyncio.IncompleteReadError:
            why = ConnectionLost("the hub closed the link", "CLOSED")
        except ssl.SSLError as e:
            why = error_for_ssl(e)
        except (ConnectionError, OSError) as e:
            why = ConnectionLost(f"the link failed: {e}", "CLOSED")
        except SwitchboardError as e:
            why = e
        except asyncio.CancelledError:
            why = ConnectionLost("closed by the robot", "CLOSED")
        except Exception as e:  # a bug in a callback: end the link, keep the robot's loop alive
            log.exception("switchboard: the link's handler failed")
            why = ConnectionLost(f"internal error: {e!r}", "INTERNAL")
        self._end(link, link.closing_error or why)

    def _end(self, link: Link, why: SwitchboardError) -> None:
        if link.ended.done():
            return
        for t in link.tasks:
            if t is not asyncio.current_task():
                t.cancel()
        link.commands.abandon()
        link.drop()
        link.ended.set_result(why)
        if self._link is link:
            self._link = None
        if link.welcome is not None:
            run_callback(self.on_disconnect, why)

    def _dispatch(self, link: Link, f: List[Any]) -> None:
        tag = f[0]
        if tag == p.HEARTBEAT:
            return
        if tag == p.WELCOME and link.welcome is None and len(f) >= 3:
            link.welcome = Welcome(str(f[1]), int(f[2]))
            link.tasks.append(asyncio.get_running_loop().create_task(self._heartbeat(link), name="switchboard heartbeat"))
            self._sync_channels(link)  # channels first: replayed samples must find theirs
            if self.reliable_buffer is not None:
                self._replay(link, f[3] if len(f) > 3 and isinstance(f[3], list) else [])
            link.welcomed.set_result(link.welcome)
            self._renewer.start(link)
        elif tag == p.CERTIFICATE or (tag == p.ERROR and len(f) > 3 and f[3] == "renew"):
            self._renewer.answer(link, f)
            if tag == p.ERROR:
                run_callback(self.on_hub_error, str(f[1]), str(f[2]), "renew")
        elif tag == p.ERROR and len(f) >= 3:
            code, message = str(f[1]), str(f[2])
            ref = f[3] if len(f) > 3 and isinstance(f[3], str) else None
            if code in CLOSING_CODES or (link.welcome is None and code in CLOSING_BEFORE_WELCOME):
                link.closing_error = e = error_for_code(code, message)
                if isinstance(e, CertificateNotYetValid):  # when it starts, for the application to decide
                    e.not_before, e.now = self._not_before(), datetime.now(timezone.utc)
            else:
                log.info("switchboard: hub error %s: %s (ref %s)", code, message, ref)
            run_callback(self.on_hub_error, code, message, ref)
        elif tag == p.COMMAND and len(f) >= 5:
            name = str(f[2])
            link.commands.start(str(f[1]), name, f[3], int(f[4]), self._handlers.get(name, self._fallback))
        elif tag == p.ACK and len(f) >= 3:
            buffer = self.reliable_buffer
            if buffer is not None:
                channel, seq = int(f[1]), int(f[2])
                renumbered = seq >= buffer.next_seq(channel)
                buffer.ack(channel, seq)
                # An ACK beyond this robot's numbering (it restarted; the hub says so on ADVERTISE):
                # what waits was numbered again above it, and is sent again under its new numbers.
                if renumbered and link.welcome is not None:
                    for sample in buffer.pending(channel):
                        link.write(p.encode(p.telemetry(sample.channel, sample.ts, sample.payload, sample.seq), self.max_frame_bytes))
        elif tag == p.ESTOP and len(f) >= 2:
            self._on_estop(link, str(f[1]))
        else:
            # Unknown tags are skipped, so that a newer hub's frames do not break this robot.
            log.warning("switchboard: skipped a frame with tag %r", tag)

    def _not_before(self) -> Optional[datetime]:
        try:
            return read_validity(self.cert).not_before
        except (OSError, ValueError):
            return None

    def _replay(self, link: Link, stored: List[Any]) -> None:
        """After WELCOME: forgets what the hub says it stored, then sends the rest again, in order,
        each with its first ``seq`` (the hub drops duplicates). Samples of channels no longer
        reliable or advertised are dropped: the hub would refuse them."""
        buffer = self.reliable_buffer
        assert buffer is not None
        buffer.resume((int(pair[0]), int(pair[1])) for pair in stored if isinstance(pair, list) and len(pair) == 2)
        for sample in list(buffer.replay()):
            c = self._by_id.get(sample.channel)
            if c is None or not c.reliable:
                buffer.ack(sample.channel, sample.seq)
                continue
            link.write(p.encode(p.telemetry(sample.channel, sample.ts, sample.payload, sample.seq), self.max_frame_bytes))

    def _on_estop(self, link: Link, stop_id: str) -> None:
        handler = self._estop
        outcome: Any = None
        failed: Optional[str] = None
        if handler is None:
            failed = "this robot has no e-stop handler"
        else:
            try:
                outcome = handler()
            except Exception as e:
                log.exception("switchboard: the e-stop handler failed")
                failed = f"the e-stop handler failed: {type(e).__name__}: {e}"
        if self.estop_cancels_commands:
            link.commands.fail_all("emergency stop")
        if failed is None and inspect.isawaitable(outcome):
            link.tasks.append(asyncio.get_running_loop().create_task(self._finish_estop(link, stop_id, outcome)))
            return
        self._send(link, p.status(stop_id, p.FAILED if failed else p.COMPLETED, failed or "stopped"))

    async def _finish_estop(self, link: Link, stop_id: str, outcome: Awaitable[Any]) -> None:
        try:
            await asyncio.wait_for(outcome, ESTOP_REPORT_S)
        except asyncio.TimeoutError:
            self._send(link, p.status(stop_id, p.FAILED, f"the e-stop handler did not finish within {ESTOP_REPORT_S} s"))
        except Exception as e:
            log.exception("switchboard: the e-stop handler failed")
            self._send(link, p.status(stop_id, p.FAILED, f"the e-stop handler failed: {type(e).__name__}: {e}"))
        else:
            self._send(link, p.status(stop_id, p.COMPLETED, "stopped"))

    async def _heartbeat(self, link: Link) -> None:
        assert link.welcome is not None
        hb = link.welcome.heartbeat_ms / 1000
        while not link.ended.done():
            await asyncio.sleep(hb / 4)
            now = time.monotonic()
            if now - link.last_read > 3 * hb:
                link.abort(ConnectionLost(f"nothing heard from the hub for {3 * hb:.1f} s", "HEARTBEAT_TIMEOUT"))
                return
            if now - link.last_write >= hb:
                link.write(p.encode([p.HEARTBEAT]))
