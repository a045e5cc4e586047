"""`kayse-etl extract axiomatic` as a user meets it: one line and the documented exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.extract.axiomatic.helpers import small, summary


def run_cli(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AXIOMATIC_API_KEY"}
    if key is not None:
        env["AXIOMATIC_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "extract", "axiomatic", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )


def args_for(server: Any, out: Path, *extra: str, base_url: str | None = None) -> list[str]:
    return [
        "--base-url",
        base_url or server.base_url,
        "--entity",
        server.entity_id,
        "--out",
        str(out),
        *extra,
    ]


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    for word in words:
        assert word in error_lines[0], error_lines[0]


def test_an_extract_prints_a_summary_and_never_the_key(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic)
    key_file = tmp_path / "key"
    key_file.write_text(axiomatic.api_key + "\n")
    out = tmp_path / "crm"
    result = run_cli(*args_for(axiomatic, out, "--api-key-file", str(key_file), "--plain"))
    assert result.returncode == 0, result.stderr
    assert "Demo Injury Law LLP" in result.stdout and "leads.csv" in result.stdout
    assert "extracting the CRM" in result.stderr  # the --plain log lines
    everything = result.stdout + result.stderr + "".join(p.read_text(encoding="utf-8") for p in out.iterdir())
    assert axiomatic.api_key not in everything
    assert summary(out)["key"].startswith("sha256:")


def test_json_format_keeps_stdout_pure_json(axiomatic: Any, tmp_path: Path) -> None:
    import json

    small(axiomatic, repeat_page=1, quirks_on=("activities",), activities=250)
    result = run_cli(*args_for(axiomatic, tmp_path / "crm", "--format", "json"), key=axiomatic.api_key)
    body = json.loads(result.stdout)
    assert result.returncode == 1  # finished, but a table is incomplete: an error finding
    assert body["complete"] is False
    assert any(f["code"] == "repeated-page" for f in body["findings"])


def test_a_refused_key_exits_3(axiomatic: Any, tmp_path: Path) -> None:
    secret = "ak_not_a_real_key_5f1e2d3c4b5a"
    result = run_cli(*args_for(axiomatic, tmp_path / "crm"), key=secret)
    assert_one_line_error(result, 3, "refused the key", "401")
    assert secret not in result.stdout + result.stderr
    assert not (tmp_path / "crm").exists()


def test_a_key_without_read_crm_exits_2_naming_the_scope(axiomatic: Any, tmp_path: Path) -> None:
    result = run_cli(*args_for(axiomatic, tmp_path / "crm"), key=axiomatic.keys["noscope"])
    assert_one_line_error(result, 2, "read:crm")
    assert axiomatic.keys["noscope"] not in result.stderr


def test_a_wrong_entity_exits_2_naming_the_entity(axiomatic: Any, tmp_path: Path) -> None:
    result = run_cli(*args_for(axiomatic, tmp_path / "crm"), key=axiomatic.keys["other_entity"])
    assert_one_line_error(result, 2, axiomatic.entity_id, "does not reach")


def test_an_unreachable_host_exits_3(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    result = run_cli(
        "--base-url", f"http://127.0.0.1:{port}", "--entity", "3f2b8c1e-7d4a-4e5b-9a61-2c8d0f4b7a13",
        "--out", str(tmp_path / "crm"), key="ak_whatever",
    )  # fmt: skip
    assert_one_line_error(result, 3, "cannot reach")


@pytest.fixture
def html_site() -> Iterator[str]:
    class Html(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><html><body>Welcome</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Html)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_base_url_that_is_not_axiomatic_exits_2(axiomatic: Any, html_site: str, tmp_path: Path) -> None:
    result = run_cli(*args_for(axiomatic, tmp_path / "crm", base_url=html_site), key=axiomatic.api_key)
    assert_one_line_error(result, 2, "does not look like an Axiomatic API", "not JSON")
    result = run_cli(
        *args_for(axiomatic, tmp_path / "crm", base_url=axiomatic.base_url + "/v9"), key=axiomatic.api_key
    )
    assert_one_line_error(result, 2, "does not look like an Axiomatic API", "404")


def test_usage_problems_exit_2(axiomatic: Any, tmp_path: Path) -> None:
    result = run_cli(*args_for(axiomatic, tmp_path / "crm"))
    assert_one_line_error(result, 2, "no Axiomatic API key", "AXIOMATIC_API_KEY")
    result = run_cli(
        "--base-url", axiomatic.base_url, "--entity", "nope", "--out", str(tmp_path / "x"), key="ak_x"
    )
    assert_one_line_error(result, 2, "not a UUID")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_text("precious")
    result = run_cli(*args_for(axiomatic, tmp_path / "mine"), key=axiomatic.api_key)
    assert_one_line_error(result, 2, "not an extract folder")
    assert (tmp_path / "mine" / "thesis.docx").read_text() == "precious"
    result = run_cli("--entity", axiomatic.entity_id, "--out", str(tmp_path / "x"), key="ak_x")
    assert result.returncode == 2  # a missing flag: click's usage error


def test_a_quota_wait_beyond_max_wait_exits_3(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, rate_limit=4, rate_window=600)
    result = run_cli(
        *args_for(axiomatic, tmp_path / "crm", "--max-wait", "1", "--plain"), key=axiomatic.api_key
    )
    assert_one_line_error(result, 3, "stopped early", "--max-wait")
    assert not (tmp_path / "crm").exists()
