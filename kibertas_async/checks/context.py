"""What a running check is given: its cluster, options, logger, steps, cleanup and Kubernetes helpers."""

from __future__ import annotations

import math
import random
import secrets
import string
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, TypeVar

import anyio

from kibertas_async.checks.cleanup import CleanupStack
from kibertas_async.engine.results import Outcome, StepResult
from kibertas_async.errors import CheckError, CheckFailed, CheckSkipped, StepTimeout
from kibertas_async.kube.resources import NAMESPACES, Resource

if TYPE_CHECKING:
    from kibertas_async.events import Logger
    from kibertas_async.kube import ClusterTarget, KubeClient, KubeObject
    from kibertas_async.options import OptionValues

T = TypeVar("T")

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kibertas-async"
RUN_ID_LABEL = "kibertas-async/run-id"
CHECK_LABEL = "kibertas-async/check"


class Step:
    """``async with ctx.step("wait for load balancer", timeout=300):`` — one named, timed phase."""

    def __init__(self, ctx: CheckContext, name: str, timeout: float | None) -> None:
        self._ctx = ctx
        self._timeout = timeout
        self._scope: anyio.CancelScope | None = None
        self.result = StepResult(name=name, started_at=datetime.now(UTC))

    @property
    def name(self) -> str:
        """The step's name, as reports show it."""
        return self.result.name

    def progress(self, detail: str) -> None:
        """Record the latest observation (e.g. ``1/2 replicas ready``); a timeout reports it."""
        if detail != self.result.detail:
            self.result.detail = detail
            self._ctx.log.debug("step.progress", step=self.name, detail=detail)

    async def __aenter__(self) -> Step:
        self._started = anyio.current_time()
        deadline = math.inf if self._timeout is None else self._started + self._timeout
        self._scope = anyio.CancelScope(deadline=deadline)
        self._scope.__enter__()
        self._ctx._steps.append(self)
        self._ctx.log.info("step.started", step=self.name)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._scope is not None
        swallowed = self._scope.__exit__(exc_type, exc, tb)
        self.result.duration = anyio.current_time() - self._started
        timed_out = self._scope.cancelled_caught
        if timed_out:
            self.result.outcome = Outcome.TIMEOUT
        elif isinstance(exc, CheckFailed):
            self.result.outcome = Outcome.FAILED
        elif isinstance(exc, CheckSkipped):
            self.result.outcome = Outcome.SKIPPED
        elif isinstance(exc, Exception):
            self.result.outcome = Outcome.ERROR
        elif exc is not None:  # cancelled from outside: check or run deadline, or a signal
            self.result.outcome = Outcome.TIMEOUT
        if isinstance(exc, CheckError) and exc.step is None:
            exc.step = self.name
        self._ctx.log.info(
            "step.finished",
            step=self.name,
            outcome=self.result.outcome.value,
            duration=round(self.result.duration, 3),
            **({"detail": self.result.detail} if self.result.detail else {}),
        )
        self._ctx._steps.remove(self)
        if timed_out:
            last = f" (last seen: {self.result.detail})" if self.result.detail else ""
            raise StepTimeout(
                f"step '{self.name}' did not finish within {self._timeout:g}s{last}",
                step=self.name,
                timeout=self._timeout or 0.0,
            )
        return bool(swallowed)


