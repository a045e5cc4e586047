"""Layouts real workbooks have and calamine alone reads wrong: each read as Excel shows it.

The committed fixtures under tests/extract/data are made by data/make_fixtures.py.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source, read_sources
from pipeline.extract._package import column_index, column_letters
from pipeline.model import SOURCE_FILE, SOURCE_ROW, UserError

DATA = Path(__file__).parent / "data"

# One value of each kind calamine types differently, as the header's columns.
KINDS: dict[str, Any] = {
    "Name": "Ann",
    "Time": dt.time(9, 30, 15),
    "Called at": dt.datetime(2024, 3, 5, 14, 30),
    "Signed": dt.date(2024, 3, 5),
    "Amount": 1234567.891234567,
    "Phone": 2125550123,
    "Opt in": True,
    "Zip": "02134",
}
EXPECTED = {
    "Name": "Ann",
    "Time": "09:30:15",
    "Called at": "2024-03-05T14:30:00",
    "Signed": "2024-03-05",
    "Amount": "1234567.891234567",
    "Phone": "2125550123",
    "Opt in": "TRUE",
    "Zip": "02134",
}


def table_at(path: Path, top: int, left: int, columns: list[str], rows: list[list[Any]]) -> Path:
    """The same table written with its header at (row `top`, column `left`), 1-based."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for offset, name in enumerate(columns):
        sheet.cell(top, left + offset, name)
    for row_offset, row in enumerate(rows, start=1):
        for offset, value in enumerate(row):
            if value is not None:
                sheet.cell(top + row_offset, left + offset, value)
    workbook.save(path)
    return path


def data_rows(path: Path, **options: Any) -> pl.DataFrame:
    return read_source(path, **options).frame.drop(SOURCE_FILE)


def test_a_table_off_column_a_reads_as_the_same_table_at_a1(tmp_path: Path) -> None:
    columns = list(KINDS)
    rows = [list(KINDS.values()), [None, *list(KINDS.values())[1:]]]
    at_a1 = data_rows(table_at(tmp_path / "a1.xlsx", 1, 1, columns, rows))
    assert at_a1.drop(SOURCE_ROW).row(0) == tuple(EXPECTED.values())
    for top, left in [(1, 2), (3, 3)]:
        moved = data_rows(table_at(tmp_path / f"r{top}c{left}.xlsx", top, left, columns, rows))
        assert moved.drop(SOURCE_ROW).equals(at_a1.drop(SOURCE_ROW))
        assert moved.get_column(SOURCE_ROW).to_list() == [top + 1, top + 2]


cells: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.sampled_from(list(KINDS.values())),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.times().map(lambda moment: moment.replace(microsecond=0)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2199, 12, 31)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
    st.text(alphabet="ab 09.-:", min_size=1).filter(lambda text: text.strip() != ""),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    top=st.integers(min_value=1, max_value=6),
    left=st.integers(min_value=1, max_value=30),
    body=st.lists(st.lists(cells, min_size=4, max_size=4), min_size=1, max_size=5),
)
def test_any_offset_reads_exactly_as_at_a1(
    tmp_path: Path, top: int, left: int, body: list[list[Any]]
) -> None:
    columns = ["id", "c1", "c2", "c3"]
    rows = [[f"r{index}", *row[1:]] for index, row in enumerate(body)]  # no row is blank
    at_a1 = data_rows(table_at(tmp_path / "a1.xlsx", 1, 1, columns, rows))
    moved = data_rows(table_at(tmp_path / "moved.xlsx", top, left, columns, rows))
    assert moved.drop(SOURCE_ROW).equals(at_a1.drop(SOURCE_ROW))
    assert (moved.get_column(SOURCE_ROW) - at_a1.get_column(SOURCE_ROW)).to_list() == [top - 1] * len(rows)


