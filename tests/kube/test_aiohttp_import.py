"""aiohttp is imported without parsing the CA bundle for its default TLS contexts when the hashed CA
directory holds the bundle's certificates, and its ``ssl=True`` default still verifies: a server whose CA
is in the store is trusted, one from another CA is refused. Elsewhere aiohttp loads the bundle as always.

Each case is a fresh interpreter (the import happens once per process), against two local HTTPS servers;
the CA store is made here with the ``openssl`` command (``openssl rehash`` writes the hash links).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kibertas_async.kube._aiohttp import directory_holds_bundle

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

PROBE = """
import asyncio, json, os, ssl, sys
from kibertas_async.kube._aiohttp import import_aiohttp
before = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
import_aiohttp()
import aiohttp, aiohttp.connector as connector

async def status(url):
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(url) as response:
                return response.status
        except aiohttp.ClientConnectorCertificateError:
            return "refused"

after = {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
print(json.dumps({
    "loaded_at_import": connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
    "trusted": asyncio.run(status(sys.argv[1])),
    "other_ca": asyncio.run(status(sys.argv[2])),
    "environment_restored": before == after,
    "loaded_by_a_later_context": ssl.create_default_context().cert_store_stats()["x509_ca"],
}))
"""


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(work: Path, name: str) -> Path:
    """A CA (``NAME.pem``, ``NAME.key``) and a server certificate for 127.0.0.1 it signed (``NAME-server.*``)."""
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
            "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", f"/CN={name}", cwd=work)  # fmt: skip
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", f"{name}-server.key", "-out", f"{name}-server.csr", cwd=work)  # fmt: skip
    (work / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", f"{name}-server.csr", "-CA", f"{name}.pem", "-CAkey", f"{name}.key",
            "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", f"{name}-server.pem", cwd=work)  # fmt: skip
    return work / f"{name}.pem"


@contextlib.contextmanager
def https_server(certificate: Path, key: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 answering 204 to every GET; yields its URL."""

    class NoContent(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NoContent)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("ca-store")
    trusted, other = make_ca(work, "trusted-ca"), make_ca(work, "other-ca")
    hashed = work / "hashed"
    hashed.mkdir()
    shutil.copy(trusted, hashed / "trusted-ca.pem")
    openssl("rehash", str(hashed), cwd=work)
    unhashed = work / "unhashed"
    unhashed.mkdir()
    shutil.copy(trusted, unhashed / "trusted-ca.pem")
    return {"work": work, "bundle": trusted, "other": other, "hashed": hashed, "unhashed": unhashed}


def probe(store: dict[str, Path], directory: Path) -> dict[str, object]:
    work = store["work"]
    environment = {**os.environ, "SSL_CERT_FILE": str(store["bundle"]), "SSL_CERT_DIR": str(directory)}
    with (
        https_server(work / "trusted-ca-server.pem", work / "trusted-ca-server.key") as trusted,
        https_server(work / "other-ca-server.pem", work / "other-ca-server.key") as other,
    ):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, trusted, other], env=environment, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_with_a_hashed_directory_the_bundle_is_not_parsed_and_verification_holds(store: dict[str, Path]) -> None:
    assert directory_holds_bundle(str(store["bundle"]), str(store["hashed"]))
    assert probe(store, store["hashed"]) == {
        "loaded_at_import": 0,  # nothing parsed up front: the directory is read when a handshake needs it
        "trusted": 204,
        "other_ca": "refused",
        "environment_restored": True,
        "loaded_by_a_later_context": 1,  # the bundle again: ssl.SSLContext is as it was
    }


def test_without_hash_links_aiohttp_loads_the_bundle_as_always(store: dict[str, Path]) -> None:
    assert not directory_holds_bundle(str(store["bundle"]), str(store["unhashed"]))
    assert probe(store, store["unhashed"]) == {
        "loaded_at_import": 1,
        "trusted": 204,
        "other_ca": "refused",
        "environment_restored": True,
        "loaded_by_a_later_context": 1,  # the bundle again: ssl.SSLContext is as it was
    }


def test_a_directory_with_fewer_links_than_the_bundle_has_certificates_is_not_trusted_to_hold_it(
    store: dict[str, Path], tmp_path: Path
) -> None:
    bundle = tmp_path / "two.pem"
    bundle.write_bytes(store["bundle"].read_bytes() + store["other"].read_bytes())
    assert not directory_holds_bundle(str(bundle), str(store["hashed"]))
    assert not directory_holds_bundle(None, str(store["hashed"]))
    assert not directory_holds_bundle(str(bundle), None)
    assert not directory_holds_bundle(str(tmp_path / "missing.pem"), str(store["hashed"]))
    assert not directory_holds_bundle(os.devnull, str(store["hashed"]))  # an empty bundle: nothing to save
