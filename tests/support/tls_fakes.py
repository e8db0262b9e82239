"""A certificate authority of the tests' own, for fakes that speak HTTPS on loopback (with the
extensions Python 3.13's strict verification asks for).

``TestCA().server_context("images.test")`` is what a fake serves with (a certificate for that name
only, signed by the CA); ``client_context()`` trusts that CA and nothing else."""

from __future__ import annotations

import datetime
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DAY = datetime.timedelta(days=1)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    """A certificate valid from yesterday to tomorrow, before its extensions."""
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key)
            .serial_number(x509.random_serial_number()).not_valid_before(now - DAY).not_valid_after(now + DAY))


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class TestCA:
    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            _builder(_name("Iris test CA"), _name("Iris test CA"), self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=_pem(self.cert).decode())

    def server_context(self, hostname: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads files only
            chain, secret = self.write_pair(Path(tmp), hostname)
            context.load_cert_chain(chain, secret)
        return context

    def write_pair(self, folder: Path, hostname: str) -> tuple[Path, Path]:
        """A certificate for ``hostname`` signed by this CA (the chain) and its key, as PEM files."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(_name(hostname), self.cert.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        chain, secret = folder / "chain.pem", folder / "key.pem"
        chain.write_bytes(_pem(cert) + _pem(self.cert))
        secret.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
        return chain, secret
