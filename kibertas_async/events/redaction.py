"""Secret redaction: one redactor for every text the tool stores or emits.

Secrets come from three places: the values of secret options, the credentials in the kubeconfig files
the run reads (tokens, passwords, client keys, auth-provider tokens, exec-plugin environment), and the
environment variables that hold cloud and SaaS keys (AWS, Datadog, Chatwork, ...). Each is replaced by
``<redacted>`` as it is, URL-encoded and JSON-escaped, so an HTTP error quoting a URL with a key, or a
traceback, does not give it away.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "<redacted>"
MIN_SECRET_LENGTH = 4
"""Shorter values are not treated as secrets: replacing ``on`` everywhere would garble every text."""

SECRET_ENV_NAME = re.compile(
    r"(^|_)(TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|APP_KEY|APPLICATION_KEY|ACCESS_KEY|ACCESS_KEY_ID|"
    r"PRIVATE_KEY|CREDENTIALS?|AUTH)($|_)"
)
"""Environment variable names whose values are secrets: ``AWS_SECRET_ACCESS_KEY``, ``DD_API_KEY``,
``CHATWORK_API_TOKEN``, ``AWS_SESSION_TOKEN``, ``AWS_ACCESS_KEY_ID``, ..."""

ENV_SECRET_MIN_LENGTH = 6
"""An environment value this short is a flag or a name (``true``, ``prod``), not a key."""


def environment_secrets(environ: Mapping[str, str]) -> list[str]:
    """The values of environment variables whose names say they hold a secret."""
    return [
        value
        for name, value in environ.items()
        if SECRET_ENV_NAME.search(name.upper()) and len(value.strip()) >= ENV_SECRET_MIN_LENGTH
    ]


def _variants(secret: str) -> set[str]:
    """The forms a secret takes inside other texts: as is, URL-encoded, JSON-escaped."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    stripped = secret.strip()
    if stripped != secret:
        forms.add(stripped)
    for line in secret.splitlines():  # a PEM key quoted line by line
        if len(line.strip()) >= 16 and not line.startswith("-----"):
            forms.add(line.strip())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


AUTHORIZATION = re.compile(
    r"(?i)\b(bearer|authorization:)(\s+)(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}"
)
"""A bearer token quoted in a text (``Bearer eyJ...``, ``Authorization: ...``): blanked whether it is known
or not (a token an exec plugin refreshed mid-run, say). A credential has a digit or punctuation in it, so
prose (``bearer authentication``) is left alone."""


class SecretRedactor:
    """Blanks known secret values in texts, and (as a structlog processor) in every event."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._forms: list[str] = []
        self.add(secrets)

    @property
    def secrets(self) -> set[str]:
        """Every form of every secret known (for tests and diagnostics; never print it)."""
        return set(self._forms)

    def add(self, values: Iterable[str]) -> None:
        """Learn more secrets (options are resolved, clusters connected, after logging starts)."""
        forms = set(self._forms)
        for value in values:
            if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LENGTH:
                forms |= _variants(value)
        # Longest first, so a secret that contains another is replaced whole.
        self._forms = sorted(forms, key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with every known secret, and any bearer or basic credential, replaced by ``<redacted>``."""
        for form in self._forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return AUTHORIZATION.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", value)

    def value(self, value: Any) -> Any:
        """Any event value, redacted: strings, containers, and other objects through ``str()``."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item) for item in value]
        if isinstance(value, BaseException):
            return self.text(f"{type(value).__name__}: {value}")
        text = str(value)
        redacted = self.text(text)
        return value if redacted == text else redacted

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, item in event.items():
            if key.startswith("_"):  # structlog's own bookkeeping (the stdlib record)
                continue
            event[key] = self.value(item)
        return event
