"""annotated.xlsx: the source rows as read, with every problem cell marked and explained.

A paralegal fixes a spreadsheet, not a list of row numbers: this workbook shows the rows as they
were read (every original column, in source order, the row number a person sees in the source
in the first column), marks each cell at fault three ways (a red fill, a dashed border and bold
text, so it reads without colour too), gives the reason in an Excel comment on that cell (the
first MAX_COMMENTS of them), and leaves the rows that load untouched. A Problems sheet lists every
problem with a link to its cell; a Summary sheet says how the file was read and what came of it.

openpyxl writes it in write-only mode (rows are streamed to the file, never held as cell
objects), and every text cell goes through the same formula neutralizing as the CSV reports.
Above ALL_ROWS_UP_TO rows, only the rejected rows are shown (openpyxl's speed bounds it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.cell import Cell
from openpyxl.comments import Comment
from openpyxl.styles import Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.hyperlink import Hyperlink

from pipeline.model import SOURCE_FILE, SOURCE_ROW, ValidationResult, problem
from pipeline.report.cells import neutralize_cell, neutralize_formulas
from pipeline.report.files import private_file
from pipeline.report.validation import (
    appended_names,
    in_source_order,
    summary,
)

ROWS_SHEET = "Rows"
PROBLEMS_SHEET = "Problems"
SUMMARY_SHEET = "Summary"
AUTHOR = "kayse-etl"

EXCEL_MAX_ROWS = 1_048_576
ALL_ROWS_UP_TO = 50_000
"""A source with more rows gets only its rejected rows in the Rows sheet (said on the Summary
sheet): openpyxl writes some 40,000 cells a second, so every row of a million-row migration
would take minutes, and nobody fixes a million-row sheet by hand. The CSV reports hold all."""
MAX_SHEET_ROWS = ALL_ROWS_UP_TO
"""At most this many rows in the Rows and in the Problems sheet (the first ones, in row order)."""
MAX_COMMENTS = 2_000
"""Only the first this many problem cells (in row order) get a comment with their reason: openpyxl
writes comments as legacy drawings, about a tenth of the workbook's time at 20,000 of them, and a
sheet thick with pop-ups helps nobody. Every problem cell is still marked, its row's `problems`
column still names its codes, and the Problems sheet gives every reason with a link (the Summary
sheet says so)."""
EXCEL_MAX_CELL_CHARS = 32_767
MIN_WIDTH, MAX_WIDTH = 6, 50
WRITE_SLICE = 10_000  # rows turned into Python values at a time

# Characters the xlsx format cannot hold at all (control characters but tab and newlines).
_ILLEGAL = r"[\x00-\x08\x0B\x0C\x0E-\x1F]"
_ILLEGAL_CHARS = re.compile(_ILLEGAL)
REPLACEMENT = "\ufffd"

_DARK_RED = "9C0006"
PROBLEM_FILL = PatternFill("solid", fgColor="FFC7CE")
PROBLEM_BORDER = Border(*(Side(style="mediumDashed", color=_DARK_RED) for _ in range(4)))
PROBLEM_FONT = Font(bold=True, color=_DARK_RED)
BOLD = Font(bold=True)
LINK_FONT = Font(color="0563C1", underline="single")


def write_annotated_workbook(
    result: ValidationResult, path: Path, report: dict[str, Any] | None = None
) -> Path:
    """Write annotated.xlsx (0600, whole or not at all) and return its path. `report`: the
    result's summary() when the caller has it already."""
    with private_file(path) as temp:
        _Workbook(result, report if report is not None else summary(result)).save(temp)
    return path


def _text(value: str) -> str:
    """A text the xlsx format can hold, formula-safe (values are otherwise left as read)."""
    value = _ILLEGAL_CHARS.sub(REPLACEMENT, neutralize_cell(value))
    return value if len(value) <= EXCEL_MAX_CELL_CHARS else value[: EXCEL_MAX_CELL_CHARS - 1] + "…"


