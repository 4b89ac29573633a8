"""Connect a robot to a Switchboard hub over mutual TLS with the ``sbr.v1`` protocol.

See :class:`Robot` to start, docs/robots.md ("Python") for a guide, and docs/protocol.md
("Robot protocol (sbr.v1)") for the wire protocol this implements.
"""

from .backoff import Backoff
from .certs import Validity, check_validity, read_validity, validity_of
from .commands import Command
from .enroll import Enrollment, enroll, enroll_async
from .errors import (
    BootstrapTokenRefused,
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRequired,
    CertificateRevoked,
    CertificateUntrusted,
    CommandRejected,
    ConnectionLost,
    CsrRefused,
    EnrollmentError,
    EnrollmentUnavailable,
    FrameTooLarge,
    NameTaken,
    ProtocolError,
    ProtocolViolation,
    RefusedError,
    RenewalError,
    Replaced,
    ServerCertificateError,
    SwitchboardError,
    UnknownCertificate,
)
from .keys import KEY_TYPES, Csr, MissingDependency, csr_for_key, csr_from_pem, make_key_and_csr
from .protocol import PROTOCOL_VERSION, Channel
from .reliable import ReliableBuffer
from .link import Welcome
from .renewal import Renewed
from .robot import Robot

__version__ = "0.1.0"

__all__ = [
    "KEY_TYPES",
    "PROTOCOL_VERSION",
    "Backoff",
    "BootstrapTokenRefused",
    "CertificateExpired",
    "CertificateNotYetValid",
    "CertificateRequired",
    "CertificateRevoked",
    "CertificateUntrusted",
    "Channel",
    "Command",
    "CommandRejected",
    "ConnectionLost",
    "Csr",
    "CsrRefused",
    "EnrollmentError",
    "EnrollmentUnavailable",
    "Enrollment",
    "FrameTooLarge",
    "MissingDependency",
    "NameTaken",
    "ProtocolError",
    "ProtocolViolation",
    "RefusedError",
    "ReliableBuffer",
    "RenewalError",
    "Renewed",
    "Replaced",
    "Robot",
    "ServerCertificateError",
    "SwitchboardError",
    "UnknownCertificate",
    "Validity",
    "Welcome",
    "check_validity",
    "csr_for_key",
    "csr_from_pem",
    "enroll",
    "enroll_async",
    "make_key_and_csr",
    "read_validity",
    "validity_of",
]
