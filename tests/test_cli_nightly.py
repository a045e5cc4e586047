"""Nightly runs: cron tells a bad export from a normal night (--max-rejected, exit 5, nothing
sent), the log has a start and an end line with the run id, the time zone and the duration,
a quota wait says how long, until when and why (on a real terminal too, under tmux), and the
demo writes plain text when its output is not a terminal."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.progress import describe_wait
from pipeline.report.nightly import duration
from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "leads.csv"  # 300 rows, 28 rejected on purpose
GENERIC = ROOT / "mappings" / "generic.yaml"


def kayse_etl(
    *args: str, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], env=clean, capture_output=True, text=True, cwd=cwd
    )


def key_for(sandbox: Any) -> dict[str, str]:
    return {"KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url}


# ---- --max-rejected ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["27", "9%", "9.3%"])
def test_too_many_rejected_rows_send_nothing_and_exit_5(sandbox: Any, tmp_path: Path, limit: str) -> None:
    ledger = tmp_path / "l.sqlite"
    reports = tmp_path / "reports"
    args = ["load", str(SAMPLE), "-m", str(GENERIC), "--ledger", str(ledger), "--report-dir", str(reports)]
    result = kayse_etl(*args, "--max-rejected", limit, env=key_for(sandbox))
    assert result.returncode == 5, result.stderr
    assert (
        f"too many rows rejected: 28 of 300 (9.3%), more than --max-rejected {limit}; nothing was sent"
        in result.stderr
    )
    assert "Mostly: missing-required 6 (a required cell is empty)" in result.stderr
    assert f"see rejects.csv in {reports}" in result.stderr
    assert sandbox.request_log() == []
    assert not ledger.exists()  # no run recorded: the night's log says exit 5, and nothing else changed
    assert (reports / "rejects.csv").exists()


@pytest.mark.parametrize("limit", ["28", "10%", "100%"])
def test_within_the_limit_the_load_goes_on(sandbox: Any, tmp_path: Path, limit: str) -> None:
    result = kayse_etl(
        "load",
        str(SAMPLE),
        "-m",
        str(GENERIC),
        "--ledger",
        str(tmp_path / "l.sqlite"),
        "--max-rejected",
        limit,
        env=key_for(sandbox),
    )
    assert result.returncode == 1, result.stderr  # a normal night: some rows rejected, the rest loaded
    assert sandbox.request_log()


@pytest.mark.parametrize("value", ["lots", "-1", "5.5", "101%", "%"])
def test_a_bad_limit_is_a_usage_error_before_any_work(sandbox: Any, tmp_path: Path, value: str) -> None:
    result = kayse_etl("load", str(SAMPLE), "-m", str(GENERIC), "--max-rejected", value, env=key_for(sandbox))
    assert result.returncode == 2
    assert "--max-rejected" in result.stderr and "hint:" in result.stderr
    assert sandbox.request_log() == []


def test_exit_5_is_documented_and_on_the_help() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    # the exit-code table's row for 5 names the flag that gives it
    assert re.search(r"^\| 5 \| [^\n]*`--max-rejected`[^\n]*nothing was sent", readme, re.M)
    assert (
        "5 more rows rejected than --max-rejected"
        in kayse_etl("load", "--help", env={"COLUMNS": "300"}).stdout
    )


# ---- start and end lines ------------------------------------------------------------------


def test_a_load_starts_and_ends_with_a_line_naming_run_zone_and_duration(
    sandbox: Any, tmp_path: Path
) -> None:
    env = {**key_for(sandbox), "TZ": "Europe/Paris"}  # December: UTC+01:00
    result = kayse_etl(
        "load", str(SAMPLE), "-m", str(GENERIC), "--ledger", str(tmp_path / "l.sqlite"), env=env
    )
    assert result.returncode == 1, result.stderr
    start = re.search(
        r"run 1 started (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC([+-]\d\d:\d\d): (\d+) request\(s\) planned",
        result.stderr,
    )
    assert start, result.stderr
    assert start.group(2) in ("+01:00", "+02:00")  # Paris (CET or CEST), not the machine's UTC
    assert int(start.group(3)) == len(sandbox.request_log())
    end = re.search(
        r"run 1 ended after (\d+ s|\d+ min( \d+ s)?): rejected; 28 row\(s\) rejected, mostly (.+)",
        result.stderr,
    )
    assert end, result.stderr
    reasons = re.findall(r"([a-z-]+) (\d+) \(", end.group(3))
    assert [code for code, _ in reasons] == ["missing-required", "invalid-email", "invalid-phone"]
    assert [int(n) for _, n in reasons] == [6, 4, 4]
    assert (
        result.stderr.index("started") < result.stderr.index("clients:") < result.stderr.index("ended after")
    )


def test_quiet_drops_the_lines_and_json_keeps_stdout_pure(sandbox: Any, tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    quiet = kayse_etl(
        "--quiet", "load", str(SAMPLE), "-m", str(GENERIC), "--ledger", ledger, env=key_for(sandbox)
    )
    assert quiet.returncode == 1 and quiet.stdout == "" and quiet.stderr == ""
    as_json = kayse_etl(
        "load", str(SAMPLE), "-m", str(GENERIC), "--ledger", ledger, "--format", "json", env=key_for(sandbox)
    )
    assert json.loads(as_json.stdout)["load"]["run_id"] == 2
    assert "run 2 started" in as_json.stderr and "run 2 ended after" in as_json.stderr


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0.4, "0 s"), (14, "14 s"), (61, "1 min 1 s"), (252, "4 min 12 s"), (3600, "1 h"), (7500, "2 h 5 min")],
)
def test_durations_read_as_people_say_them(seconds: float, words: str) -> None:
    assert duration(seconds) == words


# ---- the quota wait -------------------------------------------------------------------------


def test_the_quota_wait_says_how_long_until_when_and_why() -> None:
    now = datetime(2026, 12, 1, 2, 1, 0).timestamp()
    reason = "rate limit: no requests left (500 per window), waiting for the reset"  # the client's words
    assert describe_wait(14 * 60, reason, now) == (
        "waiting 14 min for the hourly quota (500/h) — resumes 02:15 local (all requests used)"
    )
    after_429 = describe_wait(30, "rate limited (429), waiting for the window to reset", now)
    assert (
        after_429
        == "waiting 30 s for the hourly quota — resumes 02:01:30 local (Kayse answered 429 Too Many Requests)"
    )
    retry = describe_wait(2, "retrying after HTTP 503", now)
    assert retry == "waiting 2 s — resumes 02:01:02 local (retrying after HTTP 503)"


def test_under_cron_the_quota_wait_is_a_plain_line(sandbox: Any, tmp_path: Path) -> None:
    sandbox.configure(rate_limit=6, rate_window=1.5)
    result = kayse_etl(
        "load",
        str(SAMPLE),
        "-m",
        str(GENERIC),
        "--ledger",
        str(tmp_path / "l.sqlite"),
        "--batch-size",
        "100",
        env=key_for(sandbox),
    )
    assert result.returncode == 1, result.stderr
    waits = re.findall(
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d waiting \d+ s for the hourly quota \(6/h\) — resumes \d\d:\d\d:\d\d local "
        r"\(all requests used\)$",
        result.stderr,
        re.M,
    )
    assert waits, result.stderr
    assert "\x1b[" not in result.stderr


def test_on_a_terminal_the_quota_wait_shows_above_the_bars(sandbox: Any, tmp_path: Path) -> None:
    """A real terminal (tmux): the wait line is printed among the progress bars, with its unit,
    resume time and reason, and the run's start line with its ETA is there too."""
    assert shutil.which("tmux"), "this test needs tmux (apt-get install tmux; .ci/run installs it)"
    sandbox.configure(rate_limit=6, rate_window=1.5)
    session = f"kayse-etl-test-{uuid.uuid4().hex[:8]}"
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in key_for(sandbox).items())
    command = (
        f"cd {shlex.quote(str(ROOT))} && env {env} {shlex.quote(sys.executable)} -m pipeline load "
        f"{SAMPLE} -m {GENERIC} --ledger {tmp_path / 'l.sqlite'}; echo EXIT=$?; sleep 600"
    )
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "220", "-y", "60", command], check=True)
    try:
        pane = ""
        deadline = time.monotonic() + 180  # a bound against a hang, not a speed check
        while "EXIT=" not in pane and time.monotonic() < deadline:
            time.sleep(0.5)
            pane = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", session, "-S", "-200"], capture_output=True, text=True
            ).stdout
        assert "EXIT=1" in pane, pane
        assert re.search(
            r"waiting \d+ s for the hourly quota \(6/h\) — resumes \d\d:\d\d:\d\d local \(all requests used\)",
            " ".join(pane.split()),  # the terminal may wrap a long line
        ), pane
        assert re.search(r"run 1 started \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC[+-]\d\d:\d\d", pane), pane
        assert "━" in pane  # the progress bars: this was a terminal, not the plain log
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


# ---- the demo ---------------------------------------------------------------------------------


def test_the_demo_writes_plain_text_to_a_pipe_and_lists_every_report(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\x1b" not in result.stdout + result.stderr
    listed = result.stdout.split("Reports written:")[1]
    out = tmp_path / "demo-output"
    for folder in (p for p in out.iterdir() if p.is_dir()):
        files = sorted(p.name for p in folder.iterdir() if p.is_file())
        assert f"demo-output/{folder.name}/: {', '.join(files)}" in listed
    assert "rejects.csv" in listed and "load.json" in listed
    with sqlite3.connect(out / "ledger.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
