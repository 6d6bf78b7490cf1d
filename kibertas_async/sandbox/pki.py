"""Keys and certificates for one sandbox cluster, made with the ``openssl`` command.

Each cluster gets its own CA (so one cluster's credentials are worthless on another, as in real life),
an API server serving certificate valid for loopback and the in-cluster ``kubernetes`` Service names,
and a service-account signing key. EC P-256 keys: generating them takes milliseconds.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from kibertas_async.errors import UsageError

KUBERNETES_SERVICE_IP = "10.96.0.1"
"""First address of the sandbox's service range: the ``kubernetes`` Service's ClusterIP."""

_SERVING_NAMES = (
    "IP:127.0.0.1",
    f"IP:{KUBERNETES_SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    "DNS:kubernetes.default.svc.cluster.local",
)


@dataclass(frozen=True)
class ClusterPki:
    """Paths of one cluster's key material."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    service_account_key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> ClusterPki:
        """The file layout under ``directory`` (nothing is created)."""
        return cls(
            ca_cert=directory / "ca.crt",
            ca_key=directory / "ca.key",
            serving_cert=directory / "apiserver.crt",
            serving_key=directory / "apiserver.key",
            service_account_key=directory / "service-account.key",
        )


def create_cluster_pki(directory: Path, cluster_name: str) -> ClusterPki:
    """Create a CA, a serving certificate and a service-account key under ``directory``."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise UsageError("the sandbox needs the `openssl` command to make its certificates; install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    pki = ClusterPki.in_directory(directory)

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    for key in (pki.ca_key, pki.serving_key, pki.service_account_key):
        run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key))
    run(
        "req", "-x509", "-new", "-key", str(pki.ca_key), "-days", "3650",
        "-subj", f"/CN=kibertas-async-sandbox-ca-{cluster_name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-out", str(pki.ca_cert),
    )  # fmt: skip
    extensions = directory / "apiserver.ext"
    extensions.write_text(
        f"subjectAltName={','.join(_SERVING_NAMES)}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    request = directory / "apiserver.csr"
    run("req", "-new", "-key", str(pki.serving_key), "-subj", "/CN=kube-apiserver", "-out", str(request))
    run(
        "x509", "-req", "-in", str(request), "-CA", str(pki.ca_cert), "-CAkey", str(pki.ca_key),
        "-CAcreateserial", "-days", "3650", "-extfile", str(extensions), "-out", str(pki.serving_cert),
    )  # fmt: skip
    return pki
