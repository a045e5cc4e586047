"""The pure parts of `notify`: reading the message file, time zones from a state, quiet hours,
the message identity, and the ledger's messages table."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ledger import Ledger, Target
from pipeline.model import MESSAGE_REASONS, PROBLEMS, MessageText, UserError
from pipeline.notify import STATE_ZONES, is_open, read_message, zones_for_state


def test_the_file_is_sent_exactly_template_variables_and_all(tmp_path: Path) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes("\ufeffHi {{first_name}},\n  see you {{court_date}} — ñ\n".encode())
    text = read_message(path, "sms", None)
    assert text.message == "Hi {{first_name}},\n  see you {{court_date}} — ñ\n"  # BOM dropped, nothing else


@pytest.mark.parametrize(
    ("content", "channel", "subject", "words"),
    [
        (b"caf\xe9", "sms", None, "not UTF-8"),
        (b"", "sms", None, "empty"),
        (b" \n ", "email", "S", "empty"),
        (b"Hi", "email", None, "subject"),
        (b"Hi", "email", " ", "subject"),
        (b"Hi", "sms", "S", "email only"),
    ],
)
def test_bad_messages_are_refused_with_exit_2(
    tmp_path: Path, content: bytes, channel: str, subject: str | None, words: str
) -> None:
    path = tmp_path / "m.txt"
    path.write_bytes(content)
    with pytest.raises(UserError) as raised:
        read_message(path, channel, subject)  # type: ignore[arg-type]
    assert words in raised.value.message and raised.value.exit_code == 2


def test_a_new_text_or_subject_is_a_new_message() -> None:
    base = MessageText("email", "Hello", "A")
    assert base.sha256 == MessageText("email", "Hello", "A").sha256
    assert len({base.sha256, MessageText("email", "Hello", "B").sha256, MessageText("email", "Hello!", "A").sha256,
                MessageText("sms", "Hello").sha256}) == 4  # fmt: skip


def test_zones_from_codes_names_and_the_default() -> None:
    assert zones_for_state("CA", "America/New_York") == ("America/Los_Angeles",)
    assert zones_for_state("new  york", "America/Chicago") == ("America/New_York",)
    assert zones_for_state("tx", "America/New_York") == ("America/Chicago", "America/Denver")
    assert zones_for_state(None, "America/Denver") == ("America/Denver",)
    assert zones_for_state("Narnia", "America/Denver") == ("America/Denver",)
    for zones in STATE_ZONES.values():
        for name in zones:
            ZoneInfo(name)  # every zone in the table exists


def test_quiet_hours_boundaries() -> None:
    new_york = ZoneInfo("America/New_York")
    at = lambda h, m=0: datetime(2026, 7, 1, h, m, tzinfo=new_york)  # noqa: E731
    assert not is_open(at(7, 59), ["America/New_York"])
    assert is_open(at(8, 0), ["America/New_York"])
    assert is_open(at(20, 59), ["America/New_York"])
    assert not is_open(at(21, 0), ["America/New_York"])
    # Texas spans Central and Mountain: 08:30 in Houston is 07:30 in El Paso
    assert not is_open(datetime(2026, 7, 1, 8, 30, tzinfo=ZoneInfo("America/Chicago")), STATE_ZONES["TX"])


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)))
def test_open_means_every_zone_of_the_state_is_in_the_window(now: datetime) -> None:
    for zones in STATE_ZONES.values():
        expected = all(8 <= now.astimezone(ZoneInfo(z)).hour < 21 for z in zones)
        assert is_open(now, zones) == expected


def test_every_reason_is_in_the_problem_catalogue() -> None:
    assert all(PROBLEMS[code].message().strip() for code in MESSAGE_REASONS)


def test_messages_table_write_ahead_and_resolution(tmp_path: Path) -> None:
    target = Target("http://kayse.test/v1", "sha256:abc")
    with Ledger.open(tmp_path / "l.sqlite") as ledger:
        run_id = ledger.start_run(target, "notify", {}, None)
        ledger.set_message(target, run_id, "sms", "f" * 64, 7, 9, "import:K7", "in_flight")
        assert ledger.message_states(target, "sms", "f" * 64) == {7: {9: ("in_flight", None)}}
        ledger.start_run(target, "notify", {}, None)  # the previous run died with it in flight
        (row,) = ledger.uncertain_messages(target)
        assert row.key == "sms:7:9:ffffffffffff" and row.case_key == "import:K7"
        with pytest.raises(UserError):
            ledger.resolve_message(target, "sms:7:nine:ffff", sent=True)
        assert not ledger.resolve_message(target, "sms:7:8:ffffffffffff", sent=True)
        assert ledger.resolve_message(target, row.key, sent=False)
        assert ledger.message_states(target, "sms", "f" * 64) == {7: {9: ("pending", "resend")}}
        assert ledger.uncertain_messages() == []
        assert ledger.message_states(Target("http://other/v1", "sha256:abc"), "sms", "f" * 64) == {}


def test_skipped_csv_is_private_atomic_and_every_cell_safe_for_a_spreadsheet(tmp_path: Path) -> None:
    """A ledger key comes from the firm's data and a detail from Kayse: a formula or a terminal
    escape in either is written harmless, by the same rule as every other report's cells."""
    import csv

    from pipeline.model import MessagePair, NotifyOutcome
    from pipeline.report.notify import write_notify_report

    outcome = NotifyOutcome("sms", "f" * 64, True, False, "America/New_York", 2)
    outcome.skipped.append(MessagePair(7, "import:\x1b]0;owned\x07", 9, '=HYPERLINK("x")', "no-mobile"))
    outcome.failed.append(MessagePair(8, "import:K8", 10, "-2+3", "message-refused", "@SUM(1)"))
    report = tmp_path / "new" / "report"
    written = write_notify_report(outcome, report)
    assert report.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in report.iterdir()) == ["notify.json", "skipped.csv"]  # no temp file left
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in written)
    with open(report / "skipped.csv", newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["case_key"] == "import:\\x1b]0;owned\\x07"  # escapes shown, never run by a terminal
    assert rows[0]["client_key"] == '\'=HYPERLINK("x")'
    assert rows[1]["client_key"] == "'-2+3" and rows[1]["detail"] == "'@SUM(1)"
