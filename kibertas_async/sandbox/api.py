"""A minimal synchronous Kubernetes API client (stdlib only) for setting the sandbox up.

The sandbox must start fast and import nothing heavy, so it talks JSON over HTTPS with urllib instead of
importing kubernetes_asyncio; checks and tests use the real clients.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


class ApiError(Exception):
    """The API server answered with an error status (``status``), or could not be reached (``status`` 0)."""

    def __init__(self, method: str, path: str, status: int, detail: str) -> None:
        super().__init__(f"{method} {path}: {status or 'unreachable'} {detail}")
        self.status = status


class SandboxApi:
    """Authenticated JSON requests to one sandbox API server."""

    def __init__(self, server: str, token: str, ca_file: Path) -> None:
        self.server = server
        self._token = token
        self._ca_file = ca_file
        self._tls: ssl.SSLContext | None = None

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = 10.0
    ) -> dict[str, Any]:
        """Send one request and return the decoded JSON answer.

        :raises ApiError: on an HTTP error status or a connection failure.
        """
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        if self._tls is None:  # made on first use: the CA file may not exist yet when the client is made
            self._tls = ssl.create_default_context(cafile=str(self._ca_file))
        try:
            with urllib.request.urlopen(request, context=self._tls, timeout=timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise ApiError(method, path, error.code, error.read().decode(errors="replace")[:500]) from error
        except (OSError, urllib.error.URLError) as error:
            raise ApiError(method, path, 0, str(error)) from error
        decoded: Any = json.loads(payload) if payload.startswith(b"{") else {"text": payload.decode()}
        return dict(decoded)

    def get(self, path: str, *, timeout: float = 10.0) -> dict[str, Any]:
        """GET ``path``."""
        return self.request("GET", path, timeout=timeout)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to the collection ``path``."""
        return self.request("POST", path, body)

    def is_ready(self, *, timeout: float = 2.0) -> bool:
        """Whether ``/readyz`` answers ok (every post-start hook, including RBAC bootstrap, has run)."""
        try:
            return self.get("/readyz", timeout=timeout).get("text") == "ok"
        except ApiError:
            return False
