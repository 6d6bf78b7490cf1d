"""Which version of an add-on a cluster runs, read from its controller's Deployment or DaemonSet.

A check calls :func:`report_addon_version` once, before its own steps; it adds the facts

- ``<add-on> version``: the workload's ``app.kubernetes.io/version`` label (on the workload, else on
  its pod template), else the tag of its image; ``not found (...)`` when no workload matches;
  ``unknown (...)`` when the lookup itself failed (a 403, an unreachable API server);
- ``<add-on> image``: the image that version came from (only when found).

It never fails the check: the version is reported, not proven. Where to look is a per-cluster option
``<add-on>-workload`` of the form ``NAMESPACE/NAME[,NAME...]`` (:func:`workload_option`); a workload
matches a NAME by its own name or by its ``app.kubernetes.io/name`` label, NAMEs tried in order. Both
kinds are listed in that namespace (``list`` on ``deployments`` and ``daemonsets``: the check declares
:data:`WORKLOAD_READ`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from kibertas_async.checks.check import Permission
from kibertas_async.kube.errors import KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import DAEMONSETS, DEPLOYMENTS
from kibertas_async.options import Option
from kibertas_async.results import NOT_FOUND, UNKNOWN, version_fact

if TYPE_CHECKING:
    from kibertas_async.checks.context import CheckContext
    from kibertas_async.kube.client import KubeClient, KubeObject

VERSION_LABEL = "app.kubernetes.io/version"
NAME_LABEL = "app.kubernetes.io/name"
LOOKUP_TIMEOUT = 10.0
"""Seconds the lookup may take; it must never hold up the check it only annotates."""
WORKLOAD_READ = Permission("apps", ("deployments", "daemonsets"), ("list",))
"""What :func:`report_addon_version` needs. Cluster-wide, because the namespace is an option (a Role
would have to name it, and a Role in a namespace that does not exist cannot even be applied)."""

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True)
class Workload:
    """Where an add-on's controller runs: a namespace and the names it may go by."""

    namespace: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.namespace}/{','.join(self.names)}"


def parse_workload(text: str) -> Workload:
    """``NAMESPACE/NAME[,NAME...]``, e.g. ``kube-system/cluster-autoscaler,aws-cluster-autoscaler``."""
    namespace, slash, names = text.strip().partition("/")
    parts = tuple(part.strip() for part in names.split(","))
    if not slash or not _NAME.match(namespace) or not all(_NAME.match(part) for part in parts):
        raise ValueError(f"{text!r} is not NAMESPACE/NAME[,NAME...] (example: cert-manager/cert-manager)")
    return Workload(namespace, parts)


def workload_option(addon: str, default: str) -> Option[Workload]:
    """The ``<addon>-workload`` option: where to read ``addon``'s version (per cluster)."""
    slug = re.sub(r"[^a-z0-9]+", "-", addon.lower()).strip("-")
    return Option[Workload](
        f"{slug}-workload",
        f"Where {addon} runs, for its version fact: NAMESPACE/NAME[,NAME...], a Deployment or DaemonSet "
        "of that name or app.kubernetes.io/name.",
        default=parse_workload(default),
        parse=parse_workload,
        metavar="NAMESPACE/NAME",
    )


def image_tag(image: str) -> str:
    """The tag of an image reference (``registry:5000/a/b:v1.2@sha256:...`` → ``v1.2``); an untagged
    image is ``latest`` (what the runtime pulls), a digest-only one its short digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.split(":", 1)[1]
    return digest[:19] if digest else "latest"


@dataclass(frozen=True)
class AddonVersion:
    """What one lookup found."""

    version: str
    """The version, or text starting with ``not found`` or ``unknown``
    (:mod:`kibertas_async.results`)."""
    image: str = ""
    workload: str = ""
    """``Deployment NAMESPACE/NAME`` when found."""


def version_of(workload: KubeObject, names: tuple[str, ...] = ()) -> AddonVersion:
    """The version a Deployment or DaemonSet declares: its ``app.kubernetes.io/version`` label (or its pod
    template's), else its container's image tag (the container named like the add-on, else the first)."""
    metadata = workload.get("metadata") or {}
    template = ((workload.get("spec") or {}).get("template")) or {}
    containers = (template.get("spec") or {}).get("containers") or []
    container = next((c for c in containers if c.get("name") in names), containers[0] if containers else {})
    image = str(container.get("image", ""))
    label = (metadata.get("labels") or {}).get(VERSION_LABEL) or (
        (template.get("metadata") or {}).get("labels") or {}
    ).get(VERSION_LABEL)
    where = f"{workload.get('kind', 'workload')} {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    if label:
        return AddonVersion(str(label), image, where)
    if image:
        return AddonVersion(image_tag(image), image, where)
    return AddonVersion(f"{UNKNOWN} ({where} has no version label and no image)", "", where)


def _matches(obj: KubeObject, name: str) -> bool:
    metadata = obj.get("metadata") or {}
    return bool(metadata.get("name") == name or (metadata.get("labels") or {}).get(NAME_LABEL) == name)


async def find_addon_version(kube: KubeClient, workload: Workload) -> AddonVersion:
    """Look ``workload`` up (Deployments, then DaemonSets) and read its version."""
    found: list[KubeObject] = []
    for resource in (DEPLOYMENTS, DAEMONSETS):
        listed = await kube.list(resource, workload.namespace)
        found += [{**item, "kind": resource.kind} for item in listed.get("items") or []]
        first = workload.names[0] if workload.names else None
        if any((obj.get("metadata") or {}).get("name") == first for obj in found):
            break  # nothing in the next kind could win over an exact match of the first name
    for name in workload.names:
        # A workload of exactly that name beats one that only carries the name label (a webhook, say).
        exact = [obj for obj in found if (obj.get("metadata") or {}).get("name") == name]
        matching = exact or sorted(
            (obj for obj in found if _matches(obj, name)), key=lambda obj: str(obj["metadata"].get("name"))
        )
        if matching:
            return version_of(matching[0], workload.names)
    looked_for = " or ".join(workload.names)
    return AddonVersion(f"{NOT_FOUND} (no Deployment or DaemonSet {looked_for} in namespace {workload.namespace})")


async def report_addon_version(ctx: CheckContext, addon: str, workload: Workload) -> None:
    """Add ``addon``'s version (and image) to the check's facts; never raises for a failed lookup."""
    try:
        kube = ctx.kube
    except RuntimeError:  # a check run without a cluster client (unit tests): nothing to read
        ctx.fact(version_fact(addon), f"{UNKNOWN} (no Kubernetes client)")
        return
    found: AddonVersion | None = None
    with anyio.move_on_after(LOOKUP_TIMEOUT):
        try:
            found = await find_addon_version(kube, workload)
        except KubeApiError as error:
            found = AddonVersion(f"{UNKNOWN} (listing workloads in {workload.namespace}: {error})")
        except KubeUnavailable as error:
            found = AddonVersion(f"{UNKNOWN} (API server unreachable: {error})")
    if found is None:
        found = AddonVersion(f"{UNKNOWN} (no answer within {LOOKUP_TIMEOUT:g}s)")
    ctx.fact(version_fact(addon), found.version)
    if found.image:
        ctx.fact(f"{addon} image", found.image)
