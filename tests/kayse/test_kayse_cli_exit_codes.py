"""The client raises typed errors without exit codes; the CLI's one table turns them into one
line, a hint and the README's exit code (here through `kayse-etl metadata`, one request)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GENERIC = ROOT / "mappings" / "generic.yaml"


def metadata(base_url: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    env.update(KAYSE_API_KEY=key, KAYSE_BASE_URL=base_url)
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "metadata", "--mapping", str(GENERIC)],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def test_a_refused_key_stops_with_exit_3_one_line_and_a_hint(sandbox: Any) -> None:
    wrong_key = "not-a-key-the-sandbox-knows-42"
    result = metadata(sandbox.base_url, wrong_key)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: GET /v1/metadata → 401: the API key was refused (unauthorized")
    assert lines[1].startswith("hint: check the key in KAYSE_API_KEY or --api-key-file")
    assert len(lines) == 2 and "Traceback" not in result.stderr
    assert wrong_key not in result.stderr + result.stdout


def test_a_base_url_the_client_cannot_use_is_exit_2_and_nothing_is_sent(sandbox: Any) -> None:
    with_credentials = sandbox.base_url.replace("http://", "http://someone:secret-pw@")
    result = metadata(with_credentials, sandbox.api_key)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == ["error: the Kayse base URL must not carry credentials or a query"]
    assert "secret-pw" not in result.stderr + result.stdout
    assert sandbox.request_log() == []


def test_plain_http_beyond_this_machine_is_refused_before_any_request(sandbox: Any) -> None:
    remote = "http://kayse.invalid/v1"
    result = metadata(remote, sandbox.api_key)
    assert result.returncode == 2, result.stderr
    first, hint = result.stderr.splitlines()
    assert first.startswith("error: the base URL http://kayse.invalid/v1 uses plain http://")
    assert "--allow-insecure-http" in hint and "KAYSE_ALLOW_INSECURE_HTTP=1" in hint
    assert sandbox.api_key not in result.stderr + result.stdout


def test_allow_insecure_http_lets_it_through_by_flag_or_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    env.update(KAYSE_API_KEY="k" * 24, KAYSE_BASE_URL="http://kayse.invalid/v1")
    command = [sys.executable, "-m", "pipeline", "metadata", "--mapping", str(GENERIC)]
    by_flag = subprocess.run([*command, "--allow-insecure-http"], env=env, capture_output=True, text=True)
    by_env = subprocess.run(
        command, env={**env, "KAYSE_ALLOW_INSECURE_HTTP": "1"}, capture_output=True, text=True
    )
    for result in (by_flag, by_env):  # let through: the request is tried, and the host is unknown
        assert result.returncode == 3, result.stderr
        assert "plain http" not in result.stderr


def test_the_library_refuses_plain_http_beyond_loopback_unless_allowed(
    monkeypatch: Any, tmp_path: Path
) -> None:
    import pytest

    from pipeline.model import UserError
    from pipeline.settings import Connection, resolve_connection

    monkeypatch.delenv("KAYSE_ALLOW_INSECURE_HTTP", raising=False)
    monkeypatch.setenv("KAYSE_API_KEY", "k" * 24)
    for remote in ("http://10.0.0.5/v1", "http://kayse.example.com/v1", "http://[2001:db8::1]:8080/v1"):
        with pytest.raises(UserError):
            Connection(remote, "k" * 24)
        with pytest.raises(UserError):
            resolve_connection(remote, None)
        assert resolve_connection(remote, None, allow_insecure_http=True).base_url == remote
    for local in (
        "http://127.0.0.1:8765/v1",
        "http://127.8.0.1/v1",
        "http://[::1]:80/v1",
        "http://localhost/v1",
    ):
        assert Connection(local, "k" * 24).base_url == local
    assert Connection("https://kayse.example.com/v1", "k" * 24)
    monkeypatch.setenv("KAYSE_ALLOW_INSECURE_HTTP", "1")
    assert Connection("http://10.0.0.5/v1", "k" * 24)
