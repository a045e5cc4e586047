"""Views of a plan and of a load's result: text for a person, JSON and CSV for a machine.

Computes nothing new: every figure here is already in the Plan or RunResult.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.model import (
    SOURCE_FILE,
    SOURCE_ROW,
    STEPS,
    Plan,
    Quota,
    RecordRef,
    RunResult,
    RunRow,
    ValidationResult,
    estimate_hours,
)
from pipeline.report.files import prepare_dir, write_private_text
from pipeline.report.validation import appended_names, write_excel_safe_csv_privately


def plan_summary(plan: Plan) -> dict[str, Any]:
    """The plan as plain data, for `plan --format json` and the load report."""
    return {
        "target": plan.target,
        "batch_size": plan.batch_size,
        "clients": {
            "create": plan.count(plan.clients, True),
            "update": plan.count(plan.clients, False),
            "unchanged": plan.unchanged.get("client", 0),
        },
        "cases": {
            "create": plan.count(plan.cases, True),
            "update": plan.count(plan.cases, False),
            "unchanged": plan.unchanged.get("case", 0),
        },
        "case_lists": [
            {
                "name": op.key,
                "case_type": op.case_type,
                "action": "recover" if op.recover else ("attach" if op.kayse_id is not None else "create"),
                "new_members": len(op.new_case_keys),
                "moved_out": len(op.moved_case_keys),
            }
            for op in plan.case_lists
        ],
        "campaigns": [{"name": op.key, "list": op.list_key} for op in plan.campaigns],
        "uncertain": [_ref(r) for r in plan.uncertain],
        "blocked": [_ref(r) for r in plan.blocked],
        "requests": dict(plan.requests),
        "total_requests": plan.total_requests,
        "hours_at_500_per_hour": estimate_hours(plan.total_requests),
    }


def render_plan(plan: Plan, quota: Quota | None = None) -> str:
    """The plan for a person. With `quota`, the time estimate uses what is left of this hour's
    requests; without, a full hour's 500."""
    s = plan_summary(plan)
    lines = [f"Plan for {s['target']}"]
    for kind in ("clients", "cases"):
        c = s[kind]
        lines.append(
            f"  {kind:<9} {c['create']:>7,} to create  {c['update']:>7,} to update  {c['unchanged']:>7,} unchanged"
        )
    for item in s["case_lists"]:
        moved = f", {item['moved_out']:,} moved out (case type changed)" if item["moved_out"] else ""
        lines.append(
            f"  list      {item['name']!r}: {item['action']}, {item['new_members']:,} new member(s){moved}"
        )
    for item in s["campaigns"]:
        lines.append(f"  campaign  {item['name']!r} on list {item['list']!r}")
    if s["uncertain"]:
        lines.append(f"  uncertain {len(s['uncertain'])} record(s) held back: see `kayse-etl uncertain`")
    if s["blocked"]:
        lines.append(f"  blocked   {len(s['blocked'])} case(s) whose contact is uncertain")
    per_step = ", ".join(f"{k} {v}" for k, v in s["requests"].items() if v)
    lines.append(f"  requests  {s['total_requests']:,} ({per_step or 'nothing to send'})")
    limit = quota.limit if quota else 500
    remaining = quota.remaining if quota else None
    hours = estimate_hours(plan.total_requests, limit, remaining)
    if quota:
        lines.append(
            f"  quota     {quota.remaining:,} of {quota.limit:,} requests left this hour "
            f"(resets in {quota.resets_in_seconds / 60:.0f} min)"
        )
    lines.append(
        f"  time      fits in {'what is left of this hour' if quota else 'one hour'}'s quota ({limit:,} requests/hour)"
        if hours == 0
        else f"  time      about {hours:.0f} more hour(s) at {limit:,} requests/hour (the load waits for each window)"
    )
    return "\n".join(lines)


