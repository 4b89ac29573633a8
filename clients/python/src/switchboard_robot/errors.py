"""Errors are values with stable codes, and each says whether reconnecting as is can help.

``retryable`` is the decision the connect loop follows: ``False`` means that reconnecting with the
same certificate and code cannot succeed (a revoked certificate, a protocol bug, another process
using this robot's identity), so :meth:`Robot.run` stops and raises instead of backing off
forever. Codes are the hub's ``ERROR`` codes (docs/protocol.md, "Errors and when the hub closes
the link") or, for what the library itself detects, codes of its own named here.
"""

from __future__ import annotations

import ssl
from datetime import datetime
from typing import Dict, Optional, Type


class SwitchboardError(Exception):
    """Base class: ``code`` is stable (branch on it), the message is for people."""

    code: str = "ERROR"
    retryable: bool = True

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}: {self.message!r}, retryable={self.retryable})"


class ConnectionLost(SwitchboardError):
    """The link could not be opened or ended (network, TLS, the hub closing it): retryable.

    ``code`` is the hub's ERROR code when it said why (``SHUTDOWN``, ``TIMEOUT``, ``UNAVAILABLE``,
    ``SLOW_CONSUMER``, ``INTERNAL``), else ``CLOSED`` (a bare close), ``CONNECT_FAILED`` (no TCP or
    TLS connection), ``HEARTBEAT_TIMEOUT`` (nothing heard from the hub for 3 heartbeats) or
    ``WELCOME_TIMEOUT`` (no WELCOME in time).
    """

    code = "CLOSED"


class ServerCertificateError(ConnectionLost):
    """The hub's own certificate did not verify against the CA this robot trusts (wrong ``ca``,
    wrong host name, an expired hub certificate, or someone in between).

    Retryable, because it is the hub's side or the network that must change, and a fleet should
    come back by itself once the operator fixes it; it is logged loudly on every attempt.
    """

    code = "SERVER_CERTIFICATE_UNTRUSTED"


class ProtocolError(ConnectionLost):
    """The hub sent something this library cannot read; the link is dropped and retried."""

    code = "PROTOCOL_ERROR"


class RefusedError(SwitchboardError):
    """The hub refused this robot in a way that reconnecting as is cannot change: not retried."""

    code = "REFUSED"
    retryable = False


class CertificateRequired(RefusedError):
    """The robot presented no client certificate."""

    code = "CERTIFICATE_REQUIRED"


class CertificateUntrusted(RefusedError):
    """The certificate is not signed by the hub's robot CA: it needs a certificate from this hub."""

    code = "CERTIFICATE_UNTRUSTED"


class CertificateExpired(RefusedError):
    """The certificate's validity has ended (found by the pre-connect check or by the hub)."""

    code = "CERTIFICATE_EXPIRED"


class CertificateNotYetValid(RefusedError):
    """The certificate's validity has not begun (found by the pre-connect check or by the hub).

    Terminal, like the other refusals: reconnecting *as is* cannot succeed, because one of two
    clocks is wrong, and a robot that waits for it silently looks like one that works. :meth:`Robot.run`
    raises it at once; the application decides. ``not_before`` (UTC, or None when the certificate
    file could not be read) is when the certificate starts to be valid: compare it with the robot's
    clock (``now``, when the check was local). A robot whose clock is set by NTP after boot can wait
    for the sync and call ``run()`` again; one whose clock is right has a certificate from a hub with
    a wrong clock, which its owner must fix.
    """

    code = "CERTIFICATE_NOT_YET_VALID"

    def __init__(self, message: str, code: Optional[str] = None, not_before: "Optional[datetime]" = None, now: "Optional[datetime]" = None) -> None:
        super().__init__(message, code)
        self.not_before = not_before
        self.now = now


class UnknownCertificate(RefusedError):
    """The certificate is not registered (the robot was deleted, or this is not its certificate)."""

    code = "UNKNOWN_CERTIFICATE"


class CertificateRevoked(RefusedError):
    """The certificate was revoked (by its owner, or by a rotation that issued a newer one)."""

    code = "CERTIFICATE_REVOKED"


class Replaced(RefusedError):
    """Another connection of this robot said HELLO: another process may be using its identity."""

    code = "REPLACED"


class ProtocolViolation(RefusedError):
    """The hub closed the link over what this robot sent (too many bad frames, a frame too large):
    a bug to fix, not a condition to wait out."""

    code = "PROTOCOL_VIOLATION"


