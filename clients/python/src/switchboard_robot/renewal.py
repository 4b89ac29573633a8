"""Certificate renewal by the robot, over its live link, with its current certificate.

``RENEW [20, csrDer]`` carries a request for a key made here (a new one each time); the hub answers
``CERTIFICATE [21, certPem, caPem]`` or an ``ERROR`` with ref ``"renew"``. The new key and
certificate are written next to the current ones and only then moved over them (the old pair stays
until the new one is saved: see :func:`keys.save_pair`), and the robot reconnects with them. The
hub revokes the old certificate at the new one's first use, so a robot that crashed before saving
the answer is never locked out: it connects with the old pair and renews again. Because every
connection reads the files again, nothing keeps dialling with the old certificate afterwards.

Automatic renewal (``Robot(renew_before=timedelta(days=30))``) checks the certificate file at each
connection and then daily, and renews once the certificate is within that window of its expiry;
refusals back off (at least the hub's one minute after ``RATE_LIMITED``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, List, Optional, Set, Tuple

from . import protocol as p
from .backoff import Backoff
from .certs import read_validity, validity_of
from .errors import ConnectionLost, RenewalError
from .keys import DEFAULT_KEY_TYPE, MissingDependency, new_key_and_csr, save_pair, write_atomic
from .link import Link, run_callback

if TYPE_CHECKING:
    from .robot import Robot

log = logging.getLogger("switchboard_robot")

#: How long renew() waits for the hub's answer.
ANSWER_TIMEOUT_S = 30.0
#: Automatic renewal looks at the certificate's dates this often (and at every connection).
CHECK_EVERY_S = 86_400.0
#: The hub renews a robot at most once a minute: the least wait after RATE_LIMITED.
RATE_LIMIT_WAIT_S = 60.0
#: The code of the link end that switches to a renewed certificate (retryable, reconnected at once).
RENEWED = "RENEWED"


@dataclass(frozen=True)
class Renewed:
    """A renewal saved: the new certificate's validity, and the PEMs the hub sent."""

    not_before: datetime
    not_after: datetime
    cert_pem: str
    ca_pem: str


