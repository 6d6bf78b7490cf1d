"""Bad input: one line naming the problem, exit code 2, no traceback, and nothing run or created.

The catalogue covers the command line, the environment, the config file, the kubeconfig, option values
and plugins; every new kind of bad input found gets a row here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import RunCli

CHATWORK = "kibertas_async_chatwork.plugin"


def _assert_usage_error(result: object, expected: str, *, prefix: str = "kibertas-async: error: ") -> None:
    code, err, journal = result.code, result.err, result.journal  # type: ignore[attr-defined]
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix)
    assert expected in lines[0]
    assert "Traceback" not in err
    assert journal == [], "a check ran despite bad input"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "no-such-check"], "unknown check 'no-such-check'"),
        (["run", "sleeper1"], "did you mean 'sleeper-1'?"),
        (["run", "sleeper-1", "--exclude", "nope"], "unknown check 'nope'"),
        (["run"], "name the checks to run, or use --all or --tags"),
        (["run", "--all", "sleeper-1"], "give check names or --all, not both"),
        (["run", "--tags", "no-such-tag"], "no check has any of the tags no-such-tag"),
        (["run", "sleeper-1", "--exclude", "sleeper-1"], "nothing left to run"),
        (["run", "sleeper-1", "--clusters", "gamma"], "unknown context 'gamma'"),
        (["run", "sleeper-1", "--clusters", "alpha,alpha"], "cluster 'alpha' is given twice"),
        (["run", "sleeper-1", "--clusters", "x="], "is empty; use NAME or NAME=CONTEXT"),
        (["run", "sleeper-1", "--clusters", "in-cluster"], "only works inside a Kubernetes Pod"),
        (["run", "sleeper-1", "--concurrency", "0"], "invalid value '0' for --concurrency (from flag --concurrency)"),
        (["run", "sleeper-1", "--check-timeout", "soon"], "is not a duration"),
        (["run", "sleeper-1", "--run-id", "Bad ID"], "must be a valid label value"),
        (["run", "sleeper-1", "--report-json", "/no/such/dir/r.json"], "directory /no/such/dir does not exist"),
        (["run", "sleeper-1", "--log-level", "loud"], "'loud' is not one of debug, info, warning, error"),
        (["run", "sleeper-1", "--log-format", "xml"], "'xml' is not one of auto, json, console"),
        (["run", "sleeper-1", "--config", ""], "argument --config: the value is empty"),
        (["run", "sleeper-1", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        # Holes in lists: dropping them quietly ran something else than asked (the current context!).
        (["run", "sleeper-1", "--clusters", ""], "--clusters is empty"),
        (["run", "sleeper-1", "--clusters", "  "], "--clusters is empty"),
        (["run", "sleeper-1", "--clusters", "alpha,,beta"], "--clusters 'alpha,,beta' has an empty entry"),
        (["run", "sleeper-1", "--clusters", "alpha,"], "--clusters 'alpha,' has an empty entry"),
        (["run", "--tags", "a,,b"], "--tags 'a,,b' has an empty entry"),
        (["run", "--tags", ""], "--tags is empty"),
        (["run", "sleeper-1", "--exclude", ""], "--exclude is empty"),
        (["run", "sleeper-1", "--exclude", "sleeper-2,"], "--exclude 'sleeper-2,' has an empty entry"),
        # Numbers and durations out of range.
        (["run", "sleeper-1", "--concurrency=-3"], "'-3' must be at least 1"),
        (["run", "sleeper-1", "--cluster-concurrency", "1.5"], "'1.5' is not a whole number"),
        (["run", "sleeper-1", "--check-timeout", "0s"], "'0s' must be longer than zero"),
        (["run", "sleeper-1", "--run-timeout=-5s"], "'-5s' is not a duration"),
        (["run", "sleeper-1", "--run-id", "a" * 64], "must be a valid label value"),
        (["run", "sleeper-1", "--run-id", "ends-with-dash-"], "must be a valid label value"),
        (["run", "sleeper-1", "--run-id", ""], "--run-id '' must be a valid label value"),
        # Option values that are only whitespace (a quoting slip), secret or not.
        (["run", "sleeper-1", "--report-json", " "], "for --report-json (from flag --report-json): the value is only"),
        (["run", "sleeper-1", "--synthetic-secret", " \t"], "invalid value <secret> for --synthetic-secret"),
        (["run", "sleeper-1", "--kubeconfig", ""], "--kubeconfig '' has an empty path"),
        # cleanup validates the same way, before connecting anywhere.
        (["cleanup", "--clusters", ""], "--clusters is empty"),
        (["cleanup", "--clusters", "alpha,,beta"], "has an empty entry"),
        (["cleanup", "--clusters", "gamma"], "unknown context 'gamma'"),
        (["cleanup", "--run-id", "Bad ID"], "must be a valid label value"),
        (["cleanup", "--timeout", "0s"], "--timeout: '0s' must be longer than zero"),
        (["cleanup", "--timeout", "soon"], "--timeout: 'soon' is not a duration"),
    ],
)
def test_bad_command_line(run_cli: RunCli, args: list[str], expected: str) -> None:
    _assert_usage_error(run_cli(*args), expected)


def test_missing_kubeconfig(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("run", "sleeper-1", "--kubeconfig", str(tmp_path / "missing.yaml"))
    _assert_usage_error(result, "missing.yaml does not exist")


def test_kubeconfig_that_is_not_yaml(run_cli: RunCli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("contexts: [unclosed\n")
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(broken)), "is not valid YAML")


def test_kubeconfig_without_current_context(run_cli: RunCli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(empty)), "has no current context")


def test_unreadable_kubeconfig(run_cli: RunCli, tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(directory)), "cannot read kubeconfig")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("defaults: [1, 2\n", "is not valid YAML at line"),
        ("- just\n- a list\n", "must be a mapping"),
        ("clusters: {}\nextra: 1\n", "unknown top-level key 'extra'"),
        (
            "defaults: {synthetic-dealy: 1s}\n",
            "unknown option 'synthetic-dealy' under defaults (did you mean 'synthetic-delay'?)",
        ),
        ("clusters: {alpha: {concurrency: 2}}\n", "'concurrency' applies to the whole run; set it under defaults"),
        ("clusters: {alpha: {synthetic-delay: never}}\n", "for --synthetic-delay (from config file clusters.alpha)"),
        ("defaults: 5\n", "'defaults' must be a mapping"),
        ("defaults: []\n", "'defaults' must be a mapping"),
        ("clusters: [alpha, beta]\n", "'clusters' must map each cluster name to option values"),
        ("clusters: []\n", "'clusters' must map each cluster name to option values"),
        ("clusters: {alpha: [synthetic-delay]}\n", "'clusters' must map each cluster name to option values"),
        ("defaults: {check-timeout: 0s}\n", "'0s' must be longer than zero"),
        ("defaults: {concurrency: -1}\n", "'-1' must be at least 1"),
        ("defaults: {report-json: '   '}\n", "(from config file defaults): the value is only whitespace"),
    ],
)
def test_bad_config_file(run_cli: RunCli, tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(content)
    _assert_usage_error(run_cli("run", "sleeper-1", "--config", str(config)), expected)


def test_missing_config_file(run_cli: RunCli, tmp_path: Path) -> None:
    _assert_usage_error(run_cli("run", "sleeper-1", "--config", str(tmp_path / "nope.yaml")), "cannot read config file")


def test_invalid_environment_value(run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KIBERTAS_ASYNC_CLUSTER_CONCURRENCY", "many")
    _assert_usage_error(
        run_cli("run", "sleeper-1"),
        "for --cluster-concurrency (from environment variable KIBERTAS_ASYNC_CLUSTER_CONCURRENCY)",
    )


def test_secret_value_is_not_echoed_in_an_error(run_cli: RunCli, tmp_path: Path) -> None:
    # A secret option that fails to parse must not print the secret; the synthetic secret accepts any
    # text, so use the config-file path with a structure that still parses to text: nothing to echo.
    result = run_cli("run", "sleeper-1", "--synthetic-secret", "abcd1234", "--concurrency", "0")
    assert "abcd1234" not in result.err


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"KIBERTAS_ASYNC_CLUSTERS": ""}, "KIBERTAS_ASYNC_CLUSTERS is empty"),
        ({"KIBERTAS_ASYNC_CLUSTERS": "alpha,,beta"}, "KIBERTAS_ASYNC_CLUSTERS 'alpha,,beta' has an empty entry"),
        (
            {"KIBERTAS_ASYNC_CONCURRENCY": " "},
            "for --concurrency (from environment variable KIBERTAS_ASYNC_CONCURRENCY)",
        ),
        ({"KIBERTAS_ASYNC_CHECK_TIMEOUT": "-5s"}, "'-5s' is not a duration"),
        ({"LOG_LEVEL": "loud"}, "'loud' is not one of debug, info, warning, error (from --log-level, "),
        ({"KIBERTAS_ASYNC_CONFIG": ""}, "the value is empty (from --config or KIBERTAS_ASYNC_CONFIG)"),
        ({"KUBECONFIG": ":"}, "KUBECONFIG=':' names no file"),
        ({"KUBECONFIG": " : "}, "names no file"),
    ],
)
def test_bad_environment(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    _assert_usage_error(run_cli("run", "sleeper-1"), expected)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"KIBERTAS_ASYNC_CLUSTERS": "alpha,"}, "KIBERTAS_ASYNC_CLUSTERS 'alpha,' has an empty entry"),
        ({"LOG_LEVEL": "loud"}, "'loud' is not one of debug, info, warning, error"),
        ({"KIBERTAS_ASYNC_LOG_FORMAT": "xml"}, "'xml' is not one of auto, json, console"),
    ],
)
def test_bad_environment_for_cleanup(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    _assert_usage_error(run_cli("cleanup"), expected)


def test_kubeconfig_with_an_empty_path_between_files(run_cli: RunCli, kubeconfig: Path) -> None:
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", f"{kubeconfig}::{kubeconfig}"), "has an empty path")


def test_kubeconfig_that_is_a_list(run_cli: RunCli, tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- apiVersion: v1\n")
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(listed)), "is not a kubeconfig")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("apiVersion: v1\nclusters: 5\n", "'clusters' must be a list"),
        ("apiVersion: v1\ncontexts: {alpha: beta}\n", "'contexts' must be a list"),
    ],
)
def test_kubeconfig_of_the_wrong_shape(run_cli: RunCli, tmp_path: Path, content: str, expected: str) -> None:
    odd = tmp_path / "odd.yaml"
    odd.write_text(content)
    _assert_usage_error(run_cli("run", "sleeper-1", "--kubeconfig", str(odd)), expected)


def test_current_context_missing_from_the_kubeconfig(run_cli: RunCli, tmp_path: Path) -> None:
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text("apiVersion: v1\nkind: Config\ncurrent-context: gone\ncontexts: []\n")
    _assert_usage_error(
        run_cli("run", "sleeper-1", "--kubeconfig", str(dangling)), "current-context 'gone' is not defined"
    )


# --- plugins: a half-configured notifier, and plugins that break the contract -----------------


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"CHATWORK_API_TOKEN": "tok3n-never-shown"},
            "--chatwork-api-token is set (from environment variable CHATWORK_API_TOKEN) "
            "but --chatwork-room-id is not; set --chatwork-room-id or KIBERTAS_ASYNC_CHATWORK_ROOM_ID or "
            "CHATWORK_ROOM_ID",
        ),
        ({"CHATWORK_ROOM_ID": "42"}, "--chatwork-room-id is set (from environment variable CHATWORK_ROOM_ID) but"),
        ({"CHATWORK_ROOM_ID": "my-room"}, "is not a Chatwork room id"),
    ],
)
def test_half_a_chatwork_configuration_is_refused_before_the_run(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], expected: str
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    result = run_cli("run", "sleeper-1", "--plugin", CHATWORK)
    _assert_usage_error(result, expected)
    assert "tok3n-never-shown" not in result.err


def test_half_a_chatwork_configuration_in_the_config_file(run_cli: RunCli, tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("defaults: {chatwork-api-token: tok3n-never-shown}\n")
    result = run_cli("run", "sleeper-1", "--plugin", CHATWORK, "--config", str(config))
    _assert_usage_error(result, "--chatwork-api-token is set (from config file defaults) but --chatwork-room-id")
    assert "tok3n-never-shown" not in result.err


BAD_PLUGINS = {
    "kibertas_async_bad_misspelled": (
        "from kibertas_async import hookimpl\n\n\n@hookimpl\ndef kibertas_async_register_chekcs():\n    return []\n"
    ),
    "kibertas_async_bad_duplicate": (
        "from kibertas_async import Option, hookimpl\n\n\n@hookimpl\ndef kibertas_async_register_options():\n"
        "    return [Option('concurrency', 'Again.', default=1)]\n"
    ),
    "kibertas_async_bad_requires": (
        "from kibertas_async import Option, hookimpl\n\n\n@hookimpl\ndef kibertas_async_register_options():\n"
        "    return [Option('bad-token', 'Needs a room no plugin has.', default='', requires=('bad-room',))]\n"
    ),
}


@pytest.mark.parametrize(
    ("module", "args", "expected", "prefix"),
    [
        ("kibertas_async_bad_misspelled", [], "implements an unknown hook", "kibertas-async: plugin error: "),
        (
            "kibertas_async_bad_duplicate",
            [],
            "option --concurrency is registered twice",
            "kibertas-async: plugin error: ",
        ),
        (
            "kibertas_async_bad_requires",
            ["--bad-token", "x"],
            "--bad-token (from flag --bad-token) needs --bad-room, which no loaded plugin has",
            "kibertas-async: error: ",
        ),
    ],
)
def test_plugins_that_break_the_contract(
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    module: str,
    args: list[str],
    expected: str,
    prefix: str,
) -> None:
    (tmp_path / f"{module}.py").write_text(BAD_PLUGINS[module])
    monkeypatch.syspath_prepend(str(tmp_path))
    _assert_usage_error(run_cli("run", "sleeper-1", "--plugin", module, *args), expected, prefix=prefix)