def test_column_letters_round_trip() -> None:
    assert [column_letters(index) for index in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert all(column_index(column_letters(index)) == index for index in range(2000))


def test_messages_name_columns_by_the_sheets_letters(tmp_path: Path) -> None:
    path = table_at(tmp_path / "unnamed.xlsx", 3, 3, ["Name", None, "Phone", "Name"], [["Ann", "x", 1, "y"]])
    with pytest.raises(UserError) as caught:
        read_source(path)
    assert "column D of the header (row 3) has values but no name" in caught.value.message

    path = table_at(tmp_path / "dup.xlsx", 1, 6, ["Name", "Phone", "Name"], [["Ann", 1, "Bob"]])
    with pytest.raises(UserError) as caught:
        read_source(path)
    assert "'Name' (columns F, H)" in caught.value.message

    path = table_at(tmp_path / "blank.xlsx", 2, 2, ["Name", None, "Phone"], [["Ann", None, 1]])
    assert "ignored column C: no header name and no values" in read_source(path).info.notes


def test_mac_1904_workbook_with_an_x14_extension_keeps_its_dates() -> None:
    path = DATA / "mac_1904_x14.xlsx"
    with zipfile.ZipFile(path) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
    assert 'date1904="1"' in workbook and "<x14:workbookPr" in workbook  # the layout calamine misreads
    assert data_rows(path).rows() == [
        ("Ann", "2024-03-05", "2024-03-05T14:30:00", "09:30:00", 2),
        ("Bob", "1904-01-02", "1999-12-31T23:59:59", None, 3),
    ]


def test_1900_workbook_dates_before_march_1900(tmp_path: Path) -> None:
    # Excel counts a 29 February 1900 that never was: serials before it are a day later.
    path = table_at(
        tmp_path / "early.xlsx",
        1,
        1,
        ["When"],
        [[dt.date(1900, 1, 1)], [dt.date(1900, 2, 28)], [dt.date(1900, 3, 1)], [dt.datetime(1900, 1, 5, 6)]],
    )
    assert data_rows(path).get_column("When").to_list() == [
        "1900-01-01",
        "1900-02-28",
        "1900-03-01",
        "1900-01-05T06:00:00",
    ]


def test_elapsed_times_of_a_day_or_more_stay_durations() -> None:
    assert data_rows(DATA / "elapsed_times.xlsx").rows() == [
        ("M-1", "255:10:10", "2024-03-05", "09:30:00", 2),
        ("M-2", "24:00:00", "1900-01-10", "03:05:00", 3),
        ("M-3", "00:45:00", None, None, 4),
    ]


@pytest.mark.parametrize(
    ("name", "members"),
    [
        ("minimal_book_part.xlsx", {"_rels/.rels", "xl/book.xml", "xl/sheets/data.xml"}),
        ("minimal_backslashes.xlsx", {"_rels\\.rels", "wb\\workbook.xml", "wb\\worksheets\\sheet1.xml"}),
    ],
)
def test_a_minimal_package_is_read_wherever_its_workbook_part_is(name: str, members: set[str]) -> None:
    path = DATA / name
    with zipfile.ZipFile(path) as archive:
        assert members <= set(archive.namelist()) and "xl/workbook.xml" not in archive.namelist()
    extracted = read_source(path)
    assert (extracted.info.format, extracted.info.sheet) == ("xlsx", "Leads")
    assert data_rows(path).rows() == [("Ann", "2125550123", 2)]


def test_a_notes_sheet_first_names_the_sheets_and_suggests_sheet() -> None:
    with pytest.raises(UserError) as caught:
        read_source(DATA / "title_block_and_notes.xlsx")
    error = caught.value
    assert "sheet 'Read me' of title_block_and_notes.xlsx; its other sheets: 'Leads'" in error.message
    assert "--sheet" in (error.hint or "") and "--header-row" in (error.hint or "")


def test_a_title_block_above_the_header_is_found_and_said() -> None:
    extracted = read_source(DATA / "title_block_and_notes.xlsx", sheet="Leads")
    assert extracted.info.columns == ("Name", "Phone", "Signed", "Opt in")
    assert extracted.frame.drop(SOURCE_FILE).rows() == [
        ("Ann", "2125550123", "2024-03-01", "TRUE", 5),
        ("Bob", "2125550124", "2024-03-02", "FALSE", 6),
    ]
    assert extracted.info.notes[0].startswith("header found at row 4 (rows 1–3 look like a title block")


def test_header_row_given_wins_and_keeps_excel_row_numbers(tmp_path: Path) -> None:
    path = DATA / "title_block_and_notes.xlsx"
    [extracted] = read_sources([path], sheet="Leads", header_row=4)
    assert extracted.info.columns == ("Name", "Phone", "Signed", "Opt in")
    assert extracted.frame.get_column(SOURCE_ROW).to_list() == [5, 6]
    assert extracted.info.notes[0] == "header at row 4 as asked; the rows above it were skipped"
    with pytest.raises(UserError, match=r"columns D, E of the header \(row 2\) have values but no name"):
        read_source(path, sheet="Leads", header_row=2)
    with pytest.raises(UserError, match=r"row 3 of sheet 'Leads' .* is blank"):
        read_source(path, sheet="Leads", header_row=3)
    with pytest.raises(UserError, match="row 99 of sheet 'Leads'"):
        read_source(path, sheet="Leads", header_row=99)


def test_a_table_below_many_blank_rows_is_found_not_called_empty(tmp_path: Path) -> None:
    # More blank rows above the table than the header search looks at: it starts at the first value.
    path = table_at(tmp_path / "low.xlsx", 300, 2, ["Name", "Phone"], [["Ann", "2125550123"], ["Bob", None]])
    extracted = read_source(path)
    assert extracted.info.columns == ("Name", "Phone")
    assert extracted.frame.get_column(SOURCE_ROW).to_list() == [301, 302]
    assert not any("header" in note for note in extracted.info.notes)


def test_detection_keeps_row_one_when_it_is_the_header(tmp_path: Path) -> None:
    # A header wider than nothing above it, then rows naming only its columns: row 1, no note.
    path = table_at(tmp_path / "plain.xlsx", 1, 1, ["Name", "2024"], [["Ann", 1], ["Bob", None]])
    extracted = read_source(path)
    assert extracted.info.columns == ("Name", "2024")
    assert not any("header" in note for note in extracted.info.notes)
    # Data rows narrower than the header never make a later row the header.
    path = table_at(tmp_path / "wide.xlsx", 1, 1, ["A", "B", "C"], [["x", None, None], ["y", "z", "w"]])
    assert read_source(path).frame.get_column(SOURCE_ROW).to_list() == [2, 3]


def test_the_first_of_several_sheets_is_said(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.append(["Name"])
    first.append(["Ann"])
    workbook.create_sheet("Other")
    path = tmp_path / "two.xlsx"
    workbook.save(path)
    notes = read_source(path).info.notes
    assert "read the first sheet 'Sheet'; the others ('Other') can be read with --sheet" in notes
    assert not any("first sheet" in note for note in read_source(path, sheet="Sheet").info.notes)


def _leads_after(workbook: openpyxl.Workbook, path: Path) -> Path:
    """`workbook` (its first sheet already set up) with a 'Leads' table after it."""
    leads = workbook.create_sheet("Leads")
    leads.append(["Name", "Amount"])
    leads.append(["Ann", 3])
    workbook.active = len(workbook.sheetnames) - 1
    workbook.save(path)
    return path


def test_a_chart_sheet_first_is_passed_over_and_said(tmp_path: Path) -> None:
    # Excel users put a chart on its own tab before the data; it has no cells to read.
    workbook = openpyxl.Workbook()
    assert workbook.active is not None
    workbook.remove(workbook.active)
    workbook.create_chartsheet("Chart")
    path = _leads_after(workbook, tmp_path / "chart_first.xlsx")
    extracted = read_source(path)
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("Ann", "3", 2)]
    assert (
        "read 'Leads', the first visible worksheet; passed over 'Chart' (a chart sheet)"
        in extracted.info.notes
    )
    with pytest.raises(
        UserError, match=r"sheet 'Chart' \(a chart sheet\) of chart_first.xlsx holds no table"
    ) as caught:
        read_source(path, sheet="Chart")
    assert caught.value.hint == "its worksheets are: 'Leads'"
    workbook.remove(workbook["Leads"])
    workbook.save(tmp_path / "only_chart.xlsx")
    with pytest.raises(UserError, match=r"only_chart\.xlsx has no worksheet, only 'Chart' \(a chart sheet\)"):
        read_source(tmp_path / "only_chart.xlsx")


def test_a_hidden_sheet_first_is_not_read_unless_asked(tmp_path: Path) -> None:
    # A hidden lookup sheet is not what the person sending the workbook sees first.
    workbook = openpyxl.Workbook()
    lookups = workbook.active
    assert lookups is not None
    lookups.title = "Lookups"
    lookups.append(["Code", "Label"])
    lookups.append(["PI", "Personal injury"])
    lookups.sheet_state = "hidden"
    path = _leads_after(workbook, tmp_path / "hidden_first.xlsx")
    extracted = read_source(path)
    assert extracted.info.sheet == "Leads" and extracted.info.columns == ("Name", "Amount")
    assert any("passed over 'Lookups' (hidden, read with --sheet)" in note for note in extracted.info.notes)
    asked = read_source(path, sheet="Lookups")
    assert asked.frame.drop(SOURCE_FILE).rows() == [("PI", "Personal injury", 2)]
    assert asked.info.notes == ()


def test_an_empty_sheet_names_the_other_worksheets_where_the_data_may_be(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    data = workbook.create_sheet("Data")
    data.append(["Name"])
    data.sheet_state = "hidden"
    workbook.save(tmp_path / "two.xlsx")
    with pytest.raises(UserError, match=r"sheet 'Sheet' of two\.xlsx is empty") as caught:
        read_source(tmp_path / "two.xlsx")
    assert (
        caught.value.hint
        == "pick the sheet with the data (--sheet): its other worksheets are 'Data' (hidden)"
    )
    workbook.remove(data)
    workbook.save(tmp_path / "one.xlsx")
    with pytest.raises(UserError, match="is empty") as caught:
        read_source(tmp_path / "one.xlsx")
    assert "only worksheet" in (caught.value.hint or "") and "--sheet" not in (caught.value.hint or "")


def _with_odd_second_sheet(tmp_path: Path, how: str) -> Path:
    """A two-sheet workbook whose second sheet calamine refuses, and the whole workbook with it:
    "macro" makes it an Excel 4 macro sheet, "no part" names a relationship that is not there."""
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Leads"
    first.append(["Name"])
    first.append(["Ann"])
    workbook.create_sheet("Macro1").append(["=HALT()"])
    saved = tmp_path / "saved.xlsm"
    workbook.save(saved)
    path = tmp_path / f"{how.replace(' ', '_')}.xlsm"
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as copy:
        for name in source.namelist():
            data = source.read(name)
            if name == "xl/_rels/workbook.xml.rels" and how == "macro":
                data = data.replace(
                    b'relationships/worksheet" Target="/xl/worksheets/sheet2.xml"',
                    b'relationships/xlMacrosheet" Target="/xl/macrosheets/sheet1.xml"',
                )
                assert b"xlMacrosheet" in data
            if name == "xl/worksheets/sheet2.xml" and how == "macro":
                name = "xl/macrosheets/sheet1.xml"
            if name == "xl/workbook.xml" and how == "no part":
                data = data.replace(
                    b'name="Macro1" sheetId="2" state="visible" r:id="rId2"',
                    b'name="Macro1" sheetId="2" r:id=""',
                )
                assert b'r:id=""' in data
            copy.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("how", "kind"), [("macro", "an Excel 4 macro sheet"), ("no part", "a sheet with no part in the package")]
)
def test_a_sheet_calamine_cannot_open_is_left_out_not_the_whole_workbook(
    tmp_path: Path, how: str, kind: str
) -> None:
    # calamine fails a whole workbook for one such sheet (found on Apache POI's test workbooks).
    path = _with_odd_second_sheet(tmp_path, how)
    extracted = read_source(path)
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("Ann", 2)]
    assert f"sheet 'Macro1' ({kind}) was not read: it holds no table" in extracted.info.notes
    with pytest.raises(UserError, match=rf"sheet 'Macro1' \({kind}\) of {path.name} holds no table"):
        read_source(path, sheet="Macro1")
