"""The ``cert-manager`` check: cert-manager really issues certificates that chain, match and are valid.

The reference tool only waited for the leaf's Secret to exist. This check also requires each
Certificate's ``Ready`` condition, and reads the certificates themselves: the CA is a self-signed
ECDSA P-256 CA; the leaf chains to it, carries exactly the requested DNS names, is valid now, and its
Secret's key is the certificate's key. Terminal cert-manager conditions end a wait at once.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from kibertas_async import (
    SECRETS,
    WORKLOAD_READ,
    Check,
    CheckContext,
    CheckFailed,
    KubeApiError,
    KubeObject,
    Option,
    Permission,
    parse_duration,
    report_addon_version,
    workload_option,
)
from kibertas_async_cert_manager.resources import (
    CERTIFICATES,
    CLUSTER_ISSUERS,
    GROUP,
    ISSUERS,
    condition,
    describe_condition,
    is_ready,
)

if TYPE_CHECKING:
    from kibertas_async_cert_manager import x509

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$")
_KEY_ALGORITHMS = {"RSA": ("RSA", 2048), "ECDSA": ("ECDSA", 256), "ED25519": ("Ed25519", None)}

CA_KEY = "ECDSA P-256"
"""The CA's key, as the reference tool asks for it (``algorithm: ECDSA``, ``size: 256``)."""


def parse_resource_name(text: str) -> str:
    """A DNS label of at most 40 characters: it prefixes the objects' names and is the leaf's first DNS name."""
    name = text.strip()
    if not _DNS_LABEL.match(name):
        raise ValueError(f"{text!r} is not a lower-case DNS label of at most 40 characters (example: sample)")
    return name


def parse_key_algorithm(text: str) -> str:
    """``RSA``, ``ECDSA`` or ``Ed25519`` (any case), as in a Certificate's ``spec.privateKey.algorithm``."""
    found = _KEY_ALGORITHMS.get(text.strip().upper())
    if found is None:
        raise ValueError(f"{text!r} is not a key algorithm (use RSA, ECDSA or Ed25519)")
    return found[0]


CLUSTER_ISSUER = Option[str](
    "cert-manager-cluster-issuer",
    "The self-signed ClusterIssuer that issues the check's CA certificate.",
    default="selfsigned-issuer",
    metavar="NAME",
)
RESOURCE_NAME = Option[str](
    "cert-manager-resource-name",
    "Prefix of the check's Certificates and Issuer, and the leaf's first DNS name.",
    default="sample",
    parse=parse_resource_name,
    env=("CERT_NAME",),
    metavar="NAME",
)
LEAF_KEY_ALGORITHM = Option[str](
    "cert-manager-leaf-key-algorithm",
    "Key algorithm of the leaf certificate: RSA (cert-manager's default), ECDSA or Ed25519.",
    default="RSA",
    parse=parse_key_algorithm,
    metavar="ALGORITHM",
)
STEP_TIMEOUT = Option[float](
    "cert-manager-step-timeout",
    "How long each step may take (e.g. waiting for a Certificate to be issued).",
    default=120.0,
    parse=parse_duration,
    metavar="DURATION",
)
CLOCK_SKEW = Option[float](
    "cert-manager-clock-skew",
    "Clock difference tolerated between this machine and the issuer when checking validity periods.",
    default=60.0,
    parse=parse_duration,
    metavar="DURATION",
)


@dataclass(frozen=True)
class ObjectNames:
    """The names of everything the check creates in its namespace, derived from the resource name."""

    base: str

    @property
    def ca_certificate(self) -> str:
        """The CA Certificate (and its Secret)."""
        return f"{self.base}-ca"

    @property
    def issuer(self) -> str:
        """The CA Issuer signing with the CA's Secret."""
        return f"{self.base}-issuer"

    @property
    def leaf_certificate(self) -> str:
        """The leaf Certificate (and its Secret)."""
        return f"{self.base}-cert"

    def dns_names(self, namespace: str) -> list[str]:
        """The leaf's DNS names: how a Service named like the resource is reached."""
        return [self.base, f"{self.base}.{namespace}.svc", f"{self.base}.{namespace}.svc.cluster.local"]


