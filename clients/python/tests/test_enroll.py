"""The robot's key and certificate signing request (made on the robot, key file 0600, a request that
verifies), the lazy import of ``cryptography``, the two-file commit of a renewed pair, and
``enroll()`` against a scripted HTTP server: the answer written atomically, and each documented
refusal mapped to its exception, ``code`` and ``retryable``, retried only when it may pass."""

import json
import os
import stat
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from unittest import mock

from switchboard_robot import (
    Backoff,
    BootstrapTokenRefused,
    CsrRefused,
    EnrollmentError,
    EnrollmentUnavailable,
    MissingDependency,
    NameTaken,
    csr_for_key,
    csr_from_pem,
    enroll,
    make_key_and_csr,
)
from switchboard_robot.enroll import error_for_answer
from switchboard_robot.keys import finish_pending_pair, new_key_and_csr, save_pair

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError:  # the optional dependency (switchboard-robot[enroll]); the rest of the library is tested without it
    raise unittest.SkipTest("needs the cryptography package (python3-cryptography)") from None

FIX = os.path.join(os.path.dirname(__file__), "fixtures")


def tmpdir(test: unittest.TestCase) -> str:
    d = tempfile.TemporaryDirectory()
    test.addCleanup(d.cleanup)
    return d.name


class KeyAndCsrTest(unittest.TestCase):
    def test_every_key_type_makes_a_request_that_verifies_for_the_key_in_a_0600_file(self) -> None:
        d = tmpdir(self)
        for kind in ("P-256", "P-384", "Ed25519", "RSA-2048"):
            with self.subTest(kind=kind):
                key_path, csr_path = os.path.join(d, f"{kind}.key"), os.path.join(d, f"{kind}.csr")
                old = os.umask(0)  # the mode must not depend on the umask
                try:
                    csr = make_key_and_csr(key_path, csr_path, key_type=kind, common_name="rover-1")
                finally:
                    os.umask(old)
                self.assertEqual(stat.S_IMODE(os.stat(key_path).st_mode), 0o600, "the key is its owner's only")
                req = x509.load_der_x509_csr(csr.der)
                self.assertTrue(req.is_signature_valid, "signed by its own key")
                with open(key_path, "rb") as f:
                    key = serialization.load_pem_private_key(f.read(), None)
                spki = serialization.PublicFormat.SubjectPublicKeyInfo
                self.assertEqual(req.public_key().public_bytes(serialization.Encoding.DER, spki), key.public_key().public_bytes(serialization.Encoding.DER, spki))
                self.assertEqual(req.subject.rfc4514_string(), "CN=rover-1")
                with open(csr_path) as f:
                    self.assertEqual(f.read(), csr.pem)
                self.assertEqual(x509.load_pem_x509_csr(csr.pem.encode()).public_bytes(serialization.Encoding.DER), csr.der)
                self.assertEqual([n for n in os.listdir(d) if n.endswith(".tmp")], [], "no temporary file left")

    def test_an_existing_key_is_never_replaced_unless_asked(self) -> None:
        d = tmpdir(self)
        key_path = os.path.join(d, "robot.key")
        make_key_and_csr(key_path)
        with open(key_path, "rb") as f:
            before = f.read()
        with self.assertRaises(FileExistsError):
            make_key_and_csr(key_path)
        with open(key_path, "rb") as f:
            self.assertEqual(f.read(), before)
        again = csr_for_key(key_path)
        self.assertTrue(x509.load_der_x509_csr(again.der).is_signature_valid, "a request for the key already there")
        make_key_and_csr(key_path, overwrite=True)
        with open(key_path, "rb") as f:
            self.assertNotEqual(f.read(), before)

    def test_bad_arguments(self) -> None:
        d = tmpdir(self)
        with self.assertRaises(ValueError):
            make_key_and_csr(os.path.join(d, "k"), key_type="P-521")
        with self.assertRaises(ValueError):
            csr_from_pem("not a request")
        self.assertFalse(os.path.exists(os.path.join(d, "k")), "nothing written")

    def test_an_openssl_request_is_read_as_pem_without_cryptography(self) -> None:
        _, csr = new_key_and_csr()
        self.assertEqual(csr_from_pem(csr.pem.replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")).der, csr.der)

    def test_without_cryptography_a_clear_error_naming_the_extra(self) -> None:
        hidden = {k: None for k in list(sys.modules) if k == "cryptography" or k.startswith("cryptography.")}
        hidden["cryptography"] = None
        with mock.patch.dict(sys.modules, hidden):
            with self.assertRaises(MissingDependency) as e:
                make_key_and_csr(os.path.join(tmpdir(self), "k"))
        self.assertIsInstance(e.exception, ImportError)
        self.assertIn("switchboard-robot[enroll]", str(e.exception))
        self.assertIn("python3-cryptography", str(e.exception))
        self.assertIn("openssl", str(e.exception))


class SavePairTest(unittest.TestCase):
    def pair(self, d: str) -> Tuple[str, str]:
        cert, key = os.path.join(d, "robot.crt"), os.path.join(d, "robot.key")
        for src, dst in (("robot.crt", cert), ("robot.key", key)):
            with open(os.path.join(FIX, src), "rb") as f, open(dst, "wb") as g:
                g.write(f.read())
        return cert, key

    def test_the_new_pair_replaces_the_old_and_leaves_nothing_behind(self) -> None:
        d = tmpdir(self)
        cert, key = self.pair(d)
        with open(os.path.join(FIX, "server.crt"), "rb") as f, open(os.path.join(FIX, "server.key"), "rb") as g:
            new_cert, new_key = f.read(), g.read()
        save_pair(cert, key, new_cert, new_key)
        with open(cert, "rb") as f, open(key, "rb") as g:
            self.assertEqual((f.read(), g.read()), (new_cert, new_key))
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(d)), ["robot.crt", "robot.key"])

    def test_a_switch_interrupted_by_a_crash_is_completed_or_undone(self) -> None:
        d = tmpdir(self)
        cert, key = self.pair(d)
        with open(os.path.join(FIX, "server.crt"), "rb") as f, open(os.path.join(FIX, "server.key"), "rb") as g:
            new_cert, new_key = f.read(), g.read()
        # Crashed after the key moved, before the certificate did.
        with open(key, "wb") as f:
            f.write(new_key)
        with open(cert + ".next", "wb") as f:
            f.write(new_cert)
        self.assertTrue(finish_pending_pair(cert, key))
        with open(cert, "rb") as f:
            self.assertEqual(f.read(), new_cert)
        # Crashed before either moved: both .next files are moved in.
        cert, key = self.pair(d)
        for path, data in ((cert + ".next", new_cert), (key + ".next", new_key)):
            with open(path, "wb") as f:
                f.write(data)
        self.assertTrue(finish_pending_pair(cert, key))
        with open(key, "rb") as f:
            self.assertEqual(f.read(), new_key)
        # Crashed before the answer was saved: the new key alone is dropped, the old pair stays.
        cert, key = self.pair(d)
        with open(key + ".next", "wb") as f:
            f.write(new_key)
        self.assertFalse(finish_pending_pair(cert, key))
        with open(key, "rb") as f, open(os.path.join(FIX, "robot.key"), "rb") as g:
            self.assertEqual(f.read(), g.read())
        self.assertEqual(sorted(os.listdir(d)), ["robot.crt", "robot.key"])


