"""report.html: one page to read or send on, with nothing outside it.

The page must open from an email attachment or a shared folder with no network, and must never
run anything: the CSS and the charts (SVG bars drawn here) are inline, there is no script, font,
image or link to anywhere, a Content-Security-Policy forbids loading or running anything, and
every text that came from a file or from Kayse is formula-neutralized and HTML-escaped.

It shows what the other reports hold (counts, problems per code and per column, a few examples,
what would be sent per case type) and, after a load, the five steps with their requests.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.model import (
    CASE_CLIENT_KEY,
    SOURCE_FILE,
    SOURCE_ROW,
    STEPS,
    Plan,
    RunResult,
    ValidationResult,
    problem,
)
from pipeline.report.cells import neutralize_cell
from pipeline.report.files import write_private_text
from pipeline.report.validation import (
    EXAMPLES_PER_CODE,
    WHOLE_ROW,
    summary,
)

MAX_BARS = 25
MAX_VALUE_CHARS = 120

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
.muted { color: #5a5a5f; }
.counts { display: flex; flex-wrap: wrap; gap: .8rem; margin: 1rem 0; }
.count { border: 1px solid #d0d0d5; border-radius: 6px; padding: .6rem 1rem; min-width: 8rem; }
.count .n { display: block; font-size: 1.6rem; font-weight: 600; }
.count.bad { border: 2px dashed #9c0006; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #d0d0d5; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .value { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap;
               word-break: break-all; }
svg text { font: 13px system-ui, sans-serif; fill: #1d1d1f; }
svg rect.bar { fill: #b3261e; } svg rect.bar.warning { fill: #8a6d00; }
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _shown_value(value: str | None) -> str:
    """A cell as read, made safe twice: formula-neutralized (as if copied to Excel) and escaped."""
    if value is None:
        return '<span class="muted">(empty)</span>'
    text = neutralize_cell(value)
    if len(text) > MAX_VALUE_CHARS:
        text = text[: MAX_VALUE_CHARS - 1] + "…"
    return f'<span class="value">{_e(text)}</span>'


def bar_chart(counts: dict[str, int], *, chart_id: str, label: str, kind: str = "") -> str:
    """Horizontal bars, one per key (most first), drawn as inline SVG: no library, no script."""
    items = list(counts.items())[:MAX_BARS]
    if not items:
        return '<p class="muted">None.</p>'
    label_width, bar_width, row_height = 260, 560, 26
    top = max(count for _, count in items) or 1
    height = row_height * len(items) + 6
    parts = [
        f'<svg id="{_e(chart_id)}" role="img" aria-label="{_e(label)}" width="{label_width + bar_width + 90}" '
        f'height="{height}" viewBox="0 0 {label_width + bar_width + 90} {height}">'
    ]
    for index, (key, count) in enumerate(items):
        y = index * row_height + 3
        width = max(2, round(bar_width * count / top))
        shown = key if len(key) <= 38 else key[:37] + "…"
        parts.append(
            f'<text x="{label_width - 8}" y="{y + 17}" text-anchor="end">{_e(shown)}</text>'
            f'<rect class="bar {_e(kind)}" data-key="{_e(key)}" x="{label_width}" y="{y}" '
            f'width="{width}" height="{row_height - 6}"><title>{_e(key)}: {count:,}</title></rect>'
            f'<text x="{label_width + width + 6}" y="{y + 17}">{count:,}</text>'
        )
    parts.append("</svg>")
    hidden = len(counts) - len(items)
    more = f'<p class="muted">… and {hidden:,} more (see rejects.csv).</p>' if hidden > 0 else ""
    return "".join(parts) + more


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    """`rows` hold HTML already escaped; `numeric`: column indexes to right-align."""
    numeric = numeric or set()
    head = "".join(f"<th>{_e(name)}</th>" for name in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _count(value: int, label: str, element_id: str, bad: bool = False) -> str:
    css = "count bad" if bad and value else "count"
    return f'<div class="{css}" id="{element_id}"><span class="n">{value:,}</span> {_e(label)}</div>'


def _examples(frame: pl.DataFrame, several_files: bool, codes: list[str]) -> str:
    """A few problems per code (in `codes` order, as the chart), each from a different row."""
    if frame.height == 0:
        return '<p class="muted">No row was rejected.</p>'
    first = (
        frame.unique(subset=["code", SOURCE_FILE, SOURCE_ROW], keep="first", maintain_order=True)
        .group_by("code", maintain_order=True)
        .head(EXAMPLES_PER_CODE)
    )
    header = ["row", *(["file"] if several_files else []), "column", "value as read", "reason"]
    sections = []
    groups = {str(code): rows for (code,), rows in first.group_by("code", maintain_order=True)}
    for code in sorted(groups, key=lambda c: codes.index(c) if c in codes else len(codes)):
        rows = groups[code]
        body = [
            [
                _e(row[SOURCE_ROW]),
                *([_e(row[SOURCE_FILE])] if several_files else []),
                _e(row["field"] or WHOLE_ROW),
                _shown_value(row["value"]),
                _e(neutralize_cell(row["message"] or problem(code).title)),
            ]
            for row in rows.iter_rows(named=True)
        ]
        sections.append(
            f'<h3 class="code" data-code="{_e(code)}"><code>{_e(code)}</code>: {_e(problem(code).title)}</h3>'
            + _table(header, body)
        )
    return "".join(sections)


def _per_case_type(result: ValidationResult) -> str:
    cases = result.cases
    if cases.height == 0:
        return '<p class="muted">Nothing would be sent.</p>'
    by = "type" if "type" in cases.columns else None
    grouped = (
        cases.group_by(pl.col(by).fill_null("(no type)") if by else pl.lit("(all cases)").alias("type"))
        .agg(pl.len().alias("cases"), pl.col(CASE_CLIENT_KEY).n_unique().alias("clients"))
        .sort(["cases", "type"], descending=[True, False])
    )
    statuses: dict[str, str] = {}
    if by and "status" in cases.columns:
        counted = (
            cases.group_by(pl.col("type").fill_null("(no type)"), pl.col("status").fill_null("(none)"))
            .len()
            .sort(["type", "len", "status"], descending=[False, True, False])
        )
        for kind, status, n in counted.iter_rows():
            statuses[kind] = (statuses.get(kind, "") + ", " if kind in statuses else "") + f"{status} {n:,}"
    rows = [
        [_e(kind), f"{n_cases:,}", f"{n_clients:,}", _e(statuses.get(kind, ""))]
        for kind, n_cases, n_clients in grouped.select("type", "cases", "clients").iter_rows()
    ]
    return _table(["case type", "cases", "clients", "by status"], rows, numeric={1, 2})


def _load_steps(plan: Plan, run: RunResult | None) -> str:
    header = ["step", "requests planned", "records sent", "created", "updated", "unchanged", "failed"]
    header += ["uncertain", "blocked"]
    rows = []
    for name in STEPS:
        step = run.steps[name] if run is not None else None
        figures = (
            [step.sent, step.created, step.updated, step.unchanged, step.failed, step.uncertain, step.blocked]
            if step is not None
            else []
        )
        rows.append([_e(name), f"{plan.requests.get(name, 0):,}", *(f"{n:,}" for n in figures)])
    if run is None:
        return _table(header[:2], rows, numeric={1}) + '<p class="muted">Dry run: nothing was sent.</p>'
    lines = [
        f"<p>Run <strong>{run.run_id}</strong> on {_e(run.target)}: <strong>{_e(run.outcome)}</strong>. "
        f"Requests sent: <strong>{run.requests_sent:,}</strong> of {run.planned_requests:,} planned.</p>"
    ]
    if run.stopped_reason:
        lines.append(
            f"<p>Stopped early: {_e(run.stopped_reason)}. The ledger holds what was done; running the "
            "same command again continues.</p>"
        )
    table = _table(header, rows, numeric=set(range(1, len(header))))
    return "".join(lines) + table


def render_html(
    result: ValidationResult,
    report: dict[str, Any] | None = None,
    *,
    plan: Plan | None = None,
    run: RunResult | None = None,
) -> str:
    """The whole page as text. `report`: summary(result), when the caller has it already."""
    data = report if report is not None else summary(result)
    several_files = len(data["sources"]) > 1
    read_as = "".join(
        f"<li>{_e(source['detected'])}"
        + "".join(f'<br><span class="muted">note: {_e(note)}</span>' for note in source["notes"])
        + "</li>"
        for source in data["sources"]
    )
    title = "Load report" if plan is not None else "Validation report"
    counts = "".join(
        [
            _count(data["rows_read"], "rows read", "rows-read"),
            _count(data["rows_valid"], "rows ready", "rows-valid"),
            _count(data["rows_rejected"], "rows rejected", "rows-rejected", bad=True),
            _count(data["clients"], "clients (contacts)", "clients"),
            _count(data["cases"], "cases", "cases"),
        ]
    )
    by_field = {
        (key if key != WHOLE_ROW else "(whole row)"): count for key, count in data["errors_by_field"].items()
    }
    sections = [
        f"<h1>{title}: {_e(data['mapping']['name'])}</h1>",
        f'<p class="muted">Mapping {_e(data["mapping"]["path"])}</p>',
        f"<ul>{read_as}</ul>",
        f'<section id="counts"><h2>Counts</h2><div class="counts">{counts}</div></section>',
        '<section id="by-code"><h2>Rejected rows per problem</h2>'
        + bar_chart(data["rows_by_code"], chart_id="chart-by-code", label="rejected rows per problem code")
        + "</section>",
        '<section id="by-column"><h2>Problems per column</h2>'
        + bar_chart(by_field, chart_id="chart-by-column", label="problems per column")
        + "</section>",
        f'<section id="examples"><h2>Examples</h2>{_examples(result.rejects, several_files, list(data["rows_by_code"]))}</section>',
    ]
    if data["warnings"]:
        sections.append(
            '<section id="warnings"><h2>Warnings (these rows are still sent)</h2>'
            + bar_chart(
                data["warning_rows_by_code"], chart_id="chart-warnings", label="warnings", kind="warning"
            )
            + "</section>"
        )
    sections.append(
        f'<section id="per-case-type"><h2>What would be sent, per case type</h2>{_per_case_type(result)}</section>'
    )
    if plan is not None:
        sections.append(
            f'<section id="load-steps"><h2>Load: the five steps</h2>{_load_steps(plan, run)}</section>'
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>kayse-etl {title.lower()}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(sections)}</body></html>\n"
    )


def write_html_report(
    path: Path,
    result: ValidationResult,
    report: dict[str, Any] | None = None,
    *,
    plan: Plan | None = None,
    run: RunResult | None = None,
) -> Path:
    """Write report.html (0600, whole or not at all) and return its path."""
    return write_private_text(path, render_html(result, report, plan=plan, run=run))
