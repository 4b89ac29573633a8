"""The validity reader against OpenSSL-made certificates (UTCTime, GeneralizedTime, v1) and the
pre-connect check."""

import os
import ssl
import unittest
from datetime import datetime, timezone

from switchboard_robot import CertificateExpired, CertificateNotYetValid, check_validity, read_validity, validity_of

FIX = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name: str) -> str:
    return os.path.join(FIX, name)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)


class ValidityTest(unittest.TestCase):
    def test_utc_time_and_generalized_time(self) -> None:
        v = read_validity(fixture("robot.crt"))
        self.assertEqual(v.not_before, utc(2026, 12, 6, 9, 28, 57))  # UTCTime
        self.assertEqual(v.not_after, utc(2126, 11, 12, 9, 28, 57))  # GeneralizedTime (after 2049)

    def test_a_v1_certificate_without_a_version_field(self) -> None:
        v = read_validity(fixture("v1.crt"))
        self.assertEqual((v.not_before, v.not_after), (utc(2026, 12, 6, 9, 23, 5), utc(2027, 1, 5, 9, 23, 5)))

    def test_agrees_with_openssl_for_every_fixture(self) -> None:
        decode = getattr(getattr(ssl, "_ssl", None), "_test_decode_cert", None)
        if decode is None:
            self.skipTest("this Python has no ssl._ssl._test_decode_cert to compare with")
        for name in ("ca.crt", "server.crt", "robot.crt", "v1.crt"):
            with self.subTest(name=name):
                info = decode(fixture(name))
                v = read_validity(fixture(name))
                self.assertEqual(v.not_before.timestamp(), ssl.cert_time_to_seconds(info["notBefore"]))
                self.assertEqual(v.not_after.timestamp(), ssl.cert_time_to_seconds(info["notAfter"]))

    def test_der_input_and_the_first_certificate_of_a_chain(self) -> None:
        with open(fixture("robot.crt")) as f:
            pem = f.read()
        der = ssl.PEM_cert_to_DER_cert(pem)
        self.assertEqual(validity_of(der), validity_of(pem))
        with open(fixture("ca.crt")) as f:
            chain = pem + f.read()
        self.assertEqual(validity_of(chain), validity_of(pem))

    def test_garbage_is_a_value_error(self) -> None:
        for data in (b"", b"\x30", b"\x02\x01\x00", b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----", b"\x30\x84\xff\xff\xff\xff"):
            with self.subTest(data=data), self.assertRaises(ValueError):
                validity_of(data)


class CheckTest(unittest.TestCase):
    def test_inside_the_period(self) -> None:
        self.assertEqual(check_validity(fixture("v1.crt"), utc(2026, 12, 20)).not_after.year, 2027)

    def test_expired(self) -> None:
        with self.assertRaises(CertificateExpired) as e:
            check_validity(fixture("v1.crt"), utc(2027, 1, 5, 9, 23, 6))
        self.assertEqual(e.exception.code, "CERTIFICATE_EXPIRED")
        self.assertFalse(e.exception.retryable)
        self.assertIn("not dialling", str(e.exception))

    def test_not_yet_valid_is_terminal_and_says_when_it_starts(self) -> None:
        now = utc(2026, 12, 6, 9, 23, 4)
        with self.assertRaises(CertificateNotYetValid) as e:
            check_validity(fixture("v1.crt"), now)
        self.assertEqual(e.exception.code, "CERTIFICATE_NOT_YET_VALID")
        self.assertFalse(e.exception.retryable, "not retried as is: a clock must change first")
        self.assertEqual(e.exception.not_before, read_validity(fixture("v1.crt")).not_before)
        self.assertGreater(e.exception.not_before, now)
        self.assertEqual(e.exception.now, now)
        self.assertIn("clock", str(e.exception))


if __name__ == "__main__":
    unittest.main()
