"""The secrets inside kubeconfig files, so the redactor can blank them wherever they turn up.

A kubeconfig's users carry bearer tokens, passwords, client keys, auth-provider tokens and, for exec
plugins (``aws eks get-token`` and the like), environment variables that may hold keys. None of them
may appear in an event, a report or a message, even inside an exception's text.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kibertas_async.events.redaction import SECRET_ENV_NAME

SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
_SECRET_USER_FIELDS = ("token", "password", "client-key-data")
_EXEC_ENV_LONG_VALUE = 16
"""An exec-plugin environment value this long is treated as a secret whatever its name."""


def kubeconfig_secrets(paths: Iterable[Path], *, in_cluster: bool = False) -> list[str]:
    """Every credential in the kubeconfig files (unreadable files give none), plus the Pod's own
    service-account token when ``in_cluster``."""
    import yaml

    from kibertas_async.clusters.kubeconfig_file import load_kubeconfig_document

    found: list[str] = []
    for path in paths:
        try:
            loaded: Any = load_kubeconfig_document(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(loaded, dict):
            continue
        for entry in loaded.get("users") or []:
            user = entry.get("user") if isinstance(entry, dict) else None
            if isinstance(user, dict):
                found.extend(_user_secrets(user))
    if in_cluster:
        found.extend(_file_secret(SERVICE_ACCOUNT_TOKEN))
    return found


def _user_secrets(user: dict[str, Any]) -> list[str]:
    found = [str(user[key]) for key in _SECRET_USER_FIELDS if isinstance(user.get(key), str)]
    key_data = user.get("client-key-data")
    if isinstance(key_data, str):
        with contextlib.suppress(binascii.Error, ValueError):
            found.append(base64.b64decode(key_data, validate=False).decode("utf-8", "replace"))
    for file_key in ("tokenFile", "client-key"):
        if isinstance(user.get(file_key), str):
            found.extend(_file_secret(Path(user[file_key]).expanduser()))
    provider = user.get("auth-provider")
    if isinstance(provider, dict) and isinstance(provider.get("config"), dict):
        for key, value in provider["config"].items():
            if isinstance(value, str) and any(word in key.lower() for word in ("token", "secret")):
                found.append(value)
    exec_config = user.get("exec")
    if isinstance(exec_config, dict):
        for variable in exec_config.get("env") or []:
            if not isinstance(variable, dict) or not isinstance(variable.get("value"), str):
                continue
            name, value = str(variable.get("name", "")), variable["value"]
            if SECRET_ENV_NAME.search(name.upper()) or len(value) >= _EXEC_ENV_LONG_VALUE:
                found.append(value)
    return found


def _file_secret(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return []
    return [text] if text else []