def load_summary(result: RunResult) -> dict[str, Any]:
    """What `load.json` holds: per step sent/created/updated/unchanged/failed, and every record
    that was refused, blocked or is uncertain (named with that word)."""
    return {
        "run_id": result.run_id,
        "target": result.target,
        "outcome": result.outcome,
        "stopped_reason": result.stopped_reason,
        "planned_requests": result.planned_requests,
        "requests_sent": result.requests_sent,
        "steps": {name: vars(result.steps[name]) for name in STEPS},
        "failed": [vars(f) for f in result.failed],
        "uncertain": [_ref(r) for r in result.uncertain],
        "blocked": [_ref(r) for r in result.blocked],
    }


def render_load(result: RunResult) -> str:
    lines = [f"Run {result.run_id} on {result.target}: {result.outcome}"]
    for name in STEPS:
        st = result.steps[name]
        lines.append(
            f"  {name:<10} created {st.created:>6,}  updated {st.updated:>6,}  unchanged {st.unchanged:>6,}"
            f"  failed {st.failed:>4,}"
            + (f"  uncertain {st.uncertain}" if st.uncertain else "")
            + (f"  moved out {st.removed}" if st.removed else "")
        )
    lines.append(f"  requests   {result.requests_sent:,} sent ({result.planned_requests:,} planned)")
    if result.failed:
        lines.append(f"  {len(result.failed)} record(s) refused by Kayse (see failed.csv with --report-dir)")
    if result.uncertain:
        lines.append(
            f"  {len(result.uncertain)} record(s) uncertain: a create was sent but its answer was lost, so Kayse "
            "may hold them. They are not re-sent automatically: see `kayse-etl uncertain`."
        )
    if result.blocked:
        lines.append(f"  {len(result.blocked)} record(s) blocked: their contact or list could not be loaded")
    if result.stopped_reason:
        lines.append(f"  stopped early: {result.stopped_reason}")
        lines.append("  the ledger holds what was done; run the same command again to continue")
    return "\n".join(lines)


FAILED_COLUMNS = ("code", "reason", "kind", "key", "kayse_source_file", "kayse_source_row")
SUCCESS_COLUMNS = (
    SOURCE_FILE,
    SOURCE_ROW,
    "client_key",
    "kayse_client_id",
    "case_key",
    "kayse_case_id",
    "action",
)


def failed_table(result: RunResult, validation: ValidationResult | None = None) -> pl.DataFrame:
    """failed.csv: every record Kayse refused, one row each, shaped like rejects.csv: the source
    row's original columns as read first (when `validation` is given), then code (Kayse's error),
    reason (its words), kind, key (as `kayse-etl resolve` takes it) and where it came from."""
    failures = pl.DataFrame(
        {
            SOURCE_FILE: [f.source_file for f in result.failed],
            SOURCE_ROW: [f.source_row for f in result.failed],
            "code": [f.error for f in result.failed],
            "reason": [f.message for f in result.failed],
            "kind": [f.kind for f in result.failed],
            "key": [f.key for f in result.failed],
        },
        schema={SOURCE_FILE: pl.String, SOURCE_ROW: pl.Int64, **dict.fromkeys(FAILED_COLUMNS[:4], pl.String)},
    )
    original: list[str] = []
    if validation is not None and validation.source_rows.width:
        rows = validation.source_rows.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        original = [name for name in rows.columns if name not in (SOURCE_FILE, SOURCE_ROW)]
        keys = failures.select(SOURCE_FILE, SOURCE_ROW).drop_nulls().unique()
        failures = failures.join(
            rows.join(keys, on=[SOURCE_FILE, SOURCE_ROW], how="semi"),
            on=[SOURCE_FILE, SOURCE_ROW],
            how="left",
            maintain_order="left",
        )
    names = appended_names(original, FAILED_COLUMNS)
    return failures.select(
        *original,
        *(pl.col(name).alias(names[name]) for name in FAILED_COLUMNS[:4]),
        pl.col(SOURCE_FILE).alias(names["kayse_source_file"]),
        pl.col(SOURCE_ROW).alias(names["kayse_source_row"]),
    )


