"""Which view ``--log-format`` gives, without a terminal: the choice itself, ``auto`` off a terminal, and
rich left unimported where no board is shown."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pluggy
import pytest
import structlog

from kibertas_async.events import choose_log_format, get_logger, run_view
from kibertas_async.hookspecs import PROJECT_NAME


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _logging_as_before() -> Iterator[None]:
    """These tests configure logging for the whole process: leave it as it was found."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("kibertas_async").setLevel(logging.NOTSET)


@pytest.mark.parametrize(
    ("requested", "on_terminal", "environ", "chosen"),
    [
        ("auto", False, {}, "json"),
        ("auto", False, {"TERM": "xterm-256color"}, "json"),
        ("auto", True, {"TERM": "xterm-256color"}, "live"),
        ("auto", True, {"TERM": "xterm-256color", "NO_COLOR": "1"}, "live"),  # colour only
        ("auto", True, {"TERM": "dumb"}, "console"),
        ("auto", True, {"TERM": "xterm", "CI": "true"}, "console"),
        ("auto", True, {"TERM": "xterm", "CI": "0"}, "live"),
        ("json", True, {}, "json"),
        ("console", True, {}, "console"),
        ("live", False, {"CI": "true"}, "live"),  # asked for: the board, drawn once at the end
    ],
)
def test_choose_log_format(requested: str, on_terminal: bool, environ: dict[str, str], chosen: str) -> None:
    stream = _Terminal() if on_terminal else io.StringIO()
    assert choose_log_format(requested, stream, environ) == chosen


def test_auto_off_a_terminal_is_json_lines_and_no_board() -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    stream = io.StringIO()
    with run_view("auto", level="info", plugins=manager, stream=stream, environ={}) as chosen:
        get_logger(run_id="r1", cluster="c", check="k").info("step.started", step="s")
        get_logger(run_id="r1", cluster="c", check="k").debug("step.progress", step="s", detail="1/2")
    assert chosen == "json"
    assert manager.get_plugins() == set()
    [line] = stream.getvalue().splitlines()
    event = json.loads(line)
    assert list(event) == ["run_id", "cluster", "check", "step", "event", "level", "timestamp"]
    assert (event["event"], event["level"], event["step"]) == ("step.started", "info", "s")


def test_the_board_registers_for_the_run_and_leaves_after_it() -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    stream = io.StringIO()
    with run_view("live", level="info", plugins=manager, stream=stream, environ={}) as chosen:
        [board] = manager.get_plugins()
        get_logger(run_id="r1").warning("run.interrupted", signal="SIGINT")
    assert chosen == "live"
    assert manager.get_plugins() == set()
    assert type(board).__name__ == "LiveBoard"
    # Off a terminal the warning is a plain line, and the board is drawn once, when it stops.
    text = stream.getvalue()
    assert "run.interrupted" in text
    assert "\x1b[" not in text
    assert text.index("run.interrupted") < text.index("interrupted by SIGINT")


def test_help_and_list_do_not_import_rich() -> None:
    code = (
        "import sys\n"
        "from kibertas_async.cli import main\n"
        "for argv in (['--help'], ['list']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "print('rich' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "False", done.stdout


def test_an_exception_through_the_run_stops_the_board_and_gives_the_cursor_back() -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    terminal = _Terminal()
    stderr = sys.stderr
    redirected: list[bool] = []

    def broken_run() -> None:
        with run_view("auto", level="info", plugins=manager, stream=terminal, environ={"TERM": "xterm"}):
            redirected.append(sys.stderr is not stderr)  # stray writes go above the board meanwhile
            raise RuntimeError("the engine broke")

    with pytest.raises(RuntimeError, match="the engine broke"):
        broken_run()
    assert redirected == [True]
    drawn = terminal.getvalue()
    assert drawn.rfind("\x1b[?25h") > drawn.rfind("\x1b[?25l") > -1
    assert sys.stderr is stderr
    assert manager.get_plugins() == set()
