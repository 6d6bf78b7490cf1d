"""The sandbox issuer: a small stand-in for cert-manager's controller that really signs certificates.

Run per sandbox cluster as ``python -m kibertas_async_cert_manager.sandbox.issuer --kubeconfig K``.
Beside the real cert-manager controller it runs with ``--only-with-fault``: dormant until a test sets
a fault (and pauses the real controller). It watches cert-manager's own resources (served by
cert-manager's real CRDs) and does what the controller does for the two issuer types the check needs:

- ClusterIssuers and Issuers: ``selfSigned`` is Ready at once (reason ``IsReady``); ``ca`` is Ready
  (``KeyPairVerified``) once its Secret holds a matching certificate and key, else ``ErrGetKeyPair``
  or ``ErrInvalidKeyPair``; any other type is not Ready (``Unsupported``).
- Certificates: a new key per ``spec.privateKey`` (RSA, ECDSA, Ed25519), a real X.509 certificate
  (``isCA``, ``commonName``, ``dnsNames``, IPs, URIs, emails, ``usages``, ``duration``), written to
  ``spec.secretName`` in cert-manager's layout (type ``kubernetes.io/tls``; ``tls.crt``, ``tls.key``,
  ``ca.crt``; its annotations and ``secretTemplate``), then the status cert-manager sets (``Ready``,
  ``notBefore``, ``notAfter``, ``renewalTime``, ``revision``). Renewed at ``renewalTime``.

It creates no CertificateRequests: the check never reads them.

Faults, for tests: the ConfigMap :data:`FAULT_CONFIGMAP` in the cluster resource namespace, key
:data:`FAULT_KEY`, set to a :class:`Fault`, changes how *leaf* (non-CA) certificates are issued from
then on. The faulty certificates are still reported Ready, as a broken issuer would: only reading the
certificate shows the problem.
"""

from __future__ import annotations

import argparse
import base64
import logging
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import anyio

from kibertas_async import (
    CONFIGMAPS,
    SECRETS,
    ClusterTarget,
    Informer,
    KubeApiError,
    KubeClient,
    KubeObject,
    KubeUnavailable,
    Resource,
    connect,
)
from kibertas_async_cert_manager import x509
from kibertas_async_cert_manager.resources import CERTIFICATES, CLUSTER_ISSUERS, GROUP, ISSUERS, condition

FAULT_CONFIGMAP = "kibertas-async-sandbox-issuer"
"""ConfigMap (in the cluster resource namespace) whose :data:`FAULT_KEY` selects a :class:`Fault`."""
FAULT_KEY = "leaf-fault"

OWNED_SECRET_LABEL = "controller.cert-manager.io/fao"
"""cert-manager's label on the Secrets it writes ("for attention of"); we watch Secrets by it."""

DEFAULT_DURATION = timedelta(days=90)
_WRONG_DNS_NAME = "wrong.sandbox.invalid"
_RETRY_AFTER_ERROR = 2.0
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_GO_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}

log = logging.getLogger("sandbox-issuer")


class Fault(StrEnum):
    """How leaf certificates are (mis)issued."""

    NONE = ""
    NEVER = "never"
    """Ignore leaf Certificates: they are never issued (a stuck controller)."""
    FAIL = "fail"
    """Report the issuance as failed, as cert-manager does when the issuer refuses to sign."""
    WRONG_DNS_NAMES = "wrong-dns-names"
    """Issue with the last requested DNS name replaced by another one."""
    EXPIRED = "expired"
    """Issue a certificate whose validity ended an hour ago."""
    NOT_YET_VALID = "not-yet-valid"
    """Issue a certificate valid only from an hour from now."""


@dataclass(frozen=True)
class IssuerState:
    """An issuer's readiness and, for a CA issuer, the CA that signs."""

    kind: str
    ready: bool
    signer: tuple[Any, x509.PrivateKey] | None = None
    """CA certificate and key; ``None`` for a self-signed issuer."""
    ca_pem: bytes = b""


