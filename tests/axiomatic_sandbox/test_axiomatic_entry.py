"""`python -m pipeline.axiomatic_sandbox`: a person can rehearse against it from a terminal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys

import requests

from pipeline.axiomatic_sandbox import DEMO_ENTITY, DEMO_KEY, RunningAxiomatic


def test_serves_in_the_foreground_and_stops_cleanly_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.axiomatic_sandbox",
            "--port",
            "0",
            "--leads",
            "12",
            "--contacts",
            "9",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        match = re.search(r"base URL (http://127\.0\.0\.1:\d+)", banner)
        assert match, banner
        lines = [banner]
        while not lines[-1].startswith("Ctrl-C stops."):
            lines.append(process.stdout.readline())
        assert any(DEMO_KEY in line for line in lines) and any(DEMO_ENTITY in line for line in lines)
        response = requests.get(
            f"{match.group(1)}/api/crm/leads",
            params={"entityId": DEMO_ENTITY, "pageSize": "50"},
            headers={"Authorization": f"Bearer {DEMO_KEY}"},
            timeout=10,
        )
        assert len(response.json()["data"]) == 12
        assert process.stdout.readline().startswith("GET /api/crm/leads?pageSize=50 200")
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_a_port_in_use_is_one_line_and_exit_2(axiomatic: RunningAxiomatic) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.axiomatic_sandbox", "--port", str(axiomatic.port)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "already in use" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_setting_is_one_line_and_exit_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.axiomatic_sandbox", "--port", "0", "--page-cap", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "page_cap" in result.stderr and "Traceback" not in result.stderr
