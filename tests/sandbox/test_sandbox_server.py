"""Starting and stopping: --db persistence, port in use, and the `kayse-etl sandbox` command itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from pipeline.sandbox.server import DEMO_KEY, RunningSandbox, SandboxConfig, SandboxError, start_in_thread
from tests.sandbox.conftest import Api, client_body


def test_db_file_keeps_state_across_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.db")
    first = start_in_thread(SandboxConfig(port=0, db_path=db, api_keys=("k-1",)))
    try:
        api = Api(first)
        case = api.new_case()
        client = api.new_client(case_ids=[case["id"]])
    finally:
        first.stop()
    second = start_in_thread(SandboxConfig(port=0, db_path=db, api_keys=("k-1",)))
    try:
        api = Api(second)
        assert api.ok("GET", f"/clients/{client['id']}") == client
        assert api.new_client()["id"] > client["id"]
    finally:
        second.stop()


def test_port_in_use_is_a_sandbox_error(sandbox: RunningSandbox) -> None:
    with pytest.raises(SandboxError, match=f"port {sandbox.port} .* already in use") as raised:
        start_in_thread(SandboxConfig(port=sandbox.port))
    assert raised.value.hint and "--port" in raised.value.hint


def test_bad_settings_are_sandbox_errors() -> None:
    with pytest.raises(SandboxError, match="bulk_mode"):
        start_in_thread(SandboxConfig(port=0, bulk_mode="sometimes"))
    with pytest.raises(SandboxError, match="faults"):
        start_in_thread(SandboxConfig(port=0, faults="error=2"))


def test_unusable_db_path_is_a_sandbox_error(tmp_path: Path) -> None:
    not_a_db = tmp_path / "leads.csv"
    not_a_db.write_text("name,phone\n" * 200)
    with pytest.raises(SandboxError, match="cannot open the sandbox database"):
        start_in_thread(SandboxConfig(port=0, db_path=str(not_a_db)))
    with pytest.raises(SandboxError, match="cannot open the sandbox database"):
        start_in_thread(SandboxConfig(port=0, db_path=str(tmp_path / "missing-dir" / "s.db")))


def test_config_repr_hides_keys() -> None:
    assert "secret-value" not in repr(SandboxConfig(api_keys=("secret-value",)))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=60
    )


def test_cli_help_lists_every_flag() -> None:
    result = run_cli("sandbox", "--help")
    assert result.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--db",
        "--api-key",
        "--rate-limit",
        "--rate-window",
        "--bulk-max",
        "--bulk-mode",
        "--faults",
        "--strict",
        "--quiet",
    ):
        assert flag in result.stdout


def test_cli_port_in_use_and_bad_flag_are_one_line_errors(sandbox: RunningSandbox) -> None:
    busy = run_cli("sandbox", "--port", str(sandbox.port))
    assert busy.returncode == 2 and "already in use" in busy.stderr and "Traceback" not in busy.stderr
    bad = run_cli("sandbox", "--port", "0", "--faults", "explode=1")
    assert bad.returncode == 2 and "unknown fault" in bad.stderr and "Traceback" not in bad.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_line(process: subprocess.Popen[str], needle: str) -> str:
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + 30
    while needle not in seen and time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen += line
    assert needle in seen, seen
    return seen


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_requests_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "sandbox", "--port", str(port), "--db", str(tmp_path / "s.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = wait_for_line(process, "Ctrl-C stops")
        base_url = f"http://127.0.0.1:{port}/v1"
        assert base_url in banner and DEMO_KEY in banner
        handle = RunningSandbox.attach(base_url)
        created = requests.post(
            base_url + "/clients", json=client_body(), headers={"X-API-KEY": DEMO_KEY}, timeout=10
        )
        assert created.status_code == 201
        assert [e["status"] for e in handle.request_log()] == [201]
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sandbox stopped" in out and "Traceback" not in err
    assert "POST /v1/clients 201" in out


def test_cli_never_prints_given_keys(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "sandbox",
            "--port",
            str(port),
            "--api-key",
            "very-secret-key-1",
            "-q",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = wait_for_line(process, "Ctrl-C stops")
        url = f"http://127.0.0.1:{port}/v1/metadata"
        assert requests.get(url, headers={"X-API-KEY": "very-secret-key-1"}, timeout=10).status_code == 200
        assert requests.get(url, headers={"X-API-KEY": DEMO_KEY}, timeout=10).status_code == 401
        process.terminate()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "very-secret-key-1" not in banner + out + err
    assert "sha256:" in banner  # a fingerprint at most
    assert "/v1/metadata" not in out  # --quiet: no request lines


def test_public_api_is_pinned() -> None:
    """Other parts (the fixture, e2e tests, the demo) call these names: renaming one is a decision."""
    import dataclasses
    import inspect

    defaults = {f.name: f.default for f in dataclasses.fields(SandboxConfig)}
    assert defaults == {
        "host": "127.0.0.1",
        "port": 8765,
        "db_path": None,
        "api_keys": (),
        "rate_limit": 500,
        "rate_window": 3600,
        "bulk_max": 500,
        "bulk_mode": "partial",
        "faults": None,
        "strict": False,
    }
    for name in ("reset", "configure", "inject", "state", "request_log", "stop", "attach"):
        assert callable(getattr(RunningSandbox, name))
    assert list(inspect.signature(RunningSandbox.inject).parameters)[:5] == [
        "self",
        "kind",
        "method",
        "path",
        "count",
    ]


def test_cli_serves_the_local_axiomatic_beside_kayse_and_stops_both() -> None:
    """`sandbox --axiomatic-port`: one command, both ends of a migration rehearsal."""
    from pipeline.axiomatic_sandbox import DEMO_ENTITY
    from pipeline.axiomatic_sandbox import DEMO_KEY as AXIOMATIC_KEY

    port, axiomatic_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "sandbox",
            "--port",
            str(port),
            "--axiomatic-port",
            str(axiomatic_port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        banner = wait_for_line(process, "Ctrl-C stops")
        axiomatic_url = f"http://127.0.0.1:{axiomatic_port}"
        assert axiomatic_url in banner and DEMO_ENTITY in banner and AXIOMATIC_KEY in banner
        entities = requests.get(
            axiomatic_url + "/api/entities", headers={"Authorization": f"Bearer {AXIOMATIC_KEY}"}, timeout=10
        )
        assert entities.status_code == 200 and DEMO_ENTITY in entities.text
        kayse = requests.get(
            f"http://127.0.0.1:{port}/v1/metadata", headers={"X-API-KEY": DEMO_KEY}, timeout=10
        )
        assert kayse.status_code == 200
        process.terminate()
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "sandbox stopped" in out and "local Axiomatic stopped" in out


def test_cli_axiomatic_port_in_use_is_a_one_line_error(sandbox: RunningSandbox) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        result = run_cli("sandbox", "--port", "0", "--axiomatic-port", str(taken))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: ")
