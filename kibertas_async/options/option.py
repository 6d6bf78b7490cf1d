"""Options: typed settings that plugins declare and users set by flag, environment or config file."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kibertas_async.errors import UsageError

T = TypeVar("T")

_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True, eq=False)
class Option(Generic[T]):
    """One setting, declared by a plugin and read by checks through ``ctx.options[OPTION]``.

    The same option can be given, from strongest to weakest, as:

    1. the command-line flag ``--<name>``;
    2. an environment variable: ``KIBERTAS_ASYNC_<NAME>`` (upper case, ``-`` as ``_``), or any of ``env``;
    3. the config file, under ``clusters.<cluster>`` (only options with ``per_cluster=True``);
    4. the config file, under ``defaults``;
    5. ``default``.
    """

    name: str
    """Lower-case words joined by ``-``: the flag is ``--<name>``, the config-file key is ``<name>``."""
    help: str
    """One sentence for ``--help``."""
    default: T
    """The value when nothing sets it."""
    parse: Callable[[str], T] = field(default=str)  # type: ignore[assignment]
    """Turns the text of a flag, variable or config value into the value; raises ``ValueError`` if bad."""
    env: tuple[str, ...] = ()
    """More environment variables accepted (e.g. the reference tool's names), weaker than the main one."""
    per_cluster: bool = True
    """Whether each cluster may have its own value (config file ``clusters.<name>``)."""
    secret: bool = False
    """A secret is never written to logs, reports, notifications or ``--dry-run`` output."""
    metavar: str = "VALUE"
    """What ``--help`` shows as the value."""
    requires: tuple[str, ...] = ()
    """Names of options that must be set too whenever this one is (a notifier's token needs its room):
    checked when options are resolved, before anything runs, so half a configuration is bad input
    rather than a surprise after the run."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"option name {self.name!r} must be lower-case words joined by '-'")
        for required in self.requires:
            if not _NAME.match(required) or required == self.name:
                raise ValueError(f"option {self.name!r}: requires {required!r}, which is not another option's name")

    @property
    def flag(self) -> str:
        """The command-line flag."""
        return f"--{self.name}"

    @property
    def env_names(self) -> tuple[str, ...]:
        """Environment variables that set this option, strongest first."""
        return (f"KIBERTAS_ASYNC_{self.name.upper().replace('-', '_')}", *self.env)

    def convert(self, value: object) -> T:
        """Parse a value from text or from a config file (where YAML may already have typed it).

        Text that is only whitespace is refused whatever the parser: it is a quoting slip (``--x " "``,
        ``X=' '``), not a value. The empty text stays the parser's to judge (often: unset).
        """
        if isinstance(value, str):
            if value and not value.strip():
                raise ValueError("the value is only whitespace")
            return self.parse(value)
        if isinstance(value, Mapping):
            return self.parse(json.dumps(dict(value)))
        if isinstance(value, list | tuple):
            return self.parse(",".join(str(item) for item in value))
        if isinstance(value, bool):
            return self.parse("true" if value else "false")
        return self.parse(str(value))

    def is_set(self, value: object) -> bool:
        """Whether ``value`` counts as set for :attr:`requires`: not ``None``, ``False`` (a switch that is
        off needs nothing), blank text or empty."""
        if value is None or value is False or (isinstance(value, str) and not value.strip()):
            return False
        return not (isinstance(value, tuple | list | dict | set | frozenset) and not value)

    @property
    def is_duration(self) -> bool:
        """Whether the value is a duration (parsed by :func:`parse_duration`, maybe :func:`optional`):
        it is then shown as one (``5m``), not as its seconds (``300.0``)."""
        return self.parse is parse_duration or getattr(self.parse, "__wrapped__", None) is parse_duration

    def text(self, value: object) -> str:
        """The value as a user would write it: a duration as ``30s`` or ``5m``, anything else as ``str``.
        Not masked: use :meth:`display` wherever a secret's value could be shown."""
        if self.is_duration and isinstance(value, int | float) and not isinstance(value, bool):
            return format_duration(value)
        return str(value)

    def display(self, value: object) -> str:
        """How the value may be shown to humans: secrets are masked, durations read ``5m``, other values
        are shown as their ``repr``."""
        if self.secret:
            return "<set>" if value else "<unset>"
        if self.is_duration and isinstance(value, int | float) and not isinstance(value, bool):
            return format_duration(value)
        return repr(value)


def parse_bool(text: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0``, any case."""
    lowered = text.strip().lower()
    if lowered in {"true", "yes", "on", "1"}:
        return True
    if lowered in {"false", "no", "off", "0", ""}:
        return False
    raise ValueError(f"{text!r} is not a boolean (use true or false)")


def parse_positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        number = int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise ValueError(f"{text!r} must be at least 1")
    return number


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``2h`` or ``500ms``; must be above zero."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 5m, 1h)")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """A duration as :func:`parse_duration` reads it: ``0.5s``, ``3.5s``, ``90s``, ``5m``, ``2h``.

    The largest unit that divides it evenly; seconds otherwise (``150s``, never ``2.5m``), so what is
    printed can be typed back. No limit (``inf``) is ``unlimited``.
    """
    if math.isinf(seconds):
        return "unlimited"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and math.isclose(seconds / size, round(seconds / size), abs_tol=1e-9):
            return f"{round(seconds / size)}{unit}"
    return f"{seconds:g}s"


def parse_list(text: str) -> tuple[str, ...]:
    """Comma-separated words; blanks are dropped."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def split_names(text: str, *, source: str, hint: str = "; give comma-separated names, or leave it out") -> list[str]:
    """The comma-separated entries of a flag or variable (``--tags a,b``), stripped.

    A blank value, or a blank entry (``a,,b``, ``a,``), is a :class:`UsageError` naming ``source``:
    dropping it quietly would run something other than what was asked for.
    """
    if not text.strip():
        raise UsageError(f"{source} is empty{hint}")
    parts = text.split(",")
    if any(not part.strip() for part in parts):
        raise UsageError(f"{source} {text!r} has an empty entry; give comma-separated names without blanks")
    return [part.strip() for part in parts]


def parse_mapping(text: str) -> dict[str, str]:
    """``key=value,key2=value2`` or a JSON object of strings."""
    stripped = text.strip()
    if not stripped:
        return {}
    if stripped.startswith("{"):
        try:
            loaded = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise ValueError(f"not a JSON object: {error.msg}") from None
        if not isinstance(loaded, dict):
            raise ValueError("not a JSON object")
        return {str(key): str(value) for key, value in loaded.items()}
    result: dict[str, str] = {}
    for pair in stripped.split(","):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{pair!r} is not key=value")
        result[key.strip()] = value.strip()
    return result


def optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """Wrap a parser so that an empty text means ``None`` (unset)."""

    def parse_optional(text: str) -> T | None:
        return None if not text.strip() else parse(text)

    parse_optional.__name__ = f"optional_{getattr(parse, '__name__', 'value')}"
    parse_optional.__wrapped__ = parse  # type: ignore[attr-defined]  # so Option.is_duration sees through it
    return parse_optional


class OptionValues:
    """The resolved value of every option, for one cluster (or for the run, for run-wide options)."""

    def __init__(self, values: Mapping[Option[Any], Any], sources: Mapping[Option[Any], str]) -> None:
        self._values = dict(values)
        self._sources = dict(sources)

    def __getitem__(self, option: Option[T]) -> T:
        try:
            value: T = self._values[option]
        except KeyError:
            raise KeyError(f"option {option.name!r} is not registered by any loaded plugin") from None
        return value

    def source(self, option: Option[Any]) -> str:
        """Where the value came from: ``flag``, ``env:NAME``, ``config:clusters.X``, ``config:defaults``
        or ``default``."""
        return self._sources.get(option, "default")

    def secrets(self) -> list[str]:
        """Every non-empty secret value, so logs and reports can redact them."""
        return [str(value) for option, value in self._values.items() if option.secret and value]

    def describe(self) -> dict[str, str]:
        """Name → displayable value (secrets masked)."""
        return {option.name: option.display(value) for option, value in self._values.items()}
