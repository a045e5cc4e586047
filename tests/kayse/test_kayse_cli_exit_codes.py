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
