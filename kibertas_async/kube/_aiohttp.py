"""Import ``aiohttp`` without parsing the system's CA bundle twice.

``aiohttp.connector`` makes its two default TLS contexts when it is imported (``ssl=True`` and
``ssl=False``), and each ``set_default_verify_paths()`` parses every certificate of the system bundle
(``/etc/ssl/certs/ca-certificates.crt``: 144 on Debian 12): about 75 ms of CPU in every process, for contexts
that kibertas-async's own Kubernetes connections never use (each has its cluster's CA). The same trust
anchors are also in the system's hashed directory (``/etc/ssl/certs``, one ``<subject hash>.N`` link per
certificate, kept by ``update-ca-certificates``), which OpenSSL reads one certificate at a time, when a
verification needs it.

So when that directory holds at least as many certificate links as the bundle holds certificates,
:func:`import_aiohttp` imports ``aiohttp.connector`` while ``ssl.SSLContext.set_default_verify_paths``
adds that directory alone (``load_verify_locations(capath=...)``), and puts the method back afterwards:
aiohttp's default contexts verify against the same anchors, read on demand. (Not through
``$SSL_CERT_FILE``: changing the environment while other threads may read it is not safe in C.) Anywhere
else (no directory, an unhashed one, fewer links than certificates) aiohttp is imported as it is.
Contexts made later (a plugin's own, ``ssl.create_default_context()``) load the bundle as usual.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import sys
from collections.abc import Iterator

_HASH_LINK = re.compile(r"^[0-9a-f]{8}\.[0-9]+$")


def import_aiohttp() -> None:
    """Import ``aiohttp`` (its connector module), its default TLS contexts reading the hashed CA directory
    on demand when that directory has the bundle's certificates (module docstring)."""
    if "aiohttp.connector" in sys.modules:
        return
    paths = ssl.get_default_verify_paths()
    capath = paths.capath if directory_holds_bundle(paths.cafile, paths.capath) else None
    with _directory_only(capath) if capath else contextlib.nullcontext():
        import aiohttp.connector  # noqa: F401


def directory_holds_bundle(cafile: str | None, capath: str | None) -> bool:
    """Whether ``capath`` is a hashed CA directory with at least as many certificate links as ``cafile``
    has certificates (both as :func:`ssl.get_default_verify_paths` gives them: ``None`` when missing)."""
    if not cafile or not capath:
        return False
    try:
        with open(cafile, "rb") as bundle:
            certificates = bundle.read().count(b"-----BEGIN CERTIFICATE-----")
        links = sum(1 for name in os.listdir(capath) if _HASH_LINK.match(name))
    except OSError:
        return False
    return certificates > 0 and links >= certificates


@contextlib.contextmanager
def _directory_only(capath: str) -> Iterator[None]:
    """While the block runs, a context's default verify paths are the hashed directory ``capath`` alone."""

    def directory_only(context: ssl.SSLContext) -> None:
        context.load_verify_locations(capath=capath)

    own = ssl.SSLContext.__dict__.get("set_default_verify_paths")  # None: inherited from _ssl._SSLContext
    ssl.SSLContext.set_default_verify_paths = directory_only  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        if own is None:
            del ssl.SSLContext.set_default_verify_paths
        else:
            ssl.SSLContext.set_default_verify_paths = own  # type: ignore[method-assign]
