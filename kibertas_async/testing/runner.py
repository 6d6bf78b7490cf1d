"""Running checks from a test: the real ``kibertas-async run``, on a sandbox's clusters, typed results back.

kopf's ``KopfRunner`` is the model: the test says what to run, the runner runs the real CLI (in this
process, or as a subprocess exactly as a user would), and hands back what a test asserts on — the exit
code, the :class:`~kibertas_async.engine.results.RunReport` read from ``--report-json`` (typed results:
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
``--config``. :func:`leftovers` lists every object that carries the run's labels, on every kind the API
server serves (the discovery that ``kibertas-async cleanup`` uses), so "nothing left" means nothing.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kibertas_async.engine.results import CheckResult, RunReport
from kibertas_async.sandbox.runner import Sandbox

__all__ = ["CheckRunner", "RunResult", "find_leftovers", "leftovers", "option_environment_names"]

SUBPROCESS_TIMEOUT = 900.0
"""Bound on one subprocess run (a guard against a hung test, not a performance assertion)."""


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
    :param work_dir: where reports go (one file per run).
    :param clusters: the clusters a run targets unless told otherwise (default: every cluster).
    :param use_sandbox_settings: pass the sandbox's ``kibertas-async.yaml`` as ``--config``.
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
        self.clusters = tuple(clusters) if clusters is not None else tuple(c.name for c in sandbox.clusters)
        self.use_sandbox_settings = use_sandbox_settings
        self.runs: list[RunResult] = []
        """Every run so far, oldest first."""
        self._numbers = itertools.count(1)

    def argv(self, *args: str, clusters: Sequence[str] | None = None, report: Path | None = None) -> list[str]:
        """The full ``run`` arguments for ``args`` (checks and options), as :meth:`run` passes them."""
        from kibertas_async.sandbox.addons.discovery import RUN_CONFIG_NAME

        argv = ["run", *args, "--kubeconfig", str(self.sandbox.kubeconfig)]
        argv += ["--clusters", ",".join(clusters if clusters is not None else self.clusters)]
        settings = self.sandbox.state_dir / RUN_CONFIG_NAME
        if self.use_sandbox_settings and settings.is_file() and "--config" not in args:
            argv += ["--config", str(settings)]
        if report is not None:
            argv += ["--report-json", str(report)]
        if "--log-format" not in args:
            argv += ["--log-format", "json"]
        return argv

    def run(
        self,
        *args: str,
        clusters: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        in_process: bool = True,
    ) -> RunResult:
        """Run ``kibertas-async run ARGS`` and return what it produced.

        :param args: check names and options, as on the command line (``"--all"``, ``"--tags", "dns"``).
        :param clusters: the clusters to target (default: the runner's).
        :param env: environment variables the run sees (every option's variables are hidden otherwise).
        :param in_process: run :func:`kibertas_async.cli.main` in this process (fast, debuggable), or
            ``python -m kibertas_async`` as a subprocess (signals, exit codes and imports as a user gets them).
        """
        self.work_dir.mkdir(parents=True, exist_ok=True)
        report = self.work_dir / f"report-{next(self._numbers)}.json"
        report.unlink(missing_ok=True)
        argv = self.argv(*args, clusters=clusters, report=report)
        started = time.monotonic()
        if in_process:
            code, out, err = _run_in_process(argv, env or {})
        else:
            code, out, err = _run_subprocess(argv, env or {})
        wall_time = time.monotonic() - started
        document = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else None
        result = RunResult(argv, code, out, err, document, wall_time)
        self.runs.append(result)
        return result


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
    """:func:`find_leftovers` from synchronous code (a test that runs the CLI in process)."""
    import anyio

    found = anyio.run(find_leftovers, sandbox, run_id, clusters)
    _collect_sockets_left_mid_tls_shutdown()
    return found
