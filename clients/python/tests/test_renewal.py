"""Renewal over the live link against a scripted hub that signs with the test CA: RENEW carries a
request for a new key, the answer is saved over the robot's files and the robot reconnects with the
new pair at once; a refusal (ERROR ref "renew") leaves the files and the link alone; automatic
renewal inside the window; a hub refusing the certificate as not yet valid ends run() with when it
starts."""

import asyncio
import datetime
import os
import shutil
import stat
import tempfile
import unittest
from typing import Any, List

from switchboard_robot import Backoff, CertificateNotYetValid, Channel, RenewalError, Robot, read_validity
from switchboard_robot import protocol as p

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
except ImportError:  # the optional dependency (switchboard-robot[enroll]); the rest of the library is tested without it
    raise unittest.SkipTest("needs the cryptography package (python3-cryptography)") from None

from .test_robot import FIX, FakeHub, Peer

UTC = datetime.timezone.utc


def sign(csr_der: bytes, days: int = 365) -> str:
    """What the hub does: a certificate for the request's key, signed by the test CA."""
    with open(os.path.join(FIX, "ca.crt"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(FIX, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    req = x509.load_der_x509_csr(csr_der)
    assert req.is_signature_valid
    now = datetime.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "renewed")]))
        .issuer_name(ca.subject)
        .public_key(req.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def peer_cert(peer: Peer) -> bytes:
    der: bytes = peer.writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    return der


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def pem_der(path: str) -> bytes:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read()).public_bytes(serialization.Encoding.DER)


