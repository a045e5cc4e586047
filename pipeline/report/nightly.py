"""The lines a nightly run leaves in its log: when it started and ended, and why rows were rejected.

A cron mail is read the next morning by someone who was not there: each line says the run id,
the local time with its UTC offset (servers and people are rarely in the same zone), how long
it took, and the few reasons that rejected most rows, so a bad export is seen at a glance.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.model import SOURCE_FILE, SOURCE_ROW, Plan, ValidationResult, estimate_hours, problem

TOP_REASONS = 3


def duration(seconds: float) -> str:
    """4 min 12 s, 2 h 5 min, 14 s: the two largest units a person needs."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def local_time(moment: datetime) -> str:
    """2026-12-01 02:00:03 UTC+01:00: the local time with its offset."""
    aware = moment.astimezone()
    offset = aware.strftime("%z")
    return f"{aware:%Y-%m-%d %H:%M:%S} UTC{offset[:3]}:{offset[3:]}"


def top_reasons(validation: ValidationResult, count: int = TOP_REASONS) -> list[tuple[str, int]]:
    """The codes that rejected the most rows (a row counts once per code), most first."""
    rejects = validation.rejects
    if rejects.is_empty():
        return []
    rows = (
        rejects.unique(subset=[SOURCE_FILE, SOURCE_ROW, "code"])
        .group_by("code")
        .len()
        .sort(["len", "code"], descending=[True, False])
        .head(count)
    )
    return [(str(code), int(n)) for code, n in rows.iter_rows()]


def render_reasons(validation: ValidationResult) -> str:
    """'invalid-phone 8 (the phone number is not a real phone number), …'."""
    return ", ".join(f"{code} {n:,} ({problem(code).title})" for code, n in top_reasons(validation))


def render_run_start(run_id: int, started: datetime, plan: Plan, limit_per_hour: int = 500) -> str:
    """The first line of a run: its id, the local time and zone, the requests and the ETA."""
    requests = plan.total_requests
    line = f"run {run_id} started {local_time(started)}: {requests:,} request(s) planned"
    hours = estimate_hours(requests, limit_per_hour)
    if hours:
        finish = (started + timedelta(hours=hours)).astimezone()
        line += f", about {duration(hours * 3600)} at {limit_per_hour}/h (expected to end near {finish:%H:%M} local)"
    return line


def render_run_end(
    run_id: int, elapsed_seconds: float, outcome: str, validation: ValidationResult | None = None
) -> str:
    """The last line of a run: how long it took, how it ended, and the main reasons for rejects."""
    line = f"run {run_id} ended after {duration(elapsed_seconds)}: {outcome}"
    if validation is not None and validation.rows_rejected:
        line += f"; {validation.rows_rejected:,} row(s) rejected, mostly {render_reasons(validation)}"
    return line


__all__ = [
    "duration",
    "local_time",
    "render_reasons",
    "render_run_end",
    "render_run_start",
    "top_reasons",
]
