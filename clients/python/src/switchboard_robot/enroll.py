"""A robot enrolls itself with a fleet bootstrap token: ``POST /api/v1/robots/enroll`` over HTTPS.

The robot makes its key (kept, mode 0600) and a certificate signing request, sends the request
with the token, and writes the certificate the hub answers with, and the robot CA's certificate.
Standard library only (``urllib``); making the key and the request needs ``cryptography`` unless
the caller brings a request made with ``openssl`` (``csr=``). docs/protocol.md ("Enrolling with
the robot's own key") is the specification; docs/robots.md ("Python") the guide.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Type, Union

from .backoff import Backoff
from .errors import BootstrapTokenRefused, CsrRefused, EnrollmentError, EnrollmentUnavailable, NameTaken
from .keys import DEFAULT_KEY_TYPE, Csr, csr_for_key, csr_from_pem, make_key_and_csr, write_atomic

PathLike = Union[str, "os.PathLike[str]"]

#: The hub's codes (docs/protocol.md, "Errors") and the class each becomes.
ENROLL_CODES: Dict[str, Type[EnrollmentError]] = {
    "BOOTSTRAP_TOKEN_UNKNOWN": BootstrapTokenRefused,
    "BOOTSTRAP_TOKEN_EXPIRED": BootstrapTokenRefused,
    "BOOTSTRAP_TOKEN_REVOKED": BootstrapTokenRefused,
    "BOOTSTRAP_TOKEN_USED_UP": BootstrapTokenRefused,
    "UNAUTHENTICATED": BootstrapTokenRefused,
    "CONFLICT": NameTaken,
    "CSR_MALFORMED": CsrRefused,
    "CSR_SIGNATURE_INVALID": CsrRefused,
    "CSR_KEY_UNSUPPORTED": CsrRefused,
    "VALIDATION": CsrRefused,
    "RATE_LIMITED": EnrollmentUnavailable,
    "UNAVAILABLE": EnrollmentUnavailable,
    "OVERLOADED": EnrollmentUnavailable,
    "TIMEOUT": EnrollmentUnavailable,
    "STOPPED": EnrollmentUnavailable,
    "INTERNAL": EnrollmentUnavailable,
}


@dataclass(frozen=True)
class Enrollment:
    """What the hub answered: the robot's id (its certificate's CN) and where the files are."""

    robot_id: str
    name: str
    owner_id: Optional[str]
    fingerprint: str
    serial: str
    not_after: str
    cert_path: str
    ca_path: Optional[str]


def _retry_after(headers: Any, body: Any) -> Optional[float]:
    raw = headers.get("Retry-After") if headers is not None else None
    try:
        if raw is not None:
            return max(0.0, float(raw))
    except ValueError:
        pass
    s = body.get("retryAfterS") if isinstance(body, dict) else None
    return float(s) if isinstance(s, (int, float)) else None


def error_for_answer(status: int, body: Any, headers: Any = None) -> EnrollmentError:
    """The exception for an error answer of ``POST /api/v1/robots/enroll``."""
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code")) if isinstance(err, dict) and err.get("code") else f"HTTP_{status}"
    message = str(err.get("message")) if isinstance(err, dict) and err.get("message") else f"HTTP {status}"
    retry_after = _retry_after(headers, err if isinstance(err, dict) else body)
    cls = ENROLL_CODES.get(code)
    if cls is None:
        cls = EnrollmentUnavailable if status >= 500 or status == 429 else EnrollmentError
    return cls(f"enrollment refused: {code} ({status}): {message}", code, status, retry_after)


def _url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.endswith("/api/v1"):
        base = base[: -len("/api/v1")]
    return base + "/api/v1/robots/enroll"


def _post(url: str, token: str, payload: Dict[str, str], timeout: float, context: Optional[ssl.SSLContext]) -> Dict[str, Any]:
    req = urllib.request.Request(
        url,
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as res:
            raw = res.read()
            status = res.status
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        raise error_for_answer(e.code, body, e.headers) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise EnrollmentUnavailable(f"the hub's HTTPS certificate did not verify: {reason.verify_message}", "SERVER_CERTIFICATE_UNTRUSTED") from e
        raise EnrollmentUnavailable(f"cannot reach {url}: {reason}", "CONNECT_FAILED") from e
    except (OSError, TimeoutError) as e:  # a timeout or reset while reading the answer
        raise EnrollmentUnavailable(f"no answer from {url}: {e}", "CONNECT_FAILED") from e
    try:
        body = json.loads(raw)
        if status != 201 or not isinstance(body, dict):
            raise ValueError(f"status {status}")
        for field in ("certificatePem", "caPem"):
            if not isinstance(body.get(field), str):
                raise ValueError(f"no {field}")
        if not isinstance(body.get("robot"), dict) or not isinstance(body["robot"].get("id"), str):
            raise ValueError("no robot id")
    except ValueError as e:
        raise EnrollmentError(f"the hub's answer is not an enrollment ({e}): is {url} a Switchboard hub?", "BAD_ANSWER", status) from None
    return body


def enroll(
    base_url: str,
    bootstrap_token: str,
    name: str,
    key_path: PathLike,
    cert_path: PathLike,
    ca_path: Optional[PathLike] = None,
    *,
    csr: Optional[Union[str, bytes, Csr]] = None,
    key_type: str = DEFAULT_KEY_TYPE,
    timeout: float = 30.0,
    cafile: Optional[PathLike] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    attempts: int = 1,
    backoff: Optional[Backoff] = None,
    on_retry: Optional[Callable[[EnrollmentError, float], None]] = None,
) -> Enrollment:
    """Enrolls this robot with a fleet bootstrap token; returns its id once the files are written.

    :param base_url: the hub's HTTP(S) address, e.g. ``https://hub.example.com`` (the REST API,
        not the robot port).
    :param bootstrap_token: the owner's ``sbb_...`` secret.
    :param name: the robot's name, unique among the token owner's robots (1-64 characters).
    :param key_path: the robot's private key. Made here (mode 0600) when the file does not exist;
        otherwise the request is made for the key in it. Never sent anywhere.
    :param cert_path, ca_path: where the certificate and the robot CA's certificate are written
        (atomically); ``ca_path=None`` does not write the CA (a hub with its own server CA).
    :param csr: a request made elsewhere (``openssl req``, PEM) for the key in ``key_path``: then
        the ``cryptography`` package is not needed.
    :param key_type: for a new key: ``P-256`` (default), ``P-384``, ``Ed25519``, ``RSA-2048``...
    :param cafile, ssl_context: to verify the hub's HTTPS certificate (default: the system's CAs).
    :param attempts: how many requests at most; only ``retryable`` failures are tried again, after
        ``backoff`` delays (and at least the hub's ``Retry-After``); ``on_retry(error, delay_s)``
        is called before each. Default 1: no retry.

    Raises an :class:`EnrollmentError`: :class:`BootstrapTokenRefused` (unknown, expired, revoked,
    used up), :class:`NameTaken`, :class:`CsrRefused`, :class:`EnrollmentUnavailable` (429, 503,
    no answer: ``retryable``). Files are only written on success (a new key, before the request).
    """
    if attempts < 1:
        raise ValueError("attempts: at least 1")
    if isinstance(csr, Csr):
        request = csr
    elif csr is not None:
        request = csr_from_pem(csr)
    elif os.path.exists(key_path):
        request = csr_for_key(key_path, name[:64] or "switchboard-robot")
    else:
        request = make_key_and_csr(key_path, key_type=key_type, common_name=name[:64] or "switchboard-robot")
    context = ssl_context
    if context is None and cafile is not None:
        context = ssl.create_default_context(cafile=os.fspath(cafile))
    delays = backoff or Backoff(initial=1.0, maximum=60.0)
    url = _url(base_url)
    attempt = 0
    while True:
        attempt += 1
        try:
            body = _post(url, bootstrap_token, {"name": name, "csr": request.pem}, timeout, context)
            break
        except EnrollmentError as e:
            if not e.retryable or attempt >= attempts:
                raise
            delay = max(delays.next_delay(), e.retry_after or 0.0)
            if on_retry is not None:
                on_retry(e, delay)
            time.sleep(delay)
    write_atomic(cert_path, body["certificatePem"].encode("utf-8"), 0o644)
    if ca_path is not None:
        write_atomic(ca_path, body["caPem"].encode("utf-8"), 0o644)
    robot = body["robot"]
    return Enrollment(
        robot_id=robot["id"],
        name=str(robot.get("name", name)),
        owner_id=robot.get("ownerId"),
        fingerprint=str(body.get("fingerprint", "")),
        serial=str(body.get("serial", "")),
        not_after=str(body.get("notAfter", "")),
        cert_path=os.fspath(cert_path),
        ca_path=os.fspath(ca_path) if ca_path is not None else None,
    )


async def enroll_async(*args: Any, **kwargs: Any) -> Enrollment:
    """:func:`enroll` in a worker thread (``asyncio.to_thread``), for an application on asyncio."""
    return await asyncio.to_thread(enroll, *args, **kwargs)


__all__ = ["ENROLL_CODES", "Enrollment", "enroll", "enroll_async", "error_for_answer"]
