"""Numbers keep their stored value on the typed reads (calamine's text rounds to nine decimals),
and the one-parse shortcuts (dates rearranged as text, numbers rewritten only where
NUMBER_TEXT_MAY_CHANGE says) read exactly what the typed reads read."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source, xlsx_reader
from pipeline.extract._package import SheetScan

from .test_xlsx_one_parse import read_both_ways
from .test_xlsx_property import workbook_of

FAR_DATES_FROM = dt.datetime(4637, 11, 26)  # serial 1,000,000 on: the scan sends these to the typed reads


def stored_column(path: Path, index: int) -> list[Any]:
    """Column `c<index>` as openpyxl reads the file back: what the workbook really holds."""
    rows = openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True)
    return [cells[index + 1] for cells in rows]


def check_number(stored: int | float, read: str | None) -> None:
    """Integer text when integral (as `_number_text`), else the shortest text of the stored float."""
    assert read is not None
    number = float(stored)
    if number.is_integer() and abs(number) < 2.0**63:
        assert read == str(int(number))
    else:
        assert float(read) == number
        assert Decimal(read) == Decimal(repr(number))  # same shortest digits, whatever the exponent style


def test_a_near_integer_keeps_its_fraction_on_the_typed_reads(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in (
        ["id", "n"],
        ["a", 5.0000000001],
        ["b", 2903],
        ["c", "x"],
        ["d", 4.9999999999],
        ["e", "5.10"],
    ):
        sheet.append(row)
    workbook.save(tmp_path / "near.xlsx")
    assert read_source(tmp_path / "near.xlsx").frame.get_column("n").to_list() == [
        "5.0000000001",
        "2903",
        "x",
        "4.9999999999",
        "5.10",  # a text cell that looks like a number stays as typed
    ]


near_integers = st.builds(
    lambda whole, steps: whole + steps * 1e-10,
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=-3, max_value=3),
)
finite_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    near_integers,
    st.sampled_from([1e-300, -1e-300, 5e-324, 1.7976931348623157e308, 1e15 + 0.5, 2.0**63, 1e-10, -0.0]),
)
neighbours = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12), st.sampled_from(["x", "5.10", "007"])
)


@settings(max_examples=60, deadline=None)
@given(number=finite_floats, others=st.lists(neighbours, max_size=4), position=st.integers(0, 4))
def test_any_finite_float_among_integers_and_text_reads_as_its_stored_value(
    tmp_path_factory: pytest.TempPathFactory, number: float, others: list[Any], position: int
) -> None:
    column: list[Any] = list(others)
    column.insert(min(position, len(column)), number)
    path = workbook_of(tmp_path_factory.mktemp("floats") / "floats.xlsx", [column])
    read = read_source(path).frame.get_column("c0").to_list()
    for stored, text in zip(stored_column(path, 0), read, strict=True):
        if isinstance(stored, str):
            assert text == stored
        else:
            check_number(stored, text)


def read_in_one_parse(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Column c0 read by the one-parse rewrite even where the scan would send it to the typed
    reads (serials with a time of day are not whole): the shortcut alone, over any moment."""
    original = xlsx_reader.scan_sheet

    def sure(*args: Any) -> SheetScan:
        scan = original(*args)
        scan.unsure = None
        return scan

    with monkeypatch.context() as patch:
        patch.setattr(xlsx_reader, "scan_sheet", sure)
        patch.setattr(xlsx_reader, "_typed_cells_as_text", None)  # must not be called
        return read_source(path).frame.get_column("c0").to_list()


def expected_moment_text(moment: dt.datetime | dt.time) -> str:
    if isinstance(moment, dt.time):
        return moment.isoformat()
    return moment.date().isoformat() if moment.time() == dt.time(0) else moment.isoformat()


moments: st.SearchStrategy[dt.datetime | dt.time] = st.one_of(
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)),
    # around Excel's fictional 29 February 1900 (serial 60)
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(1900, 3, 2, 23, 59, 59)),
    st.one_of(
        st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1900, 3, 2)),
        st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9999, 12, 31)),
    ).map(lambda day: dt.datetime(day.year, day.month, day.day)),
    st.times(),
).map(lambda moment: moment.replace(microsecond=0))
whole_numbers = st.one_of(
    st.integers(min_value=-(10**15 - 1), max_value=10**15 - 1),
    st.sampled_from([0, -1, 1, 10**14, -(10**14), 999_999_999_999_999, -999_999_999_999_999]),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.one_of(moments, whole_numbers), min_size=1, max_size=6))
def test_one_parse_shortcuts_read_whole_second_dates_and_15_digit_integers_exactly(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, cells: list[Any]
) -> None:
    path = workbook_of(tmp_path_factory.mktemp("whole") / "whole.xlsx", [cells])
    chosen, typed, one_parse = read_both_ways(path, monkeypatch)
    # A time of day makes the serial a fraction, which the scan leaves to the typed reads.
    whole = all(
        isinstance(cell, int)
        or (isinstance(cell, dt.time) and cell == dt.time(0))
        or (isinstance(cell, dt.datetime) and cell.time() == dt.time(0) and cell < FAR_DATES_FROM)
        for cell in cells
    )
    assert one_parse is whole
    expected = [str(cell) if isinstance(cell, int) else expected_moment_text(cell) for cell in cells]
    assert chosen.get_column("c0").to_list() == expected
    assert typed.get_column("c0").to_list() == expected
    if not any(isinstance(cell, dt.datetime) and cell >= FAR_DATES_FROM for cell in cells):
        assert read_in_one_parse(path, monkeypatch) == expected
