"""Reading a kubeconfig file once per run, with libyaml when PyYAML has it.

A run reads its kubeconfig files three times (the contexts to select, the settings extensions of the
chosen contexts, the credentials the redactor must know). A kubeconfig naming hundreds of clusters is
a few hundred kilobytes of YAML: about 0.4 s per read with PyYAML's pure-Python parser, a few
milliseconds with its libyaml one. So a file is parsed once per content (path, size and modification
time), with ``yaml.CSafeLoader`` when PyYAML was built with libyaml, else ``yaml.SafeLoader``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kibertas_async._yaml import safe_load

_KEPT = 16
"""How many parsed documents are kept (a process running many runs, a test session, reads many files)."""
_parsed: dict[tuple[str, int, int], Any] = {}


def load_kubeconfig_document(path: Path) -> Any:
    """``path`` parsed as YAML (``None`` for an empty file). Treat the result as read-only: it is shared.

    :raises OSError: when the file cannot be read; :raises UnicodeDecodeError: when it is not UTF-8;
    :raises yaml.YAMLError: when it is not YAML.
    """
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns)
    if key not in _parsed:
        document = safe_load(path.read_text(encoding="utf-8"))
        while len(_parsed) >= _KEPT:
            del _parsed[next(iter(_parsed))]
        _parsed[key] = document
    return _parsed[key]