class RenewalTest(unittest.IsolatedAsyncioTestCase):
    async def robot(self, *scripts: Any, **kwargs: Any) -> Robot:
        d = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, d)
        for name in ("robot.crt", "robot.key", "ca.crt"):
            shutil.copy(os.path.join(FIX, name), os.path.join(d, name))
        self.dir = d
        self.fake = FakeHub(list(scripts))
        port = await self.fake.start()
        self.addAsyncCleanup(self.fake.stop)
        robot = Robot(
            "127.0.0.1",
            port,
            cert=os.path.join(d, "robot.crt"),
            key=os.path.join(d, "robot.key"),
            ca=os.path.join(d, "ca.crt"),
            channels=[Channel(1, "pose")],
            backoff=Backoff(0.5, 1.0),
            connect_timeout=3,
            **kwargs,
        )
        self.addAsyncCleanup(robot.close)
        return robot

    async def test_renew_saves_the_new_pair_and_reconnects_with_it_at_once(self) -> None:
        certs: "asyncio.Queue[bytes]" = asyncio.Queue()
        renewed_cert: List[str] = []

        async def first(peer: Peer) -> None:
            await certs.put(peer_cert(peer))
            await peer.welcome()
            f = await peer.read_until(p.RENEW)
            self.assertIsInstance(f[1], bytes)
            renewed_cert.append(sign(f[1]))
            with open(os.path.join(FIX, "ca.crt")) as ca:
                peer.send([p.CERTIFICATE, renewed_cert[0], ca.read()])
            await peer.read_until(-1)  # until the robot closes

        async def second(peer: Peer) -> None:
            await certs.put(peer_cert(peer))
            await peer.welcome()
            await peer.read_until(-1)

        robot = await self.robot(first, second)
        ends: List[Any] = []
        retries: List[Any] = []
        welcomes = asyncio.Queue()  # type: asyncio.Queue[Any]
        robot.on_disconnect = ends.append
        robot.on_retry = lambda e, d: retries.append(e)
        robot.on_connect = welcomes.put_nowait
        with open(robot.key, "rb") as f:
            old_key = f.read()
        runner = asyncio.ensure_future(robot.run())
        await asyncio.wait_for(welcomes.get(), 5)
        renewed = await asyncio.wait_for(robot.renew(), 10)
        await asyncio.wait_for(welcomes.get(), 5)
        self.assertEqual(await certs.get(), pem_der(os.path.join(FIX, "robot.crt")), "the first link: the old certificate")
        self.assertEqual(await certs.get(), pem_der(robot.cert), "the next link: the new certificate, from the file")
        self.assertEqual(renewed.cert_pem, renewed_cert[0])
        self.assertGreater(renewed.not_after, datetime.datetime.now(UTC) + datetime.timedelta(days=364))
        with open(robot.key, "rb") as f:
            self.assertNotEqual(f.read(), old_key, "a new key")
        self.assertEqual(stat.S_IMODE(os.stat(robot.key).st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(self.dir)), ["ca.crt", "robot.crt", "robot.key"], "nothing left over; the CA file untouched")
        self.assertEqual([e.code for e in ends], ["RENEWED"])
        self.assertEqual(retries, [], "no backoff before the switch")
        await robot.close()
        await asyncio.wait_for(runner, 3)

    async def test_a_refused_renewal_keeps_the_files_and_the_link(self) -> None:
        done = asyncio.Event()

        async def script(peer: Peer) -> None:
            await peer.welcome()
            await peer.read_until(p.RENEW)
            peer.send([p.ERROR, "RATE_LIMITED", "one renewal a minute", "renew"])
            await peer.read_until(p.RENEW)
            peer.send([p.ERROR, "CSR_KEY_UNSUPPORTED", "no", "renew"])
            await peer.read_until(p.TELEMETRY)
            done.set()
            await peer.read_until(-1)

        robot = await self.robot(script)
        hub_errors: List[Any] = []
        robot.on_hub_error = lambda *a: hub_errors.append(a)
        await robot.connect()
        before = [read(os.path.join(self.dir, n)) for n in ("robot.crt", "robot.key")]
        with self.assertRaises(RenewalError) as e:
            await asyncio.wait_for(robot.renew(), 10)
        self.assertEqual((e.exception.code, e.exception.retryable, e.exception.retry_after), ("RATE_LIMITED", True, 60.0))
        with self.assertRaises(RenewalError) as e:
            await asyncio.wait_for(robot.renew(), 10)
        self.assertEqual((e.exception.code, e.exception.retryable), ("CSR_KEY_UNSUPPORTED", False))
        self.assertTrue(robot.connected, "the link stays up")
        self.assertTrue(robot.publish("pose", {"x": 1}))
        await asyncio.wait_for(done.wait(), 5)
        self.assertEqual([read(os.path.join(self.dir, n)) for n in ("robot.crt", "robot.key")], before)
        self.assertEqual([a[0] for a in hub_errors], ["RATE_LIMITED", "CSR_KEY_UNSUPPORTED"])
        await robot.close()
        with self.assertRaises(RenewalError) as e:
            await robot.renew()
        self.assertEqual(e.exception.code, "NOT_CONNECTED")

    async def test_automatic_renewal_inside_the_window(self) -> None:
        renews: "asyncio.Queue[Any]" = asyncio.Queue()

        async def first(peer: Peer) -> None:
            await peer.welcome()
            f = await peer.read_until(p.RENEW)
            peer.send([p.CERTIFICATE, sign(f[1], days=365 * 300), "ca"])
            await peer.read_until(-1)

        async def second(peer: Peer) -> None:
            await peer.welcome()
            await renews.put(pem_der(os.path.join(self.dir, "robot.crt")) == peer_cert(peer))
            await peer.read_until(-1)

        # The fixture is valid for 100 years: a 150-year window is reached at once.
        robot = await self.robot(first, second, renew_before=datetime.timedelta(days=365 * 150))
        robot.on_renewed = lambda r: renews.put_nowait(r.not_after.year)
        runner = asyncio.ensure_future(robot.run())
        self.assertGreater(await asyncio.wait_for(renews.get(), 10), 2300)
        self.assertTrue(await asyncio.wait_for(renews.get(), 10), "reconnected with the renewed certificate")
        await robot.close()
        await asyncio.wait_for(runner, 3)
        self.assertEqual(self.fake.connections, 2, "the renewed certificate is outside the window: no second renewal")
        with self.assertRaises(ValueError):
            Robot("h", 1, cert="c", key="k", ca="a", renew_before=datetime.timedelta(0))

    async def test_not_yet_valid_from_the_hub_ends_run_with_when_it_starts(self) -> None:
        async def refuse(peer: Peer) -> None:
            await peer.refuse("CERTIFICATE_NOT_YET_VALID", "the certificate is not valid yet")

        robot = await self.robot(refuse)
        with self.assertRaises(CertificateNotYetValid) as e:
            await asyncio.wait_for(robot.run(), 5)
        self.assertFalse(e.exception.retryable)
        self.assertEqual(e.exception.not_before, read_validity(robot.cert).not_before, "from the certificate file")
        self.assertIsNotNone(e.exception.now)
        self.assertEqual(self.fake.connections, 1, "not retried")


if __name__ == "__main__":
    unittest.main()
