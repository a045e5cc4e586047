"""The XLSX reader on real workbooks written with openpyxl: typed cells become the text meant."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path

import openpyxl
import pytest

from pipeline.extract import read_source
from pipeline.model import SOURCE_FILE, SOURCE_ROW, UserError


def set_cached_values(path: Path, values: dict[str, tuple[str | None, str]]) -> None:
    """Give formula cells the cached results Excel would have saved (openpyxl writes none).

    values: cell reference → (cell type attribute or None for a number, cached text).
    """
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    for reference, (cell_type, cached) in values.items():
        type_attribute = f' t="{cell_type}"' if cell_type else ""
        sheet, replaced = re.subn(
            rf'<c r="{reference}"([^>]*)><f>(.*?)</f><v\s*/>',
            rf'<c r="{reference}"\1{type_attribute}><f>\2</f><v>{cached}</v>',
            sheet,
        )
        assert replaced == 1, reference
    members["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def typed_workbook(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Leads"
    sheet.append(["Phone", "Signed", "Called at", "Amount", "Opt in", "Doubled", "Zip", "Name", "Time"])
    sheet.append(
        [
            2125550123,
            dt.date(2024, 3, 5),
            dt.datetime(2024, 3, 5, 14, 30),
            1250.0,
            True,
            "=A2*2",
            2134,
            " Ann ",
            dt.time(9, 30),
        ]
    )
    sheet.append([None] * 9)
    sheet.append(
        [
            12125550123.0,
            dt.datetime(2023, 12, 31),
            dt.datetime(2024, 1, 1, 0, 0, 1),
            0.1,
            False,
            "=A4*2",
            "02134",
            "true",
            None,
        ]
    )
    sheet.append([None, None, None, 1 / 3, None, '="x"&"y"', None, "2024-03-05 00:00:00", None])
    sheet.append([None, None, None, 1e20, None, "=1/0", None, "Zoë", None])
    sheet.append([None, None, None, -2.5, None, None, None, None, None])
    path = tmp_path / "typed.xlsx"
    workbook.save(path)
    set_cached_values(
        path,
        {
            "F2": (None, "4251100246"),
            "F4": (None, "24250001246"),
            "F5": ("str", "xy"),
            "F6": ("e", "#DIV/0!"),
        },
    )
    return path


def test_typed_cells_become_the_text_a_person_meant(typed_workbook: Path) -> None:
    extracted = read_source(typed_workbook)
    frame = extracted.frame
    assert extracted.info.format == "xlsx" and extracted.info.sheet == "Leads"
    assert extracted.info.columns == (
        "Phone",
        "Signed",
        "Called at",
        "Amount",
        "Opt in",
        "Doubled",
        "Zip",
        "Name",
        "Time",
    )
    assert frame.get_column(SOURCE_ROW).to_list() == [2, 4, 5, 6, 7]
    assert frame.get_column(SOURCE_FILE).unique().to_list() == ["typed.xlsx"]
    assert frame.get_column("Phone").to_list() == ["2125550123", "12125550123", None, None, None]
    assert frame.get_column("Signed").to_list() == ["2024-03-05", "2023-12-31", None, None, None]
    assert frame.get_column("Called at").to_list() == [
        "2024-03-05T14:30:00",
        "2024-01-01T00:00:01",
        None,
        None,
        None,
    ]
    assert frame.get_column("Amount").to_list() == [
        "1250",
        "0.1",
        "0.3333333333333333",
        "1e+20",
        "-2.5",
    ]
    assert frame.get_column("Opt in").to_list() == ["TRUE", "FALSE", None, None, None]
    assert frame.get_column("Doubled").to_list() == ["4251100246", "24250001246", "xy", None, None]
    assert frame.get_column("Zip").to_list() == ["2134", "02134", None, None, None]
    # Text cells are left exactly as typed, even when they look like a boolean or a date.
    assert frame.get_column("Name").to_list() == [" Ann ", "true", "2024-03-05 00:00:00", "Zoë", None]
    assert frame.get_column("Time").to_list() == ["09:30:00", None, None, None, None]
    # The #DIV/0! cell is empty, but said: calamine alone would read it as a silent blank.
    assert extracted.info.notes == (
        "skipped 1 blank row",
        "1 cell with an Excel error read as empty (excel-error): F6 (#DIV/0!)",
    )


def test_column_turning_from_numbers_to_text_keeps_every_value(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Phone", "Note"])
    for index in range(1500):
        sheet.append([2125550000 + index, index])
    sheet.append(["(212) 555-9999", "text"])
    sheet.append([dt.date(2024, 1, 2), True])
    path = tmp_path / "late_text.xlsx"
    workbook.save(path)
    frame = read_source(path).frame
    assert frame.height == 1502
    assert frame.get_column("Phone").null_count() == 0
    assert frame.get_column("Phone")[0] == "2125550000"
    assert frame.get_column("Phone").to_list()[-2:] == ["(212) 555-9999", "2024-01-02"]
    assert frame.get_column("Note").to_list()[-3:] == ["1499", "text", "TRUE"]
    assert frame.get_column(SOURCE_ROW).to_list()[-1] == 1503


def test_rows_keep_excel_numbers_when_the_table_starts_lower_and_righter(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet["C3"], sheet["D3"] = "Name", "Email"
    sheet["C4"], sheet["D4"] = "Ann", "a@x.org"
    sheet["C7"], sheet["D7"] = "Bob", "b@x.org"
    path = tmp_path / "offset.xlsx"
    workbook.save(path)
    extracted = read_source(path)
    assert extracted.info.columns == ("Name", "Email")
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("Ann", "a@x.org", 4), ("Bob", "b@x.org", 7)]
    assert extracted.info.notes == ("skipped 2 blank rows",)


def two_sheet_workbook(tmp_path: Path) -> Path:
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Summary"
    first.append(["Total"])
    first.append([3])
    second = workbook.create_sheet("Intake 2024")
    second.append(["Name", "Phone"])
    second.append(["Ann", 2125550123])
    path = tmp_path / "two.xlsx"
    workbook.save(path)
    return path


def test_first_sheet_by_default_and_another_by_name(tmp_path: Path) -> None:
    path = two_sheet_workbook(tmp_path)
    assert read_source(path).info.columns == ("Total",)
    extracted = read_source(path, sheet="Intake 2024")
    assert extracted.info.sheet == "Intake 2024"
    assert extracted.frame.drop(SOURCE_FILE).rows() == [("Ann", "2125550123", 2)]
    assert "sheet 'Intake 2024'" in extracted.info.describe()


def test_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        read_source(two_sheet_workbook(tmp_path), sheet="Leads")
    assert caught.value.message == "two.xlsx has no sheet named 'Leads'"
    assert caught.value.hint == "its sheets are: 'Summary', 'Intake 2024'"


def test_duplicate_headers_in_a_sheet_are_refused(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Email", "Name", "Email"])
    sheet.append(["a", "b", "c"])
    path = tmp_path / "dup.xlsx"
    workbook.save(path)
    with pytest.raises(UserError, match=r"duplicate column names .*'Email' \(columns A, C\)"):
        read_source(path)


def test_empty_sheet_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(UserError, match="is empty"):
        read_source(path)


def test_a_sheet_of_only_excel_errors_is_said_to_hold_them_not_to_be_empty(tmp_path: Path) -> None:
    # calamine reads an error cell as empty: a sheet of #DIV/0! cells would be "empty", while the
    # person who opens it in Excel sees cells.
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for formula in ("=1/0", "=A9", "=SQRT(-4)"):
        sheet.append([formula])
    path = tmp_path / "errors.xlsx"
    workbook.save(path)
    set_cached_values(path, {"A1": ("e", "#DIV/0!"), "A2": ("e", "#REF!"), "A3": ("e", "#NUM!")})
    with pytest.raises(UserError) as raised:
        read_source(path)
    assert raised.value.message == (
        "sheet 'Sheet' of errors.xlsx has no values: its only cells hold Excel errors, "
        "A1 (#DIV/0!), A2 (#REF!), A3 (#NUM!)"
    )
    assert "fix the formulas" in (raised.value.hint or "")


def test_header_only_sheet_gives_no_rows(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name", 2024])
    path = tmp_path / "header.xlsx"
    workbook.save(path)
    extracted = read_source(path)
    assert extracted.info.columns == ("Name", "2024")
    assert extracted.frame.height == 0


def test_numbers_keep_full_precision_and_text_digits_stay_text(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Value"])
    for value in [1e-10, 3.14159265358979, 0, -0.0, 2.0**53, 12.0, "0010.50", "12"]:
        sheet.append([value])
    path = tmp_path / "numbers.xlsx"
    workbook.save(path)
    assert read_source(path).frame.get_column("Value").to_list() == [
        "1e-10",
        "3.14159265358979",
        "0",
        "0",
        "9007199254740992",
        "12",
        "0010.50",
        "12",
    ]


def test_a_tiny_negative_number_alone_is_not_rounded_to_zero(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Value"])
    sheet.append([-1e-10])
    path = tmp_path / "tiny.xlsx"
    workbook.save(path)
    assert read_source(path).frame.get_column("Value").to_list() == ["-1e-10"]
