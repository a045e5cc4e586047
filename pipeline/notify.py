"""Outreach messages (SMS or email) to the clients of loaded cases: each at most once, never to a
client who opted out, and only at an hour a person may be texted.

Why it works as it does:
- A STOP reply or an unsubscribe is known only to Kayse, and only on the case
  (`sms_opted_out` / `email_opted_out`). So the case is read right before its messages go out,
  never from an earlier run. The ledger holds no phone or email, so the client is read too
  (one GET each, once per run): whether it has a mobile number or an email, and its state, which
  gives its time zone for quiet hours.
- A text cannot be taken back. Each (channel, case, client, text) is a message; its intent is
  committed to the ledger immediately before the send and closed after the answer. A crash or a
  lost answer in between leaves it *uncertain*: it is never resent without the operator's word.
- The preview sends no request at all: opt-outs and addresses are "checked at send".

Never: log or write a name, phone number or email (ids and ledger keys only); send before the
intent is committed; send after a quota wait on an opt-out or clock reading from before it.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline.kayse import KayseError, NotFound, OutcomeUnknown, RequestRejected
from pipeline.ledger import MESSAGE_FINAL_STATES, Ledger, Target
from pipeline.model import (
    QUIET_HOURS_END,
    QUIET_HOURS_START,
    Channel,
    MessagePair,
    MessageText,
    NotifyOutcome,
    UserError,
    problem,
)

log = logging.getLogger("pipeline.notify")

DEFAULT_TIMEZONE = "America/New_York"
REQUESTS_PER_CASE = 3
"""The preview's estimate: GET the case, GET its client, POST the message (the loader links one
client per case; a case with more clients costs two more requests per extra client)."""

STATE_ZONES: dict[str, tuple[str, ...]] = {
    "AL": ("America/Chicago",), "AK": ("America/Anchorage", "America/Adak"), "AZ": ("America/Phoenix",),
    "AR": ("America/Chicago",), "CA": ("America/Los_Angeles",), "CO": ("America/Denver",),
    "CT": ("America/New_York",), "DE": ("America/New_York",), "DC": ("America/New_York",),
    "FL": ("America/New_York", "America/Chicago"), "GA": ("America/New_York",),
    "HI": ("Pacific/Honolulu",), "ID": ("America/Boise", "America/Los_Angeles"),
    "IL": ("America/Chicago",), "IN": ("America/Indiana/Indianapolis", "America/Chicago"),
    "IA": ("America/Chicago",), "KS": ("America/Chicago", "America/Denver"),
    "KY": ("America/New_York", "America/Chicago"), "LA": ("America/Chicago",), "ME": ("America/New_York",),
    "MD": ("America/New_York",), "MA": ("America/New_York",), "MI": ("America/Detroit", "America/Menominee"),
    "MN": ("America/Chicago",), "MS": ("America/Chicago",), "MO": ("America/Chicago",),
    "MT": ("America/Denver",), "NE": ("America/Chicago", "America/Denver"), "NV": ("America/Los_Angeles",),
    "NH": ("America/New_York",), "NJ": ("America/New_York",), "NM": ("America/Denver",),
    "NY": ("America/New_York",), "NC": ("America/New_York",), "ND": ("America/Chicago", "America/Denver"),
    "OH": ("America/New_York",), "OK": ("America/Chicago",), "OR": ("America/Los_Angeles", "America/Boise"),
    "PA": ("America/New_York",), "RI": ("America/New_York",), "SC": ("America/New_York",),
    "SD": ("America/Chicago", "America/Denver"), "TN": ("America/Chicago", "America/New_York"),
    "TX": ("America/Chicago", "America/Denver"), "UT": ("America/Denver",), "VT": ("America/New_York",),
    "VA": ("America/New_York",), "WA": ("America/Los_Angeles",), "WV": ("America/New_York",),
    "WI": ("America/Chicago",), "WY": ("America/Denver",), "PR": ("America/Puerto_Rico",),
    "VI": ("America/St_Thomas",), "GU": ("Pacific/Guam",), "MP": ("Pacific/Saipan",),
    "AS": ("Pacific/Pago_Pago",),
}  # fmt: skip
"""A US state (USPS code) → its time zones. A state split across zones lists each, and a message
goes out only when it is 08:00–21:00 in all of them: never too early or late for anyone there."""

STATE_NAMES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA",
    "colorado": "CO", "connecticut": "CT", "delaware": "DE", "district of columbia": "DC",
    "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID", "illinois": "IL", "indiana": "IN",
    "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA", "maine": "ME", "maryland": "MD",
    "massachusetts": "MA", "michigan": "MI", "minnesota": "MN", "mississippi": "MS", "missouri": "MO",
    "montana": "MT", "nebraska": "NE", "nevada": "NV", "new hampshire": "NH", "new jersey": "NJ",
    "new mexico": "NM", "new york": "NY", "north carolina": "NC", "north dakota": "ND", "ohio": "OH",
    "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA", "rhode island": "RI",
    "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX", "utah": "UT",
    "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV", "wisconsin": "WI",
    "wyoming": "WY", "puerto rico": "PR", "guam": "GU",
}  # fmt: skip
"""Full names, for records typed in the web app (the loader itself sends USPS codes)."""

TERRITORIES = frozenset({"PR", "VI", "GU", "MP", "AS"})
"""Left out of the "quiet hours everywhere" shortcut (Guam's day is the mainland's night): a client
there is held, never messaged early, when the 50 states and DC all sleep."""

Clock = Callable[[], datetime]


class NotifyObserver(Protocol):
    def step(self, name: str, total: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def note(self, message: str) -> None: ...


# ---- the message and where it goes -----------------------------------------------------


def read_message(path: Path, channel: Channel, subject: str | None) -> MessageText:
    """The message file as UTF-8 text, exactly (no trimming: what is in the file is what is sent).
    Refuses, before anything is sent: an unreadable or non-UTF-8 file, an empty message, and an
    email without a subject (or a subject given for an SMS)."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read the message file {path}: {error.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(
            f"the message file {path} is not UTF-8 text (byte {error.start} cannot be read)",
            hint="save it as UTF-8 (in most editors: Save As → Encoding: UTF-8)",
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is an editor's artefact, not the message
    if not text.strip():
        raise UserError(f"the message file {path} is empty", hint="write the message text into it")
    if channel == "email":
        if subject is None or not subject.strip():
            raise UserError("an email needs a subject", hint='pass --subject "…"')
    elif subject is not None:
        raise UserError("--subject is for email only", hint="drop --subject, or use --channel email")
    return MessageText(channel, text, subject if channel == "email" else None)


@cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"unknown time zone {name!r}",
            hint="use an IANA name such as America/New_York; if every name fails, this system has no "
            "time zone database: pip install tzdata",
        ) from None


def zones_for_state(state: Any, default_zone: str) -> tuple[str, ...]:
    """The client's time zones from its `state` (a USPS code or a full name); the default zone
    when it has none or one this table does not know."""
    text = " ".join(str(state or "").replace(".", " ").split()).lower()
    code = text.upper() if text.upper() in STATE_ZONES else STATE_NAMES.get(text)
    return STATE_ZONES[code] if code else (default_zone,)


def is_open(now: datetime, zones: Iterable[str]) -> bool:
    """True when it is 08:00–21:00 (21:00 itself excluded) in every one of `zones`."""
    for name in zones:
        local = now.astimezone(_zone(name))
        if not QUIET_HOURS_START <= local.hour < QUIET_HOURS_END:
            return False
    return True


def closed_zones(now: datetime, default_zone: str) -> tuple[str, ...]:
    """The zones (of the table and the default) where it is quiet hours at `now`."""
    names = sorted({z for zones in STATE_ZONES.values() for z in zones} | {default_zone})
    return tuple(name for name in names if not is_open(now, [name]))


# ---- which cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class SelectedCase:
    key: str  # the ledger key, or "kayse:ID" for a case id the ledger does not know
    case_id: int | None  # None: the ledger has no Kayse id for it


