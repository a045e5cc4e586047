"""annotated.xlsx, opened with openpyxl as Excel would read it: the rows as read, each problem cell
marked three ways with its reason in a comment, the rows that load untouched, a Problems sheet
whose links land on the marked cells, and a Summary sheet with the counts."""

from __future__ import annotations

import csv
import stat
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import GENERIC_HEADERS
from bench.make_samples import SAMPLE_DIR
from pipeline.model import REJECT_SCHEMA, SOURCE_FILE, SOURCE_ROW, SourceInfo, ValidationResult, empty_rejects
from pipeline.report import annotated
from pipeline.report.annotated import write_annotated_workbook
from pipeline.report.cells import neutralize_cell
from tests.report.test_report_writer import _mapping


def _open(path: Path) -> Any:
    return openpyxl.load_workbook(path)


def _is_marked(cell: Any) -> bool:
    """Marked for every reader: a fill, a dashed border and bold text, not colour alone."""
    return (
        cell.fill.fill_type == "solid"
        and cell.border.left.style == "mediumDashed"
        and cell.border.top.style == "mediumDashed"
        and bool(cell.font.b)
    )


def _is_plain(cell: Any) -> bool:
    return (
        cell.fill.fill_type is None
        and cell.comment is None
        and not cell.font.b
        and cell.border.left.style is None
    )