class CheckContext:
    """Everything one check needs while it runs on one cluster."""

    def __init__(
        self,
        *,
        run_id: str,
        check_name: str,
        cluster: ClusterTarget,
        options: OptionValues,
        log: Logger,
        cleanup: CleanupStack,
        kube: KubeClient | None,
    ) -> None:
        self.run_id = run_id
        self.check_name = check_name
        self.cluster = cluster
        """Which cluster this is: ``ctx.cluster.name`` is what reports show."""
        self.options = options
        """``ctx.options[SOME_OPTION]`` is that option's value for this cluster."""
        self.log = log
        """A structlog logger already bound to run id, cluster and check."""
        self.cleanup = cleanup
        """Register undo actions here the moment something is created (``ctx.create`` does it for you)."""
        self._kube = kube
        self._steps: list[Step] = []
        self.facts: dict[str, str] = {}
        self.results: list[StepResult] = []

    # --- steps, outcome -----------------------------------------------------------------------

    def step(self, name: str, *, timeout: float | None = None) -> Step:
        """A named phase; with ``timeout`` it ends as TIMEOUT naming this step if it takes longer."""
        step = Step(self, name, timeout)
        self.results.append(step.result)
        return step

    @property
    def current_step(self) -> Step | None:
        """The innermost step running now."""
        return self._steps[-1] if self._steps else None

    def progress(self, detail: str) -> None:
        """Record the latest observation on the current step (explains a later timeout)."""
        if self.current_step is not None:
            self.current_step.progress(detail)

    def fail(self, reason: str) -> NoReturn:
        """End the check as FAILED (NG) in the current step, with a reason a human understands."""
        raise CheckFailed(reason)

    def skip(self, reason: str) -> NoReturn:
        """End the check as SKIPPED: it does not apply to this cluster."""
        raise CheckSkipped(reason)

    def fact(self, key: str, value: object) -> None:
        """Report something learned (shown in reports even on success), e.g. which node joined."""
        self.facts[key] = str(value)
        self.log.info("check.fact", key=key, value=str(value))

    # --- Kubernetes ---------------------------------------------------------------------------

    @property
    def kube(self) -> KubeClient:
        """The cluster's API client (connected and checked before the check started)."""
        if self._kube is None:
            raise RuntimeError(f"check {self.check_name} declared needs_kubernetes = False")
        return self._kube

    @property
    def labels(self) -> dict[str, str]:
        """Labels put on everything this check creates: find (and clean) it by run or by check."""
        return {MANAGED_BY_LABEL: MANAGED_BY, RUN_ID_LABEL: self.run_id, CHECK_LABEL: self.check_name}

    async def create(self, resource: Resource, manifest: KubeObject, namespace: str | None = None) -> KubeObject:
        """Create an object with our labels and register its deletion, in one move."""
        metadata = dict(manifest.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **self.labels}
        created = await self.kube.create(resource, {**manifest, "metadata": metadata}, namespace)
        name = created["metadata"]["name"]
        where = f"{namespace}/" if namespace else ""
        self.log.info("object.created", kind=resource.kind, name=f"{where}{name}")

        async def delete() -> None:
            await self.kube.delete(resource, name, namespace, propagation="Background")

        self.cleanup.push(f"delete {resource.kind} {where}{name}", delete)
        return created

    async def namespace(self, prefix: str | None = None) -> str:
        """Create a labelled throwaway namespace ``<prefix>-test-YYYYMMDD-xxxxx`` and register its removal.

        Cleanup deletes it and waits (within the cleanup time box) until it is really gone.
        """
        stem = (prefix or self.check_name)[:30].rstrip("-")
        suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        name = f"{stem}-test-{datetime.now(UTC):%Y%m%d}-{suffix}"
        manifest: KubeObject = {"metadata": {"name": name, "labels": self.labels}}
        await self.kube.create(NAMESPACES, manifest)
        self.log.info("object.created", kind="Namespace", name=name)

        async def delete_and_wait() -> None:
            if await self.kube.delete(NAMESPACES, name, propagation="Background"):
                await self.kube.wait_for(NAMESPACES, name, None, lambda obj: obj is None)

        self.cleanup.push(f"delete Namespace {name}", delete_and_wait)
        return name

    async def wait_for(
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        until: Callable[[KubeObject | None], bool],
        *,
        progress: Callable[[KubeObject | None], str] | None = None,
    ) -> KubeObject | None:
        """Watch an object until ``until(obj)`` holds (``None`` means absent); progress goes on the step."""
        return await self.kube.wait_for(resource, name, namespace, until, progress=progress, on_progress=self.progress)

    # --- external systems ---------------------------------------------------------------------

    async def poll(
        self,
        attempt: Callable[[], Awaitable[T | None]],
        *,
        first_delay: float = 0.5,
        max_delay: float = 15.0,
    ) -> T:
        """Call ``attempt`` until it returns something other than ``None``, backing off exponentially
        (with jitter) from ``first_delay`` to ``max_delay``. For systems that cannot be watched (DNS,
        HTTP, S3, Datadog); bounded by the step's or check's deadline. The first try is immediate."""
        delay = first_delay
        while True:
            value = await attempt()
            if value is not None:
                return value
            await anyio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(max_delay, delay * 2)