def select_cases(
    ledger: Ledger,
    target: Target,
    *,
    run_id: int | None = None,
    case_list: str | None = None,
    cases_csv: Path | None = None,
) -> list[SelectedCase]:
    """The cases to message, from exactly one selector: the cases run `run_id` created, the cases
    the ledger put in list `case_list`, or a CSV with a `case_id` (Kayse ids) or `key` column."""
    if sum(x is not None for x in (run_id, case_list, cases_csv)) != 1:
        raise UserError(
            "choose the cases with exactly one of --run N, --case-list NAME or --cases-csv FILE",
            hint="--run takes a run number from `kayse-etl runs`",
        )
    snapshot = ledger.snapshot(target)
    ids = {key: e.kayse_id for key, e in snapshot.cases.items() if e.state == "done" and e.kayse_id}
    selected: list[SelectedCase]
    if run_id is not None:
        run_target = ledger.run_target(run_id)
        if run_target is None:
            raise UserError(f"no run {run_id} in {ledger.path}", hint="see `kayse-etl runs --ledger …`")
        if run_target != target:
            raise UserError(
                f"run {run_id} loaded into {run_target}, not {target}",
                hint="set KAYSE_BASE_URL / KAYSE_API_KEY to the run's target",
            )
        selected = [
            SelectedCase(key, kid) for key, kid in ledger.created_by_run(target, run_id).get("case", [])
        ]
    elif case_list is not None:
        if case_list not in snapshot.members:
            known = ", ".join(sorted(snapshot.members)) or "none"
            raise UserError(
                f"the ledger knows no case list {case_list!r} for this target",
                hint=f"lists it knows: {known}",
            )
        selected = [SelectedCase(key, ids.get(key)) for key in sorted(snapshot.members[case_list])]
    else:
        assert cases_csv is not None
        selected = _cases_from_csv(cases_csv, ids)
    unique: dict[str, SelectedCase] = {}
    for case in selected:
        unique.setdefault(str(case.case_id) if case.case_id else case.key, case)
    return list(unique.values())


def _cases_from_csv(path: Path, ids: dict[str, int]) -> list[SelectedCase]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    if "case_id" not in columns and "key" not in columns:
        raise UserError(
            f"{path} needs a column case_id (Kayse case ids) or key (ledger keys, e.g. import:K-1)"
        )
    keys_by_id = {kid: key for key, kid in ids.items()}
    selected: list[SelectedCase] = []
    for number, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if row.get("case_id"):
            if not row["case_id"].isdigit():
                raise UserError(f"{path} row {number}: case_id must be a number, not {row['case_id']!r}")
            case_id = int(row["case_id"])
            selected.append(SelectedCase(keys_by_id.get(case_id, f"kayse:{case_id}"), case_id))
        elif row.get("key"):
            selected.append(SelectedCase(row["key"], ids.get(row["key"])))
    return selected


# ---- preview and send ---------------------------------------------------------------------


def _known(outcome: NotifyOutcome, pair: MessagePair, state: str, reason: str | None) -> None:
    """A pair the ledger has settled for this text: counted, never sent again."""
    if state == "sent":
        outcome.skipped.append(_with(pair, problem("already-sent").code))
    elif state == "uncertain" or state == "in_flight":
        outcome.uncertain.append(_with(pair, problem("message-uncertain").code))
    else:
        outcome.skipped.append(_with(pair, reason or problem("message-refused").code))


def _with(pair: MessagePair, reason: str, detail: str = "") -> MessagePair:
    return MessagePair(pair.case_id, pair.case_key, pair.client_id, pair.client_key, reason, detail)


def _settled(states: dict[int, tuple[str, str | None]]) -> bool:
    return bool(states) and all(state in MESSAGE_FINAL_STATES for state, _ in states.values())


def preview(
    ledger: Ledger,
    target: Target,
    cases: list[SelectedCase],
    text: MessageText,
    outcome: NotifyOutcome,
    now: datetime,
) -> None:
    """What a send would do, from the ledger alone: no request."""
    client_keys = _client_keys(ledger, target)
    states = ledger.message_states(target, text.channel, text.sha256)
    outcome.closed_zones = () if outcome.any_hour else closed_zones(now, outcome.default_timezone)
    for case in cases:
        base = MessagePair(case.case_id, case.key)
        if case.case_id is None:
            outcome.skipped.append(_with(base, problem("not-in-ledger").code))
            continue
        known = states.get(case.case_id, {})
        if _settled(known):
            for client_id, (state, reason) in known.items():
                _known(
                    outcome,
                    MessagePair(case.case_id, case.key, client_id, client_keys.get(client_id, "")),
                    state,
                    reason,
                )
            continue
        outcome.to_check += 1
    outcome.planned_requests = outcome.to_check * REQUESTS_PER_CASE