WORKLOAD = workload_option("cert-manager", "cert-manager/cert-manager")


class CertManagerCheck(Check):
    """A CA from the self-signed ClusterIssuer, a CA Issuer on it, and a leaf it signs: all verified."""

    name = "cert-manager"
    description = "cert-manager issues a CA and a leaf certificate that chain, match and are valid."
    tags = frozenset({"cert-manager", "tls"})
    timeout = 600.0
    permissions = (
        Permission(GROUP, ("clusterissuers",), ("get",)),
        Permission(GROUP, ("certificates", "issuers"), ("create", "get", "list", "watch", "delete")),
        # The Secrets are read by list-then-watch (ctx.wait_for), never by a plain GET.
        Permission("", ("secrets",), ("list", "watch")),
        # Asked only when the ClusterIssuer is missing, to say whether cert-manager is installed at all.
        Permission(verbs=("get",), non_resource_urls=(f"/apis/{GROUP}/v1",)),
        WORKLOAD_READ,  # cert-manager's version
    )
    options = (CLUSTER_ISSUER, RESOURCE_NAME, LEAF_KEY_ALGORITHM, STEP_TIMEOUT, CLOCK_SKEW, WORKLOAD)
    creates = (
        "Namespace cert-manager-test-<date>-<random>",
        "Certificate <resource-name>-ca (and cert-manager's Secret <resource-name>-ca)",
        "Issuer <resource-name>-issuer",
        "Certificate <resource-name>-cert (and cert-manager's Secret <resource-name>-cert)",
    )

    async def run(self, ctx: CheckContext) -> None:
        """Steps: ClusterIssuer → namespace → CA → CA Issuer → leaf → verify the leaf."""
        from kibertas_async_cert_manager import x509

        cluster_issuer = ctx.options[CLUSTER_ISSUER]
        names = ObjectNames(ctx.options[RESOURCE_NAME])
        step_timeout = ctx.options[STEP_TIMEOUT]
        clock_skew = timedelta(seconds=ctx.options[CLOCK_SKEW])

        await report_addon_version(ctx, "cert-manager", ctx.options[WORKLOAD])

        async with ctx.step("find ClusterIssuer", timeout=step_timeout):
            await require_ready_cluster_issuer(ctx, cluster_issuer)

        async with ctx.step("create namespace", timeout=step_timeout):
            namespace = await ctx.namespace()
            ctx.fact("namespace", namespace)

        async with ctx.step("issue CA certificate", timeout=step_timeout):
            issuer_ref = {"name": cluster_issuer, "kind": "ClusterIssuer", "group": GROUP}
            await ctx.create(CERTIFICATES, certificate_manifest(ctx, names.ca_certificate, issuer_ref), namespace)
            await wait_until_issued(ctx, names.ca_certificate, namespace)

        async with ctx.step("verify CA certificate", timeout=step_timeout):
            ca_secret = await wait_for_tls_secret(ctx, names.ca_certificate, namespace)
            ca_pem = secret_bytes(ca_secret, "tls.crt")
            ca = verify_ca_secret(ca_secret, clock_skew)
            ctx.fact("ca", f"{ca.subject} ({ca.key}, serial {ca.serial})")

        async with ctx.step("create CA Issuer", timeout=step_timeout):
            issuer = {"metadata": {"name": names.issuer}, "spec": {"ca": {"secretName": names.ca_certificate}}}
            await ctx.create(ISSUERS, issuer, namespace)
            await ctx.wait_for(ISSUERS, names.issuer, namespace, is_ready, progress=describe_condition)

        async with ctx.step("issue leaf certificate", timeout=step_timeout):
            leaf = certificate_manifest(
                ctx,
                names.leaf_certificate,
                {"name": names.issuer, "kind": "Issuer", "group": GROUP},
                dns_names=names.dns_names(namespace),
            )
            await ctx.create(CERTIFICATES, leaf, namespace)
            await wait_until_issued(ctx, names.leaf_certificate, namespace)

        async with ctx.step("verify leaf certificate", timeout=step_timeout):
            leaf_secret = await wait_for_tls_secret(ctx, names.leaf_certificate, namespace)
            bundled_ca_pem = secret_bytes(leaf_secret, "ca.crt")
            if bundled_ca_pem and not x509.same_certificate(bundled_ca_pem, ca_pem):
                ca_pem = await reissued_ca(ctx, names.ca_certificate, namespace, bundled_ca_pem, ca_pem, clock_skew)
            with certificate_problems_fail():
                facts = x509.verify_leaf(
                    secret_bytes(leaf_secret, "tls.crt"),
                    secret_bytes(leaf_secret, "tls.key"),
                    ca_pem,
                    expected_dns_names=names.dns_names(namespace),
                    now=datetime.now(UTC),
                    clock_skew=clock_skew,
                    bundled_ca_pem=bundled_ca_pem or None,
                )
            record_leaf_facts(ctx, facts)