class SandboxIssuer:
    """Reconciles every issuer and Certificate of one cluster, whenever something changes."""

    def __init__(self, kube: KubeClient, cluster_resource_namespace: str, *, only_with_fault: bool = False) -> None:
        self.kube = kube
        self.cluster_resource_namespace = cluster_resource_namespace
        self.only_with_fault = only_with_fault
        """Dormant while no fault is set: the real cert-manager controller does the work then."""
        self._changed = anyio.Event()

    async def serve(self) -> None:
        """Watch the resources that matter and reconcile after every change, forever."""
        owned_secrets = f"{OWNED_SECRET_LABEL}=true"
        fault_config = f"metadata.name={FAULT_CONFIGMAP}"
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch, CLUSTER_ISSUERS, None, None, None)
            group.start_soon(self._watch, ISSUERS, None, None, None)
            group.start_soon(self._watch, CERTIFICATES, None, None, None)
            group.start_soon(self._watch, SECRETS, None, owned_secrets, None)
            group.start_soon(self._watch, CONFIGMAPS, self.cluster_resource_namespace, None, fault_config)
            await self._reconcile_forever()

    async def _watch(
        self, resource: Resource, namespace: str | None, label_selector: str | None, field_selector: str | None
    ) -> None:
        """Wake the reconciler after every list and event of one collection, forever.

        The informer retries what is temporary; a 404 is retried here, with backoff: cert-manager's CRDs
        may not be served yet when we start.
        """
        informer = Informer(
            self.kube, resource, namespace, label_selector=label_selector, field_selector=field_selector
        )
        # Looked up at each call: the reconciler replaces the event after every wake-up.
        informer.on_change(lambda _changes: self._changed.set())
        attempt = 0
        while True:
            try:
                await informer.run()
            except KubeApiError as error:
                if error.status != 404:
                    raise
                attempt += 1
                log.warning("watch %s failed (%s); retrying", resource.plural, error)
                await anyio.sleep(min(5.0, 0.2 * 2**attempt))

    async def _reconcile_forever(self) -> None:
        due_in = 0.0
        while True:
            with anyio.move_on_after(due_in):
                await self._changed.wait()
            # A fresh event before the pass: changes made meanwhile (our own writes included) wake the next.
            self._changed = anyio.Event()
            try:
                due_in = await self.reconcile_all()
            except (KubeApiError, KubeUnavailable) as error:
                log.warning("reconcile failed (%s); retrying", error)
                due_in = _RETRY_AFTER_ERROR

    async def reconcile_all(self) -> float:
        """One pass over everything; returns the seconds until something is due again (``inf``: nothing)."""
        fault = await self._fault()
        if self.only_with_fault and fault is Fault.NONE:
            return math.inf
        issuers: dict[tuple[str, str, str], IssuerState] = {}
        for cluster_issuer in (await self.kube.list(CLUSTER_ISSUERS))["items"]:
            key = ("ClusterIssuer", "", cluster_issuer["metadata"]["name"])
            issuers[key] = await self._reconcile_issuer(
                CLUSTER_ISSUERS, cluster_issuer, self.cluster_resource_namespace
            )
        for issuer in (await self.kube.list(ISSUERS))["items"]:
            metadata = issuer["metadata"]
            issuers[("Issuer", metadata["namespace"], metadata["name"])] = await self._reconcile_issuer(
                ISSUERS, issuer, metadata["namespace"]
            )
        next_run = math.inf
        for certificate in (await self.kube.list(CERTIFICATES))["items"]:
            try:
                due = await self._reconcile_certificate(certificate, issuers, fault)
            except KubeApiError as error:
                # e.g. its namespace is being deleted: nothing to do but try again later.
                log.warning("certificate %s: %s", _name(certificate), error)
                due = _RETRY_AFTER_ERROR
            next_run = min(next_run, due)
        return next_run

    async def _fault(self) -> Fault:
        config = await self.kube.get(CONFIGMAPS, FAULT_CONFIGMAP, self.cluster_resource_namespace)
        value = ((config or {}).get("data") or {}).get(FAULT_KEY, "")
        try:
            return Fault(value)
        except ValueError:
            log.warning("unknown fault %r in ConfigMap %s; ignoring it", value, FAULT_CONFIGMAP)
            return Fault.NONE

    # --- issuers -------------------------------------------------------------------------------

    async def _reconcile_issuer(self, resource: Resource, issuer: KubeObject, secret_namespace: str) -> IssuerState:
        state, reason, message = await self._issuer_state(issuer, secret_namespace)
        await self._set_conditions(resource, issuer, [_condition(issuer, "Ready", state.ready, reason, message)])
        return state

    async def _issuer_state(self, issuer: KubeObject, secret_namespace: str) -> tuple[IssuerState, str, str]:
        spec = issuer.get("spec") or {}
        kind = str(issuer.get("kind", "Issuer"))
        if "selfSigned" in spec:
            return IssuerState(kind, ready=True), "IsReady", ""
        if "ca" not in spec:
            types = ", ".join(sorted(spec)) or "none"
            message = f"the sandbox issuer supports only selfSigned and ca issuers, not {types}"
            return IssuerState(kind, ready=False), "Unsupported", message
        secret_name = str((spec["ca"] or {}).get("secretName", ""))
        secret = await self.kube.get(SECRETS, secret_name, secret_namespace) if secret_name else None
        if secret is None:
            message = f'Error getting keypair for CA issuer: secrets "{secret_name}" not found'
            return IssuerState(kind, ready=False), "ErrGetKeyPair", message
        try:
            ca_pem = _secret_bytes(secret, "tls.crt")
            ca = x509.load_certificate(ca_pem, "tls.crt")
            key = x509.load_private_key(_secret_bytes(secret, "tls.key"), "tls.key")
            x509.verify_key_pair(ca, key, f"secret {secret_name}")
        except x509.CertificateProblem as problem:
            return (
                IssuerState(kind, ready=False),
                "ErrInvalidKeyPair",
                f"Error getting keypair for CA issuer: {problem}",
            )
        return IssuerState(kind, ready=True, signer=(ca, key), ca_pem=ca_pem), "KeyPairVerified", "Signing CA verified"

    # --- certificates --------------------------------------------------------------------------

    async def _reconcile_certificate(
        self, certificate: KubeObject, issuers: Mapping[tuple[str, str, str], IssuerState], fault: Fault
    ) -> float:
        spec = certificate.get("spec") or {}
        namespace = certificate["metadata"]["namespace"]
        reference = spec.get("issuerRef") or {}
        if (reference.get("group") or GROUP) != GROUP:
            return math.inf  # an external issuer's: not ours to sign
        if spec.get("isCA"):
            fault = Fault.NONE
        if fault is Fault.NEVER:
            return math.inf
        now = datetime.now(UTC).replace(microsecond=0)
        secret = await self.kube.get(SECRETS, spec["secretName"], namespace)
        renewal = _renewal_time(certificate)
        if self._is_up_to_date(certificate, secret) and renewal is not None and now < renewal:
            return (renewal - now).total_seconds()
        kind = reference.get("kind") or "Issuer"
        issuer = issuers.get((kind, "" if kind == "ClusterIssuer" else namespace, reference.get("name", "")))
        if issuer is None or not issuer.ready:
            message = "Issuing certificate as Secret does not exist"
            await self._set_conditions(
                CERTIFICATES,
                certificate,
                [
                    _condition(certificate, "Ready", False, "DoesNotExist", message),
                    _condition(certificate, "Issuing", True, "DoesNotExist", message),
                ],
            )
            return math.inf  # the issuer's own change will wake us
        if fault is Fault.FAIL:
            await self._set_conditions(
                CERTIFICATES,
                certificate,
                [
                    _condition(
                        certificate, "Ready", False, "DoesNotExist", "Issuing certificate as Secret does not exist"
                    ),
                    _condition(
                        certificate,
                        "Issuing",
                        False,
                        "Failed",
                        "The certificate request has failed to complete and will be retried: "
                        "the sandbox issuer was told to refuse (fault 'fail')",
                    ),
                ],
                extra={"failedIssuanceAttempts": 1, "lastFailureTime": _rfc3339(now)},
            )
            return math.inf
        return await self._issue(certificate, issuer, fault, now)

    @staticmethod
    def _is_up_to_date(certificate: KubeObject, secret: KubeObject | None) -> bool:
        ready = condition(certificate, "Ready")
        return (
            secret is not None
            and bool(_secret_bytes(secret, "tls.crt"))
            and (secret["metadata"].get("annotations") or {}).get("cert-manager.io/certificate-name")
            == certificate["metadata"]["name"]
            and ready is not None
            and ready.get("status") == "True"
            and ready.get("observedGeneration") == certificate["metadata"].get("generation")
        )

    async def _issue(self, certificate: KubeObject, issuer: IssuerState, fault: Fault, now: datetime) -> float:
        spec = certificate["spec"]
        private_key_spec = spec.get("privateKey") or {}
        key = x509.generate_private_key(str(private_key_spec.get("algorithm", "RSA")), private_key_spec.get("size"))
        duration = parse_go_duration(spec.get("duration")) or DEFAULT_DURATION
        renew_before = parse_go_duration(spec.get("renewBefore")) or duration / 3
        not_before, not_after = now, now + duration
        dns_names = tuple(spec.get("dnsNames") or ())
        if fault is Fault.WRONG_DNS_NAMES:
            dns_names = (*dns_names[:-1], _WRONG_DNS_NAME)
        elif fault is Fault.EXPIRED:
            not_before, not_after = now - timedelta(hours=2), now - timedelta(hours=1)
        elif fault is Fault.NOT_YET_VALID:
            not_before, not_after = now + timedelta(hours=1), now + timedelta(hours=1) + duration
        request = x509.CertificateRequest(
            common_name=str(spec.get("commonName", "")),
            dns_names=dns_names,
            is_ca=bool(spec.get("isCA")),
            not_before=not_before,
            not_after=not_after,
            organizations=tuple((spec.get("subject") or {}).get("organizations") or ()),
            ip_addresses=tuple(spec.get("ipAddresses") or ()),
            uris=tuple(spec.get("uris") or ()),
            email_addresses=tuple(spec.get("emailAddresses") or ()),
            usages=tuple(spec.get("usages") or ()),
        )
        issued = x509.sign(request, key, issuer.signer)
        cert_pem = x509.certificate_pem(issued)
        await self._write_secret(
            certificate,
            {
                "tls.crt": cert_pem,
                "tls.key": x509.private_key_pem(key, str(private_key_spec.get("encoding", "PKCS1"))),
                "ca.crt": cert_pem if issuer.signer is None else issuer.ca_pem,
            },
        )
        renewal = now + duration - renew_before
        revision = int((certificate.get("status") or {}).get("revision") or 0) + 1
        await self._set_conditions(
            CERTIFICATES,
            certificate,
            [_condition(certificate, "Ready", True, "Ready", "Certificate is up to date and has not expired")],
            extra={
                "notBefore": _rfc3339(not_before),
                "notAfter": _rfc3339(not_after),
                "renewalTime": _rfc3339(renewal),
                "revision": revision,
                "failedIssuanceAttempts": None,
                "lastFailureTime": None,
            },
            always=True,
        )
        log.info("issued %s (revision %d, fault %r)", _name(certificate), revision, fault.value)
        return (renewal - now).total_seconds()

    async def _write_secret(self, certificate: KubeObject, data: Mapping[str, bytes]) -> None:
        spec = certificate["spec"]
        namespace = certificate["metadata"]["namespace"]
        reference = spec.get("issuerRef") or {}
        template = spec.get("secretTemplate") or {}
        annotations = {
            **(template.get("annotations") or {}),
            "cert-manager.io/alt-names": ",".join(spec.get("dnsNames") or ()),
            "cert-manager.io/certificate-name": certificate["metadata"]["name"],
            "cert-manager.io/common-name": str(spec.get("commonName", "")),
            "cert-manager.io/ip-sans": ",".join(spec.get("ipAddresses") or ()),
            "cert-manager.io/uri-sans": ",".join(spec.get("uris") or ()),
            "cert-manager.io/issuer-group": reference.get("group") or GROUP,
            "cert-manager.io/issuer-kind": reference.get("kind") or "Issuer",
            "cert-manager.io/issuer-name": reference.get("name", ""),
        }
        metadata = {
            "name": spec["secretName"],
            "labels": {**(template.get("labels") or {}), OWNED_SECRET_LABEL: "true"},
            "annotations": annotations,
        }
        encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
        try:
            await self.kube.create(
                SECRETS, {"metadata": metadata, "type": "kubernetes.io/tls", "data": encoded}, namespace
            )
        except KubeApiError as error:
            if error.status != 409:
                raise
            await self.kube.patch(SECRETS, spec["secretName"], {"metadata": metadata, "data": encoded}, namespace)

    async def _set_conditions(
        self,
        resource: Resource,
        obj: KubeObject,
        conditions: Sequence[dict[str, Any]],
        *,
        extra: Mapping[str, Any] | None = None,
        always: bool = False,
    ) -> None:
        """Merge-patch the status, unless its conditions already say the same (so our writes do not loop)."""
        current = (obj.get("status") or {}).get("conditions") or []
        if _comparable(current) == _comparable(conditions) and not always:
            return
        metadata = obj["metadata"]
        path = resource.path(metadata.get("namespace"), metadata["name"]) + "/status"
        body = {"status": {"conditions": list(conditions), **(extra or {})}}
        await self.kube.request("PATCH", path, body=body, content_type="application/merge-patch+json")


