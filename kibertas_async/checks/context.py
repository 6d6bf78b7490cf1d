"""What a running check is given: its cluster, options, logger, steps, cleanup and Kubernetes helpers."""

from __future__ import annotations

import math
import secrets
import string
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import anyio

from kibertas_async.checks.cleanup import CleanupStack
from kibertas_async.checks.waiting import Failure, PollState, failure_reason
from kibertas_async.checks.waiting import poll as _poll
from kibertas_async.errors import CheckError, CheckFailed, CheckSkipped, StepTimeout, primary_exception
from kibertas_async.events import bind_context, unbind_context
from kibertas_async.kube.client import backoff_delay
from kibertas_async.kube.errors import KubeApiError, KubeUnavailable
from kibertas_async.kube.resources import NAMESPACES, Resource
from kibertas_async.options.option import format_duration
from kibertas_async.results import Outcome, StepResult

if TYPE_CHECKING:
    from kibertas_async.events import Logger, SecretRedactor
    from kibertas_async.kube import ClusterTarget, KubeClient, KubeObject
    from kibertas_async.options import OptionValues


@dataclass(frozen=True)
class WaitedOn:
    """The object a ``ctx.wait_for`` was waiting on, as the watch last saw it (the failure diagnostics,
    :mod:`kibertas_async.diagnostics`, show it)."""

    resource: Resource
    name: str
    namespace: str | None
    last: KubeObject | None = None
    """The object as last listed or watched; ``None`` while absent (or not listed yet: see ``seen``)."""
    seen: bool = False
    """Whether the API server had answered the list at least once."""
    done: bool = False
    """Whether the wait ended because its condition held (then it explains nothing)."""

    def describe(self) -> str:
        """``Ingress ns/name``."""
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource.kind} {where}{self.name}"


T = TypeVar("T")


def _random_suffix(length: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(length))


def _uid(obj: KubeObject) -> str:
    return str((obj.get("metadata") or {}).get("uid", ""))


MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "kibertas-async"
RUN_ID_LABEL = "kibertas-async/run-id"
CHECK_LABEL = "kibertas-async/check"
CREATE_RETRY_SECONDS = 30.0
"""How long ``ctx.create`` retries a POST while the API server cannot be reached (a restart)."""
OBJECT_ID_LABEL = "kibertas-async/object-id"
"""Put on an object created with ``generateName``, so cleanup can find it before its name is known."""