class FrameTooLarge(ValueError):
    """A frame would exceed the hub's limit; it was not sent (the hub would close the link)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a frame of {size} bytes; the hub accepts at most {limit}")
        self.size = size
        self.limit = limit


class CommandRejected(Exception):
    """Raise from a command handler to reject the command; ``reason`` reaches the user."""

    def __init__(self, reason: object = None) -> None:
        super().__init__(reason)
        self.reason = reason


class EnrollmentError(SwitchboardError):
    """``enroll()`` failed. ``code`` is the hub's (``BOOTSTRAP_TOKEN_USED_UP``, ``CONFLICT``...) or
    ``CONNECT_FAILED``/``SERVER_CERTIFICATE_UNTRUSTED``/``BAD_ANSWER``; ``status`` the HTTP status
    (None: no answer); ``retry_after`` the seconds the hub asked to wait (429, 503), or None."""

    code = "ENROLLMENT_FAILED"
    retryable = False

    def __init__(self, message: str, code: Optional[str] = None, status: Optional[int] = None, retry_after: Optional[float] = None, retryable: Optional[bool] = None) -> None:
        super().__init__(message, code)
        self.status = status
        self.retry_after = retry_after
        if retryable is not None:
            self.retryable = retryable


class BootstrapTokenRefused(EnrollmentError):
    """The bootstrap token will not do: unknown, expired or revoked (401), or used up (403). Not
    retryable: its owner makes a new one."""


class NameTaken(EnrollmentError):
    """The token's owner already has a robot of that name (409 CONFLICT): enroll under another
    name (derive it from something unique to the robot). No use of the token was taken."""

    code = "CONFLICT"


class CsrRefused(EnrollmentError):
    """The hub will not sign the request (400 CSR_MALFORMED, CSR_SIGNATURE_INVALID,
    CSR_KEY_UNSUPPORTED) or the body is invalid (VALIDATION: e.g. a name over 64 characters)."""


class EnrollmentUnavailable(EnrollmentError):
    """Worth another try later: 429 RATE_LIMITED, 503 UNAVAILABLE (no robot CA yet, the database),
    another 5xx, or no answer at all (``CONNECT_FAILED``)."""

    retryable = True


class RenewalError(SwitchboardError):
    """``Robot.renew()`` got no certificate; the robot keeps its current one, and its link stays up.

    ``code``: the hub's ERROR with ref "renew" (``RATE_LIMITED``: one renewal a minute per robot;
    ``UNAVAILABLE``; ``CSR_*``; ``FORBIDDEN``: this link's certificate was revoked meanwhile), or
    ``NOT_CONNECTED``, ``CLOSED`` (the link ended first), ``TIMEOUT`` (no answer), ``IN_PROGRESS``.
    ``retry_after`` is seconds to wait before another attempt, when known.
    """

    code = "RENEWAL_FAILED"

    def __init__(self, message: str, code: Optional[str] = None, retry_after: Optional[float] = None) -> None:
        super().__init__(message, code)
        self.retry_after = retry_after
        self.retryable = self.code in ("RATE_LIMITED", "UNAVAILABLE", "NOT_CONNECTED", "CLOSED", "TIMEOUT", "IN_PROGRESS")


#: ERROR codes after which the hub closes the link, and the class each becomes.
CLOSING_CODES: Dict[str, Type[SwitchboardError]] = {
    "CERTIFICATE_REQUIRED": CertificateRequired,
    "CERTIFICATE_UNTRUSTED": CertificateUntrusted,
    "CERTIFICATE_EXPIRED": CertificateExpired,
    "CERTIFICATE_NOT_YET_VALID": CertificateNotYetValid,
    "UNKNOWN_CERTIFICATE": UnknownCertificate,
    "CERTIFICATE_REVOKED": CertificateRevoked,
    "REPLACED": Replaced,
    "PROTOCOL_VIOLATION": ProtocolViolation,
    "FRAME_TOO_LARGE": ProtocolViolation,
    "UNAVAILABLE": ConnectionLost,
    "TIMEOUT": ConnectionLost,
    "SLOW_CONSUMER": ConnectionLost,
    "SHUTDOWN": ConnectionLost,
    "INTERNAL": ConnectionLost,
}
#: Codes that close the link only when they answer the first frames (before WELCOME): a bug.
CLOSING_BEFORE_WELCOME: Dict[str, Type[SwitchboardError]] = {
    "BAD_FRAME": ProtocolViolation,
    "UNKNOWN_TYPE": ProtocolViolation,
}


def error_for_code(code: str, message: str) -> SwitchboardError:
    """The exception for an ERROR frame the hub closed the link with."""
    cls = CLOSING_CODES.get(code) or CLOSING_BEFORE_WELCOME.get(code) or ConnectionLost
    return cls(f"{code}: {message}", code)


# OpenSSL's reason for an alert the hub's TLS stack sent about this robot's certificate. (Today's
# hub completes the handshake and sends an ERROR frame instead; a proxy or a future hub may alert.)
_ALERTS: Dict[str, Type[RefusedError]] = {
    "TLSV1_ALERT_UNKNOWN_CA": CertificateUntrusted,
    "SSLV3_ALERT_BAD_CERTIFICATE": CertificateUntrusted,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": CertificateUntrusted,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": CertificateExpired,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": CertificateRevoked,
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": CertificateRequired,
}


def error_for_ssl(e: ssl.SSLError) -> SwitchboardError:
    """Maps a TLS failure: an alert about our certificate is a refusal; our own check of the hub's
    certificate failing is ServerCertificateError; anything else a retryable ConnectionLost."""
    reason = str(getattr(e, "reason", None) or "")
    if isinstance(e, ssl.SSLCertVerificationError) or reason == "CERTIFICATE_VERIFY_FAILED":
        detail = getattr(e, "verify_message", None) or reason
        return ServerCertificateError(f"the hub's certificate did not verify: {detail}")
    cls = _ALERTS.get(reason)
    if cls is not None:
        return cls(f"the hub's TLS stack refused this robot's certificate ({reason})")
    return ConnectionLost(f"TLS failed: {reason or e}", "CONNECT_FAILED")
