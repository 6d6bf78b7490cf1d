"""Running checks from a test: the real ``kibertas-async run``, on a sandbox's clusters, typed results back.

kopf's ``KopfRunner`` is the model: the test says what to run, the runner runs the real CLI (in this
process, or as a subprocess exactly as a user would), and hands back what a test asserts on — the exit
code, the :class:`~kibertas_async.results.RunReport` read from ``--report-json`` (typed results:
outcome, step, reason, facts, steps, cleanup actions, API request count), the JSON event stream, stdout::

    def test_my_check_passes(check_runner: CheckRunner, nothing_left: NothingLeft) -> None:
        run = check_runner.run("my-check", "--my-option", "value")
        assert run.code == 0, run.err
        result = run.result("sandbox-1")
        assert result.outcome is Outcome.PASSED
        assert result.facts["objects created"] == "1"
        nothing_left(run)

Runs are hermetic: every environment variable an installed option reads (``KIBERTAS_ASYNC_*`` and the
reference tool's names, ``DD_API_KEY``, ``LOG_BUCKET_NAME``, ...) is hidden from the run unless the test
passes it in ``env``, so a developer's shell never changes a test's result. By default the sandbox's own
settings (``<state>/kibertas-async.yaml``, what ``sandbox up`` writes for its add-ons) are the run's
``--config``; ``run(..., settings={"sandbox-1": {"ingress-class": "traefik"}})`` lays a test's own values
over them for one run. A test that signals a run midway starts it in the background instead
(:meth:`CheckRunner.start`), follows its events as they arrive, and then waits for the same
:class:`RunResult`. :func:`leftovers` lists every object that carries the run's labels, on every kind the API
server serves (the discovery that ``kibertas-async cleanup`` uses), so "nothing left" means nothing.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from kibertas_async.results import CheckResult, RunReport
from kibertas_async.sandbox.runner import Sandbox

__all__ = [
    "BackgroundRun",
    "CheckRunner",
    "ClusterSettings",
    "RunResult",
    "find_leftovers",
    "leftovers",
    "option_environment_names",
    "remove_leftovers",
    "sweep_leftovers",
]

SUBPROCESS_TIMEOUT = 900.0
"""Bound on one subprocess run (a guard against a hung test, not a performance assertion)."""
STOP_GRACE = 180.0
"""Seconds a background run that a test left running has, after SIGTERM, to clean up before it is killed:
more than one cleanup action's default limit (``--cleanup-timeout``, 120 s)."""

ClusterSettings = Mapping[str, Mapping[str, object]]
"""Option values per cluster, as under ``clusters:`` in a ``--config`` file: ``{"sandbox-1": {"ingress-class":
"traefik"}}``."""