class Step:
    """``async with ctx.step("wait for load balancer", timeout=300):`` — one named, timed phase."""

    def __init__(self, ctx: CheckContext, name: str, timeout: float | None) -> None:
        self._ctx = ctx
        self._timeout = timeout
        self._scope: anyio.CancelScope | None = None
        self._context_tokens: Mapping[str, object] = {}
        self.result = StepResult(name=name, started_at=datetime.now(UTC))

    @property
    def name(self) -> str:
        """The step's name, as reports show it."""
        return self.result.name

    def progress(self, detail: str) -> None:
        """Record the latest observation (e.g. ``1/2 replicas ready``); a timeout reports it."""
        detail = self._ctx.redact(detail)
        if detail != self.result.detail:
            self.result.detail = detail
            self._ctx.log.debug("step.progress", step=self.name, detail=detail)

    async def __aenter__(self) -> Step:
        self._started = anyio.current_time()
        deadline = math.inf if self._timeout is None else self._started + self._timeout
        self._scope = anyio.CancelScope(deadline=deadline)
        self._scope.__enter__()
        self._ctx._steps.append(self)
        self._context_tokens = bind_context(step=self.name)
        self._ctx.log.info("step.started", step=self.name)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._scope is not None
        swallowed = self._scope.__exit__(exc_type, exc, tb)
        self.result.duration = anyio.current_time() - self._started
        timed_out = self._scope.cancelled_caught
        # A task group inside the step wraps what its tasks raised: judge (and re-raise) the exception
        # that explains the failure, so a CheckFailed in a group is FAILED with its step, not ERROR.
        primary = primary_exception(exc) if exc is not None else None
        cancelled = isinstance(primary, anyio.get_cancelled_exc_class())
        if timed_out:
            self.result.outcome = Outcome.TIMEOUT
        elif isinstance(primary, CheckFailed):
            self.result.outcome = Outcome.FAILED
        elif isinstance(primary, CheckSkipped):
            self.result.outcome = Outcome.SKIPPED
        elif isinstance(primary, StepTimeout):
            self.result.outcome = Outcome.TIMEOUT
        elif cancelled:
            # Cancelled from outside: TIMEOUT only if a deadline we know of (the check's, the run's) has
            # passed; a failing sibling task or a signal is not a timeout.
            self.result.outcome = Outcome.TIMEOUT if anyio.current_time() >= self._ctx.deadline else Outcome.CANCELLED
        elif isinstance(primary, Exception):
            self.result.outcome = Outcome.ERROR
        if isinstance(primary, CheckError) and primary.step is None:
            primary.step = self.name
        self._ctx.log.info(
            "step.finished",
            step=self.name,
            outcome=self.result.outcome.value,
            duration=round(self.result.duration, 3),
            **({"detail": self.result.detail} if self.result.detail else {}),
        )
        self._ctx._steps.remove(self)
        unbind_context(self._context_tokens)
        if timed_out:
            last = f" (last seen: {self.result.detail})" if self.result.detail else ""
            raise StepTimeout(
                f"step '{self.name}' did not finish within {format_duration(self._timeout or 0.0)}{last}",
                step=self.name,
                timeout=self._timeout or 0.0,
            )
        if isinstance(exc, BaseExceptionGroup) and isinstance(primary, CheckError):
            raise primary
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
        deadline: float = math.inf,
        redactor: SecretRedactor | None = None,
        run_state: dict[str, Any] | None = None,
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
        self.deadline = deadline
        """When the check (or the run) runs out of time, on anyio's clock; ``inf`` without a limit."""
        self._redactor = redactor
        self.run_state: dict[str, Any] = run_state if run_state is not None else {}
        """A mapping every check of this run shares, on every cluster, and that ends with the run: where
        checks coordinate (the ingress check claims its host names here, so that two clusters of one run
        never test the same DNS name). Key it by your plugin's name; never keep run state in a module."""
        self._steps: list[Step] = []
        self.facts: dict[str, str] = {}
        self.results: list[StepResult] = []
        self.namespaces: list[str] = []
        """The namespaces this check made or created objects in (failure diagnostics read their events)."""
        self.waited_on: WaitedOn | None = None
        """The object the latest :meth:`wait_for` watched, as last seen (failure diagnostics show it)."""

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

    def redact(self, text: str) -> str:
        """``text`` with every secret the run knows of replaced by ``<redacted>``."""
        return self._redactor.text(text) if self._redactor is not None else text

    def fail(self, reason: str) -> NoReturn:
        """End the check as FAILED (NG) in the current step, with a reason a human understands."""
        raise CheckFailed(reason)

    def skip(self, reason: str) -> NoReturn:
        """End the check as SKIPPED: it does not apply to this cluster."""
        raise CheckSkipped(reason)

    def fact(self, key: str, value: object) -> None:
        """Report something learned (shown in reports even on success), e.g. which node joined."""
        text = self.redact(str(value))
        self.facts[key] = text
        self.log.info("check.fact", key=key, value=text)

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
        """Create an object with our labels, its deletion registered before the request is sent.

        So an interrupted request (a deadline, a signal) still leaves nothing behind: if no answer came,
        cleanup looks the object up by name and deletes it only if it carries this run's and this
        check's labels. If the API server refuses the object (4xx, e.g. 409 for a name already taken),
        nothing was created and nothing will be deleted; the :class:`KubeApiError` is raised as is.
        Deletion uses the object's uid as a precondition, so an object of the same name made by
        someone else later is never touched. Requires ``metadata.name`` or ``metadata.generateName``.
        """
        metadata = dict(manifest.get("metadata") or {})
        labels = {**(metadata.get("labels") or {}), **self.labels}
        if not metadata.get("name"):
            if not metadata.get("generateName"):
                raise ValueError(f"ctx.create({resource.kind}): the manifest needs metadata.name or generateName")
            labels[OBJECT_ID_LABEL] = _random_suffix(12)
        metadata["labels"] = labels
        return await self._create_owned(resource, {**manifest, "metadata": metadata}, namespace)

    async def namespace(self, prefix: str | None = None) -> str:
        """Create a labelled throwaway namespace ``<prefix>-test-YYYYMMDD-xxxxx`` and register its removal
        (before the request, as :meth:`create` does).

        Cleanup deletes it and waits (within the cleanup time box) until it is really gone.
        """
        stem = (prefix or self.check_name)[:30].rstrip("-")
        name = f"{stem}-test-{datetime.now(UTC):%Y%m%d}-{_random_suffix(5)}"
        manifest: KubeObject = {"metadata": {"name": name, "labels": self.labels}}
        await self._create_owned(NAMESPACES, manifest, None, wait_until_gone=True)
        self._used_namespace(name)
        return name

    def _used_namespace(self, namespace: str | None) -> None:
        if namespace and namespace not in self.namespaces:
            self.namespaces.append(namespace)

    def _is_ours(self, obj: KubeObject) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return bool(labels.get(RUN_ID_LABEL) == self.run_id and labels.get(CHECK_LABEL) == self.check_name)

    async def _create_owned(
        self, resource: Resource, manifest: KubeObject, namespace: str | None, *, wait_until_gone: bool = False
    ) -> KubeObject:
        metadata = manifest["metadata"]
        where = f"{namespace}/" if namespace else ""
        self._used_namespace(namespace)
        known: dict[str, str] = {}
        if metadata.get("name"):
            known["name"] = metadata["name"]
        shown = known.get("name") or f"{metadata.get('generateName', '')}*"

        async def find_ours() -> KubeObject | None:
            """The object this create made, if the request went through without us hearing the answer."""
            if "name" in known:
                obj = await self.kube.get(resource, known["name"], namespace)
                return obj if obj is not None and self._is_ours(obj) else None
            object_id = metadata["labels"][OBJECT_ID_LABEL]
            listed = await self.kube.list(resource, namespace, label_selector=f"{OBJECT_ID_LABEL}={object_id}")
            return next((obj for obj in listed["items"] if self._is_ours(obj)), None)

        requested: list[bool] = []
        """Set once the DELETE went out and was accepted (``[True]``) or found nothing (``[False]``)."""

        async def request_deletion() -> None:
            if "uid" not in known:
                found = await find_ours()
                if found is None:
                    requested.append(False)
                    return
                known.update(name=found["metadata"]["name"], uid=found["metadata"]["uid"])
            requested.append(await self._delete_exact(resource, known["name"], namespace, known["uid"]))

        async def delete() -> None:
            if not requested:
                await request_deletion()
            if requested[-1] and wait_until_gone:
                await self.kube.wait_for(
                    resource, known["name"], namespace, lambda obj: obj is None or _uid(obj) != known["uid"]
                )

        description = f"delete {resource.kind} {where}{shown}"
        if wait_until_gone:
            # The DELETE goes out when cleanup starts; the wait for it to be gone comes after every other
            # undo action (see kibertas_async.checks.cleanup).
            handle = self.cleanup.push(description, delete, begin=request_deletion, settle=True)
        else:
            handle = self.cleanup.push(description, delete)
        created = await self._post_retrying(resource, manifest, namespace, find_ours, handle)
        known.update(name=created["metadata"]["name"], uid=_uid(created))
        self.log.info("object.created", kind=resource.kind, name=f"{where}{known['name']}")
        return created

    async def _post_retrying(
        self,
        resource: Resource,
        manifest: KubeObject,
        namespace: str | None,
        find_ours: Callable[[], Awaitable[KubeObject | None]],
        handle: object,
    ) -> KubeObject:
        """POST, retrying while the API server cannot be reached (a restart), for at most
        :data:`CREATE_RETRY_SECONDS`. Before each retry, look for the object: the lost attempt may have
        gone through, and a second POST must not make a second object."""
        give_up = anyio.current_time() + CREATE_RETRY_SECONDS
        attempt = 0
        while True:
            try:
                return await self.kube.create(resource, manifest, namespace)
            except KubeApiError as error:
                if error.status == 409 and manifest["metadata"].get("name"):
                    # A retried POST whose first attempt went through: the object may be ours after all.
                    found = await find_ours()
                    if found is not None:
                        return found
                if 400 <= error.status < 500:
                    self.cleanup.discard(handle)  # refused: nothing was created (409: someone else's name)
                raise
            except KubeUnavailable as error:
                attempt += 1
                delay = backoff_delay(attempt)
                if anyio.current_time() + delay > give_up:
                    raise
                self.progress(f"API server unreachable, retrying the {resource.kind} create: {error}")
                await anyio.sleep(delay)
            try:
                found = await find_ours()
            except (KubeUnavailable, KubeApiError):
                continue
            if found is not None:
                return found

    async def _delete_exact(self, resource: Resource, name: str, namespace: str | None, uid: str) -> bool:
        """Delete this very object (its uid as precondition); ``False`` if it was already gone."""
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": {"uid": uid},
        }
        try:
            await self.kube.request("DELETE", resource.path(namespace, name), body=body)
        except KubeApiError as error:
            if error.status == 404:
                return False
            if error.status == 409:  # the uid differs: that name is now someone else's object
                return False
            raise
        return True

    async def wait_for(
        self,
        resource: Resource,
        name: str,
        namespace: str | None,
        until: Callable[[KubeObject | None], bool],
        *,
        progress: Callable[[KubeObject | None], str] | None = None,
        timeout: float | None = None,
        fail: Failure[KubeObject | None] | None = None,
    ) -> KubeObject | None:
        """Watch an object until ``until(obj)`` holds (``None`` means absent); progress goes on the step.

        ``until`` may raise (``ctx.fail``, :class:`~kibertas_async.PermanentError`) to end the wait at
        once on a terminal condition.

        :param timeout: with it, when ``timeout`` seconds pass first, the check FAILS in the current step
            with a reason made by ``fail`` from the last object seen (``None``: absent): a function
            returning the reason (it may be async, to look something up), or a sentence to which the
            wait's duration and ``progress(last object)`` are added: ``"<fail> within 5m; last seen:
            <progress>"``. Without ``fail``, a sentence naming the object. Without ``timeout``, the
            step's or the check's deadline bounds the wait, and reaching it is TIMEOUT.
        """
        if timeout is None and fail is not None:
            raise TypeError("wait_for: fail= applies when the timeout= runs out; give timeout=")
        seen: list[KubeObject | None] = []
        self.waited_on = WaitedOn(resource, name, namespace)

        def watched(obj: KubeObject | None) -> bool:
            seen[:] = [obj]
            self.waited_on = WaitedOn(resource, name, namespace, obj, seen=True)
            done = until(obj)
            if done:
                self.waited_on = WaitedOn(resource, name, namespace, obj, seen=True, done=True)
            return done

        if timeout is None:
            return await self.kube.wait_for(
                resource, name, namespace, watched, progress=progress, on_progress=self.progress
            )
        with anyio.move_on_after(timeout):
            return await self.kube.wait_for(
                resource, name, namespace, watched, progress=progress, on_progress=self.progress
            )
        last = seen[0] if seen else None
        if not seen:
            observation = "the API server had not listed it yet"
        elif progress is not None:
            observation = progress(last)
        else:
            observation = "absent" if last is None else f"resourceVersion {last['metadata'].get('resourceVersion')}"
        where = f"{namespace}/" if namespace else ""
        reason = await failure_reason(
            fail,
            last,
            waited=format_duration(timeout),
            observation=observation,
            default=f"{resource.kind} {where}{name} did not get there",
        )
        raise CheckFailed(self.redact(reason))

    # --- external systems ---------------------------------------------------------------------

    async def poll(
        self,
        attempt: Callable[[], Awaitable[T | None]],
        *,
        timeout: float | None = None,
        fail: Failure[PollState] | None = None,
        first_delay: float = 0.5,
        max_delay: float = 15.0,
    ) -> T:
        """Call ``attempt`` until it returns something other than ``None``, backing off exponentially
        (with jitter) from ``first_delay`` to ``max_delay``. For systems that cannot be watched (DNS,
        HTTP, S3, Datadog). The first try is immediate.

        An attempt raises :class:`~kibertas_async.TemporaryError` for "not yet, because …" (its message
        becomes the step's progress; its ``delay``, what a server asked for, the least wait before the
        next try) and :class:`~kibertas_async.PermanentError` for NG at once (never retried).

        :param timeout: with it, when ``timeout`` seconds pass, the check FAILS in the current step with
            a reason made by ``fail`` from a :class:`~kibertas_async.PollState` (attempts, the last
            :class:`~kibertas_async.TemporaryError`): a function returning the reason (it may be async),
            or a sentence: ``"<fail> within 30s; last seen: <the last attempt's message>"``. Without
            ``timeout``, the step's or the check's deadline bounds it, and reaching that is TIMEOUT.
        """
        return await _poll(
            attempt,
            timeout=timeout,
            fail=fail,
            first_delay=first_delay,
            max_delay=max_delay,
            on_progress=self.progress,
        )
