"""Certificate verification on certificates made here: every problem has its own readable reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kibertas_async_cert_manager import x509

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SKEW = timedelta(seconds=60)
NAMES = ("sample", "sample.ns.svc", "sample.ns.svc.cluster.local")


def _ca(key: x509.PrivateKey | None = None) -> tuple[bytes, x509.PrivateKey, object]:
    key = key or x509.generate_private_key("ECDSA", 256)
    request = x509.CertificateRequest("sample-ca", (), True, NOW - timedelta(hours=1), NOW + timedelta(days=90))
    certificate = x509.sign(request, key, None)
    return x509.certificate_pem(certificate), key, certificate


def _leaf(
    ca: tuple[bytes, x509.PrivateKey, object],
    *,
    names: tuple[str, ...] = NAMES,
    not_before: datetime = NOW - timedelta(minutes=5),
    not_after: datetime = NOW + timedelta(days=90),
) -> tuple[bytes, bytes]:
    key = x509.generate_private_key("RSA", 2048)
    request = x509.CertificateRequest("", names, False, not_before, not_after)
    signer = (ca[2], ca[1])
    return x509.certificate_pem(x509.sign(request, key, signer)), x509.private_key_pem(key)  # type: ignore[arg-type]


def _verify(cert: bytes, key: bytes, ca_pem: bytes, names: tuple[str, ...] = NAMES) -> x509.CertificateFacts:
    return x509.verify_leaf(cert, key, ca_pem, expected_dns_names=names, now=NOW, clock_skew=SKEW)


def test_good_leaf_verifies_and_reports_its_facts() -> None:
    ca = _ca()
    cert, key = _leaf(ca)
    facts = _verify(cert, key, ca[0])
    assert facts.dns_names == NAMES
    assert facts.issuer == "CN=sample-ca"
    assert facts.key == "RSA 2048"


def test_ca_must_be_a_self_signed_ecdsa_p256_ca() -> None:
    ca_pem, ca_key, _ = _ca()
    facts = x509.verify_ca(ca_pem, x509.private_key_pem(ca_key), expected_key="ECDSA P-256", now=NOW, clock_skew=SKEW)
    assert facts.key == "ECDSA P-256"
    rsa_pem, rsa_key, _ = _ca(x509.generate_private_key("RSA", 2048))
    with pytest.raises(x509.CertificateProblem, match="has a RSA 2048 key but ECDSA P-256 was requested"):
        x509.verify_ca(rsa_pem, x509.private_key_pem(rsa_key), expected_key="ECDSA P-256", now=NOW, clock_skew=SKEW)


def test_leaf_from_another_ca_does_not_chain() -> None:
    cert, key = _leaf(_ca())
    with pytest.raises(x509.CertificateProblem, match="does not chain to the CA: its signature does not verify"):
        _verify(cert, key, _ca()[0])


def test_wrong_dns_names_are_listed_both_ways() -> None:
    ca = _ca()
    cert, key = _leaf(ca, names=("sample", "other"))
    with pytest.raises(x509.CertificateProblem) as problem:
        _verify(cert, key, ca[0])
    assert str(problem.value) == (
        "leaf certificate's SAN has DNS names ['other', 'sample'] but expected "
        "['sample', 'sample.ns.svc', 'sample.ns.svc.cluster.local']"
    )


def test_expired_and_not_yet_valid_with_clock_skew() -> None:
    ca = _ca()
    cert, key = _leaf(ca, not_before=NOW - timedelta(days=2), not_after=NOW - timedelta(hours=1))
    with pytest.raises(x509.CertificateProblem, match=r"leaf certificate expired at 2026-11-26T08:00:00Z"):
        _verify(cert, key, ca[0])
    cert, key = _leaf(ca, not_before=NOW + timedelta(hours=1))
    with pytest.raises(x509.CertificateProblem, match=r"not valid yet: notBefore is 2026-11-26T10:00:00Z"):
        _verify(cert, key, ca[0])
    # Within the allowed clock skew: a certificate issued by a clock 30 s ahead is accepted.
    cert, key = _leaf(ca, not_before=NOW + timedelta(seconds=30))
    _verify(cert, key, ca[0])


def test_key_must_match_the_certificate() -> None:
    ca = _ca()
    cert, _ = _leaf(ca)
    _, other_key = _leaf(ca)
    with pytest.raises(x509.CertificateProblem, match=r"tls\.key does not match the public key of tls\.crt"):
        _verify(cert, other_key, ca[0])


def test_garbage_is_reported_not_raised() -> None:
    ca = _ca()
    with pytest.raises(x509.CertificateProblem, match=r"leaf certificate \(tls.crt\) is empty"):
        _verify(b"", b"", ca[0])
    with pytest.raises(x509.CertificateProblem, match="is not a PEM certificate"):
        _verify(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"", ca[0])


def test_same_certificate_compares_certificates_not_bytes() -> None:
    ca_pem, _, _ = _ca()
    assert x509.same_certificate(ca_pem, b"\n" + ca_pem + b"\n")
    assert not x509.same_certificate(ca_pem, _ca()[0])  # same subject, another key
    assert not x509.same_certificate(ca_pem, b"not a certificate")
