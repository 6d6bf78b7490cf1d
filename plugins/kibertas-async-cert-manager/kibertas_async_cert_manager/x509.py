"""X.509 work, the one module of this package that imports ``cryptography``.

The check imports it only when it runs (so ``kibertas-async list`` stays fast); the sandbox issuer
imports it to sign. Verification turns every way a certificate can be wrong into
:class:`CertificateProblem` with a sentence a human understands.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeAlias

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
"""The key types cert-manager issues (``spec.privateKey.algorithm``: RSA, ECDSA, Ed25519)."""

_CURVES: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
_CURVE_SIZES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
_USAGES = {
    "server auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
}


class CertificateProblem(Exception):
    """A certificate or key is not what was asked for; ``str()`` is the reason to report."""


# --- reading and verifying ------------------------------------------------------------------------


@dataclass(frozen=True)
class CertificateFacts:
    """What a verified certificate says, for the report."""

    subject: str
    issuer: str
    serial: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    key: str
    """Key algorithm and size, e.g. ``ECDSA P-256``, ``RSA 2048``."""


def load_certificate(pem: bytes, what: str) -> x509.Certificate:
    """The first certificate of a PEM bundle. :raises CertificateProblem: when there is none."""
    if not pem.strip():
        raise CertificateProblem(f"{what} is empty")
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError as error:
        raise CertificateProblem(f"{what} is not a PEM certificate: {error}") from None
    return certificates[0]


def load_private_key(pem: bytes, what: str) -> PrivateKey:
    """A PEM private key (PKCS#1, SEC1 or PKCS#8). :raises CertificateProblem: when it is unreadable."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise CertificateProblem(f"{what} is not an unencrypted PEM private key: {error}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise CertificateProblem(f"{what} is a {type(key).__name__}, not an RSA, ECDSA or Ed25519 key")
    return key


def describe_key(certificate: x509.Certificate) -> str:
    """``ECDSA P-256``, ``RSA 2048``, ``Ed25519``."""
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"ECDSA P-{_CURVE_SIZES.get(key.curve.name, key.curve.key_size)}"
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(key).__name__


def dns_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """The DNS names of the Subject Alternative Name extension (empty when it has none)."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(extension.value.get_values_for_type(x509.DNSName))


def is_ca(certificate: x509.Certificate) -> bool:
    """Whether Basic Constraints says ``CA:TRUE``."""
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def verify_key_pair(certificate: x509.Certificate, key: PrivateKey, what: str) -> None:
    """:raises CertificateProblem: when ``key`` is not the private half of ``certificate``'s public key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if certificate.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise CertificateProblem(f"{what}: tls.key does not match the public key of tls.crt")


def verify_validity(certificate: x509.Certificate, what: str, now: datetime, clock_skew: timedelta) -> None:
    """:raises CertificateProblem: when ``now`` is outside the validity period (widened by ``clock_skew``)."""
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now + clock_skew < not_before:
        raise CertificateProblem(f"{what} is not valid yet: notBefore is {_iso(not_before)}, now is {_iso(now)}")
    if now - clock_skew > not_after:
        raise CertificateProblem(f"{what} expired at {_iso(not_after)} (now is {_iso(now)})")


def verify_signed_by(certificate: x509.Certificate, ca: x509.Certificate, what: str) -> None:
    """:raises CertificateProblem: unless ``certificate`` names ``ca`` as issuer and ``ca``'s key signed it."""
    if certificate.issuer != ca.subject:
        raise CertificateProblem(
            f"{what} does not chain to the CA: its issuer is '{certificate.issuer.rfc4514_string()}', "
            f"the CA is '{ca.subject.rfc4514_string()}'"
        )
    try:
        certificate.verify_directly_issued_by(ca)
    except InvalidSignature:
        raise CertificateProblem(
            f"{what} does not chain to the CA: its signature does not verify with the CA's key"
        ) from None
    except (ValueError, TypeError) as error:
        raise CertificateProblem(f"{what} does not chain to the CA: {error}") from None


def same_certificate(first_pem: bytes, second_pem: bytes) -> bool:
    """Whether the first certificates of two PEM bundles are the same certificate (unreadable: ``False``)."""
    try:
        return load_certificate(first_pem, "first") == load_certificate(second_pem, "second")
    except CertificateProblem:
        return False


def verify_ca(
    cert_pem: bytes, key_pem: bytes, *, expected_key: str, now: datetime, clock_skew: timedelta
) -> CertificateFacts:
    """Check the CA Secret: a self-signed CA certificate with the expected key type, valid now, and its key.

    :raises CertificateProblem: on the first thing that is wrong.
    """
    what = "CA certificate"
    certificate = load_certificate(cert_pem, f"{what} (tls.crt)")
    key = load_private_key(key_pem, f"{what} key (tls.key)")
    if not is_ca(certificate):
        raise CertificateProblem(f"{what} is not a CA: its Basic Constraints do not say CA:TRUE")
    if describe_key(certificate) != expected_key:
        raise CertificateProblem(f"{what} has a {describe_key(certificate)} key but {expected_key} was requested")
    verify_signed_by(certificate, certificate, f"{what} (self-signed)")
    verify_validity(certificate, what, now, clock_skew)
    verify_key_pair(certificate, key, what)
    return facts_of(certificate)


def verify_leaf(
    cert_pem: bytes,
    key_pem: bytes,
    ca_pem: bytes,
    *,
    expected_dns_names: Sequence[str],
    now: datetime,
    clock_skew: timedelta,
    bundled_ca_pem: bytes | None = None,
) -> CertificateFacts:
    """Check a leaf Secret against its CA: parses, chains, carries exactly ``expected_dns_names``, is valid
    now, and ``key_pem`` is its key. ``bundled_ca_pem`` is the Secret's ``ca.crt``, which must be the CA.

    :raises CertificateProblem: on the first thing that is wrong.
    """
    what = "leaf certificate"
    certificate = load_certificate(cert_pem, f"{what} (tls.crt)")
    ca = load_certificate(ca_pem, "CA certificate")
    verify_signed_by(certificate, ca, what)
    if bundled_ca_pem is not None and load_certificate(bundled_ca_pem, "ca.crt") != ca:
        raise CertificateProblem(f"ca.crt of the {what}'s Secret is not the CA that was set up")
    found = sorted(dns_names(certificate))
    expected = sorted(expected_dns_names)
    if found != expected:
        raise CertificateProblem(f"{what}'s SAN has DNS names {found} but expected {expected}")
    verify_validity(certificate, what, now, clock_skew)
    verify_key_pair(certificate, load_private_key(key_pem, f"{what} key (tls.key)"), what)
    return facts_of(certificate)


def facts_of(certificate: x509.Certificate) -> CertificateFacts:
    """The reportable facts of a certificate."""
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=format(certificate.serial_number, "x"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        dns_names=dns_names(certificate),
        key=describe_key(certificate),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- signing (the sandbox issuer) ---------------------------------------------------------------


@dataclass(frozen=True)
class CertificateRequest:
    """What to put into a new certificate: the parts of a cert-manager Certificate's spec we honour."""

    common_name: str
    dns_names: tuple[str, ...]
    is_ca: bool
    not_before: datetime
    not_after: datetime
    organizations: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()
    usages: tuple[str, ...] = ()
    """cert-manager usage names (``server auth``, ...); the key usages are derived as cert-manager does."""


def generate_private_key(algorithm: str, size: int | None) -> PrivateKey:
    """A new key as cert-manager makes it: RSA (default 2048), ECDSA (default P-256) or Ed25519.

    :raises ValueError: for an unknown algorithm or size.
    """
    normalized = algorithm.upper() or "RSA"
    if normalized == "RSA":
        bits = size or 2048
        if bits < 2048:
            raise ValueError(f"RSA key size {bits} is below the minimum of 2048")
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    if normalized == "ECDSA":
        curve = _CURVES.get(size or 256)
        if curve is None:
            raise ValueError(f"unsupported ECDSA key size {size} (use 256, 384 or 521)")
        return ec.generate_private_key(curve)
    if normalized == "ED25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported private key algorithm {algorithm!r} (use RSA, ECDSA or Ed25519)")


def private_key_pem(key: PrivateKey, encoding: str = "PKCS1") -> bytes:
    """``tls.key`` as cert-manager writes it: PKCS#1/SEC1 by default, PKCS#8 on request (Ed25519 always)."""
    pkcs8 = encoding.upper() == "PKCS8" or isinstance(key, ed25519.Ed25519PrivateKey)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8 if pkcs8 else serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """PEM encoding of one certificate."""
    return certificate.public_bytes(serialization.Encoding.PEM)


def sign(
    request: CertificateRequest,
    key: PrivateKey,
    signer: tuple[x509.Certificate, PrivateKey] | None,
) -> x509.Certificate:
    """Issue a certificate for ``key``; self-signed when ``signer`` (CA certificate and key) is ``None``."""
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in request.organizations]
    if request.common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, request.common_name))
    subject = x509.Name(attributes)
    issuer_name, signing_key = (subject, key) if signer is None else (signer[0].subject, signer[1])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(request.not_before)
        .not_valid_after(request.not_after)
        .add_extension(x509.BasicConstraints(ca=request.is_ca, path_length=None), critical=True)
        .add_extension(_key_usage(request.is_ca, key), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if signer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer[1].public_key()), critical=False
        )
    extended = [_USAGES[usage] for usage in request.usages if usage in _USAGES]
    if extended:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    names = _general_names(request)
    if names:
        # cert-manager marks the SAN critical when the subject is empty (RFC 5280 4.2.1.6).
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=not attributes)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm)


def _key_usage(ca: bool, key: PrivateKey) -> x509.KeyUsage:
    # cert-manager's defaults: digital signature + key encipherment (RSA only), plus cert sign for a CA.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _general_names(request: CertificateRequest) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in request.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(address)) for address in request.ip_addresses]
    names += [x509.UniformResourceIdentifier(uri) for uri in request.uris]
    names += [x509.RFC822Name(email) for email in request.email_addresses]
    return names
