"""TLS certificates of the WebTransport server: short-lived development ones and configured production ones.

Browsers accept a certificate without a CA through WebTransport's `serverCertificateHashes` only when it
is ECDSA P-256, X.509 v3 and valid for at most 14 days (docs in /work/shared/notes/webtransport.md); the
development certificate is made to fit, renewed before it expires, and shared by every access node that
points at the same directory. Production loads the files it is given and checks only that they belong
together.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import ipaddress
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

logger = logging.getLogger(__name__)

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
# Chromium refuses hash-pinned certificates valid for more than 14 days; stay a day under the limit.
DEV_VALIDITY = timedelta(days=13)
MAX_PINNED_VALIDITY = timedelta(days=14)
# Clocks of the browser and the server may disagree a little.
BACKDATE = timedelta(minutes=5)
DEV_HOSTNAMES = ("localhost",)
DEV_ADDRESSES = ("127.0.0.1", "::1")
# The key types TLS 1.3 (and so aioquic) can sign with.
ServingKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey


class CertificateError(ValueError):
    """Certificate or key files that cannot serve: missing, unreadable, malformed or not a pair."""


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """A certificate on disk and the digests clients pin it by."""

    cert_path: Path
    key_path: Path
    sha256: bytes  # SHA-256 of the DER certificate: WebTransport serverCertificateHashes
    not_after: datetime
    spki_sha256_base64: str  # base64 SHA-256 of the public key: Chromium --ignore-certificate-errors-spki-list

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


def ensure_dev_certificate(
    directory: Path, *, now: datetime | None = None, renew_before: timedelta = timedelta(days=2)
) -> CertificateInfo:
    """The development certificate in `directory`, made anew when missing, corrupt or expiring within
    `renew_before`. Processes sharing the directory get the same certificate (a file lock orders them)."""
    now = _utc(now or datetime.now(UTC))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    with _locked(directory / ".lock"):
        try:
            certificate, key = _read_pair(cert_path, key_path)
        except CertificateError as error:
            if cert_path.exists() or key_path.exists():
                logger.warning("replacing the development certificate: %s", error)
        else:
            reason = _dev_unusable_reason(certificate, now=now, renew_before=renew_before)
            if reason is None:
                return _info(cert_path, key_path, certificate, key)
            logger.info("renewing the development certificate: %s", reason)
        certificate, key = _make_dev_certificate(now)
        _write_private(key_path, key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, _NO_ENCRYPTION))
        _write_private(cert_path, certificate.public_bytes(_PEM), mode=0o644)
    info = _info(cert_path, key_path, certificate, key)
    logger.info("development certificate %s valid until %s", info.sha256_hex, info.not_after.isoformat())
    return info


def load_certificate(cert_path: Path, key_path: Path) -> CertificateInfo:
    """A configured certificate (the first one of a chain file is the server's) and its private key."""
    certificate, key = _read_pair(Path(cert_path), Path(key_path))
    return _info(Path(cert_path), Path(key_path), certificate, key)


_PEM = serialization.Encoding.PEM
_NO_ENCRYPTION = serialization.NoEncryption()


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _read_pair(cert_path: Path, key_path: Path) -> tuple[x509.Certificate, ServingKey]:
    cert_bytes = _read(cert_path, "certificate")
    key_bytes = _read(key_path, "private key")
    try:
        certificate = x509.load_pem_x509_certificates(cert_bytes)[0]
    except ValueError as error:
        raise CertificateError(f"{cert_path} holds no PEM certificate: {error}") from error
    try:
        key = serialization.load_pem_private_key(key_bytes, password=None)
    except (ValueError, TypeError) as error:
        raise CertificateError(f"{key_path} holds no unencrypted PEM private key: {error}") from error
    if not isinstance(key, ServingKey):
        raise CertificateError(f"{key_path} holds a {type(key).__name__}, which cannot serve TLS")
    if _spki(key.public_key()) != _spki(certificate.public_key()):
        raise CertificateError(f"the private key {key_path} does not belong to the certificate {cert_path}")
    return certificate, key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as error:
        raise CertificateError(f"{what} file {path} does not exist") from error
    except OSError as error:
        raise CertificateError(f"{what} file {path} cannot be read: {error.strerror or error}") from error


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _dev_unusable_reason(certificate: x509.Certificate, *, now: datetime, renew_before: timedelta) -> str | None:
    public_key = certificate.public_key()
    if not (isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(public_key.curve, ec.SECP256R1)):
        return "its key is not ECDSA P-256"
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not_after - not_before > MAX_PINNED_VALIDITY:
        return f"its validity of {not_after - not_before} is over {MAX_PINNED_VALIDITY}"
    if now < not_before:
        return f"it is not valid before {not_before.isoformat()}"
    if not_after - now <= renew_before:
        return f"it expires at {not_after.isoformat()}"
    return None


def _make_dev_certificate(now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    alternative_names: list[x509.GeneralName] = [x509.DNSName(host) for host in DEV_HOSTNAMES]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in DEV_ADDRESSES]
    not_before = now - BACKDATE
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + DEV_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _write_private(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace `path` atomically with a file created with `mode` (never briefly world-readable)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _info(cert_path: Path, key_path: Path, certificate: x509.Certificate, key: ServingKey) -> CertificateInfo:
    return CertificateInfo(
        cert_path=cert_path,
        key_path=key_path,
        sha256=hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest(),
        not_after=certificate.not_valid_after_utc,
        spki_sha256_base64=base64.b64encode(hashlib.sha256(_spki(key.public_key())).digest()).decode("ascii"),
    )