def _source_cells(path: Path) -> dict[int, list[str]]:
    """The sample's data rows by source row (header = row 1), as the csv module reads them."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return {number: record for number, record in enumerate(csv.reader(handle), start=1) if number > 1}


def test_csv_source_every_problem_cell_marked_with_its_reason_and_valid_rows_plain(
    csv_report: Path, csv_result: ValidationResult
) -> None:
    path = csv_report / "annotated.xlsx"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    book = _open(path)
    assert book.sheetnames == ["Rows", "Problems", "Summary"]
    sheet = book["Rows"]
    header = [c.value for c in sheet[1]]
    assert header == ["row", *GENERIC_HEADERS, "problems"]
    assert sheet.freeze_panes == "B2"
    assert (
        sheet.auto_filter.ref
        == f"A1:{openpyxl.utils.get_column_letter(len(header))}{csv_result.rows_read + 1}"
    )
    assert all(
        8 <= (sheet.column_dimensions[openpyxl.utils.get_column_letter(i)].width or 0) <= 50
        for i in range(1, len(header))
    )

    rows = {int(r[0].value): r for r in sheet.iter_rows(min_row=2)}
    assert len(rows) == csv_result.rows_read  # every row read, ragged ones too
    rejected = {(r[SOURCE_ROW]) for r in csv_result.rejects.iter_rows(named=True)}
    source = _source_cells(SAMPLE_DIR / "leads.csv")
    column = {name: index for index, name in enumerate(header)}
    for number, cells in rows.items():
        if number not in rejected:
            assert all(_is_plain(c) for c in cells), f"valid row {number} was touched"
            assert cells[-1].value is None
            # the values as read (formula-looking ones neutralized, as in the CSV reports)
            assert [c.value or "" for c in cells[1:-1]] == [neutralize_cell(v) for v in source[number]]
    for problem in csv_result.rejects.iter_rows(named=True):
        cells = rows[problem[SOURCE_ROW]]
        assert problem["code"] in cells[-1].value.split(", ")
        assert cells[0].font.b  # the row's number stands out
        at = column.get(problem["field"], 0)  # a problem with no column sits on the row's first cell
        assert _is_marked(cells[at]), (problem[SOURCE_ROW], problem["field"])
        assert problem["message"] in cells[at].comment.text
        if at:
            assert cells[at].value == neutralize_cell(problem["value"] or "") or problem["value"] is None
    marked = {(int(r[0].value), i) for r in rows.values() for i, c in enumerate(r) if c.comment}
    expected = {(p[SOURCE_ROW], column.get(p["field"], 0)) for p in csv_result.rejects.iter_rows(named=True)}
    assert marked == expected  # nothing else carries a comment


def test_problems_sheet_lists_every_problem_and_links_to_its_cell(
    csv_report: Path, csv_result: ValidationResult
) -> None:
    book = _open(csv_report / "annotated.xlsx")
    problems = book["Problems"]
    header = [c.value for c in problems[1]]
    assert header == ["row", "column", "value", "code", "reason", "kind", "cell"]
    listed = list(problems.iter_rows(min_row=2))
    assert len(listed) == csv_result.rejects.height + csv_result.warnings.height
    assert {(r[0].value, r[3].value) for r in listed if r[5].value == "rejected"} == {
        (p[SOURCE_ROW], p["code"]) for p in csv_result.rejects.iter_rows(named=True)
    }
    rows_sheet = book["Rows"]
    for record in listed:
        link = record[6].hyperlink
        sheet_name, where = link.location.split("!")
        assert sheet_name == "'Rows'"
        target = rows_sheet[where]
        assert rows_sheet.cell(target.row, 1).value == record[0].value  # the link lands on its row
        if record[5].value == "rejected":
            assert _is_marked(target) and record[4].value in target.comment.text
        else:
            assert _is_plain(target)  # a warning's row still loads: left plain
            assert rows_sheet.cell(1, target.column).value == record[1].value  # on its column


def test_summary_sheet_says_how_the_file_was_read_and_counts(
    csv_report: Path, csv_result: ValidationResult
) -> None:
    lines = {
        row[0]: row[1:] for row in _open(csv_report / "annotated.xlsx")["Summary"].iter_rows(values_only=True)
    }
    assert lines["File read as"][0] == csv_result.sources[0].describe()
    assert lines["Rows read"][0] == csv_result.rows_read
    assert lines["Rows ready to send"][0] == csv_result.rows_valid
    assert lines["Rows rejected"][0] == csv_result.rows_rejected
    by_code = csv_result.rejects.unique([SOURCE_ROW, "code"]).group_by("code").len()
    for code, count in by_code.iter_rows():
        assert lines[code][0] == count


def test_xlsx_source_is_annotated_too(xlsx_report: Path, xlsx_result: ValidationResult) -> None:
    rows = list(_open(xlsx_report / "annotated.xlsx")["Rows"].iter_rows(min_row=2))
    assert len(rows) == xlsx_result.rows_read
    commented = {int(r[0].value) for r in rows for c in r if c.comment}
    assert commented == set(xlsx_result.rejects.get_column(SOURCE_ROW).to_list())


def _result(frames: list[pl.DataFrame], rejects: pl.DataFrame) -> ValidationResult:
    rows = pl.concat(frames, how="diagonal")
    sources = tuple(
        SourceInfo(
            path=f"/data/{f[SOURCE_FILE][0]}", format="csv", rows=f.height, columns=tuple(f.columns[:-2])
        )
        for f in frames
    )
    keys = rejects.select(SOURCE_FILE, SOURCE_ROW).unique()
    return ValidationResult(
        sources=sources,
        mapping=_mapping(),
        rows_read=rows.height,
        clients=pl.DataFrame(),
        cases=pl.DataFrame(),
        rejects=rejects,
        rejected_rows=rows.join(keys, on=[SOURCE_FILE, SOURCE_ROW], how="semi"),
        source_rows=rows,
    )


def _frame(name: str, cells: dict[str, list[str | None]]) -> pl.DataFrame:
    height = len(next(iter(cells.values())))
    return pl.DataFrame(
        {**cells, SOURCE_FILE: [name] * height, SOURCE_ROW: list(range(2, height + 2))},
        schema={**dict.fromkeys(cells, pl.String), SOURCE_FILE: pl.String, SOURCE_ROW: pl.Int64},
    )


def _reject(file: str, row: int, field: str | None, value: str | None, code: str) -> dict[str, Any]:
    return {
        SOURCE_FILE: file,
        SOURCE_ROW: row,
        "field": field,
        "value": value,
        "code": code,
        "message": f"{code}!",
    }


def test_several_files_formulas_and_clashing_names(tmp_path: Path) -> None:
    first = _frame("a.csv", {"row": ["=1+2", "ok"], "phone": ["+12125550123", "@SUM(A1)"]})
    second = _frame("b.csv", {"row": ["x"], "problems": ["y\x07z"]})
    rejects = pl.DataFrame(
        [
            _reject("b.csv", 2, "problems", "y\x07z", "invalid-zip"),
            _reject("a.csv", 3, None, None, "ragged-row"),
        ],
        schema=REJECT_SCHEMA,
    )
    path = write_annotated_workbook(_result([first, second], rejects), tmp_path / "annotated.xlsx")
    sheet = _open(path)["Rows"]
    header = [c.value for c in sheet[1]]
    assert header == ["kayse_row", "source_file", "row", "phone", "problems", "kayse_problems"]
    assert sheet.freeze_panes == "C2"
    values = [[c.value for c in r] for r in sheet.iter_rows(min_row=2)]
    assert values == [
        [2, "a.csv", "'=1+2", "+12125550123", None, None],  # neutralized, never a formula
        [3, "a.csv", "ok", "'@SUM(A1)", None, "ragged-row"],
        [
            2,
            "b.csv",
            "x",
            None,
            "y\\x07z",
            "invalid-zip",
        ],  # a control character: shown as an escape, as in every report
    ]
    assert all(c.data_type != "f" for r in sheet.iter_rows() for c in r)
    assert _is_marked(sheet["A3"]) and "ragged-row!" in sheet["A3"].comment.text  # no column: first cell
    assert _is_marked(sheet["E4"])


def test_a_large_file_shows_only_its_rejected_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(annotated, "ALL_ROWS_UP_TO", 3)
    frame = _frame("a.csv", {"name": [f"n{i}" for i in range(6)]})
    rejects = pl.DataFrame([_reject("a.csv", 5, "name", "n3", "missing-required")], schema=REJECT_SCHEMA)
    book = _open(write_annotated_workbook(_result([frame], rejects), tmp_path / "annotated.xlsx"))
    assert [[c.value for c in r] for r in book["Rows"].iter_rows(min_row=2)] == [
        [5, "n3", "missing-required"]
    ]
    assert any("only the rejected" in str(line[1]) for line in book["Summary"].iter_rows(values_only=True))
    assert book["Problems"]["G2"].hyperlink.location == "'Rows'!B2"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=40), min_size=1, max_size=5))
def test_any_text_is_stored_as_text_formula_safe(tmp_path: Path, texts: list[str]) -> None:
    frame = _frame("a.csv", {"cell": list(texts)})
    path = write_annotated_workbook(_result([frame], empty_rejects()), tmp_path / "annotated.xlsx")
    cells = [r[1] for r in _open(path)["Rows"].iter_rows(min_row=2)]
    assert all(c.data_type != "f" for c in cells)
    # XML reads a carriage return back as a line feed: the one change the format itself makes
    assert [c.value or "" for c in cells] == [_xml_lines(annotated._text(t)) if t else "" for t in texts]
    for cell, text in zip(cells, texts, strict=True):
        if text and not any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
            assert cell.value == _xml_lines(neutralize_cell(text))


def _xml_lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def test_comments_stop_at_the_limit_but_every_problem_cell_stays_marked_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(annotated, "MAX_COMMENTS", 2)
    frame = _frame("a.csv", {"name": [f"n{i}" for i in range(4)], "phone": ["1", "2", "3", "4"]})
    rejects = pl.DataFrame(
        [
            _reject("a.csv", 2, "name", "n0", "missing-required"),
            _reject("a.csv", 3, "phone", "2", "invalid-phone"),
            _reject("a.csv", 4, "phone", "3", "invalid-phone"),
            _reject("a.csv", 5, None, None, "ragged-row"),
        ],
        schema=REJECT_SCHEMA,
    )
    book = _open(write_annotated_workbook(_result([frame], rejects), tmp_path / "annotated.xlsx"))
    sheet = book["Rows"]
    problem_cells = ["B2", "C3", "C4", "A5"]  # in row order
    assert all(_is_marked(sheet[at]) for at in problem_cells)
    assert [sheet[at].comment is not None for at in problem_cells] == [True, True, False, False]
    assert "missing-required!" in sheet["B2"].comment.text
    assert [sheet.cell(row, 4).value for row in range(2, 6)] == [
        "missing-required",
        "invalid-phone",
        "invalid-phone",
        "ragged-row",
    ]
    listed = list(book["Problems"].iter_rows(min_row=2, values_only=True))
    assert [(line[0], line[4]) for line in listed] == [
        (2, "missing-required!"),
        (3, "invalid-phone!"),
        (4, "invalid-phone!"),
        (5, "ragged-row!"),
    ]
    assert [line[6] for line in listed] == [f"Rows!{at}" for at in problem_cells]
    notes = [str(line[1]) for line in book["Summary"].iter_rows(values_only=True) if line[0] == "Note"]
    assert any("first 2 of the 4 marked cells carry a comment" in note for note in notes)


def test_no_note_on_comments_when_every_problem_cell_has_one(csv_report: Path) -> None:
    lines = _open(csv_report / "annotated.xlsx")["Summary"].iter_rows(values_only=True)
    assert not any("carry a comment" in str(line[1]) for line in lines)
