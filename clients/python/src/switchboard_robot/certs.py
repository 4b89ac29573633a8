"""Reads a certificate's validity period, so that a robot can refuse to dial with a certificate
the hub would refuse.

The standard library has no public API for a certificate file's dates (``ssl`` exposes the peer's
certificate, not our own; ``ssl._ssl._test_decode_cert`` is private and may go away), and the
``cryptography`` package must not be a hard dependency. The validity field sits at a fixed place
in every X.509 certificate (RFC 5280, section 4.1), so a DER walk of about forty lines reads it:
Certificate -> tbsCertificate -> [version], serialNumber, signature, issuer, *validity*.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional, Tuple, Union

from .errors import CertificateExpired, CertificateNotYetValid

_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.S)

_SEQUENCE = 0x30
_INTEGER = 0x02
_CONTEXT_0 = 0xA0
_UTC_TIME = 0x17
_GENERALIZED_TIME = 0x18


@dataclass(frozen=True)
class Validity:
    """A certificate's validity period, in UTC (both ends inclusive, as X.509 counts them)."""

    not_before: datetime
    not_after: datetime


def _element(der: bytes, at: int) -> Tuple[int, int, int]:
    """The DER element at ``at``: (tag, start of its content, end of its content)."""
    if at + 2 > len(der):
        raise ValueError("truncated DER")
    tag, first = der[at], der[at + 1]
    at += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or at + count > len(der):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[at : at + count], "big")
        at += count
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _time(tag: int, raw: bytes) -> datetime:
    text = raw.decode("ascii")
    if tag == _UTC_TIME and re.fullmatch(r"\d{12}Z", text):
        year = int(text[:2])
        # RFC 5280: UTCTime years 50-99 are 19xx, 00-49 are 20xx.
        text = ("19" if year >= 50 else "20") + text
    elif not (tag == _GENERALIZED_TIME and re.fullmatch(r"\d{14}Z", text)):
        raise ValueError(f"unsupported certificate time {text!r}")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=timezone.utc)


def validity_of(certificate: Union[bytes, str]) -> Validity:
    """The validity of a certificate given as PEM (the first certificate: the leaf) or DER."""
    data = certificate.encode("ascii") if isinstance(certificate, str) else certificate
    match = _PEM.search(data)
    der = base64.b64decode(b"".join(match.group(1).split())) if match else data
    tag, start, _ = _element(der, 0)
    if tag != _SEQUENCE:
        raise ValueError("not an X.509 certificate")
    tag, at, end = _element(der, start)  # tbsCertificate
    if tag != _SEQUENCE:
        raise ValueError("not an X.509 certificate")
    tag, _, after = _element(der, at)
    if tag == _CONTEXT_0:  # [0] EXPLICIT version, absent for v1
        at = after
    for expected in (_INTEGER, _SEQUENCE, _SEQUENCE):  # serialNumber, signature, issuer
        tag, _, after = _element(der, at)
        if tag != expected:
            raise ValueError("not an X.509 certificate")
        at = after
    tag, vstart, vend = _element(der, at)
    if tag != _SEQUENCE:
        raise ValueError("not an X.509 certificate")
    t1, s1, e1 = _element(der, vstart)
    t2, s2, e2 = _element(der, e1)
    if e2 != vend:
        raise ValueError("not an X.509 validity field")
    return Validity(_time(t1, der[s1:e1]), _time(t2, der[s2:e2]))


def read_validity(path: Union[str, "os.PathLike[str]"]) -> Validity:
    """The validity of the certificate in a PEM or DER file."""
    with open(path, "rb") as f:
        return validity_of(f.read())


def check_validity(path: Union[str, "os.PathLike[str]"], now: Optional[datetime] = None) -> Validity:
    """Raises CertificateExpired or CertificateNotYetValid when ``now`` (default: this machine's
    clock, UTC) falls outside the certificate's validity; returns the validity otherwise."""
    v = read_validity(path)
    now = now or datetime.now(timezone.utc)
    if now > v.not_after:
        raise CertificateExpired(
            f"the certificate {os.fspath(path)} expired at {v.not_after.isoformat()}; the robot needs a new one "
            "(its owner rotates it); not dialling the hub"
        )
    if now < v.not_before:
        raise CertificateNotYetValid(
            f"the certificate {os.fspath(path)} is valid from {v.not_before.isoformat()} but this machine's clock says "
            f"{now.isoformat()}; check the clock (NTP); not dialling the hub",
            not_before=v.not_before,
            now=now,
        )
    return v