def verify_ca_secret(secret: KubeObject, clock_skew: timedelta) -> x509.CertificateFacts:
    """The CA Secret's certificate verified (a self-signed ECDSA P-256 CA, valid now, its key); NG if not."""
    from kibertas_async_cert_manager import x509

    with certificate_problems_fail():
        return x509.verify_ca(
            secret_bytes(secret, "tls.crt"),
            secret_bytes(secret, "tls.key"),
            expected_key=CA_KEY,
            now=datetime.now(UTC),
            clock_skew=clock_skew,
        )


async def reissued_ca(
    ctx: CheckContext, name: str, namespace: str, bundled_pem: bytes, verified_pem: bytes, clock_skew: timedelta
) -> bytes:
    """The CA to verify the leaf against when its ``ca.crt`` is not the CA verified before: the CA Secret's
    certificate now, if that is the bundled one and passes the CA's verification; else the verified one,
    which the leaf then fails against.

    cert-manager re-issues a Certificate whenever its trigger controller sees the Secret missing or not
    matching, which a cache lagging behind the issuance can show it right after the first one. The
    CA's key is renewed with it (``rotationPolicy: Always`` is cert-manager's default since v1.18), the
    CA Issuer signs the leaf with the new key and bundles the new CA: a working cert-manager, so the
    leaf is verified against the CA Secret as it is now, and the report says the CA changed.
    """
    from kibertas_async_cert_manager import x509

    current = await wait_for_tls_secret(ctx, name, namespace)
    current_pem = secret_bytes(current, "tls.crt")
    if not x509.same_certificate(current_pem, bundled_pem):
        return verified_pem
    ca = verify_ca_secret(current, clock_skew)
    before = x509.load_certificate(verified_pem, "CA certificate")
    ctx.fact(
        "ca_reissued", f"cert-manager re-issued the CA during the check: serial {before.serial_number:x} -> {ca.serial}"
    )
    return current_pem


async def require_ready_cluster_issuer(ctx: CheckContext, name: str) -> None:
    """Fail unless the ClusterIssuer exists and is Ready; say whether cert-manager is installed at all."""
    found = await ctx.kube.get(CLUSTER_ISSUERS, name)
    if found is None:
        if not await cert_manager_served(ctx):
            ctx.fail(f"ClusterIssuer {name} not found: the API {GROUP}/v1 is not served (is cert-manager installed?)")
        ctx.fail(f"ClusterIssuer {name} not found")
    if not is_ready(found):
        ctx.fail(f"ClusterIssuer {name} is not ready: {describe_condition(found)}")
    issuer_type = next((key for key in (found.get("spec") or {}) if key != "caBundle"), "unknown")
    ctx.fact("cluster_issuer", f"{name} ({issuer_type})")


