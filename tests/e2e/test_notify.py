"""`notify` end to end, over real HTTP against the sandbox, after a real load: a preview sends
nothing; --send sends one message per (case, client) that has a mobile and no opt-out, with the
file's text byte for byte; a rerun sends none; quiet hours hold and a later run sends; a lost
answer is uncertain until the operator says; kill -9 mid-send never leads to a second copy."""

from __future__ import annotations

import csv
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline import run
from pipeline.ledger import Ledger
from pipeline.model import NotifyOutcome, UserError
from tests.conftest import SANDBOX_TEST_KEY
from tests.e2e.test_load import MAPPING, cli, cli_run, live

HEADER = [
    "Contact ID",
    "First Name",
    "Last Name",
    "Email",
    "Mobile Phone",
    "Date of Birth",
    "Address 1",
    "Address 2",
    "City",
    "State",
    "ZIP",
    "Case ID",
    "Case Number",
    "Case Name",
    "Case Type",
    "Case Status",
    "Incident Date",
    "Description",
]
STATES = ("TX", "CA", "NY", "IL")
OPEN_EVERYWHERE = datetime(2026, 3, 11, 18, 0, tzinfo=UTC)  # NY 14:00, Chicago 13:00, LA 11:00
CALIFORNIA_TOO_EARLY = datetime(2026, 3, 11, 14, 30, tzinfo=UTC)  # NY 10:30, Denver 08:30, LA 07:30
TEXT = "Hello {{first_name}} — your case file is ready. Réponse: reply STOP to opt out.\n"


