"""annotated.xlsx as a package and as read back: every part well-formed XML and declared, every
relationship pointing at a part, and every value, look, comment and link read back by openpyxl
as written, whatever the texts (XML specials, formula starts, control characters, emoji, texts
too long for a cell, empty and missing ones)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree import ElementTree

import fastexcel
import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter
from openpyxl.utils.escape import unescape

from pipeline.model import (
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    SourceInfo,
    ValidationResult,
    empty_rejects,
    problem,
)
from pipeline.report import annotated, xlsx_package
from pipeline.report.annotated import EXCEL_MAX_CELL_CHARS, write_annotated_workbook
from pipeline.report.cells import neutralize_cell
from tests.report.test_annotated_workbook import _frame, _is_marked, _is_plain, _result
from tests.report.test_report_writer import _mapping

_CONTENT_TYPES = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_RELATIONSHIPS = "{http://schemas.openxmlformats.org/package/2006/relationships}"

AWKWARD = [
    "a & b",
    "<b>bold</b>",
    'say "hi"',
    "it's",
    "]]>",
    "=1+2",
    "+12125550123",
    "+1 (212) 555",
    "-5",
    "@SUM(A1)",
    "\tlead tab",
    "bell\x07 nul\x00 esc\x1b",
    "c1 \x85 del \x7f",
    "not a char \ufffe\uffff",
    "emoji 😀 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "  padded  ",
    "   ",
    "line\nbreak\r\nand\rreturn",
    "_x0041_",
    "x" * (EXCEL_MAX_CELL_CHARS + 5),
    "é" * EXCEL_MAX_CELL_CHARS,
    "",
]
texts = st.one_of(st.none(), st.sampled_from(AWKWARD), st.text(max_size=30))

_ILLEGAL = re.compile(annotated._ILLEGAL)


def _as_read(text: str) -> str:
    """What an XML reader gets back: a carriage return reads as a line feed."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _in_rows_sheet(text: str | None) -> str | None:
    """A source cell as the Rows sheet holds it: formula-safe, storable, cut (no value: empty)."""
    if not text:
        return None
    return _as_read(_ILLEGAL.sub(annotated.REPLACEMENT, neutralize_cell(text))[:EXCEL_MAX_CELL_CHARS])


def _in_problems_sheet(text: str | None) -> str | None:
    return _as_read(annotated._text(text)) or None if text is not None else None


def _shown(value: Any) -> Any:
    """A cell's text as Excel (and calamine) shows it: openpyxl does not decode the `_x0041_`
    escapes of cell and comment texts (ST_Xstring), so the tests do."""
    return unescape(value) if isinstance(value, str) else value


def _values(sheet: Any) -> list[list[Any]]:
    return [[_shown(cell.value) for cell in row] for row in sheet.iter_rows(min_row=2)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(texts, texts, texts), min_size=1, max_size=6),
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(["name", "note", "phone", None]), texts), max_size=6
    ),
)
def test_every_value_look_comment_and_link_reads_back_as_written(
    tmp_path: Path, rows: list[tuple[str | None, ...]], found: list[tuple[int, str | None, str | None]]
) -> None:
    columns = {name: [row[at] for row in rows] for at, name in enumerate(("name", "note", "phone"))}
    frame = _frame("a.csv", columns)
    code = problem("invalid-phone").code
    rejects = pl.DataFrame(
        [
            {
                SOURCE_FILE: "a.csv",
                SOURCE_ROW: 2 + at % len(rows),
                "field": field,
                "value": columns[field][at % len(rows)] if field else None,
                "code": code,
                "message": message,
            }
            for at, field, message in found
        ],
        schema=REJECT_SCHEMA,
    )
    book = openpyxl.load_workbook(
        write_annotated_workbook(_result([frame], rejects), tmp_path / "annotated.xlsx")
    )

    sheet = book["Rows"]
    read = _values(sheet)
    assert [line[:4] for line in read] == [
        [number, *(_in_rows_sheet(text) for text in row)] for number, row in enumerate(rows, start=2)
    ]
    assert all(sheet.cell(row, 1).data_type == "n" for row in range(2, len(rows) + 2))  # numbers stay numbers
    assert all(cell.data_type != "f" for line in sheet.iter_rows() for cell in line)

    reasons: dict[tuple[int, int], list[str]] = {}
    for at, field, message in found:
        cell = (2 + at % len(rows), 2 + ("name", "note", "phone").index(field) if field else 1)
        reasons.setdefault(cell, []).append(f"{message or problem(code).title} [{code}]")
    for row in range(2, len(rows) + 2):
        for column in range(1, 6):
            cell = sheet.cell(row, column)
            if (row, column) in reasons:
                assert _is_marked(cell)
                assert _shown(cell.comment.text) == _as_read(annotated._text("\n".join(reasons[row, column])))
            elif column > 1:
                assert _is_plain(cell)
        assert read[row - 2][4] == (code if any(r == row for r, _ in reasons) else None)

    listed = list(book["Problems"].iter_rows(min_row=2))
    assert len(listed) == len(found)
    in_row_order = sorted(found, key=lambda item: item[0] % len(rows))  # stable: as found within a row
    for line, (at, field, message) in zip(listed, in_row_order, strict=True):
        row = 2 + at % len(rows)
        assert line[0].value == row
        assert _shown(line[1].value) == (field or "(whole row)")
        assert _shown(line[2].value) == _in_problems_sheet(columns[field][at % len(rows)] if field else None)
        assert _shown(line[4].value) == _as_read(annotated._text(message or problem(code).title))
        column = 2 + ("name", "note", "phone").index(field) if field else 1
        assert line[6].hyperlink.location == f"'Rows'!{get_column_letter(column)}{row}"
        assert line[6].value == f"Rows!{get_column_letter(column)}{row}"


