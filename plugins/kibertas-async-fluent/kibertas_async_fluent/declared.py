"""What a container declares it prints, read from its spec: the sandbox shipper's source of log lines.

kwok runs no container, so no pod of the sandbox writes a log. The sandbox's log shipper instead takes a
container's lines from what its spec says it would print, under these rules:

1. Kubernetes expands ``$(VAR)`` in ``command`` and ``args`` from the container's ``env`` values (as the
   kubelet does; ``$$(VAR)`` stays literal).
2. ``command + args`` must be ``echo ARGS...`` or ``<sh|bash|ash|dash> -c SCRIPT``. Anything else prints
   nothing.
3. ``echo ARGS`` prints one line: the arguments joined by spaces (leading ``-n``/``-e`` flags dropped).
   In a shell script, every ``echo`` command (at the start of the script or after ``;``, ``&&``, ``||``,
   ``|``, ``(``, ``do``, ``then``, ``else``) prints its line; no other command prints.
4. In those lines ``$VAR`` and ``${VAR}`` are replaced by the container's ``env`` values; other expansions
   (shell variables, ``$(...)``) are left as written.

So ``sh -c 'while true; do echo "$MARKER hello"; sleep 1; done'`` with ``MARKER=abc`` prints ``abc hello``
(once per flush of the shipper, as the loop would keep printing it).
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Mapping
from typing import Any

SHELLS = frozenset({"sh", "bash", "ash", "dash"})
_COMMAND_STARTS = frozenset({";", "&&", "||", "|", "&", "(", "do", "then", "else", "{"})
_KUBERNETES_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_SHELL_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def declared_lines(container: Mapping[str, Any]) -> list[str]:
    """The lines ``container`` (a pod spec's container, as JSON) declares it prints; see the module doc."""
    env = {item["name"]: str(item["value"]) for item in container.get("env") or [] if "value" in item}
    argv = [
        _expand_kubernetes(str(part), env)
        for part in [*(container.get("command") or []), *(container.get("args") or [])]
    ]
    if not argv:
        return []
    program = posixpath.basename(argv[0])
    if program == "echo":
        return [_echo_line(argv[1:], env)]
    if program in SHELLS and len(argv) >= 3 and argv[1] == "-c":
        return echo_lines_in_script(argv[2], env)
    return []


def echo_lines_in_script(script: str, env: Mapping[str, str]) -> list[str]:
    """The line of each ``echo`` command in a shell script."""
    lexer = shlex.shlex(script, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: a shell would refuse the script too
        return []
    lines: list[str] = []
    at_command_start = True
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if at_command_start and token == "echo":
            end = index + 1
            while end < len(tokens) and tokens[end] not in _COMMAND_STARTS:
                end += 1
            lines.append(_echo_line(tokens[index + 1 : end], env))
            index = end
            continue
        at_command_start = token in _COMMAND_STARTS
        index += 1
    return lines


def _echo_line(arguments: list[str], env: Mapping[str, str]) -> str:
    while arguments and arguments[0] in ("-n", "-e", "-ne", "-en"):
        arguments = arguments[1:]
    return _SHELL_REF.sub(lambda match: env.get(match[1] or match[2], match[0]), " ".join(arguments))


def _expand_kubernetes(text: str, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _KUBERNETES_REF.sub(replace, text)