def leads(path: Path, count: int, no_mobile: tuple[int, ...] = ()) -> Path:
    """`count` contacts with one personal-injury case each; states cycle TX, CA, NY, IL."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i in range(count):
            mobile = "" if i in no_mobile else f"(512) 555-01{i:02d}"
            writer.writerow(
                [f"C{i:04d}", f"Name{i}", "Tester", f"person{i}@example.com", mobile, "01/02/1980",
                 f"{i} Main St", "", "Austin", STATES[i % 4], "78701", f"K{i:04d}", f"2025-PI-{i:07d}",
                 f"Case {i}", "personal_injury", "open", "2020-01-01", ""]
            )  # fmt: skip
    return path


def loaded(sandbox: Any, tmp_path: Path, count: int, no_mobile: tuple[int, ...] = ()) -> tuple[Path, int]:
    """A real load of `count` leads; returns the ledger and the run id."""
    from pipeline.settings import Connection

    ledger = tmp_path / "ledger.sqlite"
    source = leads(tmp_path / "leads.csv", count, no_mobile)
    outcome = run.load(
        [source], MAPPING, connection=Connection(sandbox.base_url, SANDBOX_TEST_KEY), ledger_path=ledger
    )
    assert outcome.result is not None and outcome.result.outcome == "ok", outcome.result
    return ledger, outcome.result.run_id


def message_file(tmp_path: Path, text: str = TEXT) -> Path:
    path = tmp_path / "message.txt"
    path.write_bytes(text.encode("utf-8"))
    return path


def notify(sandbox: Any, ledger: Path, message: Path, **options: Any) -> NotifyOutcome:
    options.setdefault("now", lambda: OPEN_EVERYWHERE)
    options.setdefault("channel", "sms")
    from pipeline.settings import Connection

    options.setdefault("connection", Connection(sandbox.base_url, SANDBOX_TEST_KEY))
    return run.notify(ledger, message_file=message, **options)


def client_ids(sandbox: Any) -> dict[str, int]:
    return {c["external_source_id"]: c["id"] for c in live(sandbox.state(), "clients")}


def message_posts(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.request_log() if r["method"] == "POST" and "/communication/" in r["path"]]


def test_preview_sends_no_request_and_says_what_it_would_do(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 6)
    before = len(sandbox.request_log())
    outcome = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id)
    assert outcome.outcome == "preview" and outcome.sent == []
    assert outcome.to_check == 6 and outcome.planned_requests == 18
    assert len(sandbox.request_log()) == before  # not even a GET
    report = tmp_path / "report"
    done = cli_run(
        sandbox, "notify", "--ledger", str(ledger), "--run", str(run_id), "--channel", "sms",
        "--message-file", str(message_file(tmp_path)), "--report-dir", str(report), "--format", "json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["mode"] == "preview" and body["to_check_at_send"] == 6 and body["planned_requests"] == 18
    assert len(sandbox.request_log()) == before and sandbox.messages() == []
    assert (report / "skipped.csv").stat().st_mode & 0o777 == 0o600


def test_send_reaches_each_client_once_never_an_opted_out_one_and_a_rerun_sends_none(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 8, no_mobile=(2,))
    ids = client_ids(sandbox)
    sandbox.opt_out(ids["C0005"], sms=True)
    outcome = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert outcome.outcome == "ok", outcome.stopped_reason
    assert sandbox.refused_messages() == []  # no attempt to the opted-out client or the one with no mobile
    messages = sandbox.messages()
    expected = {ids[f"C{i:04d}"] for i in range(8)} - {ids["C0002"], ids["C0005"]}
    assert sorted(m["client_id"] for m in messages) == sorted(expected)
    assert all(m["message"] == TEXT and m["channel"] == "sms" for m in messages)  # byte for byte
    reasons = Counter(p.reason for p in outcome.skipped)
    assert reasons == {"no-mobile": 1, "sms-opted-out": 1}
    assert len(message_posts(sandbox)) == 6
    # 8 case GETs, 7 client GETs (not the opted-out one's), 6 POSTs
    assert outcome.requests_sent == 8 + 7 + 6

    before = len(sandbox.request_log())
    again = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert again.sent == [] and again.requests_sent == 0  # the ledger knows every pair: no request
    assert len(sandbox.request_log()) == before
    assert Counter(p.reason for p in again.skipped) == {"already-sent": 6, "no-mobile": 1, "sms-opted-out": 1}

    new_text = notify(
        sandbox, ledger, message_file(tmp_path, "A second, different message."), run_id=run_id, send=True
    )
    assert len(new_text.sent) == 6  # a new text is a new message


def test_an_opt_out_made_after_a_preview_is_honoured_at_send_time(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 3)
    preview = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id)
    assert preview.to_check == 3
    sandbox.opt_out(client_ids(sandbox)["C0001"], sms=True)  # a STOP reply after the preview
    outcome = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert len(outcome.sent) == 2 and sandbox.refused_messages() == []


def test_quiet_hours_hold_then_a_later_run_sends(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 8)
    early = notify(
        sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True, now=lambda: CALIFORNIA_TOO_EARLY
    )
    held = {p.client_key for p in early.held}
    assert held == {"import:C0001", "import:C0005"}  # the two Californians: 07:30 in Los Angeles
    assert {p.detail for p in early.held} == {"America/Los_Angeles"}
    assert len(early.sent) == 6
    later = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert {p.client_key for p in later.sent} == held and later.held == []
    counts = Counter(m["client_id"] for m in sandbox.messages())
    assert len(counts) == 8 and set(counts.values()) == {1}
    anyhour = notify(
        sandbox, ledger, message_file(tmp_path, "Late notice"), run_id=run_id, send=True, any_hour=True,
        now=lambda: datetime(2026, 3, 11, 6, 0, tzinfo=UTC),
    )  # fmt: skip
    assert len(anyhour.sent) == 8 and anyhour.held == []


def test_at_night_everywhere_cases_are_held_without_a_request(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 3)
    before = len(sandbox.request_log())
    night = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)  # 05:00 New York, 23:00 Honolulu
    outcome = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True, now=lambda: night)
    assert len(outcome.held) == 3 and outcome.sent == [] and len(sandbox.request_log()) == before


def test_a_lost_answer_is_uncertain_never_resent_until_the_operator_says(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 3)
    sandbox.inject("lost", method="POST", path="/v1/cases/communication/sms", count=1)
    first = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert len(first.uncertain) == 1 and len(first.sent) == 2 and first.exit_code == 1
    assert len(sandbox.messages()) == 3  # Kayse did schedule it
    second = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert second.sent == [] and len(second.uncertain) == 1 and len(sandbox.messages()) == 3
    listing = cli_run(sandbox, "uncertain", "--ledger", str(ledger))
    assert "resolve message" in listing.stdout
    with Ledger.open(ledger) as db:
        (row,) = db.uncertain_messages()
    assert row.key in listing.stdout
    wrong = cli_run(sandbox, "resolve", "--ledger", str(ledger), "message", row.key)
    assert wrong.returncode == 2  # neither --sent nor --resend
    done = cli_run(sandbox, "resolve", "--ledger", str(ledger), "message", row.key, "--sent")
    assert done.returncode == 0, done.stderr
    third = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert third.sent == [] and third.uncertain == [] and third.exit_code == 0
    assert len(sandbox.messages()) == 3


def test_resend_sends_it_with_the_next_run(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 2)
    sandbox.inject("lost", method="POST", path="/v1/cases/communication/sms", count=1)
    notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    with Ledger.open(ledger) as db:
        (row,) = db.uncertain_messages()
    assert (
        cli_run(sandbox, "resolve", "--ledger", str(ledger), "message", row.key, "--resend").returncode == 0
    )
    again = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert [p.client_id for p in again.sent] == [row.client_id]


def test_a_429_before_sending_is_waited_out_not_uncertain(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 2)
    sandbox.inject("ratelimit", method="POST", path="/v1/cases/communication/sms", count=1)
    outcome = notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True)
    assert len(outcome.sent) == 2 and outcome.uncertain == []
    assert len(sandbox.messages()) == 2


def test_selectors_case_list_and_csv_and_exactly_one(sandbox: Any, tmp_path: Path) -> None:
    ledger, _ = loaded(sandbox, tmp_path, 4)
    preview = notify(sandbox, ledger, message_file(tmp_path), case_list="kayse-etl import – personal_injury")
    assert preview.to_check == 4
    cases = {c["external_source_id"]: c["id"] for c in live(sandbox.state(), "cases")}
    picked = tmp_path / "cases.csv"
    picked.write_text(f"case_id\n{cases['K0000']}\n{cases['K0003']}\n{cases['K0003']}\n", encoding="utf-8")
    outcome = notify(sandbox, ledger, message_file(tmp_path), cases_csv=picked, send=True)
    assert len(outcome.sent) == 2
    by_key = tmp_path / "keys.csv"
    by_key.write_text("key\nimport:K0001\nimport:K9999\n", encoding="utf-8")
    keyed = notify(sandbox, ledger, message_file(tmp_path), cases_csv=by_key, send=True)
    assert len(keyed.sent) == 1 and [p.reason for p in keyed.skipped] == ["not-in-ledger"]
    both = cli_run(
        sandbox, "notify", "--ledger", str(ledger), "--run", "1", "--case-list", "x", "--channel", "sms",
        "--message-file", str(message_file(tmp_path)),
    )  # fmt: skip
    assert both.returncode == 2 and "exactly one" in both.stderr


@pytest.mark.parametrize(
    ("content", "extra", "words"),
    [
        (b"\xff\xfeHello", [], "not UTF-8"),
        (b"  \n\t ", [], "empty"),
        (b"Hello", ["--channel", "email"], "subject"),
        (b"Hello", ["--channel", "email", "--subject", "  "], "subject"),
    ],
)
def test_a_bad_message_is_refused_before_any_request(
    sandbox: Any, tmp_path: Path, content: bytes, extra: list[str], words: str
) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 1)
    before = len(sandbox.request_log())
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    channel = [] if "--channel" in extra else ["--channel", "sms"]
    done = cli_run(
        sandbox, "notify", "--ledger", str(ledger), "--run", str(run_id), "--message-file", str(path),
        *channel, *extra, "--send", "--any-hour",
    )  # fmt: skip
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
    assert len(sandbox.request_log()) == before


def test_email_goes_with_its_subject(sandbox: Any, tmp_path: Path) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 2)
    outcome = notify(
        sandbox,
        ledger,
        message_file(tmp_path),
        run_id=run_id,
        send=True,
        channel="email",
        subject="Your case",
    )
    assert len(outcome.sent) == 2
    assert {(m["channel"], m["subject"], m["message"]) for m in sandbox.messages()} == {
        ("email", "Your case", TEXT)
    }


def test_kill_9_mid_send_then_reruns_never_send_a_message_twice(sandbox: Any, tmp_path: Path) -> None:
    """`kill -9` while messages go out, several times, then reruns: no (case, client, text) twice.
    A message caught in flight is uncertain; the operator settles it (here from the sandbox's
    messages, as a person would from the case's messages in Kayse) and the next run finishes."""
    ledger, run_id = loaded(sandbox, tmp_path, 30)
    sandbox.configure(faults="latency=0.05")
    args = [
        "notify", "--ledger", str(ledger), "--run", str(run_id), "--channel", "sms",
        "--message-file", str(message_file(tmp_path)), "--send", "--any-hour", "--plain",
    ]  # fmt: skip
    rng = random.Random(20260311)
    kills = 0
    while kills < 3:
        target = len(message_posts(sandbox)) + rng.randint(1, 6)
        process = cli(sandbox, *args)
        while process.poll() is None and len(message_posts(sandbox)) < target:
            time.sleep(0.005)
        if process.poll() is None:
            time.sleep(rng.uniform(0, 0.05))
            process.kill()
        _, err = process.communicate()
        if process.returncode != -9:
            assert process.returncode in (0, 1), err
            break
        kills += 1
    assert kills >= 1
    sandbox.configure(faults="")
    for _ in range(4):
        finished = cli_run(sandbox, *args)
        assert finished.returncode in (0, 1), finished.stderr
        with Ledger.open(ledger) as db:
            pending = db.uncertain_messages()
        if not pending:
            break
        delivered = {(m["case_id"], m["client_id"]) for m in sandbox.messages()}
        for row in pending:
            word = "--sent" if (row.case_id, row.client_id) in delivered else "--resend"
            assert (
                cli_run(sandbox, "resolve", "--ledger", str(ledger), "message", row.key, word).returncode == 0
            )
    final = cli_run(sandbox, *args)
    assert final.returncode == 0, final.stderr
    pairs = Counter((m["case_id"], m["client_id"], m["message"]) for m in sandbox.messages())
    assert len(pairs) == 30 and set(pairs.values()) == {1}, "a message went out twice or not at all"
    assert sandbox.refused_messages() == []
    with Ledger.open(ledger) as db:
        assert db.uncertain_messages() == []
        assert "interrupted" in [r.outcome for r in db.runs()]


def test_a_rate_limit_wait_too_long_before_a_send_stops_the_run_recorded_stopped(
    sandbox: Any, tmp_path: Path
) -> None:
    """The quota spent right before a send (after the case's and client's GETs) and a wait longer
    than --max-wait: exit 3, the run recorded stopped (never left "running"), nothing sent or
    uncertain; a rerun once the window resets sends each message once."""
    ledger, run_id = loaded(sandbox, tmp_path, 3)
    sandbox.configure(rate_limit=2, rate_window=3600)  # GET case, GET client, then the window is spent
    args = [
        "notify", "--ledger", str(ledger), "--run", str(run_id), "--channel", "sms",
        "--message-file", str(message_file(tmp_path)), "--send", "--any-hour", "--plain",
    ]  # fmt: skip
    before = len(sandbox.request_log())
    stopped = cli_run(sandbox, *args, "--max-wait", "1")
    assert stopped.returncode == 3, stopped.stderr
    assert [r["method"] for r in sandbox.request_log()[before:]] == ["GET", "GET"]  # no 429: the wait
    assert "stopped early" in stopped.stdout and "Traceback" not in stopped.stderr
    history = cli_run(sandbox, "runs", "--ledger", str(ledger))
    assert history.returncode == 0, history.stderr
    (line,) = [row for row in history.stdout.splitlines() if " notify " in row]
    assert " stopped " in line and "running" not in line, line
    assert run.list_uncertain_messages(ledger) == [] and message_posts(sandbox) == []

    sandbox.configure(rate_limit=500, rate_window=1)
    time.sleep(1.1)  # the spent window resets
    rest = cli_run(sandbox, *args)
    assert rest.returncode == 0, rest.stderr
    assert Counter(m["client_id"] for m in sandbox.messages()) == dict.fromkeys(
        client_ids(sandbox).values(), 1
    )
    assert run.runs(ledger, limit=1)[0].outcome == "ok"


def test_check_stop_is_asked_before_each_send_and_ends_the_run_with_nothing_in_flight(
    sandbox: Any, tmp_path: Path
) -> None:
    """The stage's own `check_stop` (what `run.notify` hands the SIGINT/SIGTERM guard's check):
    once it raises, no further message goes out, none is left in flight, the outcome says stopped."""
    from pipeline import notify as notify_stage
    from pipeline.interrupts import StopRequested
    from pipeline.kayse import KayseClient
    from pipeline.ledger import Target
    from pipeline.load import QuietObserver
    from pipeline.settings import key_fingerprint

    ledger_path, run_id = loaded(sandbox, tmp_path, 5)
    asked: list[int] = []

    def check_stop() -> None:
        asked.append(len(message_posts(sandbox)))
        if len(message_posts(sandbox)) >= 2:
            raise StopRequested("stopped by the test; the rest is sent by the next run")

    text = notify_stage.read_message(message_file(tmp_path), "sms", None)
    target = Target(sandbox.base_url, key_fingerprint(SANDBOX_TEST_KEY))
    with Ledger.open(ledger_path) as ledger, KayseClient(sandbox.base_url, SANDBOX_TEST_KEY) as client:
        cases = notify_stage.select_cases(ledger, target, run_id=run_id)
        outcome = NotifyOutcome("sms", text.sha256, True, True, "America/New_York", len(cases))
        notify_run = ledger.start_run(target, "notify", {}, None)
        notify_stage.send(
            ledger, target, notify_run, client, cases, text, outcome, lambda: OPEN_EVERYWHERE,
            QuietObserver(), check_stop=check_stop,
        )  # fmt: skip
        states = ledger.message_states(target, "sms", text.sha256)
    assert outcome.outcome == "stopped" and outcome.exit_code == 3
    assert "stopped by the test" in (outcome.stopped_reason or "")
    assert len(outcome.sent) == 2 and len(message_posts(sandbox)) == 2
    assert outcome.uncertain == [] and run.list_uncertain_messages(ledger_path) == []
    assert sorted(state for by_client in states.values() for state, _ in by_client.values()) == [
        "sent",
        "sent",
    ]
    assert len(asked) >= 3  # asked before the cases and before each send, not only once


def test_a_failure_inside_the_send_still_ends_the_run_in_the_history(sandbox: Any, tmp_path: Path) -> None:
    """Whatever escapes the send (here a progress display that breaks), the run is not left
    "running": the history says interrupted, and the error reaches the caller as it was."""
    ledger, run_id = loaded(sandbox, tmp_path, 3)

    class Breaks:
        def step(self, name: str, total: int) -> None: ...
        def note(self, message: str) -> None: ...
        def advance(self, count: int) -> None:
            raise RuntimeError("the display broke")

    with pytest.raises(RuntimeError, match="the display broke"):
        notify(sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True, observer=Breaks())
    assert run.runs(ledger, limit=1)[0].outcome == "interrupted"
    assert len(sandbox.messages()) == 1 and run.list_uncertain_messages(ledger) == []


def test_a_preview_without_a_key_uses_the_ledgers_one_target_for_the_base_url(
    sandbox: Any, tmp_path: Path
) -> None:
    ledger, run_id = loaded(sandbox, tmp_path, 2)
    outcome = notify(
        sandbox, ledger, message_file(tmp_path), run_id=run_id, connection=None, base_url=sandbox.base_url
    )
    assert outcome.outcome == "preview" and outcome.to_check == 2
    with pytest.raises(UserError, match="needs the Kayse API key"):
        notify(
            sandbox, ledger, message_file(tmp_path), run_id=run_id, send=True, connection=None,
            base_url=sandbox.base_url,
        )  # fmt: skip
