"""R6 secrets: every kind of secret, planted in options, the kubeconfig, the environment and exception
texts, is searched for in every output a run makes (stdout, stderr in both log formats, the JSON and
JUnit reports, the Chatwork message, ``--dry-run``): it is found nowhere, in any encoding."""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import anyio
import pytest

from kibertas_async_chatwork.standin import ChatworkStandin
from tests.conftest import SYNTHETIC_PLUGIN_DIR

pytestmark = pytest.mark.anyio

OPTION_SECRET = "opt-S3cr3t+/val=ue"
KUBE_TOKEN = "eyJhbGciOiJSUzI1NiJ9.kube-token-9f8e7d"
KUBE_PASSWORD = "basic-auth-p@ss:word"
EXEC_KEY = "exec-env-AKIAEXAMPLE-secret-0042"
AWS_SECRET = "aws/Secret+Key=0123456789abcdef"
DD_API_KEY = "dd-api-key-00112233445566778899"
CHATWORK_TOKEN = "chatwork-token-a1b2c3d4e5"
PLANTED = (OPTION_SECRET, KUBE_TOKEN, KUBE_PASSWORD, EXEC_KEY, AWS_SECRET, DD_API_KEY, CHATWORK_TOKEN)


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def assert_no_secret(where: str, text: str) -> None:
    for secret in PLANTED:
        for form in _forms(secret):
            assert form not in text, f"{where} shows a planted secret ({secret[:8]}…)"


@pytest.fixture
def leaky_kubeconfig(tmp_path: Path) -> Path:
    key = base64.b64encode(b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIExampleKeyMaterial\n").decode()
    path = tmp_path / "kubeconfig.yaml"
    path.write_text(
        f"""
apiVersion: v1
kind: Config
current-context: alpha
clusters:
- name: alpha
  cluster: {{server: "https://127.0.0.1:1"}}
contexts:
- name: alpha
  context: {{cluster: alpha, user: token-user}}
- name: beta
  context: {{cluster: alpha, user: exec-user}}
users:
- name: token-user
  user: {{token: "{KUBE_TOKEN}", username: admin, password: "{KUBE_PASSWORD}", client-key-data: "{key}"}}
- name: exec-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token]
      env:
      - {{name: AWS_PROFILE, value: prod}}
      - {{name: AWS_SECRET_ACCESS_KEY, value: "{EXEC_KEY}"}}
""",
        encoding="utf-8",
    )
    return path


def _env(kubeconfig: Path, chatwork: ChatworkStandin) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIBERTAS_ASYNC_") and k != "KUBECONFIG"}
    env.update(
        PYTHONPATH=str(SYNTHETIC_PLUGIN_DIR),
        KUBECONFIG=str(kubeconfig),
        KIBERTAS_ASYNC_SYNTHETIC_SECRET=OPTION_SECRET,
        AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        DD_API_KEY=DD_API_KEY,
        CHATWORK_API_TOKEN=CHATWORK_TOKEN,
        CHATWORK_ROOM_ID="424242",
        CHATWORK_API_URL=chatwork.api_url,
    )
    return env


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    result = await anyio.run_process(
        [sys.executable, "-m", "kibertas_async", *args, "--plugin", "kibertas_async_synthetic"], env=env, check=False
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.mark.parametrize("log_format", ["json", "console"])
async def test_planted_secrets_appear_in_no_output(leaky_kubeconfig: Path, tmp_path: Path, log_format: str) -> None:
    async with ChatworkStandin(token=CHATWORK_TOKEN) as chatwork:
        env = _env(leaky_kubeconfig, chatwork)
        report, junit = tmp_path / "report.json", tmp_path / "junit.xml"
        code, out, err = await _cli(
            "run",
            "leaky-crash",
            "leaky-fail",
            "--clusters",
            "alpha,beta",
            "--log-format",
            log_format,
            "--log-level",
            "debug",
            "--report-json",
            str(report),
            "--junit-xml",
            str(junit),
            env=env,
        )
        dry_code, dry_out, dry_err = await _cli("run", "leaky-crash", "--clusters", "alpha,beta", "--dry-run", env=env)
    assert code == 1, err
    assert dry_code == 0, dry_err
    # The run really said what went wrong (so the search below searched something).
    data = json.loads(report.read_text())
    outcomes = sorted((r["cluster"], r["check"], r["outcome"]) for r in data["results"])
    assert outcomes == [
        ("alpha", "leaky-crash", "error"),
        ("alpha", "leaky-fail", "failed"),
        ("beta", "leaky-crash", "error"),
        ("beta", "leaky-fail", "failed"),
    ]
    assert "<redacted>" in data["results"][0]["reason"]
    assert "Traceback" in err and "ConnectionError" in err, "the traceback is logged, redacted"
    assert len(chatwork.messages) == 1
    for where, text in (
        ("stdout", out),
        ("stderr", err),
        ("--report-json", report.read_text()),
        ("--junit-xml", junit.read_text()),
        ("the Chatwork message", chatwork.messages[0].body),
        ("--dry-run stdout", dry_out),
        ("--dry-run stderr", dry_err),
    ):
        assert_no_secret(where, text)


def test_kubeconfig_credentials_are_all_found(leaky_kubeconfig: Path) -> None:
    from kibertas_async.clusters.credentials import kubeconfig_secrets
    from kibertas_async.events import SecretRedactor

    redactor = SecretRedactor(kubeconfig_secrets([leaky_kubeconfig]))
    text = f"{KUBE_TOKEN} {KUBE_PASSWORD} {EXEC_KEY} MHcCAQEEIExampleKeyMaterial AWS_PROFILE=prod"
    assert redactor.text(text) == "<redacted> <redacted> <redacted> <redacted> AWS_PROFILE=prod"


def test_bearer_credentials_are_blanked_even_when_unknown() -> None:
    from kibertas_async.events import SecretRedactor

    redactor = SecretRedactor()
    assert redactor.text("header Authorization: Bearer eyJhb.GciOi.J9x") == "header Authorization: Bearer <redacted>"
    assert redactor.text("bearer authentication failed") == "bearer authentication failed", "prose is left alone"


async def test_a_connected_clients_token_is_known_to_the_redactor() -> None:
    from kubernetes_asyncio.client import ApiClient, Configuration

    from kibertas_async.kube import KubeClient

    configuration = Configuration()
    configuration.api_key["BearerToken"] = "Bearer exec-plugin-token-0123456789"
    client = KubeClient(ApiClient(configuration=configuration), "exec")
    try:
        assert "exec-plugin-token-0123456789" in client.credentials()
    finally:
        await client.aclose()