def send(
    ledger: Ledger,
    target: Target,
    run_id: int,
    client: Any,  # pipeline.kayse.KayseClient
    cases: list[SelectedCase],
    text: MessageText,
    outcome: NotifyOutcome,
    now: Clock,
    observer: NotifyObserver,
    *,
    check_stop: Callable[[], None] | None = None,
) -> None:
    """Send the message to every client of every case that may have it, recording each in the
    ledger around its request. Ends early (outcome "stopped") when going on cannot help: Kayse
    unreachable, a rate-limit wait longer than allowed, or `check_stop` (called before each case
    and each send) raising a KayseError such as a stop request. Every such end leaves the
    outcome "stopped", so the caller always has a run to record."""
    sender = _Sender(ledger, target, run_id, client, text, outcome, now, observer, check_stop or _go_on)
    sender.run(cases)


def _go_on() -> None:
    """The default `check_stop`: nobody asks to stop."""


@dataclass
class _Stop(Exception):
    reason: str


class _Sender:
    def __init__(
        self,
        ledger: Ledger,
        target: Target,
        run_id: int,
        client: Any,
        text: MessageText,
        outcome: NotifyOutcome,
        now: Clock,
        observer: NotifyObserver,
        check_stop: Callable[[], None],
    ) -> None:
        self.ledger, self.target, self.run_id, self.client = ledger, target, run_id, client
        self.text, self.outcome, self.now, self.observer = text, outcome, now, observer
        self.check_stop = check_stop
        self.client_keys = _client_keys(ledger, target)
        self.states = ledger.message_states(target, text.channel, text.sha256)
        self.clients: dict[int, dict[str, Any] | None] = {}  # one GET per client per run
        states = {z for code, zones in STATE_ZONES.items() if code not in TERRITORIES for z in zones}
        self.zone_names = sorted(states | {outcome.default_timezone})

    def record(self, pair: MessagePair, state: str, reason: str | None = None) -> None:
        assert pair.case_id is not None and pair.client_id is not None
        self.ledger.set_message(
            self.target,
            self.run_id,
            self.text.channel,
            self.text.sha256,
            pair.case_id,
            pair.client_id,
            pair.case_key,
            state,
            reason,
        )

    def run(self, cases: list[SelectedCase]) -> None:
        sent_before = self.client.requests_sent
        if self.outcome.any_hour:
            self.observer.note("--any-hour: quiet hours are NOT applied; messages go out at any local time")
        self.observer.step(f"{self.text.channel} messages", len(cases))
        try:
            for case in cases:
                self.check_stop()
                self.case(case)
                self.observer.advance(1)
        except _Stop as stop:
            self.outcome.outcome = "stopped"
            self.outcome.stopped_reason = stop.reason
        except KayseError as error:
            # Raised outside any request, so nothing is in flight: a stop request from
            # `check_stop`, or a rate-limit wait longer than allowed before a send.
            self.outcome.outcome = "stopped"
            self.outcome.stopped_reason = str(error)
        self.outcome.requests_sent = self.client.requests_sent - sent_before
        if self.outcome.outcome != "stopped":
            self.outcome.outcome = "rejected" if self.outcome.failed or self.outcome.uncertain else "ok"

    def get(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        """A read; None when Kayse has no such record; any other failure stops the run."""
        try:
            return call()
        except NotFound:
            return None
        except KayseError as error:
            raise _Stop(str(error)) from error

    def case(self, case: SelectedCase) -> None:
        base = MessagePair(case.case_id, case.key)
        if case.case_id is None:
            self.outcome.skipped.append(_with(base, problem("not-in-ledger").code))
            return
        case_id = case.case_id
        known = self.states.get(case_id, {})
        if _settled(known):  # every client of this case already has this text: no request
            for client_id, (state, reason) in known.items():
                _known(self.outcome, self.pair(case, client_id), state, reason)
            return
        if not self.outcome.any_hour and not any(is_open(self.now(), [z]) for z in self.zone_names):
            # Quiet hours in every zone: hold the case without spending a request on it.
            self.outcome.held.append(_with(base, problem("quiet-hours").code, "every US state"))
            return
        body = self.get(lambda: self.client.cases.get(case_id))
        if body is None:
            self.outcome.skipped.append(_with(base, problem("case-not-found").code))
            return
        for client_id in [int(i) for i in body.get("client_ids") or []]:
            pair = self.pair(case, client_id)
            state, reason = known.get(client_id, ("", None))
            if state in MESSAGE_FINAL_STATES:
                _known(self.outcome, pair, state, reason)
                continue
            body = self.one(pair, body)

    def pair(self, case: SelectedCase, client_id: int) -> MessagePair:
        return MessagePair(case.case_id, case.key, client_id, self.client_keys.get(client_id, ""))

    def skip(self, pair: MessagePair, reason: str, detail: str = "") -> None:
        self.record(pair, "skipped", reason)
        self.outcome.skipped.append(_with(pair, reason, detail))

    def one(self, pair: MessagePair, case_body: dict[str, Any]) -> dict[str, Any]:
        """Check and send one (case, client). Returns the case as last read (re-read after a wait)."""
        channel = self.text.channel
        assert pair.case_id is not None and pair.client_id is not None
        case_id, client_id = pair.case_id, pair.client_id
        if case_body.get(f"{channel}_opted_out"):
            self.skip(pair, problem(f"{channel}-opted-out").code)
            return case_body
        if client_id not in self.clients:
            self.clients[client_id] = self.get(lambda: self.client.clients.get(client_id))
        person = self.clients[client_id]
        if person is None:
            self.skip(pair, problem("client-not-found").code)
            return case_body
        if not str(person.get("mobile" if channel == "sms" else "email") or "").strip():
            self.skip(pair, problem("no-mobile").code if channel == "sms" else problem("no-email").code)
            return case_body
        if self.client.wait_for_window():
            # An hour may have passed: what Kayse said about opt-outs may have changed.
            fresh = self.get(lambda: self.client.cases.get(case_id))
            if fresh is None:
                self.outcome.skipped.append(_with(pair, problem("case-not-found").code))
                return case_body
            case_body = fresh
            if case_body.get(f"{channel}_opted_out"):
                self.skip(pair, problem(f"{channel}-opted-out").code)
                return case_body
            if client_id not in [int(i) for i in case_body.get("client_ids") or []]:
                return case_body  # no longer a client of this case
        zones = zones_for_state(person.get("state"), self.outcome.default_timezone)
        if not self.outcome.any_hour and not is_open(self.now(), zones):
            zone = next(z for z in zones if not is_open(self.now(), [z]))
            self.record(pair, "pending", problem("quiet-hours").code)
            self.outcome.held.append(_with(pair, problem("quiet-hours").code, zone))
            return case_body
        self.check_stop()  # last moment to stop with nothing in flight
        self.record(pair, "in_flight")  # the write-ahead intent, committed before the request
        try:
            if channel == "sms":
                self.client.communication.send_sms(case_id, client_id, self.text.message)
            else:
                self.client.communication.send_email(
                    case_id, client_id, self.text.subject or "", self.text.message
                )
        except OutcomeUnknown:
            self.record(pair, "uncertain")
            self.outcome.uncertain.append(_with(pair, problem("message-uncertain").code))
            log.warning("message to case %s client %s: answer lost, uncertain", case_id, client_id)
            return case_body
        except RequestRejected as error:
            self.record(pair, "skipped", problem("message-refused").code)
            detail = " ".join(str(x) for x in (error.status, error.error) if x)
            self.outcome.failed.append(_with(pair, problem("message-refused").code, detail))
            return case_body
        except KayseError as error:  # never left, or Kayse said it failed: not sent, stop
            self.record(pair, "pending", "not-sent")
            raise _Stop(str(error)) from error
        self.record(pair, "sent")
        self.outcome.sent.append(pair)
        return case_body


def _client_keys(ledger: Ledger, target: Target) -> dict[int, str]:
    snapshot = ledger.snapshot(target)
    return {e.kayse_id: key for key, e in snapshot.clients.items() if e.kayse_id}


def now_utc() -> datetime:
    return datetime.now(UTC)