def _condition(obj: KubeObject, kind: str, status: bool, reason: str, message: str) -> dict[str, Any]:
    """A condition as cert-manager writes it; the transition time moves only when the status does."""
    text = "True" if status else "False"
    previous = condition(obj, kind)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == text else None
    return {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or _rfc3339(datetime.now(UTC)),
        "observedGeneration": obj["metadata"].get("generation"),
    }


def _comparable(conditions: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    fields = ("type", "status", "reason", "message", "observedGeneration")
    return sorted(tuple(item.get(name) for name in fields) for item in conditions)


def _renewal_time(certificate: KubeObject) -> datetime | None:
    text = (certificate.get("status") or {}).get("renewalTime")
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def parse_go_duration(text: object) -> timedelta | None:
    """A Go duration as cert-manager's ``duration``/``renewBefore`` take it (``2160h``, ``1h30m``)."""
    if not text:
        return None
    parts = _GO_DURATION_PART.findall(str(text))
    if not parts or "".join(number + unit for number, unit in parts) != str(text):
        raise ValueError(f"{text!r} is not a Go duration")
    return timedelta(seconds=sum(float(number) * _GO_DURATION_UNITS[unit] for number, unit in parts))


def _secret_bytes(secret: KubeObject, key: str) -> bytes:
    encoded = (secret.get("data") or {}).get(key)
    return base64.b64decode(encoded) if encoded else b""


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _name(obj: KubeObject) -> str:
    metadata = obj["metadata"]
    return f"{metadata.get('namespace', '')}/{metadata['name']}"


async def serve(kubeconfig: Path, cluster_resource_namespace: str, only_with_fault: bool) -> None:
    """Connect to the cluster and reconcile until killed."""
    kube = await connect(ClusterTarget(name="sandbox-issuer", kubeconfig=str(kubeconfig)))
    async with kube:
        mode = "only while a fault is set" if only_with_fault else "always"
        log.info("sandbox issuer started (cluster resource namespace %s, active %s)", cluster_resource_namespace, mode)
        await SandboxIssuer(kube, cluster_resource_namespace, only_with_fault=only_with_fault).serve()


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``--kubeconfig`` (required) and ``--cluster-resource-namespace``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--kubeconfig", type=Path, required=True)
    parser.add_argument("--cluster-resource-namespace", default="cert-manager")
    parser.add_argument(
        "--only-with-fault", action="store_true", help="stay dormant unless a fault is set (beside real cert-manager)"
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    anyio.run(serve, arguments.kubeconfig, arguments.cluster_resource_namespace, arguments.only_with_fault)


if __name__ == "__main__":
    main()