Answer = Tuple[int, Any, Dict[str, str]]


class ScriptedHub:
    """An HTTP server answering POST /api/v1/robots/enroll from a list of canned answers."""

    def __init__(self, test: unittest.TestCase, answers: List[Answer]) -> None:
        self.answers = answers
        self.requests: List[Tuple[str, Dict[str, str], Any]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hub.requests.append((self.path, dict(self.headers), body))
                status, answer, headers = hub.answers[min(len(hub.requests), len(hub.answers)) - 1]
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        test.addCleanup(self.server.server_close)
        test.addCleanup(self.server.shutdown)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def refusal(status: int, code: str, headers: Optional[Dict[str, str]] = None, **extra: Any) -> Answer:
    return (status, {"error": {"code": code, "message": code.lower(), **extra}}, headers or {})


def enrolled() -> Answer:
    with open(os.path.join(FIX, "robot.crt")) as f, open(os.path.join(FIX, "ca.crt")) as g:
        cert, ca = f.read(), g.read()
    robot = {"id": "7b3e9f2a-4c1d-4e8b-9a6f-2d5c8e1b0a47", "name": "rover-1", "ownerId": "o1", "createdAt": "x", "lastSeenAt": None}
    return (201, {"robot": robot, "certificatePem": cert, "caPem": ca, "fingerprint": "AB:CD", "serial": "0a", "notAfter": "2126-01-01T00:00:00Z"}, {})


class EnrollTest(unittest.TestCase):
    def files(self) -> Tuple[str, str, str]:
        d = tmpdir(self)
        return os.path.join(d, "robot.key"), os.path.join(d, "robot.crt"), os.path.join(d, "robot-ca.crt")

    def test_enrolls_with_a_key_made_here_and_writes_the_answer(self) -> None:
        hub = ScriptedHub(self, [enrolled()])
        key, cert, ca = self.files()
        e = enroll(hub.url + "/", "sbb_secret", "rover-1", key, cert, ca)
        self.assertEqual((e.robot_id, e.name, e.fingerprint, e.cert_path, e.ca_path), ("7b3e9f2a-4c1d-4e8b-9a6f-2d5c8e1b0a47", "rover-1", "AB:CD", cert, ca))
        path, headers, body = hub.requests[0]
        self.assertEqual(path, "/api/v1/robots/enroll")
        self.assertEqual(headers["Authorization"], "Bearer sbb_secret")
        self.assertEqual(body["name"], "rover-1")
        req = x509.load_pem_x509_csr(body["csr"].encode())
        self.assertTrue(req.is_signature_valid)
        with open(key, "rb") as f:
            self.assertNotIn(f.read().decode(), json.dumps(body), "the key is not sent")
        self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
        with open(cert) as f:
            self.assertIn("BEGIN CERTIFICATE", f.read())
        with open(ca) as f, open(os.path.join(FIX, "ca.crt")) as g:
            self.assertEqual(f.read(), g.read())

    def test_an_existing_key_or_an_openssl_request(self) -> None:
        hub = ScriptedHub(self, [enrolled()])
        key, cert, _ = self.files()
        csr = make_key_and_csr(key)
        enroll(hub.url + "/api/v1", "sbb_x", "rover-1", key, cert, None, csr=csr.pem)
        self.assertEqual(hub.requests[0][0], "/api/v1/robots/enroll")
        self.assertEqual(hub.requests[0][2]["csr"], csr.pem)
        enroll(hub.url, "sbb_x", "rover-1", key, cert)
        spki = serialization.PublicFormat.SubjectPublicKeyInfo
        keys = [x509.load_pem_x509_csr(pem.encode()).public_key().public_bytes(serialization.Encoding.DER, spki) for pem in (hub.requests[1][2]["csr"], csr.pem)]
        self.assertEqual(keys[0], keys[1], "a request for the key on disk")
        self.assertFalse(os.path.exists(os.path.join(os.path.dirname(key), "robot-ca.crt")), "no CA file when ca_path is None")

    def test_every_documented_refusal_maps_to_its_exception(self) -> None:
        cases = [
            (refusal(401, "BOOTSTRAP_TOKEN_UNKNOWN"), BootstrapTokenRefused, False),
            (refusal(401, "BOOTSTRAP_TOKEN_EXPIRED"), BootstrapTokenRefused, False),
            (refusal(401, "BOOTSTRAP_TOKEN_REVOKED"), BootstrapTokenRefused, False),
            (refusal(403, "BOOTSTRAP_TOKEN_USED_UP"), BootstrapTokenRefused, False),
            (refusal(409, "CONFLICT"), NameTaken, False),
            (refusal(400, "CSR_SIGNATURE_INVALID", field="csr"), CsrRefused, False),
            (refusal(400, "CSR_KEY_UNSUPPORTED", field="csr"), CsrRefused, False),
            (refusal(400, "CSR_MALFORMED", field="csr"), CsrRefused, False),
            (refusal(400, "VALIDATION"), CsrRefused, False),
            (refusal(429, "RATE_LIMITED", {"Retry-After": "17"}, retryAfterS=17), EnrollmentUnavailable, True),
            (refusal(503, "UNAVAILABLE"), EnrollmentUnavailable, True),
            (refusal(502, "SOMETHING_ELSE"), EnrollmentUnavailable, True),
            ((404, {"no": "error field"}, {}), EnrollmentError, False),
        ]
        hub = ScriptedHub(self, [])
        for answer, cls, retryable in cases:
            code = answer[1].get("error", {}).get("code", "HTTP_404")
            with self.subTest(code=code):
                hub.answers, hub.requests = [answer, enrolled()], []
                key, cert, ca = self.files()
                with self.assertRaises(cls) as e:
                    enroll(hub.url, "sbb_x", "rover-1", key, cert, ca)
                self.assertEqual((e.exception.code, e.exception.retryable, e.exception.status), (code, retryable, answer[0]))
                self.assertEqual(len(hub.requests), 1, "one request: attempts=1 by default")
                self.assertFalse(os.path.exists(cert) or os.path.exists(ca), "nothing written")
        self.assertEqual(error_for_answer(429, {"error": {"code": "RATE_LIMITED", "retryAfterS": 17}}, {"Retry-After": "17"}).retry_after, 17.0)
        self.assertEqual(error_for_answer(429, {"error": {"code": "RATE_LIMITED", "retryAfterS": 9}}).retry_after, 9.0, "from the body without the header")

    def test_only_what_may_pass_is_retried_and_retry_after_is_honoured(self) -> None:
        retries: List[Tuple[str, float]] = []
        hub = ScriptedHub(self, [refusal(503, "UNAVAILABLE"), refusal(429, "RATE_LIMITED", {"Retry-After": "0"}), enrolled()])
        key, cert, ca = self.files()
        with mock.patch("switchboard_robot.enroll.time.sleep") as sleep:
            e = enroll(hub.url, "sbb_x", "rover-1", key, cert, ca, attempts=5, backoff=Backoff(0.01, 0.02), on_retry=lambda err, d: retries.append((err.code, d)))
        self.assertEqual(e.name, "rover-1")
        self.assertEqual([c for c, _ in retries], ["UNAVAILABLE", "RATE_LIMITED"])
        self.assertEqual(sleep.call_count, 2)
        with mock.patch("switchboard_robot.enroll.time.sleep") as sleep:
            self.assertGreaterEqual(max(d for _, d in retries), 0.005)
            hub2 = ScriptedHub(self, [refusal(429, "RATE_LIMITED", {"Retry-After": "30"}), enrolled()])
            waited: List[float] = []
            enroll(hub2.url, "sbb_x", "rover-1", key, cert, ca, attempts=2, backoff=Backoff(0.01, 0.02), on_retry=lambda err, d: waited.append(d))
            self.assertEqual(waited, [30.0], "at least the hub's Retry-After")
        hub3 = ScriptedHub(self, [refusal(403, "BOOTSTRAP_TOKEN_USED_UP"), enrolled()])
        with self.assertRaises(BootstrapTokenRefused):
            enroll(hub3.url, "sbb_x", "rover-1", key, cert, ca, attempts=5, on_retry=lambda err, d: self.fail("retried a used-up token"))
        self.assertEqual(len(hub3.requests), 1)

    def test_no_hub_and_not_a_hub(self) -> None:
        key, cert, ca = self.files()
        with self.assertRaises(EnrollmentUnavailable) as e:
            enroll("http://127.0.0.1:1", "sbb_x", "rover-1", key, cert, ca, timeout=2)
        self.assertEqual((e.exception.code, e.exception.retryable, e.exception.status), ("CONNECT_FAILED", True, None))
        hub = ScriptedHub(self, [(201, {"hello": "world"}, {})])
        with self.assertRaises(EnrollmentError) as e:
            enroll(hub.url, "sbb_x", "rover-1", key, cert, ca)
        self.assertEqual((e.exception.code, e.exception.retryable), ("BAD_ANSWER", False))


if __name__ == "__main__":
    unittest.main()