def success_table(result: RunResult) -> pl.DataFrame:
    """success.csv: each source row whose case this run created or updated, with the Kayse ids
    of its client and case (rows already in Kayse unchanged are in earlier runs' files)."""
    rows = result.loaded
    return pl.DataFrame(
        {
            SOURCE_FILE: [r.source_file for r in rows],
            SOURCE_ROW: [r.source_row for r in rows],
            "client_key": [r.client_key for r in rows],
            "kayse_client_id": [r.client_id for r in rows],
            "case_key": [r.case_key for r in rows],
            "kayse_case_id": [r.case_id for r in rows],
            "action": [r.action for r in rows],
        },
        schema=dict(
            zip(
                SUCCESS_COLUMNS,
                (pl.String, pl.Int64, pl.String, pl.Int64, pl.String, pl.Int64, pl.String),
                strict=True,
            )
        ),
    )


def write_load_report(
    result: RunResult, plan: Plan, report_dir: Path, *, validation: ValidationResult | None = None
) -> list[Path]:
    """Write load.json, failed.csv and success.csv into report_dir; with the run's `validation`,
    failed.csv carries each row's original columns and report.html is rewritten with the five
    steps. Every file is 0600 and appears whole or not at all."""
    from pipeline.report.html import write_html_report

    report_dir = prepare_dir(report_dir)
    load_json = write_private_text(
        report_dir / "load.json",
        json.dumps({**load_summary(result), "plan": plan_summary(plan)}, indent=2, ensure_ascii=False) + "\n",
    )
    written = [
        load_json,
        write_excel_safe_csv_privately(failed_table(result, validation), report_dir / "failed.csv"),
        write_excel_safe_csv_privately(success_table(result), report_dir / "success.csv"),
    ]
    if validation is not None:
        written.append(write_html_report(report_dir / "report.html", validation, plan=plan, run=result))
    return written


def render_runs(runs: list[RunRow]) -> str:
    """One line per run, oldest first: when, outcome, inputs, what changed (+created/~updated),
    and requests sent against planned."""
    if not runs:
        return "no runs yet"
    lines = []
    for r in reversed(runs):
        started = datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M:%S")
        if r.command == "notify":  # a message run: what was sent, not what was loaded
            message = r.inputs.get("message", {}).get("name", "?")
            tally = "  ".join(f"{name} {count}" for name, count in r.counts.items())
            lines.append(
                f"#{r.id}  {started}  {r.outcome:<11}  notify {r.inputs.get('channel', '?')} {message}  "
                f"{tally}  requests {r.requests_sent if r.requests_sent is not None else '-'}  {r.target}"
            )
            continue
        files = ", ".join(s["name"] for s in r.inputs.get("sources", []))
        rows = f"rows {r.inputs.get('rows_read', '?')} ({r.inputs.get('rows_rejected', 0)} rejected)"

        def count(step: str, what: str, counts: dict[str, Any] = r.counts) -> int:
            return int(counts.get(step, {}).get(what, 0))

        changes = (
            f"clients +{count('clients', 'created')}/~{count('clients', 'updated')}  "
            f"cases +{count('cases', 'created')}/~{count('cases', 'updated')}  "
            f"lists +{count('case_lists', 'created')}  campaigns +{count('campaigns', 'created')}"
        )
        sent = r.requests_sent if r.requests_sent is not None else "-"
        lines.append(
            f"#{r.id}  {started}  {r.outcome:<11}  {files}  {rows}  {changes}  "
            f"requests {sent}/{r.planned_requests}  {r.target}"
        )
    return "\n".join(lines)


def _ref(ref: RecordRef) -> dict[str, Any]:
    return {
        "kind": ref.kind,
        "key": ref.key,
        "source_file": ref.source_file,
        "source_row": ref.source_row,
        "reason": ref.reason,
    }
