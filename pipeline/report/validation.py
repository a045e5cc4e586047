"""Views of a ValidationResult: a summary dict (JSON), a short text for a paralegal, and CSV files.

`validate` is the dry run people repeat until their file is clean, so its report must answer three
questions without jargon: what was read, what would be sent, and which rows to fix and why.
summary.json, the text and the CLI's `--format json` are all views of `summary(result)`, so they
cannot disagree.

Never compute anything new here (no re-validation, no network), and never write a CSV cell that a
spreadsheet would run as a formula (`cells.write_excel_safe_csv`). The words for each problem code
come from the catalogue in pipeline.model.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.model import (
    CASE_CLIENT_KEY,
    CLIENT_KEY,
    SOURCE_FILE,
    SOURCE_ROW,
    ValidationResult,
    problem,
)
from pipeline.report.cells import neutralize_cell, write_excel_safe_csv
from pipeline.report.files import prepare_dir, private_file, write_private_text

EXAMPLES_PER_CODE = 3
TOP_PROBLEMS_IN_TEXT = 15
WHOLE_ROW = "(whole row)"
"""Key in errors_by_field for problems that concern a row rather than one cell (ragged rows)."""

REPORT_FILES = (
    "summary.json",
    "rejects.csv",
    "clients.csv",
    "cases.csv",
    "warnings.csv",
    "annotated.xlsx",
    "report.html",
)

RAGGED_ROW = problem("ragged-row").code
REJECT_COLUMNS = ("code", "field", "reason", "kayse_source_file", "kayse_source_row")
"""Appended to the original columns of rejects.csv (and failed.csv): what to filter on, and
where the row came from. The mapping reads only the columns it names, so a fixed rejects.csv
validates as it is; a name that clashes with an original column gets a `kayse_` prefix."""
RAW_LINE = "raw_line"
"""rejects.csv column holding, for a row the reader could not split into the header's columns,
the row's text as it stands in the file (its cells are empty: they could not be told apart)."""

# --------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------


def _counts(frame: pl.DataFrame, column: str, *, distinct_rows: bool = False) -> dict[str, int]:
    """{value: count}, most frequent first (ties by name), nulls counted under WHOLE_ROW."""
    if frame.height == 0:
        return {}
    keyed = frame.with_columns(pl.col(column).fill_null(WHOLE_ROW))
    if distinct_rows:
        keyed = keyed.unique(subset=[column, SOURCE_FILE, SOURCE_ROW])
    counted = keyed.group_by(column).len().sort(["len", column], descending=[True, False])
    return {str(key): int(n) for key, n in counted.iter_rows()}


