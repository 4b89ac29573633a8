"""Which hub codes and TLS failures become which errors, and whether each is retried; real TLS
alerts from a server that does not trust the robot's CA, under TLS 1.2 (in the handshake) and
TLS 1.3 (on the first read, after a handshake that looked fine)."""

import os
import socket
import ssl
import threading
import unittest

from switchboard_robot import (
    CertificateExpired,
    CertificateNotYetValid,
    CertificateRequired,
    CertificateRevoked,
    CertificateUntrusted,
    ConnectionLost,
    ProtocolViolation,
    RefusedError,
    Replaced,
    Robot,
    ServerCertificateError,
    UnknownCertificate,
)
from switchboard_robot.errors import error_for_code, error_for_ssl

FIX = os.path.join(os.path.dirname(__file__), "fixtures")


class CodesTest(unittest.TestCase):
    def test_terminal_codes(self) -> None:
        for code, cls in [
            ("CERTIFICATE_REQUIRED", CertificateRequired),
            ("CERTIFICATE_UNTRUSTED", CertificateUntrusted),
            ("CERTIFICATE_EXPIRED", CertificateExpired),
            ("CERTIFICATE_NOT_YET_VALID", CertificateNotYetValid),
            ("UNKNOWN_CERTIFICATE", UnknownCertificate),
            ("CERTIFICATE_REVOKED", CertificateRevoked),
            ("REPLACED", Replaced),
            ("PROTOCOL_VIOLATION", ProtocolViolation),
            ("FRAME_TOO_LARGE", ProtocolViolation),
            ("BAD_FRAME", ProtocolViolation),
        ]:
            with self.subTest(code=code):
                e = error_for_code(code, "m")
                self.assertIsInstance(e, cls)
                self.assertIsInstance(e, RefusedError)
                self.assertEqual((e.code, e.retryable), (code, False))
                self.assertIn(code, str(e))

    def test_retryable_codes(self) -> None:
        for code in ("UNAVAILABLE", "SHUTDOWN", "TIMEOUT", "SLOW_CONSUMER", "INTERNAL", "SOMETHING_NEW"):
            with self.subTest(code=code):
                e = error_for_code(code, "m")
                self.assertEqual((e.code, e.retryable), (code, True))


def ssl_error(reason: str) -> ssl.SSLError:
    e = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    e.reason = reason
    return e


class SslTest(unittest.TestCase):
    def test_alerts_about_the_robot_certificate_are_refusals(self) -> None:
        for reason, cls in [
            ("TLSV1_ALERT_UNKNOWN_CA", CertificateUntrusted),
            ("SSLV3_ALERT_BAD_CERTIFICATE", CertificateUntrusted),
            ("SSLV3_ALERT_CERTIFICATE_EXPIRED", CertificateExpired),
            ("SSLV3_ALERT_CERTIFICATE_REVOKED", CertificateRevoked),
            ("TLSV13_ALERT_CERTIFICATE_REQUIRED", CertificateRequired),
        ]:
            with self.subTest(reason=reason):
                e = error_for_ssl(ssl_error(reason))
                self.assertIsInstance(e, cls)
                self.assertFalse(e.retryable)

    def test_the_hub_certificate_failing_our_check_is_retryable(self) -> None:
        e = error_for_ssl(ssl_error("CERTIFICATE_VERIFY_FAILED"))
        self.assertIsInstance(e, ServerCertificateError)
        self.assertTrue(e.retryable)

    def test_other_tls_failures_are_retryable(self) -> None:
        e = error_for_ssl(ssl_error("SSLV3_ALERT_HANDSHAKE_FAILURE"))
        self.assertEqual((type(e), e.code, e.retryable), (ConnectionLost, "CONNECT_FAILED", True))


class AlertTest(unittest.IsolatedAsyncioTestCase):
    """A blocking OpenSSL server in a thread: asyncio's own TLS server drops a failed handshake
    without sending its alert. The server keeps the socket open until the robot closes it, so the
    alert is not lost to a TCP reset (which is why the hub answers with an ERROR frame instead)."""

    def alerting_server(self, version: ssl.TLSVersion) -> int:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=os.path.join(FIX, "other-ca.crt"))
        ctx.load_cert_chain(os.path.join(FIX, "server.crt"), os.path.join(FIX, "server.key"))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.maximum_version = version
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)
        self.addCleanup(listener.close)

        def serve() -> None:
            # TLS over memory buffers: the server sends its alert and keeps reading until the robot
            # hangs up (ssl.SSLSocket closes the socket at once on a failed handshake).
            conn, _ = listener.accept()
            conn.settimeout(10)
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(incoming, outgoing, server_side=True)
            try:
                while True:
                    try:
                        tls.do_handshake()
                        tls.read(1)  # TLS 1.3: the client's certificate is checked after its Finished
                    except ssl.SSLWantReadError:
                        pass
                    conn.sendall(outgoing.read())
                    data = conn.recv(4096)
                    if not data:
                        break
                    incoming.write(data)
            except ssl.SSLError:
                conn.sendall(outgoing.read())  # the alert
                try:
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass
            finally:
                conn.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        self.addCleanup(thread.join, 10)
        return int(listener.getsockname()[1])

    async def refused_by_tls(self, version: ssl.TLSVersion) -> BaseException:
        robot = Robot(
            "127.0.0.1",
            self.alerting_server(version),
            cert=os.path.join(FIX, "robot.crt"),
            key=os.path.join(FIX, "robot.key"),
            ca=os.path.join(FIX, "ca.crt"),
            connect_timeout=3,
        )
        with self.assertRaises(Exception) as e:
            await robot.connect()
        return e.exception

    async def test_unknown_ca_alert_in_the_tls12_handshake(self) -> None:
        e = await self.refused_by_tls(ssl.TLSVersion.TLSv1_2)
        self.assertIsInstance(e, CertificateUntrusted, repr(e))
        self.assertFalse(e.retryable)  # type: ignore[attr-defined]

    async def test_unknown_ca_alert_after_a_tls13_handshake(self) -> None:
        e = await self.refused_by_tls(ssl.TLSVersion.TLSv1_3)
        self.assertIsInstance(e, CertificateUntrusted, repr(e))
        self.assertIn("TLSV1_ALERT_UNKNOWN_CA", str(e))


if __name__ == "__main__":
    unittest.main()