async def cert_manager_served(ctx: CheckContext) -> bool:
    """Whether the API server serves cert-manager's API group (its CRDs are installed)."""
    try:
        await ctx.kube.request("GET", f"/apis/{GROUP}/v1")
    except KubeApiError as error:
        if error.status == 404:
            return False
        raise
    return True


def certificate_manifest(
    ctx: CheckContext, name: str, issuer_ref: dict[str, str], *, dns_names: list[str] | None = None
) -> KubeObject:
    """A Certificate whose Secret carries our labels (``secretTemplate``), so it is found and cleaned by run.

    Without ``dns_names`` it is the CA: ``isCA`` with an ECDSA P-256 key, as the reference asks.
    """
    spec: dict[str, Any] = {"secretName": name, "issuerRef": issuer_ref, "secretTemplate": {"labels": ctx.labels}}
    if dns_names is None:
        spec |= {"isCA": True, "commonName": name, "privateKey": {"algorithm": "ECDSA", "size": 256}}
    else:
        algorithm, size = _KEY_ALGORITHMS[ctx.options[LEAF_KEY_ALGORITHM].upper()]
        spec |= {"dnsNames": dns_names, "privateKey": {"algorithm": algorithm, **({"size": size} if size else {})}}
    return {"metadata": {"name": name}, "spec": spec}


async def wait_until_issued(ctx: CheckContext, name: str, namespace: str) -> None:
    """Watch the Certificate until Ready; fail at once when cert-manager reports a failed issuance."""

    def issued(certificate: KubeObject | None) -> bool:
        if certificate is None:
            raise CheckFailed(f"Certificate {name} was deleted while waiting for it to be issued")
        if is_ready(certificate):
            return True
        for kind in ("Issuing", "Ready"):
            found = condition(certificate, kind)
            if found is not None and found.get("status") == "False" and found.get("reason") == "Failed":
                raise CheckFailed(f"Certificate {name} was not issued: {describe_condition(certificate, kind)}")
        return False

    await ctx.wait_for(CERTIFICATES, name, namespace, issued, progress=describe_condition)


async def wait_for_tls_secret(ctx: CheckContext, name: str, namespace: str) -> KubeObject:
    """Watch until the Secret exists with a ``tls.crt``; return it."""

    def progress(secret: KubeObject | None) -> str:
        if secret is None:
            return f"Secret {name} does not exist yet"
        return f"Secret {name} " + ("has a tls.crt" if secret_bytes(secret, "tls.crt") else "has no tls.crt yet")

    found = await ctx.wait_for(
        SECRETS, name, namespace, lambda secret: bool(secret_bytes(secret, "tls.crt")), progress=progress
    )
    assert found is not None  # the predicate only holds for a Secret with data
    return found


def secret_bytes(secret: KubeObject | None, key: str) -> bytes:
    """One decoded data entry of a Secret (empty when absent)."""
    if secret is None:
        return b""
    encoded = (secret.get("data") or {}).get(key)
    return base64.b64decode(encoded) if encoded else b""


@contextlib.contextmanager
def certificate_problems_fail() -> Iterator[None]:
    """Turn a :class:`~kibertas_async_cert_manager.x509.CertificateProblem` into NG with its reason."""
    from kibertas_async_cert_manager.x509 import CertificateProblem

    try:
        yield
    except CertificateProblem as problem:
        raise CheckFailed(str(problem)) from None


def record_leaf_facts(ctx: CheckContext, facts: x509.CertificateFacts) -> None:
    """Put what the verified leaf says into the report."""
    ctx.fact("leaf", f"{', '.join(facts.dns_names)} ({facts.key}, serial {facts.serial})")
    ctx.fact("leaf_valid", f"{facts.not_before:%Y-%m-%dT%H:%M:%SZ} .. {facts.not_after:%Y-%m-%dT%H:%M:%SZ}")
    ctx.fact("leaf_issuer", facts.issuer)