def _examples(frame: pl.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Up to EXAMPLES_PER_CODE problems per code, each from a different row, in row order."""
    if frame.height == 0:
        return {}
    first = (
        frame.with_columns(pl.int_range(pl.len()).alias("__order"))
        .unique(subset=["code", SOURCE_FILE, SOURCE_ROW], keep="first", maintain_order=True)
        .sort(["code", "__order"])
        .group_by("code", maintain_order=True)
        .head(EXAMPLES_PER_CODE)
    )
    examples: dict[str, list[dict[str, Any]]] = {}
    for row in first.iter_rows(named=True):
        examples.setdefault(row["code"], []).append(
            {
                "source_file": row[SOURCE_FILE],
                "source_row": row[SOURCE_ROW],
                "field": row["field"],
                "message": row["message"],
            }
        )
    return examples


def _source_summary(result: ValidationResult) -> list[dict[str, Any]]:
    return [
        {
            "file": Path(info.path).name,
            "path": info.path,
            "format": info.format,
            "rows": info.rows,
            "columns": list(info.columns),
            "encoding": info.encoding,
            "delimiter": info.delimiter,
            "sheet": info.sheet,
            "notes": list(info.notes),
            "detected": info.describe(),
        }
        for info in result.sources
    ]


def summary(result: ValidationResult) -> dict[str, Any]:
    """Everything the report says, as plain JSON-ready data (summary.json, `--format json`)."""
    rejects, warnings = result.rejects, result.warnings
    case_value_counts: dict[str, dict[str, int]] = {}
    for column in ("type", "status"):
        if column in result.cases.columns:
            case_value_counts[column] = _counts(result.cases, column)
    return {
        "mapping": {
            "name": result.mapping.name,
            "path": result.mapping.path,
            "sha256": result.mapping.sha256,
        },
        "sources": _source_summary(result),
        "rows_read": result.rows_read,
        "rows_valid": result.rows_valid,
        "rows_rejected": result.rows_rejected,
        "clients": result.clients.height,
        "cases": result.cases.height,
        "cases_by_type": case_value_counts.get("type", {}),
        "cases_by_status": case_value_counts.get("status", {}),
        "problems": rejects.height,
        "errors_by_code": _counts(rejects, "code"),
        "rows_by_code": _counts(rejects, "code", distinct_rows=True),
        "errors_by_field": _counts(rejects, "field"),
        "warnings": warnings.height,
        "warnings_by_code": _counts(warnings, "code"),
        "warning_rows_by_code": _counts(warnings, "code", distinct_rows=True),
        "warnings_by_field": _counts(warnings, "field"),
        "examples": _examples(rejects),
        "warning_examples": _examples(warnings),
    }


# --------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _where(example: dict[str, Any], several_files: bool, word: str = "row ") -> str:
    row = f"{word}{example['source_row']}"
    return f"{example['source_file']} row {example['source_row']}" if several_files else row


def _problem_lines(
    by_code: dict[str, int],
    examples: dict[str, list[dict[str, Any]]],
    several_files: bool,
    rejects_written: bool = True,
) -> list[str]:
    lines: list[str] = []
    for code, rows in list(by_code.items())[:TOP_PROBLEMS_IN_TEXT]:
        words = problem(code).title
        shown = examples.get(code, [])
        lines.append(f"  • {_plural(rows, 'row')}: {words} [{code}]")
        if shown:
            first = shown[0]
            lines.append(f"      e.g. {_where(first, several_files)}: {first['message']}")
            others = [_where(e, several_files, word="") for e in shown[1:]]
            if others:
                more = " …" if rows > len(shown) else ""
                lead = "in" if several_files else ("row" if len(others) == 1 else "rows")
                lines.append(f"      also {lead} {', '.join(others)}{more}")
    hidden = len(by_code) - TOP_PROBLEMS_IN_TEXT
    if hidden > 0:
        where = "see rejects.csv" if rejects_written else "--report-dir DIR writes them all to rejects.csv"
        lines.append(f"  … and {_plural(hidden, 'other kind')} of problem ({where})")
    return lines


def render_text(
    result: ValidationResult, report: dict[str, Any] | None = None, *, rejects_written: bool = True
) -> str:
    """A short summary a paralegal can act on: what was read, what would be sent, what to fix.
    `rejects_written`: whether a rejects.csv was written to point at (only with a report folder)."""
    data = report if report is not None else summary(result)
    several_files = len(data["sources"]) > 1
    lines: list[str] = []
    for source in data["sources"]:
        lines.append(f"Read {source['detected']}")
        lines += [f"  note: {note}" for note in source["notes"]]
    lines.append(f"Mapping: {data['mapping']['name']} ({data['mapping']['path']})")
    lines.append("")
    lines.append(
        f"{_plural(data['rows_read'], 'row')} read: {data['rows_valid']:,} ready, "
        f"{data['rows_rejected']:,} rejected. Nothing was sent (this is a check only)."
    )
    by_type = ", ".join(f"{name} {count:,}" for name, count in data["cases_by_type"].items())
    lines.append(
        f"Ready to send: {_plural(data['clients'], 'client')} (contacts) and {_plural(data['cases'], 'case')}"
        + (f" ({by_type})." if by_type else ".")
    )
    if data["rows_rejected"]:
        lines += ["", "Why rows were rejected (one row can have several problems):"]
        lines += _problem_lines(data["rows_by_code"], data["examples"], several_files, rejects_written)
    if data["warnings"]:
        lines += ["", "Warnings (these rows are still sent):"]
        lines += _problem_lines(data["warning_rows_by_code"], data["warning_examples"], several_files)
    lines.append("")
    if data["rows_rejected"] and rejects_written:
        lines.append(
            "Next: fix the rows in rejects.csv (column 'reason' says what is wrong; annotated.xlsx marks "
            "the cells) and validate it again."
        )
    elif data["rows_rejected"]:
        lines.append("Next: run again with --report-dir DIR for rejects.csv, the rejected rows to fix.")
    else:
        lines.append("Every row is ready.")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def appended_names(original: list[str], wanted: tuple[str, ...]) -> dict[str, str]:
    """{wanted name: name used}: `kayse_` in front of any that an original column already has."""
    taken = set(original)
    names: dict[str, str] = {}
    for name in wanted:
        chosen = name
        while chosen in taken:
            chosen = "kayse_" + chosen
        taken.add(chosen)
        names[name] = chosen
    return names


def in_source_order(table: pl.DataFrame, result: ValidationResult) -> pl.DataFrame:
    """Rows ordered as the sources were given, then by source row."""
    order = {Path(info.path).name: i for i, info in enumerate(result.sources)}
    return (
        table.with_columns(
            pl.col(SOURCE_FILE).replace_strict(order, default=len(order)).alias("__file_order")
        )
        .sort(["__file_order", SOURCE_FILE, SOURCE_ROW])
        .drop("__file_order")
    )


def rejects_table(result: ValidationResult) -> pl.DataFrame:
    """The file to fix: one row per rejected source row, its original columns as read first (so
    the fixed file validates again with the same mapping), then code, field and reason (every
    problem of the row, `; `-separated), then where it came from. Rows the reader could not split
    get raw_line. Ordered as the sources were given, then by row."""
    key = [SOURCE_FILE, SOURCE_ROW]
    problems = result.rejects.group_by(key, maintain_order=True).agg(
        pl.col("code").unique(maintain_order=True).str.join("; ").alias("code"),
        pl.col("field").drop_nulls().unique(maintain_order=True).str.join("; ").alias("field"),
        pl.col("message").fill_null(pl.col("code")).str.join("; ").alias("reason"),
        pl.col("value").filter(pl.col("code") == RAGGED_ROW).first().alias(RAW_LINE),
    )
    original = result.rejected_rows.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
    columns = [name for name in original.columns if name not in key]
    table = in_source_order(
        problems.join(original, on=key, how="full", coalesce=True, maintain_order="left_right"), result
    )
    ragged = bool((result.rejects.get_column("code") == RAGGED_ROW).any())
    names = appended_names(columns, REJECT_COLUMNS + ((RAW_LINE,) if ragged else ()))
    return table.select(
        *columns,
        *(pl.col(name).fill_null("").alias(names[name]) for name in ("code", "field", "reason")),
        pl.col(SOURCE_FILE).alias(names["kayse_source_file"]),
        pl.col(SOURCE_ROW).alias(names["kayse_source_row"]),
        *([pl.col(RAW_LINE).alias(names[RAW_LINE])] if ragged else []),
    )


def _record_table(frame: pl.DataFrame, external_source: str, leading: tuple[str, ...]) -> pl.DataFrame:
    """Kayse field names as headers, in the order they would be sent; source_file/row last."""
    trace = [SOURCE_FILE, SOURCE_ROW]
    fields = [name for name in frame.columns if name not in (*leading, *trace)]
    present_trace = [name for name in trace if name in frame.columns]
    return frame.select(
        pl.lit(external_source).alias("external_source"),
        *[name for name in leading if name in frame.columns],
        *fields,
        *present_trace,
    )


def clients_table(result: ValidationResult) -> pl.DataFrame:
    return _record_table(result.clients, result.mapping.external_source, (CLIENT_KEY,))


def cases_table(result: ValidationResult) -> pl.DataFrame:
    return _record_table(result.cases, result.mapping.external_source, (CLIENT_KEY, CASE_CLIENT_KEY))


# Field types whose sent values can never start like a formula: E.164 phones (a plain signed
# number), ISO dates, USPS codes, ZIP digits, booleans. Their columns are written as they are,
# so a million rows do not pay to test them; every other text column is neutralized.
_SHAPED_TYPES = frozenset({"phone", "date", "birth_date", "state", "zip", "bool"})


_CHOICE_LISTS = {"case_type": "case_types", "case_status": "case_statuses"}


def _shaped_columns(result: ValidationResult) -> set[str]:
    """Columns written without a formula test: their values cannot start like a formula.

    Besides the shaped types, a choice sent from the mapping's own list (case types, statuses)
    is checked once per allowed value, not per cell, and so is the `external_source` literal.
    `source_file` holds only the names of the sources read, so those few names are checked.
    """
    spec = result.mapping
    shaped = {SOURCE_ROW}
    if all(neutralize_cell(name) == name for name in (Path(info.path).name for info in result.sources)):
        shaped.add(SOURCE_FILE)
    if neutralize_cell(spec.external_source) == spec.external_source:
        shaped.add("external_source")
    for f in (*spec.client.fields, *spec.case.fields):
        allowed: tuple[str, ...] = getattr(spec, _CHOICE_LISTS[f.type]) if f.type in _CHOICE_LISTS else ()
        if f.type in _SHAPED_TYPES or (allowed and all(neutralize_cell(a) == a for a in allowed)):
            shaped.add(f.kayse_field)
    return shaped


def write_excel_safe_csv_privately(frame: pl.DataFrame, path: Path, shaped: set[str] | None = None) -> Path:
    """Write the table whole or not at all (0600), testing for formulas all but `shaped` columns."""
    tested = [name for name in frame.columns if name not in (shaped or set())]
    with private_file(path) as temp:
        write_excel_safe_csv(frame, temp, tested)
    return path


def write_validation_report(result: ValidationResult, report_dir: Path) -> list[Path]:
    """Write summary.json, rejects.csv, clients.csv, cases.csv (and warnings.csv if any),
    annotated.xlsx and report.html into report_dir (created if missing); return the paths
    written. Every file is 0600 and appears whole or not at all."""
    from pipeline.report.annotated import write_annotated_workbook
    from pipeline.report.html import write_html_report

    report_dir = prepare_dir(report_dir)
    report = summary(result)
    summary_path = write_private_text(
        report_dir / "summary.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    shaped = _shaped_columns(result)
    tables = [
        (rejects_table(result), report_dir / "rejects.csv", set()),  # values as read: all tested
        (clients_table(result), report_dir / "clients.csv", shaped),
        (cases_table(result), report_dir / "cases.csv", shaped),
    ]
    warnings_path = report_dir / "warnings.csv"
    if result.warnings.height:
        tables.append((result.warnings, warnings_path, set()))
    elif warnings_path.exists():
        warnings_path.unlink()  # a stale file from an earlier run would contradict summary.json
    # The files are independent and polars releases the GIL: written side by side, the big
    # clients and cases files take little more than the larger of the two, and the workbook and
    # the page (Python, holding the GIL) are written meanwhile.
    with ThreadPoolExecutor(max_workers=len(tables) + 2) as pool:
        workbook = pool.submit(write_annotated_workbook, result, report_dir / "annotated.xlsx", report)
        jobs = [
            pool.submit(write_excel_safe_csv_privately, frame, path, shaped) for frame, path, shaped in tables
        ]
        page = pool.submit(write_html_report, report_dir / "report.html", result, report)
        return [summary_path, *(job.result() for job in jobs), workbook.result(), page.result()]