class Renewer:
    """The renewal state of one Robot: the request in flight and the automatic schedule."""

    def __init__(self, robot: "Robot", renew_before: Optional[timedelta]) -> None:
        if renew_before is not None and renew_before <= timedelta(0):
            raise ValueError("renew_before: a positive timedelta (e.g. timedelta(days=30)), or None")
        self.robot = robot
        self.renew_before = renew_before
        self.backoff = Backoff(initial=RATE_LIMIT_WAIT_S, maximum=CHECK_EVERY_S)
        self._waiting: Optional[Tuple[Link, "asyncio.Future[Tuple[str, str]]"]] = None
        self._auto_off = False

    def answer(self, link: Link, f: List[Any]) -> None:
        """A CERTIFICATE frame, or an ERROR with ref "renew", from the hub."""
        w = self._waiting
        if w is None or w[0] is not link or w[1].done():
            log.warning("switchboard: an answer to a renewal nobody is waiting for (tag %r)", f[0])
            return
        if f[0] == p.CERTIFICATE and len(f) >= 3 and isinstance(f[1], str) and isinstance(f[2], str):
            w[1].set_result((f[1], f[2]))
            return
        code, message = (str(f[1]), str(f[2])) if f[0] == p.ERROR else ("BAD_ANSWER", f"a malformed CERTIFICATE frame {f!r:.80}")
        wait = RATE_LIMIT_WAIT_S if code == "RATE_LIMITED" else None
        w[1].set_exception(RenewalError(f"the hub did not renew the certificate: {code}: {message}", code, wait))

    async def renew(self, reconnect: bool = True, key_type: str = DEFAULT_KEY_TYPE, write_ca: bool = False) -> Renewed:
        robot = self.robot
        if robot._ssl is not None:
            raise ValueError("renew() replaces the cert and key files; a Robot given an ssl_context would keep using the old ones")
        link = robot._link
        if link is None or link.welcome is None or link.ended.done():
            raise RenewalError("not connected: a renewal goes over the live link", "NOT_CONNECTED")
        if self._waiting is not None:
            raise RenewalError("a renewal is already in progress", "IN_PROGRESS")
        fut: "asyncio.Future[Tuple[str, str]]" = asyncio.get_running_loop().create_future()
        self._waiting = (link, fut)
        try:
            # Key generation (RSA above all) may take a moment: off the event loop.
            key_pem, csr = await asyncio.to_thread(new_key_and_csr, key_type, link.welcome.robot_id)
            if not link.write(p.encode(p.renew(csr.der), robot.max_frame_bytes)):
                raise RenewalError("the link ended before the request was sent", "CLOSED")
            waiting: Set["asyncio.Future[Any]"] = {fut, link.ended}
            done, _ = await asyncio.wait(waiting, timeout=ANSWER_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED)
            if fut not in done:
                if link.ended.done():
                    raise RenewalError("the link ended before the hub answered; the current certificate stays", "CLOSED")
                raise RenewalError(f"no answer to RENEW within {ANSWER_TIMEOUT_S:.0f} s", "TIMEOUT")
            cert_pem, ca_pem = fut.result()
        finally:
            self._waiting = None
            if not fut.done():
                fut.cancel()
        try:
            v = validity_of(cert_pem)
        except ValueError as e:
            raise RenewalError(f"the hub's CERTIFICATE is not a certificate: {e}", "BAD_ANSWER") from e
        save_pair(robot.cert, robot.key, cert_pem.encode("utf-8"), key_pem)
        if write_ca:
            write_atomic(robot.ca, ca_pem.encode("utf-8"), 0o644)
        renewed = Renewed(v.not_before, v.not_after, cert_pem, ca_pem)
        log.info("switchboard: certificate renewed, valid until %s; saved to %s", v.not_after.isoformat(), robot.cert)
        self.backoff.reset()
        run_callback(robot.on_renewed, renewed)
        if reconnect:
            await self._switch(link)
        return renewed

    async def _switch(self, link: Link) -> None:
        """Ends the link on the old certificate; run() reconnects at once, else this does."""
        robot = self.robot
        if not link.ended.done():
            link.closing_error = ConnectionLost("renewed: reconnecting with the new certificate", RENEWED)
            link.writer.close()

            def drop() -> None:  # the hub did not close within 2 s
                if not link.ended.done():
                    link.drop()

            asyncio.get_running_loop().call_later(2.0, drop)
        if robot._running:
            return
        await asyncio.shield(link.ended)
        await robot.connect()

    def start(self, link: Link) -> None:
        """After WELCOME: the automatic renewal's schedule for this link, if asked for."""
        if self.renew_before is not None and not self._auto_off:
            link.tasks.append(asyncio.get_running_loop().create_task(self._auto(link), name="switchboard renewal"))

    async def _auto(self, link: Link) -> None:
        assert self.renew_before is not None
        robot = self.robot
        while not link.ended.done():
            try:
                v = read_validity(robot.cert)
            except (OSError, ValueError) as e:
                log.error("switchboard: automatic renewal cannot read %s: %s", robot.cert, e)
                return
            wait = (v.not_after - self.renew_before - datetime.now(timezone.utc)).total_seconds()
            if wait > 0:
                await asyncio.sleep(min(wait, CHECK_EVERY_S))
                continue
            try:
                renewed = await self.renew(reconnect=robot._running)
            except RenewalError as e:
                delay = max(self.backoff.next_delay(), e.retry_after or 0.0) if e.retryable else CHECK_EVERY_S
                log.warning("switchboard: automatic renewal failed (%s); next try in %.0f s", e, delay)
                await asyncio.sleep(delay)
                continue
            except OSError as e:  # the files could not be written (a full disk?): the old pair stays
                log.error("switchboard: automatic renewal could not save the new certificate: %s; next try in a day", e)
                await asyncio.sleep(CHECK_EVERY_S)
                continue
            except (MissingDependency, ValueError) as e:
                log.error("switchboard: automatic renewal is off: %s", e)
                self._auto_off = True
                return
            if renewed.not_after - self.renew_before <= datetime.now(timezone.utc):
                log.error("switchboard: renew_before (%s) is longer than the certificates the hub issues; automatic renewal is off", self.renew_before)
                self._auto_off = True
            if robot._running or self._auto_off:
                return
