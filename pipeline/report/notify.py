"""Views of a `notify` run or preview: text for a person, JSON for a machine, and skipped.csv.

Computes nothing new: every figure is already in the NotifyOutcome. Holds ids and ledger keys
only: never a name, phone number or email (the outcome carries none).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from pipeline.model import MessagePair, NotifyOutcome, UncertainMessage, problem
from pipeline.report.cells import neutralize_cell
from pipeline.report.files import prepare_dir, private_file, write_private_text


def _reasons(pairs: list[MessagePair]) -> dict[str, int]:
    return dict(Counter(p.reason for p in pairs).most_common())


def notify_summary(outcome: NotifyOutcome) -> dict[str, Any]:
    """The outcome as plain data, for `notify --format json` and notify.json."""
    held_zones = Counter(p.detail for p in outcome.held)
    return {
        "mode": "send" if outcome.send else "preview",
        "outcome": outcome.outcome,
        "run_id": outcome.run_id,
        "channel": outcome.channel,
        "message_sha256": outcome.message_sha256,
        "cases_selected": outcome.cases_selected,
        "sent": len(outcome.sent),
        "to_check_at_send": outcome.to_check,
        "skipped": _reasons(outcome.skipped),
        "held": {problem("quiet-hours").code: dict(held_zones.most_common())},
        "uncertain": [_pair(p) for p in outcome.uncertain],
        "refused": [_pair(p) for p in outcome.failed],
        "any_hour": outcome.any_hour,
        "default_timezone": outcome.default_timezone,
        "closed_zones_now": list(outcome.closed_zones),
        "planned_requests": outcome.planned_requests,
        "hours_at_quota": round(outcome.hours_at_quota, 2),
        "requests_sent": outcome.requests_sent,
        "stopped_reason": outcome.stopped_reason,
    }


def _pair(pair: MessagePair) -> dict[str, Any]:
    return {
        "case_key": pair.case_key,
        "case_id": pair.case_id,
        "client_key": pair.client_key,
        "client_id": pair.client_id,
        "reason": pair.reason,
        "detail": pair.detail,
    }


def render_notify(outcome: NotifyOutcome) -> str:
    what = "SMS" if outcome.channel == "sms" else "email"
    lines = [f"{outcome.cases_selected:,} case(s) selected for this {what}"]
    if not outcome.send:
        lines.append(
            f"  {outcome.to_check:,} case(s) to message: their clients' opt-outs, {'mobile numbers' if outcome.channel == 'sms' else 'email addresses'} "
            "and time zones are checked at send time (one client each, as loaded: one message each)"
        )
        lines.append(
            f"  about {outcome.planned_requests:,} requests (GET case, GET client, POST message per case): "
            f"{outcome.hours_at_quota:.1f} h at {outcome.hourly_quota}/hour, shared with loads"
        )
        if outcome.any_hour:
            lines.append("  --any-hour: quiet hours would NOT be applied")
        elif outcome.closed_zones:
            lines.append(
                f"  right now it is quiet hours (outside 08:00–21:00) in {len(outcome.closed_zones)} zone(s): "
                + ", ".join(outcome.closed_zones)
                + "; clients there would be held for a later run"
            )
        else:
            lines.append("  right now it is 08:00–21:00 in every US time zone")
    else:
        lines.append(f"  sent: {len(outcome.sent):,}")
        if outcome.any_hour:
            lines.append("  --any-hour: quiet hours were NOT applied")
    for reason, count in _reasons(outcome.skipped).items():
        lines.append(f"  not sent, {reason}: {count:,} ({problem(reason).message()})")
    if outcome.held:
        zones = Counter(p.detail for p in outcome.held)
        listing = ", ".join(f"{zone} ({n})" for zone, n in zones.most_common())
        lines.append(f"  held: quiet hours in {listing}; run the same command later to send them")
    if outcome.failed:
        lines.append(f"  refused by Kayse: {len(outcome.failed):,} (see skipped.csv with --report-dir)")
    if outcome.uncertain:
        lines.append(
            f"  uncertain: {len(outcome.uncertain):,} may have gone out (answer lost); they are not resent. "
            "See `kayse-etl uncertain`, then `kayse-etl resolve message KEY --sent` or `--resend`"
        )
    if outcome.send:
        lines.append(f"  requests sent: {outcome.requests_sent:,}")
    else:
        lines.append("Preview only: nothing was sent. Add --send to send.")
    if outcome.outcome == "stopped":
        lines.append(f"  stopped early: {outcome.stopped_reason}")
        lines.append("  the ledger holds what was sent; run the same command again to continue")
    return "\n".join(lines)


def write_notify_report(outcome: NotifyOutcome, report_dir: Path) -> list[Path]:
    """notify.json and skipped.csv (every pair not sent: keys, ids and the reason), each 0600
    and all-or-nothing; a key or a detail Kayse sent is a cell made safe for a spreadsheet."""
    report_dir = prepare_dir(report_dir)
    summary_path = write_private_text(
        report_dir / "notify.json", json.dumps(notify_summary(outcome), indent=2) + "\n"
    )
    skipped_path = report_dir / "skipped.csv"
    with private_file(skipped_path) as temp, open(temp, "w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case_key", "case_id", "client_key", "client_id", "reason", "detail"])
        for pair in [*outcome.skipped, *outcome.held, *outcome.uncertain, *outcome.failed]:
            writer.writerow(
                [
                    neutralize_cell(pair.case_key),
                    pair.case_id or "",
                    neutralize_cell(pair.client_key),
                    pair.client_id or "",
                    neutralize_cell(pair.reason),
                    neutralize_cell(pair.detail),
                ]
            )
    return [summary_path, skipped_path]


def render_message_resolved(key: str, *, sent: bool, done: bool) -> str:
    """The line `resolve message KEY` prints: what the ledger now says, or that nothing matched."""
    if not done:
        return f"message {key}: no uncertain message with this key for this target (nothing changed)"
    return f"message {key}: " + (
        "recorded as sent; never sent again" if sent else "the next run of the same text sends it"
    )


def render_uncertain_messages(rows: list[UncertainMessage]) -> list[str]:
    if not rows:
        return []
    lines = [
        f"{len(rows)} message(s) may have gone out (the answer was lost). Check the case's messages in the "
        "Kayse web app, then either:",
        "  kayse-etl resolve message KEY --sent     (it went out: never send it again)",
        "  kayse-etl resolve message KEY --resend   (it did not: the next run of the same text sends it)",
    ]
    lines.extend(f"  message   {r.key}  (case {r.case_key}, run {r.run_id})" for r in rows)
    return lines
