"""Development certificates fit what browsers pin by hash; configured ones fail with clear errors."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from realtime.certificates import CertificateError, CertificateInfo, ensure_dev_certificate, load_certificate

NOW = datetime(2030, 1, 15, 12, 0, tzinfo=UTC)


def read_certificate(info: CertificateInfo) -> x509.Certificate:
    return x509.load_pem_x509_certificate(info.cert_path.read_bytes())


def test_dev_certificate_is_ecdsa_p256_x509v3_valid_for_at_most_14_days(tmp_path):
    certificate = read_certificate(ensure_dev_certificate(tmp_path, now=NOW))

    public_key = certificate.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    assert isinstance(public_key.curve, ec.SECP256R1)
    assert certificate.version is x509.Version.v3
    validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert validity <= timedelta(days=14)
    assert certificate.not_valid_before_utc <= NOW < certificate.not_valid_after_utc


def test_dev_certificate_names_localhost_and_the_loopback_addresses(tmp_path):
    certificate = read_certificate(ensure_dev_certificate(tmp_path, now=NOW))

    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }


def test_the_hash_is_the_sha256_of_the_der_certificate(tmp_path):
    info = ensure_dev_certificate(tmp_path, now=NOW)

    der = read_certificate(info).public_bytes(serialization.Encoding.DER)
    assert info.sha256 == hashlib.sha256(der).digest()
    assert info.sha256_hex == hashlib.sha256(der).hexdigest()
    assert info.not_after == read_certificate(info).not_valid_after_utc


def test_the_public_key_hash_is_what_chromium_spki_lists_take(tmp_path):
    info = ensure_dev_certificate(tmp_path, now=NOW)

    spki = (
        read_certificate(info)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert info.spki_sha256_base64 == base64.b64encode(hashlib.sha256(spki).digest()).decode()


def test_the_key_file_is_readable_by_its_owner_only(tmp_path):
    info = ensure_dev_certificate(tmp_path, now=NOW)

    assert stat.S_IMODE(info.key_path.stat().st_mode) == 0o600
    assert info.key_path == tmp_path / "key.pem"
    assert info.cert_path == tmp_path / "cert.pem"


def test_a_certificate_still_valid_beyond_renew_before_is_reused(tmp_path):
    first = ensure_dev_certificate(tmp_path, now=NOW)

    again = ensure_dev_certificate(tmp_path, now=NOW + timedelta(days=10), renew_before=timedelta(days=2))

    assert again.sha256 == first.sha256


def test_a_certificate_expiring_within_renew_before_is_renewed(tmp_path):
    first = ensure_dev_certificate(tmp_path, now=NOW)
    later = first.not_after - timedelta(days=1)

    renewed = ensure_dev_certificate(tmp_path, now=later, renew_before=timedelta(days=2))

    assert renewed.sha256 != first.sha256
    assert renewed.not_after - later > timedelta(days=12)
    assert ensure_dev_certificate(tmp_path, now=later).sha256 == renewed.sha256


def test_a_certificate_from_the_future_is_renewed(tmp_path):
    first = ensure_dev_certificate(tmp_path, now=NOW)

    assert ensure_dev_certificate(tmp_path, now=NOW - timedelta(days=1)).sha256 != first.sha256


@pytest.mark.parametrize("damaged", ["cert.pem", "key.pem"])
def test_a_corrupt_file_is_replaced(tmp_path, damaged):
    first = ensure_dev_certificate(tmp_path, now=NOW)
    (tmp_path / damaged).write_bytes(b"-----BEGIN garbage\n")

    replaced = ensure_dev_certificate(tmp_path, now=NOW)

    assert replaced.sha256 != first.sha256
    assert load_certificate(replaced.cert_path, replaced.key_path) == replaced


def test_a_key_that_does_not_match_the_certificate_is_replaced(tmp_path):
    ensure_dev_certificate(tmp_path / "a", now=NOW)
    ensure_dev_certificate(tmp_path / "b", now=NOW)
    (tmp_path / "a" / "key.pem").write_bytes((tmp_path / "b" / "key.pem").read_bytes())

    replaced = ensure_dev_certificate(tmp_path / "a", now=NOW)

    assert load_certificate(replaced.cert_path, replaced.key_path) == replaced


def test_a_missing_directory_is_created(tmp_path):
    info = ensure_dev_certificate(tmp_path / "var" / "certs", now=NOW)

    assert info.cert_path.exists()


def test_load_certificate_returns_the_same_info_as_the_dev_certificate(tmp_path):
    info = ensure_dev_certificate(tmp_path, now=NOW)

    assert load_certificate(info.cert_path, info.key_path) == info


def test_load_certificate_hashes_the_first_certificate_of_a_chain(tmp_path):
    leaf = ensure_dev_certificate(tmp_path / "leaf", now=NOW)
    other = ensure_dev_certificate(tmp_path / "other", now=NOW)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.cert_path.read_bytes() + other.cert_path.read_bytes())

    assert load_certificate(chain, leaf.key_path).sha256 == leaf.sha256


def test_load_certificate_says_which_file_is_missing(tmp_path):
    info = ensure_dev_certificate(tmp_path, now=NOW)

    with pytest.raises(CertificateError, match=r"certificate file .*nowhere\.pem does not exist"):
        load_certificate(tmp_path / "nowhere.pem", info.key_path)
    with pytest.raises(CertificateError, match=r"private key file .*nowhere\.pem does not exist"):
        load_certificate(info.cert_path, tmp_path / "nowhere.pem")


def test_load_certificate_says_when_a_file_cannot_be_read(tmp_path):
    info = ensure_dev_certificate(tmp_path / "certs", now=NOW)

    with pytest.raises(CertificateError, match="cannot be read"):
        load_certificate(tmp_path, info.key_path)  # a directory


def test_load_certificate_says_when_a_file_is_not_pem(tmp_path):
    info = ensure_dev_certificate(tmp_path, now=NOW)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a certificate")

    with pytest.raises(CertificateError, match="holds no PEM certificate"):
        load_certificate(garbage, info.key_path)
    with pytest.raises(CertificateError, match="holds no unencrypted PEM private key"):
        load_certificate(info.cert_path, garbage)


def test_load_certificate_refuses_a_key_of_another_certificate(tmp_path):
    first = ensure_dev_certificate(tmp_path / "first", now=NOW)
    second = ensure_dev_certificate(tmp_path / "second", now=NOW)

    with pytest.raises(CertificateError, match="does not belong to the certificate"):
        load_certificate(first.cert_path, second.key_path)


async def test_a_running_node_switches_to_the_renewed_development_certificate(tmp_path: Path, monkeypatch: Any) -> None:
    import asyncio

    from realtime.management.commands import run_access

    directory = tmp_path / "certs"
    old = ensure_dev_certificate(directory, now=datetime.now(UTC) - timedelta(days=12))  # expires within 2 days
    served: list[bytes] = []
    switched = asyncio.Event()

    class Server:
        def use_certificate(self, certificate: Any) -> None:
            served.append(certificate.sha256)
            switched.set()

    monkeypatch.setattr(run_access, "RENEW_CHECK_SECONDS", 0.01)
    task = asyncio.create_task(run_access._keep_renewed(Server(), old, directory))  # type: ignore[arg-type]
    try:
        await asyncio.wait_for(switched.wait(), 10)
    finally:
        task.cancel()
    assert served[0] != old.sha256
    assert served[0] == ensure_dev_certificate(directory).sha256  # what the endpoints API hands out
