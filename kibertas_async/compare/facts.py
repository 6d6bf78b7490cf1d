"""How an add-on's version is written among a check's facts, so a comparison can read it back.

A fact whose key ends in ``" version"`` (``cert-manager version``) holds an add-on's version: the
version itself, or text starting with ``not found`` (no workload of the add-on there) or ``unknown``
(the lookup failed). :mod:`kibertas_async.kube.addon_version` writes them. Kept free of any client
import, so ``--help`` and the ``compare`` command stay light.
"""

from __future__ import annotations

VERSION_FACT_SUFFIX = " version"
NOT_FOUND = "not found"
"""How a version fact starts when no workload matched: the add-on is missing there."""
UNKNOWN = "unknown"
"""How a version fact starts when the lookup failed: nothing is known either way."""


def version_fact(addon: str) -> str:
    """The fact key of ``addon``'s version: ``<addon> version``."""
    return addon + VERSION_FACT_SUFFIX


def is_version_fact(key: str) -> bool:
    """Whether a fact key names an add-on version."""
    return key.endswith(VERSION_FACT_SUFFIX)


def addon_of(key: str) -> str:
    """The add-on a version fact is about (``cert-manager version`` → ``cert-manager``)."""
    return key.removesuffix(VERSION_FACT_SUFFIX)


def is_missing(value: str) -> bool:
    """Whether a version fact says the add-on was not found."""
    return value.startswith(NOT_FOUND)


def is_known(value: str) -> bool:
    """Whether a version fact holds a version (not ``not found``, not ``unknown``)."""
    return not value.startswith((NOT_FOUND, UNKNOWN))
