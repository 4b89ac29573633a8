"""The robot's private key and its certificate signing request (PKCS#10), made on the robot.

The key is written to a file readable by its owner only (0600) and never sent anywhere: the hub
only ever sees the request, and answers with a certificate for the request's key. The standard
library cannot make keys or requests, so this module needs the ``cryptography`` package, an
optional dependency: ``pip install 'switchboard-robot[enroll]'`` (Debian: ``python3-cryptography``).
It is imported only when a key or request is made; the rest of the library works without it.
Without it, ``openssl`` makes the same files (docs/robots.md, "Enrolling a robot without sharing
its key")::

    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\
      -keyout robot.key -out robot.csr -subj "/CN=rover-1"

This module also holds the file writes that must not leave half a file behind (a temporary file
in the same directory, flushed, then renamed over the target) and the two-file commit of a renewed
key and certificate.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Optional, Tuple, Union

PathLike = Union[str, "os.PathLike[str]"]

#: Key types the hub signs (docs/protocol.md, "Enrolling with the robot's own key").
KEY_TYPES = ("P-256", "P-384", "Ed25519", "RSA-2048", "RSA-3072", "RSA-4096")
DEFAULT_KEY_TYPE = "P-256"
_PENDING = ".next"


class MissingDependency(ImportError):
    """The optional ``cryptography`` package is needed (and missing) for keys and requests."""


def _crypto() -> Any:
    try:
        import cryptography.hazmat.primitives.asymmetric.ec as ec
        import cryptography.hazmat.primitives.asymmetric.ed25519 as ed25519
        import cryptography.hazmat.primitives.asymmetric.rsa as rsa
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import NameOID
    except ImportError as e:
        raise MissingDependency(
            "making a key or a certificate signing request needs the 'cryptography' package: "
            "pip install 'switchboard-robot[enroll]' (Debian/Ubuntu: apt install python3-cryptography), "
            "or make them with openssl (docs/robots.md, 'Enrolling a robot without sharing its key')"
        ) from e

    return SimpleNamespace(ec=ec, ed25519=ed25519, rsa=rsa, x509=x509, hashes=hashes, serialization=serialization, NameOID=NameOID)


@dataclass(frozen=True)
class Csr:
    """A certificate signing request: PEM (for REST and the owner) and DER (for ``RENEW``)."""

    pem: str
    der: bytes


def _new_key(c: Any, key_type: str) -> Any:
    if key_type == "P-256":
        return c.ec.generate_private_key(c.ec.SECP256R1())
    if key_type == "P-384":
        return c.ec.generate_private_key(c.ec.SECP384R1())
    if key_type == "Ed25519":
        return c.ed25519.Ed25519PrivateKey.generate()
    if key_type in ("RSA-2048", "RSA-3072", "RSA-4096"):
        return c.rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    raise ValueError(f"key_type: one of {', '.join(KEY_TYPES)}, not {key_type!r}")


def _csr(c: Any, key: Any, common_name: str) -> Csr:
    if not 1 <= len(common_name) <= 64:
        raise ValueError("common_name: 1 to 64 characters")
    # The hub ignores the subject (the certificate says CN = the robot's id); it helps people.
    builder = c.x509.CertificateSigningRequestBuilder().subject_name(c.x509.Name([c.x509.NameAttribute(c.NameOID.COMMON_NAME, common_name)]))
    algorithm = None if isinstance(key, c.ed25519.Ed25519PrivateKey) else c.hashes.SHA384() if getattr(key, "curve", None) and key.curve.name == "secp384r1" else c.hashes.SHA256()
    req = builder.sign(key, algorithm)
    enc = c.serialization.Encoding
    return Csr(req.public_bytes(enc.PEM).decode("ascii"), req.public_bytes(enc.DER))


def _key_pem(c: Any, key: Any) -> bytes:
    s = c.serialization
    pem: bytes = key.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
    return pem


def new_key_and_csr(key_type: str = DEFAULT_KEY_TYPE, common_name: str = "switchboard-robot") -> Tuple[bytes, Csr]:
    """A new private key (PKCS#8 PEM, in memory: the caller writes it with mode 0600) and a request
    for it. Renewal uses this; most robots want :func:`make_key_and_csr`."""
    c = _crypto()
    key = _new_key(c, key_type)
    return _key_pem(c, key), _csr(c, key, common_name)


def make_key_and_csr(
    key_path: PathLike,
    csr_path: Optional[PathLike] = None,
    *,
    key_type: str = DEFAULT_KEY_TYPE,
    common_name: str = "switchboard-robot",
    overwrite: bool = False,
) -> Csr:
    """Makes the robot's private key, writes it to ``key_path`` (mode 0600, atomically), and returns
    a request for it (also written to ``csr_path``, PEM, when given: it holds no secret).

    ``key_type``: ``P-256`` (default), ``P-384``, ``Ed25519``, ``RSA-2048``, ``RSA-3072`` or
    ``RSA-4096``. ``common_name`` is the request's subject; the hub ignores it (its certificate
    names the robot by id), so any label will do. Refuses (FileExistsError) to replace an existing
    key unless ``overwrite``: the key is the robot's identity. Needs ``cryptography``
    (MissingDependency otherwise).
    """
    if not overwrite and os.path.exists(key_path):
        raise FileExistsError(f"{os.fspath(key_path)} exists: it may be this robot's key (overwrite=True replaces it)")
    key_pem, csr = new_key_and_csr(key_type, common_name)
    write_atomic(key_path, key_pem, 0o600)
    if csr_path is not None:
        write_atomic(csr_path, csr.pem.encode("ascii"), 0o644)
    return csr


def csr_for_key(key_path: PathLike, common_name: str = "switchboard-robot") -> Csr:
    """A request for the key already in ``key_path`` (PEM, unencrypted), e.g. one openssl made."""
    c = _crypto()
    with open(key_path, "rb") as f:
        key = c.serialization.load_pem_private_key(f.read(), password=None)
    return _csr(c, key, common_name)


def csr_from_pem(pem: Union[str, bytes]) -> Csr:
    """A request given as PEM text (e.g. ``robot.csr`` from openssl); no ``cryptography`` needed."""
    import base64
    import re

    text = pem.decode("ascii") if isinstance(pem, bytes) else pem
    m = re.search(r"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----(.+?)-----END (?:NEW )?CERTIFICATE REQUEST-----", text, re.S)
    if m is None:
        raise ValueError("not a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)")
    return Csr(text[m.start() : m.end()] + "\n", base64.b64decode("".join(m.group(1).split())))


# ---- files ----


def write_atomic(path: PathLike, data: bytes, mode: int = 0o644) -> None:
    """Writes ``data`` to a temporary file beside ``path`` with ``mode``, flushes it to disk, then
    renames it over ``path``: a reader (or a crash) sees the old file or the new one, never half."""
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _sync_dir(path)


def _sync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pair_loads(cert: str, key: str) -> bool:
    """Whether the certificate and key files belong together (the standard library checks it)."""
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(cert, key)
        return True
    except (OSError, ssl.SSLError):
        return False


def save_pair(cert_path: PathLike, key_path: PathLike, cert_pem: bytes, key_pem: bytes) -> None:
    """Replaces the robot's certificate and key with a new pair. Both are written in full (as
    ``<file>.next``) before either replaces its file, so the old pair stays until the new one is
    saved; :func:`finish_pending_pair` completes a switch a crash interrupted."""
    cert, key = os.fspath(cert_path), os.fspath(key_path)
    write_atomic(key + _PENDING, key_pem, 0o600)
    write_atomic(cert + _PENDING, cert_pem, 0o644)
    os.replace(key + _PENDING, key)
    os.replace(cert + _PENDING, cert)
    _sync_dir(cert)


def finish_pending_pair(cert_path: PathLike, key_path: PathLike) -> bool:
    """Completes a :func:`save_pair` that a crash interrupted; True if it moved a file.

    ``cert.next`` left over means the new pair was saved in full: it is moved in when it belongs
    with ``key.next`` (neither moved yet) or with ``key`` (the key was moved). A ``key.next`` alone
    is a renewal whose answer was never saved: it is deleted (the hub revokes an unused renewal at
    the next one).
    """
    cert, key = os.fspath(cert_path), os.fspath(key_path)
    moved = False
    if os.path.exists(cert + _PENDING):
        if os.path.exists(key + _PENDING) and _pair_loads(cert + _PENDING, key + _PENDING):
            os.replace(key + _PENDING, key)
        if _pair_loads(cert + _PENDING, key):
            os.replace(cert + _PENDING, cert)
            moved = True
    for leftover in (key + _PENDING, cert + _PENDING):
        if os.path.exists(leftover) and not moved:
            os.unlink(leftover)
    if moved and os.path.exists(key + _PENDING):
        os.unlink(key + _PENDING)
    return moved