@dataclass
class RunResult:
    """What one ``kibertas-async run`` produced."""

    argv: list[str]
    """The arguments after ``kibertas-async``."""
    code: int
    """The exit code: 0 all passed, 1 NG, 2 bad input, 130/143 interrupted."""
    out: str
    """stdout: the summary table."""
    err: str
    """stderr: the event stream (JSON lines) and one-line errors."""
    report_json: dict[str, Any] | None
    """The ``--report-json`` document as written; ``None`` when the run wrote none (bad input)."""
    wall_time: float
    """Seconds the run took, measured around it (for benchmarks and messages, never for assertions)."""
    report: RunReport | None = field(init=False)
    """The report, typed; ``None`` when the run wrote none."""

    def __post_init__(self) -> None:
        from kibertas_async.outputs.json_report import report_from_dict

        self.report = None if self.report_json is None else report_from_dict(self.report_json)

    @property
    def run_id(self) -> str | None:
        """The run's id (its objects carry it as a label)."""
        return None if self.report is None else self.report.run_id

    @property
    def results(self) -> list[CheckResult]:
        """Every check's result on every cluster."""
        if self.report is None:
            raise AssertionError(f"the run wrote no report (exit {self.code}); its stderr:\n{self.err[-3000:]}")
        return list(self.report.results)

    def result(self, cluster: str, check: str | None = None) -> CheckResult:
        """The result of ``check`` (or the only check run) on ``cluster``."""
        found = [r for r in self.results if r.cluster == cluster and (check is None or r.check == check)]
        if len(found) != 1:
            seen = [(r.cluster, r.check) for r in self.results]
            raise AssertionError(f"expected one result for {cluster}/{check or '*'}, the report has {seen}")
        return found[0]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON events on stderr, in order (other lines, like a one-line error, are left out)."""
        parsed: list[dict[str, Any]] = []
        for line in self.err.splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    parsed.append(json.loads(line))
        return parsed

    def events_named(self, name: str) -> list[dict[str, Any]]:
        """The events whose ``event`` is ``name`` (``check.finished``, ``step.finished``, ...)."""
        return [event for event in self.events if event.get("event") == name]


class CheckRunner:
    """Runs ``kibertas-async run`` on a sandbox's clusters; see the module docstring.

    :param sandbox: the sandbox whose kubeconfig and settings the runs use.
    :param work_dir: where reports and per-run settings files go (one of each per run).
    :param clusters: the clusters a run targets unless told otherwise (default: every cluster).
    :param use_sandbox_settings: pass the sandbox's ``kibertas-async.yaml`` as ``--config``. Without it
        the sandbox's kubeconfig still names that file (its contexts' ``kibertas-async.io/settings``), so
        its values still apply, below environment and ``--config``; ``--ignore-kubeconfig-settings`` in a
        run's arguments turns them off.
    """

    def __init__(
        self,
        sandbox: Sandbox,
        work_dir: Path,
        *,
        clusters: Sequence[str] | None = None,
        use_sandbox_settings: bool = True,
    ) -> None:
        self.sandbox = sandbox
        self.work_dir = work_dir
        self.clusters = _cluster_names(clusters) if clusters is not None else tuple(c.name for c in sandbox.clusters)
        self.use_sandbox_settings = use_sandbox_settings
        self.runs: list[RunResult] = []
        """Every finished run so far, oldest first."""
        self._numbers = itertools.count(1)

    def argv(
        self,
        *args: str,
        clusters: Sequence[str] | None = None,
        report: Path | None = None,
        config: Path | None = None,
    ) -> list[str]:
        """The full ``run`` arguments for ``args`` (checks and options), as :meth:`run` passes them.

        :param config: the ``--config`` file (default: the sandbox's settings, if the runner uses them);
            ignored when ``args`` has its own ``--config``.
        """
        argv = ["run", *args, "--kubeconfig", str(self.sandbox.kubeconfig)]
        argv += ["--clusters", ",".join(_cluster_names(clusters) if clusters is not None else self.clusters)]
        settings = config if config is not None else self.sandbox.run_config
        if "--config" not in args and (config is not None or (self.use_sandbox_settings and settings.is_file())):
            argv += ["--config", str(settings)]
        if report is not None:
            argv += ["--report-json", str(report)]
        if "--log-format" not in args:
            argv += ["--log-format", "json"]
        return argv

    def settings_file(self, settings: ClusterSettings, path: Path) -> Path:
        """Write to ``path`` a ``--config`` file: the sandbox's settings (when the runner uses them) with
        ``settings`` laid over each named cluster's values; returns ``path``."""
        import yaml

        document: dict[str, Any] = {}
        if self.use_sandbox_settings and self.sandbox.run_config.is_file():
            document = yaml.safe_load(self.sandbox.run_config.read_text(encoding="utf-8")) or {}
        per_cluster = document.setdefault("clusters", {})
        for cluster, values in settings.items():
            per_cluster.setdefault(cluster, {}).update(values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=True), encoding="utf-8")
        return path

    def run(
        self,
        *args: str,
        clusters: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        settings: ClusterSettings | None = None,
        in_process: bool = True,
    ) -> RunResult:
        """Run ``kibertas-async run ARGS`` and return what it produced.

        :param args: check names and options, as on the command line (``"--all"``, ``"--tags", "dns"``).
        :param clusters: the clusters to target (default: the runner's).
        :param env: environment variables the run sees (every option's variables are hidden otherwise).
        :param settings: option values per cluster for this run, laid over the sandbox's settings
            (:meth:`settings_file`) and passed as ``--config``.
        :param in_process: run :func:`kibertas_async.cli.main` in this process (fast, debuggable), or
            ``python -m kibertas_async`` as a subprocess (signals, exit codes and imports as a user gets them).
        """
        argv, report = self._prepare(args, clusters, settings)
        started = time.monotonic()
        if in_process:
            code, out, err = _run_in_process(argv, env or {})
        else:
            code, out, err = _run_subprocess(argv, env or {})
        return self._finish(argv, report, code, out, err, time.monotonic() - started)

    def start(
        self,
        *args: str,
        clusters: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        settings: ClusterSettings | None = None,
    ) -> BackgroundRun:
        """Start ``kibertas-async run ARGS`` as a subprocess and return at once, for a test that acts while
        the run is under way (sends it a signal, breaks a cluster): the parameters are :meth:`run`'s. Use
        it as a context manager, so a run the test did not wait for is ended (SIGTERM, its cleanup, then
        reaped; see :meth:`BackgroundRun.__exit__`)::

            with check_runner.start("my-check") as running:
                for event in running.events():
                    if event.get("event") == "step.started":
                        break
                running.send_signal(signal.SIGTERM)
                run = running.wait()
            assert run.code == 143
        """
        argv, report = self._prepare(args, clusters, settings)
        with _environment(env or {}) as environment:
            process = subprocess.Popen(
                [sys.executable, "-m", "kibertas_async", *argv],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
        return BackgroundRun(self, argv, report, process)

    def _prepare(
        self, args: Sequence[str], clusters: Sequence[str] | None, settings: ClusterSettings | None
    ) -> tuple[list[str], Path]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        number = next(self._numbers)
        report = self.work_dir / f"report-{number}.json"
        report.unlink(missing_ok=True)
        config = None if settings is None else self.settings_file(settings, self.work_dir / f"settings-{number}.yaml")
        return self.argv(*args, clusters=clusters, report=report, config=config), report

    def _finish(self, argv: list[str], report: Path, code: int, out: str, err: str, wall_time: float) -> RunResult:
        document = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
        result = RunResult(argv, code, out, err, document, wall_time)
        self.runs.append(result)
        return result


class BackgroundRun:
    """A run :meth:`CheckRunner.start` started: follow its :meth:`events`, signal it, :meth:`wait` for it.

    Its stdout and stderr are read as they come (by two threads), so a run never blocks on a full pipe
    while the test does something else.
    """

    def __init__(self, runner: CheckRunner, argv: list[str], report: Path, process: subprocess.Popen[str]) -> None:
        self.argv = argv
        """The arguments after ``kibertas-async``."""
        self.process = process
        """The ``python -m kibertas_async`` process."""
        self._runner = runner
        self._report = report
        self._started = time.monotonic()
        self._out: list[str] = []
        self._err: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None and process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(process.stdout, self._out, None), daemon=True),
            threading.Thread(target=self._read, args=(process.stderr, self._err, self._lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], lines: list[str], follow: queue.Queue[str | None] | None) -> None:
        for line in stream:
            lines.append(line)
            if follow is not None:
                follow.put(line)
        if follow is not None:
            follow.put(None)

    def events(self, timeout: float = SUBPROCESS_TIMEOUT) -> Iterator[dict[str, Any]]:
        """The run's JSON events (stderr) as they arrive, until the run closes its stderr; each event is
        yielded once. Stop iterating at any time; :meth:`wait`'s result still has them all.

        :param timeout: seconds to wait for the next line before failing the test.
        """
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no output from the run for {timeout:g}s: {self.argv}") from None
            if line is None:
                self._lines.put(None)  # the end stays visible to a later call
                return
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    yield json.loads(line)

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` (``signal.SIGTERM``, ``signal.SIGINT``) to the run."""
        self.process.send_signal(signum)

    def wait(self, timeout: float = SUBPROCESS_TIMEOUT) -> RunResult:
        """Wait for the run to end and return what it produced, as :meth:`CheckRunner.run` does."""
        code = self.process.wait(timeout=timeout)
        self._close()
        wall_time = time.monotonic() - self._started
        return self._runner._finish(self.argv, self._report, code, "".join(self._out), "".join(self._err), wall_time)

    def __enter__(self) -> BackgroundRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Stop the run if it is still going (the test failed, or never waited), and reap it.

        The run is continued (the test may have stopped it with SIGSTOP) and asked to end with SIGTERM,
        so that it cleans up as it does for a user; only a run still going after ``STOP_GRACE`` seconds is
        killed. A failing test then leaves nothing behind for the tests after it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        self._close()

    def _close(self) -> None:
        """Read the pipes to their end and close them (an open pipe is a ResourceWarning)."""
        for reader in self._readers:
            reader.join()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def _cluster_names(clusters: Sequence[str]) -> tuple[str, ...]:
    if isinstance(clusters, str):  # a str is a Sequence[str]: "sandbox-1" would become "s,a,n,..."
        raise TypeError(f"clusters must be a sequence of names, not the string {clusters!r}")
    return tuple(clusters)


def option_environment_names() -> set[str]:
    """Every environment variable an installed option reads, and the engine's own ``KIBERTAS_ASYNC_*``."""
    from kibertas_async.plugins import create_plugin_manager

    names = {name for option in create_plugin_manager().options for name in option.env_names}
    return names | {name for name in os.environ if name.startswith("KIBERTAS_ASYNC_")}


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[dict[str, str]]:
    """``os.environ`` without any option's variables, plus ``env``; restored afterwards."""
    saved = dict(os.environ)
    try:
        for name in option_environment_names():
            os.environ.pop(name, None)
        os.environ.update(env)
        yield dict(os.environ)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _run_in_process(argv: list[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    from kibertas_async.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _environment(env), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    _collect_sockets_left_mid_tls_shutdown()
    return code, out.getvalue(), err.getvalue()


def _run_subprocess(argv: list[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    with _environment(env) as environment:
        completed = subprocess.run(
            [sys.executable, "-m", "kibertas_async", *argv],
            capture_output=True,
            text=True,
            env=environment,
            timeout=SUBPROCESS_TIMEOUT,
        )
    return completed.returncode, completed.stdout, completed.stderr


def _collect_sockets_left_mid_tls_shutdown() -> None:
    """Collect, without failing the test, the sockets of API connections still closing when a run ends.

    The engine closes its aiohttp sessions and ends its event loop at once, while the TLS transports of
    idle keep-alive connections need a few more loop iterations to close their sockets (aiohttp's
    "graceful shutdown" caveat). Their ResourceWarning would otherwise surface in whichever later test
    happens to trigger a garbage collection.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unclosed", category=ResourceWarning)
        gc.collect()


async def find_leftovers(
    sandbox: Sandbox, run_id: str | None = None, clusters: Sequence[str] | None = None
) -> list[str]:
    """Every object carrying our labels (``run_id``'s, or any run's) on the sandbox's clusters, described
    as ``cluster: Kind namespace/name``; every kind the API server serves is listed. Objects already being
    deleted count: a check's cleanup waits until they are gone."""
    from kibertas_async.cleanup.sweep import discover_resources, find_labelled
    from kibertas_async.kube import ClusterTarget, connect

    found: list[str] = []
    for name in tuple(clusters) if clusters is not None else tuple(c.name for c in sandbox.clusters):
        target = ClusterTarget(name, context=sandbox.cluster(name).context, kubeconfig=str(sandbox.kubeconfig))
        async with await connect(target) as kube:
            resources, _problems = await discover_resources(kube)
            objects, _unlisted = await find_labelled(kube, resources, run_id)
            found += [f"{name}: {item.describe()}" for item in objects]
    return found


def leftovers(sandbox: Sandbox, run_id: str | None = None, clusters: Sequence[str] | None = None) -> list[str]:
    """:func:`find_leftovers` from synchronous code (a test that runs the CLI in process). Called where an
    event loop already runs (an async test using the ``nothing_left`` fixture), it runs its own loop in a
    worker thread and waits for it."""
    return _from_sync(find_leftovers, sandbox, run_id, clusters)


async def remove_leftovers(
    sandbox: Sandbox, run_id: str | None = None, clusters: Sequence[str] | None = None
) -> list[str]:
    """Delete every object :func:`find_leftovers` finds (``kibertas-async cleanup``'s sweep, on the
    sandbox's clusters) and return what is still there after the sweep's wait, described the same way."""
    from kibertas_async.cleanup import sweep_clusters
    from kibertas_async.kube import ClusterTarget

    names = tuple(clusters) if clusters is not None else tuple(c.name for c in sandbox.clusters)
    targets = [
        ClusterTarget(name, context=sandbox.cluster(name).context, kubeconfig=str(sandbox.kubeconfig)) for name in names
    ]
    remaining: list[str] = []
    for result in await sweep_clusters(targets, run_id):
        if result.error:
            remaining.append(f"{result.cluster}: not swept ({result.error})")
        remaining += [f"{result.cluster}: {item.describe()}" for item in result.remaining]
        remaining += [f"{result.cluster}: {item.describe()} ({why})" for item, why in result.failures]
    return remaining


def sweep_leftovers(sandbox: Sandbox, run_id: str | None = None, clusters: Sequence[str] | None = None) -> list[str]:
    """:func:`remove_leftovers` from synchronous code, as :func:`leftovers` is."""
    return _from_sync(remove_leftovers, sandbox, run_id, clusters)


def _from_sync(
    find: Callable[[Sandbox, str | None, Sequence[str] | None], Awaitable[list[str]]],
    sandbox: Sandbox,
    run_id: str | None,
    clusters: Sequence[str] | None,
) -> list[str]:
    import anyio

    def call() -> list[str]:
        return anyio.run(find, sandbox, run_id, clusters)

    if _loop_running():
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=1) as worker:
            found = worker.submit(call).result()
    else:
        found = call()
    _collect_sockets_left_mid_tls_shutdown()
    return found


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