def test_a_part_compressed_in_many_pieces_reads_back_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xlsx_package._Deflating, "PIECE", 1000)  # every sheet in many pieces
    names = [f"name {i} {'é' * (i % 7)} & <{i}>" for i in range(400)]
    frame = _frame("a.csv", {"name": list(names)})
    path = write_annotated_workbook(_result([frame], empty_rejects()), tmp_path / "annotated.xlsx")
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None  # every entry's CRC matches
    assert _values(openpyxl.load_workbook(path)["Rows"]) == [
        [number, neutralize_cell(name), None] for number, name in enumerate(names, start=2)
    ]


def _parts(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as package:
        assert package.testzip() is None
        return {name: package.read(name) for name in package.namelist()}


@pytest.mark.parametrize("report", ["csv_report", "xlsx_report"])
def test_every_part_is_well_formed_declared_and_reached(report: str, request: pytest.FixtureRequest) -> None:
    parts = _parts(request.getfixturevalue(report) / "annotated.xlsx")
    trees = {name: ElementTree.fromstring(data) for name, data in parts.items()}  # raises if not well-formed
    types = trees.pop("[Content_Types].xml")
    defaults = {node.get("Extension") for node in types.iter(f"{_CONTENT_TYPES}Default")}
    overrides = {node.get("PartName") for node in types.iter(f"{_CONTENT_TYPES}Override")}
    for name in trees:
        assert f"/{name}" in overrides or name.rsplit(".", 1)[-1] in defaults, name
    assert {name.lstrip("/") for name in overrides} <= set(trees)  # nothing declared that is missing
    assert {"/xl/workbook.xml", "/xl/styles.xml"} <= overrides
    reached = set()
    for name, tree in trees.items():
        if not name.endswith(".rels"):
            continue
        base = PurePosixPath(name).parent.parent  # _rels/x.rels is about x, next to the _rels folder
        for link in tree.iter(f"{_RELATIONSHIPS}Relationship"):
            target = PurePosixPath(base, link.get("Target", ""))
            resolved = "/".join(_resolved(target.parts))
            assert resolved in trees, (name, link.get("Target"))
            reached.add(resolved)
    assert reached == {name for name in trees if not name.endswith(".rels")}  # every part is reached


def _resolved(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        elif part not in (".", ""):
            out.append(part)
    return out


def test_column_letters_are_excels() -> None:  # XFD (16,384) is the last column Excel has
    assert [xlsx_package.column_letter(i) for i in range(1, 18_279)] == [
        get_column_letter(i) for i in range(1, 18_279)
    ]


def test_a_source_without_rows_still_makes_a_workbook(tmp_path: Path) -> None:
    frame = _frame("a.csv", {"name": []})
    result = ValidationResult(
        sources=(SourceInfo(path="/data/a.csv", format="csv", rows=0, columns=("name",)),),
        mapping=_mapping(),
        rows_read=0,
        clients=pl.DataFrame(),
        cases=pl.DataFrame(),
        rejects=empty_rejects(),
        rejected_rows=frame,
        source_rows=frame,
    )
    book = openpyxl.load_workbook(write_annotated_workbook(result, tmp_path / "annotated.xlsx"))
    assert [[c.value for c in row] for row in book["Rows"].iter_rows()] == [["row", "name", "problems"]]
    assert book["Problems"]["A1"].value == "row"
    assert book["Problems"].max_row == 1


ESCAPE_LOOKALIKES = [
    "_x0041_",
    "_x005F_",
    "_x0041_x0042_",
    "a_x005f_x0020_b",
    "_x12_",
    "_X0041_",
    "__x0041__",
]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.one_of(st.sampled_from(ESCAPE_LOOKALIKES), st.text(alphabet="_x05AFfgz", min_size=1, max_size=16)),
        min_size=1,
        max_size=8,
    )
)
def test_texts_that_look_like_escapes_read_back_as_written(tmp_path: Path, texts: list[str]) -> None:
    """Excel and calamine read `_x0041_` in a cell as "A": a text that holds one is written
    escaped (`_x005F_x0041_`), in cells and in comments, and reads back as it was."""
    frame = _frame("a.csv", {"name": list(texts)})
    rejects = pl.DataFrame(
        [
            {SOURCE_FILE: "a.csv", SOURCE_ROW: row, "field": "name", "value": text, "code": "invalid-phone",
             "message": text}
            for row, text in enumerate(texts, start=2)
        ],
        schema=REJECT_SCHEMA,
    )  # fmt: skip
    path = write_annotated_workbook(_result([frame], rejects), tmp_path / "annotated.xlsx")

    rows = fastexcel.read_excel(path).load_sheet("Rows", dtypes="string").to_polars()
    assert rows.get_column("name").to_list() == texts
    problems = fastexcel.read_excel(path).load_sheet("Problems", dtypes="string").to_polars()
    assert problems.get_column(problems.columns[2]).to_list() == texts  # the value as read
    book = openpyxl.load_workbook(path)
    assert [_shown(book["Rows"].cell(row, 2).comment.text) for row in range(2, len(texts) + 2)] == [
        f"{text} [invalid-phone]" for text in texts
    ]
