"""Ctrl-C and SIGTERM against a real `kayse-etl load` process and the sandbox.

A signal while the load waits for the rate-limit window must not turn the batch it was about
to send into "uncertain" (it was never sent), nor leave the run "running": the load stops with
exit 3, the run is recorded stopped, and a rerun finishes with every record exact. A signal
while a request is in flight waits for its answer; a second one forces, and only then is the
request in flight uncertain."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline import run
from tests.e2e.test_load import MAPPING, SAMPLE, assert_exactly_one_of_everything, cli, cli_run, live


def args(ledger: Path, *extra: str) -> list[str]:
    return ["load", str(SAMPLE), "--mapping", str(MAPPING), "--ledger", str(ledger), "--plain", *extra]


def wait_for_line(process: subprocess.Popen[str], needle: str, seen: list[str]) -> None:
    """Read the process's stderr until a line holds `needle` (killing it if that never comes)."""
    assert process.stderr is not None
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    try:
        for line in process.stderr:
            seen.append(line)
            if needle in line:
                return
    finally:
        watchdog.cancel()
    pytest.fail(f"the load ended without printing {needle!r}:\n{''.join(seen)}")


def finish(process: subprocess.Popen[str], seen: list[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=60)
    return process.returncode, out, "".join(seen) + err


def last_run_outcome(ledger: Path) -> str:
    return run.runs(ledger, limit=1)[0].outcome


def rerun_finishes_exactly(sandbox: Any, ledger: Path) -> None:
    sandbox.configure(rate_limit=500, rate_window=1)
    time.sleep(1.1)  # the spent window resets
    finished = cli_run(sandbox, *args(ledger))
    assert finished.returncode in (0, 1), finished.stderr  # 1: the sample's rejected rows
    assert run.list_uncertain(ledger) == []
    assert_exactly_one_of_everything(sandbox, run.validate([SAMPLE], MAPPING), campaigns=False)
    assert last_run_outcome(ledger) in ("ok", "rejected")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_rate_limit_wait_stops_cleanly_and_a_rerun_finishes(
    sandbox: Any, tmp_path: Path, signum: signal.Signals
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    # Two requests this hour: two client batches go out, the third waits for the window.
    sandbox.configure(rate_limit=2, rate_window=3600)
    process = cli(sandbox, *args(ledger, "--batch-size", "100"))
    seen: list[str] = []
    wait_for_line(process, "waiting", seen)
    process.send_signal(signum)
    code, out, err = finish(process, seen)
    assert code == 3, err
    assert "Traceback" not in err
    assert f"stopped by {signum.name}" in out + err
    assert run.list_uncertain(ledger) == []  # the waiting batch was never sent
    assert last_run_outcome(ledger) == "stopped"
    assert len(live(sandbox.state(), "clients")) == 200
    rerun_finishes_exactly(sandbox, ledger)


def test_a_signal_during_a_request_waits_for_its_answer(sandbox: Any, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"
    sandbox.inject("latency", method="POST", path="/v1/clients/bulk", count=1, seconds=3)
    process = cli(sandbox, *args(ledger))
    seen: list[str] = []
    wait_for_line(process, "clients:", seen)
    time.sleep(1)  # the slow client batch is on its way
    process.send_signal(signal.SIGINT)
    code, _out, err = finish(process, seen)
    assert code == 3, err
    assert "stopping after the request in flight" in err
    assert run.list_uncertain(ledger) == []  # its answer came and was recorded
    assert last_run_outcome(ledger) == "stopped"
    assert len(live(sandbox.state(), "clients")) == 215
    assert live(sandbox.state(), "cases") == []  # nothing sent after the signal
    rerun_finishes_exactly(sandbox, ledger)


def test_a_second_signal_forces_and_leaves_the_request_in_flight_uncertain(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.sqlite"
    sandbox.inject("latency", method="POST", path="/v1/clients/bulk", count=1, seconds=8)
    process = cli(sandbox, *args(ledger))
    seen: list[str] = []
    wait_for_line(process, "clients:", seen)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    wait_for_line(process, "stopping after the request in flight", seen)
    process.send_signal(signal.SIGTERM)
    code, _out, err = finish(process, seen)  # before the answer comes
    assert code == 3, err
    assert "Traceback" not in err
    uncertain = run.list_uncertain(ledger)
    assert len(uncertain) == 215 and {u.kind for u in uncertain} == {"client"}
    assert last_run_outcome(ledger) == "interrupted"
    # The batch does land in Kayse (so "uncertain" is the truth); wait for it so that it does
    # not land in the next test's sandbox.
    for _ in range(200):
        if any(r.get("path") == "/v1/clients/bulk" for r in sandbox.request_log()):
            break
        time.sleep(0.1)
    assert len(live(sandbox.state(), "clients")) == 215


def test_a_kill_during_the_rate_limit_wait_leaves_nothing_uncertain(sandbox: Any, tmp_path: Path) -> None:
    """The intent of a batch is opened after the wait, right before its send: even SIGKILL, which
    no handler sees, during the wait leaves that batch unsent rather than uncertain."""
    ledger = tmp_path / "ledger.sqlite"
    sandbox.configure(rate_limit=2, rate_window=3600)
    process = cli(sandbox, *args(ledger, "--batch-size", "100"))
    seen: list[str] = []
    wait_for_line(process, "waiting", seen)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert run.list_uncertain(ledger) == []
    rerun_finishes_exactly(sandbox, ledger)


def test_notify_stops_cleanly_during_the_rate_limit_wait(sandbox: Any, tmp_path: Path) -> None:
    from tests.e2e.test_notify import loaded, message_file, message_posts

    ledger, run_id = loaded(sandbox, tmp_path, 4)
    sandbox.configure(rate_limit=3, rate_window=3600)  # a few reads and sends, then a wait
    message = message_file(tmp_path)
    notify_args = ["notify", "--ledger", str(ledger), "--channel", "sms", "--message-file", str(message)]
    process = cli(sandbox, *notify_args, "--run", str(run_id), "--send", "--any-hour", "--plain")
    seen: list[str] = []
    wait_for_line(process, "waiting", seen)
    process.send_signal(signal.SIGTERM)
    code, out, err = finish(process, seen)
    assert code == 3, err
    assert "stopped by SIGTERM" in out + err
    assert run.list_uncertain_messages(ledger) == []
    assert last_run_outcome(ledger) == "stopped"
    sent_before = len(message_posts(sandbox))
    sandbox.configure(rate_limit=500, rate_window=1)
    time.sleep(1.1)
    rest = cli_run(sandbox, *notify_args, "--run", str(run_id), "--send", "--any-hour", "--plain")
    assert rest.returncode == 0, rest.stderr
    posts = message_posts(sandbox)
    assert len(posts) == 4 and len(posts) > sent_before  # each client once, over both runs
    assert last_run_outcome(ledger) == "ok"