def _storable(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column formula-safe (as the CSV reports), then cut to what a cell can hold."""
    safe = neutralize_formulas(frame)
    text = [name for name, dtype in safe.schema.items() if dtype == pl.String]
    flagged = safe.select(
        (pl.col(name).str.contains(_ILLEGAL) | (pl.col(name).str.len_chars() > EXCEL_MAX_CELL_CHARS))
        .any()
        .alias(name)
        for name in text
    )
    fix = [name for name in text if flagged.get_column(name)[0]]
    return safe.with_columns(
        pl.col(name).str.replace_all(_ILLEGAL, REPLACEMENT).str.slice(0, EXCEL_MAX_CELL_CHARS) for name in fix
    )


class _Looks:
    """Each look's style, worked out once per workbook. Setting a font, fill or border on a cell
    makes openpyxl hash the style object into the workbook's style lists every time, which for
    tens of thousands of cells costs more than writing their values; a cell built from a ready
    style (openpyxl's own `style_array`) skips that."""

    def __init__(self, sheet: WriteOnlyWorksheet) -> None:
        self.bold = self._style(sheet, font=BOLD)
        self.link = self._style(sheet, font=LINK_FONT)
        self.problem = self._style(sheet, font=PROBLEM_FONT, fill=PROBLEM_FILL, border=PROBLEM_BORDER)

    @staticmethod
    def _style(sheet: WriteOnlyWorksheet, **looks: Any) -> Any:
        template = Cell(sheet)
        for name, look in looks.items():
            setattr(template, name, look)
        return template._style

    @staticmethod
    def cell(sheet: WriteOnlyWorksheet, value: Any, style: Any) -> Cell:
        """A cell of `sheet` (a link is kept by its cell's sheet) with a ready style."""
        return Cell(sheet, row=1, column=1, value=value, style_array=style)


class _Workbook:
    """The three sheets, built from one ValidationResult."""

    def __init__(self, result: ValidationResult, report: dict[str, Any]) -> None:
        self.result = result
        self.report = report
        rows = result.source_rows if result.source_rows.width else result.rejected_rows
        rows = rows.with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        self.value_columns = [name for name in rows.columns if name not in (SOURCE_FILE, SOURCE_ROW)]
        files = rows.get_column(SOURCE_FILE).unique()
        self.several_files = len(result.sources) > 1 or files.len() > 1
        self.total = rows.height
        self.only_rejected = rows.height > ALL_ROWS_UP_TO
        if self.only_rejected:
            keys = result.rejects.select(SOURCE_FILE, pl.col(SOURCE_ROW).cast(pl.Int64)).unique()
            rows = rows.join(keys, on=[SOURCE_FILE, SOURCE_ROW], how="semi", maintain_order="left")
        if self.several_files or not rows.get_column(SOURCE_ROW).is_sorted():
            rows = in_source_order(rows, result)
        self.listed = rows.height
        self.shown = min(rows.height, MAX_SHEET_ROWS)
        self.rows = rows.head(self.shown)
        names = appended_names(self.value_columns, ("row", "source_file", "problems"))
        self.lead = [names["row"]] + ([names["source_file"]] if self.several_files else [])
        self.header = [*self.lead, *self.value_columns, names["problems"]]
        self.column_of = {name: len(self.lead) + i for i, name in enumerate(self.value_columns)}
        self.rejected = self._problems(result.rejects)
        self.warned = self._problems(result.warnings)
        self.sheet_row: dict[tuple[str, int], int] = {}
        self.problems_cut = 0  # problems in all, when the Problems sheet shows only the first ones
        self.commented = 0  # problem cells given a comment so far
        self.problem_cells = 0  # problem cells marked in the Rows sheet

    @staticmethod
    def _problems(frame: pl.DataFrame) -> dict[tuple[str, int], list[dict[str, Any]]]:
        by_row: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for found in frame.iter_rows(named=True):
            by_row.setdefault((found[SOURCE_FILE], found[SOURCE_ROW]), []).append(found)
        return by_row

    def save(self, path: Path) -> None:
        book = Workbook(write_only=True)
        rows = book.create_sheet(ROWS_SHEET)
        self.looks = _Looks(rows)
        self._write_rows(rows)
        self._write_problems(book.create_sheet(PROBLEMS_SHEET))
        self._write_summary(book.create_sheet(SUMMARY_SHEET))
        book.save(path)

    # ---- the rows as read -------------------------------------------------------------

    def _widths(self) -> list[float]:
        lengths = (
            self.rows.select(pl.col(name).str.len_chars().max().alias(name) for name in self.value_columns)
            if self.value_columns and self.rows.height
            else None
        )
        widths = [8.0] + ([16.0] if self.several_files else [])
        for name in self.value_columns:
            longest = (lengths.get_column(name)[0] if lengths is not None else None) or 0
            widths.append(float(max(MIN_WIDTH, min(MAX_WIDTH, max(len(name), longest) + 2))))
        widths.append(30.0)
        return widths

    def _write_rows(self, sheet: WriteOnlyWorksheet) -> None:
        last_column = get_column_letter(len(self.header))
        for index, width in enumerate(self._widths(), start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.freeze_panes = f"{get_column_letter(len(self.lead) + 1)}2"
        sheet.auto_filter.ref = f"A1:{last_column}{self.shown + 1}"
        sheet.append([self.looks.cell(sheet, _text(name), self.looks.bold) for name in self.header])
        number = 1
        for file, row, values in self._values():
            number += 1
            key = (file, row)
            self.sheet_row[key] = number
            lead: list[Any] = [row] + ([file] if self.several_files else [])
            problems = self.rejected.get(key)
            if not problems:
                sheet.append([*lead, *values, None])
                continue
            plain: list[Any] = [*lead, *values, ", ".join(dict.fromkeys(p["code"] for p in problems))]
            cells = list(plain)
            cells[0] = self.looks.cell(sheet, row, self.looks.bold)  # a rejected row: its number stands out
            by_column: dict[int, list[dict[str, Any]]] = {}
            for found in problems:
                at = self.column_of.get(found["field"] or "", 0)  # no column: the row's first cell
                by_column.setdefault(at, []).append(found)
            for at, here in by_column.items():
                cells[at] = self._problem_cell(sheet, plain[at], here)
            sheet.append(cells)

    def _values(self) -> Iterator[tuple[str, int, list[Any]]]:
        for start in range(0, self.rows.height, WRITE_SLICE):
            part = self.rows.slice(start, WRITE_SLICE)
            values = _storable(part.select(self.value_columns)) if self.value_columns else None
            files = part.get_column(SOURCE_FILE).to_list()
            numbers = part.get_column(SOURCE_ROW).to_list()
            rows: Iterable[tuple[Any, ...]] = (
                values.iter_rows() if values is not None else [()] * len(numbers)
            )
            for file, number, row in zip(files, numbers, rows, strict=True):
                yield file, number, list(row)

    def _problem_cell(self, sheet: WriteOnlyWorksheet, value: Any, problems: list[dict[str, Any]]) -> Cell:
        cell = self.looks.cell(sheet, value, self.looks.problem)
        self.problem_cells += 1
        if self.commented >= MAX_COMMENTS:
            return cell
        self.commented += 1
        reasons = "\n".join(f"{p['message'] or problem(p['code']).title} [{p['code']}]" for p in problems)
        cell.comment = Comment(_text(reasons), AUTHOR, height=110, width=320)
        return cell

    # ---- every problem, with a link to its cell -------------------------------------------

    def _write_problems(self, sheet: WriteOnlyWorksheet) -> None:
        lead = ["row"] + (["source_file"] if self.several_files else [])
        header = [*lead, "column", "value", "code", "reason", "kind", "cell"]
        for index, width in enumerate([8, *([14] * (len(lead) - 1)), 22, 28, 22, 60, 22, 12], start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.freeze_panes = "A2"
        listed = [
            (self.sheet_row.get(key, 0), kind, found)
            for kind, problems in (("rejected", self.rejected), ("warning (row still loads)", self.warned))
            for key, those in problems.items()
            for found in those
        ]
        listed.sort(key=lambda item: (item[0] or EXCEL_MAX_ROWS, item[1] != "rejected"))
        if len(listed) > MAX_SHEET_ROWS:
            self.problems_cut = len(listed)
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(header))}{len(listed) + 1}"
        sheet.append([self.looks.cell(sheet, name, self.looks.bold) for name in header])
        for number, kind, found in listed[:MAX_SHEET_ROWS]:
            column = self.column_of.get(found["field"] or "", 0)
            cells: list[Any] = [found[SOURCE_ROW]] + ([found[SOURCE_FILE]] if self.several_files else [])
            cells += [
                _text(found["field"]) if found["field"] else "(whole row)",
                _text(found["value"]) if found["value"] is not None else None,
                found["code"],
                _text(found["message"] or problem(found["code"]).title),
                kind,
            ]
            if number:
                where = f"{get_column_letter(column + 1)}{number}"
                link = self.looks.cell(sheet, f"{ROWS_SHEET}!{where}", self.looks.link)
                link.hyperlink = Hyperlink(ref="", location=f"'{ROWS_SHEET}'!{where}")
                cells.append(link)
            else:
                cells.append("(not in the Rows sheet)")
            sheet.append(cells)

    # ---- how the file was read, and what came of it ---------------------------------------

    def _write_summary(self, sheet: WriteOnlyWorksheet) -> None:
        data = self.report
        sheet.column_dimensions["A"].width = 26
        sheet.column_dimensions["B"].width = 16
        sheet.column_dimensions["C"].width = 70
        lines: list[list[Any]] = []
        for source in data["sources"]:
            lines.append(["File read as", _text(source["detected"])])
            lines += [["", _text(f"note: {note}")] for note in source["notes"]]
        lines.append(["Mapping", _text(f"{data['mapping']['name']} ({data['mapping']['path']})")])
        lines += [
            ["Rows read", data["rows_read"]],
            ["Rows ready to send", data["rows_valid"]],
            ["Rows rejected", data["rows_rejected"]],
            ["Clients (contacts)", data["clients"]],
            ["Cases", data["cases"]],
        ]
        if self.only_rejected:
            lines.append(
                [
                    "Note",
                    f"the file has more than {ALL_ROWS_UP_TO:,} rows: the Rows sheet shows only the "
                    f"rejected ones{'' if self.shown == self.listed else f' (the first {self.shown:,})'}; "
                    "clients.csv and cases.csv hold the rows that are sent",
                ]
            )
        elif self.shown < self.listed:
            lines.append(["Note", f"the Rows sheet shows the first {self.shown:,} rows"])
        if self.problems_cut:
            lines.append(
                [
                    "Note",
                    f"the Problems sheet lists the first {MAX_SHEET_ROWS:,} of {self.problems_cut:,} problems",
                ]
            )
        if self.commented < self.problem_cells:
            lines.append(
                [
                    "Note",
                    f"only the first {self.commented:,} of the {self.problem_cells:,} marked cells carry "
                    "a comment; the Problems sheet lists every problem with its reason and a link to "
                    "its cell, and each row's problems column names its codes",
                ]
            )
        lines.append(
            [
                "How to read",
                "In the Rows sheet, a cell at fault has a red fill, a dashed border and bold text; "
                "its comment says why. Rows with nothing marked are sent as they are.",
            ]
        )
        lines.append([])
        lines.append(
            [self.looks.cell(sheet, name, self.looks.bold) for name in ("Problem", "Rows", "What it means")]
        )
        lines += [[code, rows, problem(code).title] for code, rows in data["rows_by_code"].items()]
        if data["warning_rows_by_code"]:
            lines.append([])
            lines.append(
                [
                    self.looks.cell(sheet, name, self.looks.bold)
                    for name in ("Warning", "Rows", "What it means (rows still load)")
                ]
            )
            lines += [
                [code, rows, problem(code).title] for code, rows in data["warning_rows_by_code"].items()
            ]
        for line in lines:
            sheet.append(line)
