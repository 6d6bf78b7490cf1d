"""A new check plugin from one name: the package ``kibertas-async new-check NAME`` writes.

The template (``template/*.tmpl``, shipped as package data) is the only source. ``docs/example-plugin/``
in the repository is its rendering for :data:`EXAMPLE`'s names, and a test holds the two equal, so the
example the README shows and tests, and the plugin a new author starts from, cannot drift apart. What is
rendered: a distribution with the ``kibertas_async`` entry point, one check (a ConfigMap round trip that
passes on a working cluster), its option, a README, and tests that run it with the kit's ``check_runner``
and ``nothing_left`` fixtures on the sandbox.
"""

from __future__ import annotations

import re
import string
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kibertas_async.errors import UsageError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "CHECK_NAME",
    "EXAMPLE",
    "MAX_NAME_LENGTH",
    "PluginNames",
    "refuse_installed",
    "render",
    "validate_name",
    "validate_target",
    "write_plugin",
]

CHECK_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
"""A check name: lower-case words of letters and digits joined by single ``-`` (what users type after ``run``).
It is also a valid distribution name (``kibertas-async-NAME``) and, with ``_`` for ``-``, a module name."""
MAX_NAME_LENGTH = 30
"""The longest NAME: ``ctx.namespace()`` uses at most 30 characters of the check's name for its
namespaces, so the ``creates`` line the template writes stays exact, and the rendered code stays within
the line length ``ruff format`` keeps."""

_TEMPLATE_SUFFIX = ".tmpl"


@dataclass(frozen=True)
class PluginNames:
    """Every name the template substitutes."""

    check: str
    """The check's name (``kibertas-async run <check>``)."""
    distribution: str
    """The distribution (``pip install``, ``kibertas-async list``'s plugin column)."""
    module: str
    """The importable package the entry point names."""
    entry_point: str
    """The entry point's name in the ``kibertas_async`` group (the plugin's name for ``--disable-plugin``)."""
    option: str
    """The check's one option: the flag ``--<option>``."""
    env: str
    """The option's extra environment variable, besides ``KIBERTAS_ASYNC_<OPTION>``."""
    class_name: str
    """The check's class."""
    test_stem: str
    """The test module is ``tests/test_<test_stem>.py``."""
    summary: str
    """The package's one-line docstring."""

    @classmethod
    def for_check(cls, name: str) -> PluginNames:
        """The names a new plugin gets from its check's name (validated by :func:`validate_name`)."""
        validate_name(name)
        snake = name.replace("-", "_")
        distribution = f"kibertas-async-{name}"
        return cls(
            check=name,
            distribution=distribution,
            module=f"kibertas_async_{snake}",
            entry_point=name,
            option=f"{name}-greeting",
            env=f"{snake.upper()}_GREETING",
            class_name="".join(word.capitalize() for word in name.split("-")),
            test_stem=snake,
            summary=f"A kibertas-async plugin: one check ({name}) with one option.",
        )

    @property
    def main_env(self) -> str:
        """The option's own environment variable, as :attr:`kibertas_async.Option.env_names` makes it."""
        return f"KIBERTAS_ASYNC_{self.option.upper().replace('-', '_')}"

    @property
    def namespace_prefix(self) -> str:
        """How ``ctx.namespace()`` begins the names of the check's namespaces."""
        return self.check[:MAX_NAME_LENGTH].rstrip("-")


EXAMPLE = PluginNames(
    check="configmap-roundtrip",
    distribution="kibertas-async-configmap",
    module="kibertas_async_configmap",
    entry_point="configmap",
    option="configmap-greeting",
    env="GREETING",
    class_name="ConfigMapRoundTrip",
    test_stem="configmap",
    summary="Example kibertas-async plugin: one check with one option.",
)
"""The names of ``docs/example-plugin/`` (the README's plugin), the template rendered with these."""


def validate_name(name: str) -> None:
    """Refuse a NAME that is no check name (see :data:`CHECK_NAME`), with what to type instead.

    :raises UsageError: one line, for exit code 2.
    """
    if not CHECK_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a check name: use lower-case letters and digits in words joined by '-' "
            "(e.g. my-addon), starting with a letter"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise UsageError(f"{name!r} is {len(name)} characters long; a check name has at most {MAX_NAME_LENGTH}")
    if name.startswith("kibertas-async"):
        raise UsageError(
            f"{name!r} starts with 'kibertas-async': give the check's own name, the distribution becomes "
            "kibertas-async-NAME"
        )


def refuse_installed(names: PluginNames) -> None:
    """Refuse names an installed distribution or package already has: installing the new plugin would
    overwrite it, or be shadowed by it.

    :raises UsageError: one line, for exit code 2.
    """
    import importlib.metadata  # here, not at import: `kibertas-async --help` builds this command's parser
    import importlib.util

    try:
        importlib.metadata.distribution(names.distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        raise UsageError(f"{names.distribution} is installed already; choose another NAME than {names.check!r}")
    if importlib.util.find_spec(names.module) is not None:
        raise UsageError(f"a package {names.module} is importable already; choose another NAME than {names.check!r}")


def _template_files() -> list[tuple[str, str]]:
    """(path relative to the template, text) of every template file, sorted."""
    from importlib import resources

    root = resources.files(__name__) / "template"
    found: list[tuple[str, str]] = []

    def walk(folder: Traversable, prefix: str) -> None:
        for entry in sorted(folder.iterdir(), key=lambda item: item.name):
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(_TEMPLATE_SUFFIX):
                found.append((f"{prefix}{entry.name}", entry.read_text(encoding="utf-8")))

    walk(root, "")
    return found


def render(names: PluginNames) -> dict[str, str]:
    """The plugin's files for ``names``: relative path → text.

    Paths are the template's with ``MODULE`` the package and ``CHECK`` the test stem in them, and the
    ``.tmpl`` suffix dropped; texts have every ``${field}`` of :class:`PluginNames` substituted (an
    unknown one is a bug in the template: ``KeyError``).
    """
    fields = {**asdict(names), "main_env": names.main_env, "namespace_prefix": names.namespace_prefix}
    rendered: dict[str, str] = {}
    for template_path, text in _template_files():
        path = template_path.removesuffix(_TEMPLATE_SUFFIX)
        path = path.replace("MODULE/", f"{names.module}/").replace("test_CHECK.py", f"test_{names.test_stem}.py")
        rendered[path] = string.Template(text).substitute(fields)
    return rendered


def validate_target(directory: Path) -> None:
    """Refuse to write where something already is: an existing file, or a directory that is not empty.

    :raises UsageError: one line, for exit code 2.
    """
    if directory.is_dir():
        if any(directory.iterdir()):
            raise UsageError(f"{directory} already exists and is not empty; give a new --directory")
    elif directory.exists():
        raise UsageError(f"{directory} exists and is not a directory; give a new --directory")


def write_plugin(names: PluginNames, directory: Path) -> list[Path]:
    """Write the plugin for ``names`` into ``directory`` (new, or empty); return the files written.

    :raises UsageError: when ``directory`` holds something (nothing is written then).
    """
    validate_target(directory)
    files = render(names)
    written: list[Path] = []
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
