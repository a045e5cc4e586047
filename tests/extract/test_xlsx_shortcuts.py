"""The one-parse shortcuts: calamine's text of a date with whole seconds is only rearranged, and a
number is rewritten only where NUMBER_TEXT_MAY_CHANGE matches. Each must read exactly the ISO or
integer text a person expects, and exactly what the typed reads read."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import fastexcel
import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import xlsx_reader

from .test_xlsx_one_parse import read_both_ways
from .test_xlsx_property import workbook_of

EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # serial 0 is 1899-12-31 in Excel only because of 29 Feb 1900
FIRST_REAL_AFTER_LEAP_DAY = dt.datetime(1900, 3, 1)  # serial 61
FIRST_FAR_SERIAL = 1_000_000  # the scan sends dates from here (4637-11-26) on to the typed reads
LAST_NEAR_DATE = dt.date(4637, 11, 25)
LARGEST_15_DIGITS = 10**15 - 1

shortcut_settings = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
whole_seconds = st.datetimes(
    min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)
)
early_1900 = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(1900, 3, 2, 23, 59, 59))
moments: st.SearchStrategy[dt.datetime] = st.one_of(whole_seconds, early_1900).map(
    lambda moment: moment.replace(microsecond=0)
)
near_days = st.one_of(
    st.dates(min_value=dt.date(1900, 1, 1), max_value=LAST_NEAR_DATE),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(1900, 3, 2)),
    st.sampled_from([dt.date(1900, 1, 1), dt.date(1900, 2, 28), dt.date(1900, 3, 1), LAST_NEAR_DATE]),
)
# Dates as openpyxl writes them: a date, a datetime at midnight, or midnight alone (serial 0).
midnights: st.SearchStrategy[Any] = st.one_of(
    near_days,
    near_days.map(lambda day: dt.datetime.combine(day, dt.time(0))),
    st.just(dt.time(0)),
)
times_of_day = st.times().map(lambda moment: moment.replace(microsecond=0))
powers_of_ten = st.integers(min_value=0, max_value=15).map(lambda digits: 10**digits)
integers = st.one_of(
    st.integers(min_value=-LARGEST_15_DIGITS, max_value=LARGEST_15_DIGITS),
    st.sampled_from([0, 1, -1, LARGEST_15_DIGITS, -LARGEST_15_DIGITS, 2**31, -(2**31), 2**32]),
    st.builds(
        lambda power, sign, offset: sign * (power + offset),
        powers_of_ten,
        st.sampled_from([1, -1]),
        st.sampled_from([-1, 0]),
    ),
).filter(lambda number: abs(number) <= LARGEST_15_DIGITS)


def serial_of(cell: Any) -> float:
    """The Excel serial openpyxl stores for a date, a datetime or a time of day (1900 system)."""
    if isinstance(cell, dt.time):
        return (cell.hour * 3600 + cell.minute * 60 + cell.second) / 86_400
    moment = cell if isinstance(cell, dt.datetime) else dt.datetime.combine(cell, dt.time(0))
    serial = (moment - EXCEL_EPOCH).total_seconds() / 86_400
    return serial if moment >= FIRST_REAL_AFTER_LEAP_DAY else serial - 1


def expected_text(cell: Any) -> str:
    """The text a person reads: a date, a date and time, or a time of day alone (ISO)."""
    if isinstance(cell, dt.time):
        return cell.isoformat()
    if isinstance(cell, dt.datetime) and cell.time() != dt.time(0):
        return cell.isoformat()
    return cell.isoformat()[:10]


def reads_of(
    path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[Any]]
) -> tuple[list[list[Any]], list[list[Any]], bool]:
    """Each column as the reader chose to read it and as the typed reads read it, and whether the
    reader took the one parse."""
    chosen, typed, one_parse = read_both_ways(workbook_of(path, columns), monkeypatch)
    names = [f"c{index}" for index in range(len(columns))]
    return (
        [
            chosen.get_column(name).to_list()[: len(column)]
            for name, column in zip(names, columns, strict=True)
        ],
        [
            typed.get_column(name).to_list()[: len(column)]
            for name, column in zip(names, columns, strict=True)
        ],
        one_parse,
    )


@shortcut_settings
@given(columns=st.lists(st.lists(midnights, min_size=1, max_size=6), min_size=1, max_size=3))
def test_midnight_dates_take_one_parse_and_read_as_iso_dates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[Any]]
) -> None:
    chosen, typed, one_parse = reads_of(tmp_path / "dates.xlsx", monkeypatch, columns)
    assert one_parse
    assert chosen == typed == [[expected_text(cell) for cell in column] for column in columns]


def test_serials_around_the_fictional_leap_day_read_as_excel_shows_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Excel counts 1900 as a leap year: serial 1 is 1900-01-01, 59 is 28 Feb, 60 the 29 Feb that
    # never was, 61 is 1 March. Only whole serials, so the one parse reads them all.
    serials = list(range(0, 125))
    path = workbook_of(tmp_path / "serials.xlsx", [serials])
    workbook = openpyxl.load_workbook(path)
    sheet = workbook.active
    assert sheet is not None
    for row in range(2, len(serials) + 2):
        sheet.cell(row=row, column=2).number_format = "yyyy-mm-dd"
    workbook.save(path)
    chosen, typed, one_parse = read_both_ways(path, monkeypatch)
    expected = ["00:00:00"]
    expected += [(dt.date(1899, 12, 31) + dt.timedelta(days=serial)).isoformat() for serial in range(1, 60)]
    expected += ["1900-02-28"]  # the fictional 29 February reads as the last real day of February
    expected += [(dt.date(1899, 12, 30) + dt.timedelta(days=serial)).isoformat() for serial in range(61, 125)]
    assert one_parse
    assert chosen.get_column("c0").to_list() == typed.get_column("c0").to_list() == expected


@shortcut_settings
@given(
    columns=st.lists(
        st.lists(
            st.one_of(moments, times_of_day, st.dates(min_value=LAST_NEAR_DATE)), min_size=1, max_size=6
        ),
        min_size=1,
        max_size=3,
    )
)
def test_times_of_day_and_far_dates_read_as_iso_text_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[Any]]
) -> None:
    chosen, typed, one_parse = reads_of(tmp_path / "moments.xlsx", monkeypatch, columns)
    assert chosen == typed == [[expected_text(cell) for cell in column] for column in columns]
    # The scan leaves a fraction of a day (a time) or a date from 4637-11-26 on to the typed reads.
    serials = [serial_of(cell) for column in columns for cell in column]
    assert one_parse == all(serial.is_integer() and serial < FIRST_FAR_SERIAL for serial in serials)


@shortcut_settings
@given(
    columns=st.lists(
        st.lists(
            st.one_of(moments, times_of_day).filter(lambda cell: serial_of(cell) < FIRST_FAR_SERIAL),
            min_size=1,
            max_size=6,
        ),
        min_size=1,
        max_size=3,
    )
)
def test_calamine_text_of_any_whole_second_moment_is_rearranged_into_the_typed_reads_text(
    tmp_path: Path, columns: list[list[Any]]
) -> None:
    # Through read_xlsx the scan sends every time of day to the typed reads; the rearrangement
    # (`_calamine_date_text` without fractions) is checked on calamine's text of it directly.
    path = workbook_of(tmp_path / "moments.xlsx", columns)
    sheet = xlsx_reader._Sheet(fastexcel.read_excel(str(path)), "Sheet")
    text = sheet.load("string")
    assert not any(text.select(pl.all().str.contains(".", literal=True).any()).row(0))  # no fractions
    rendered = xlsx_reader._rendered_as_text(text, set())
    typed = xlsx_reader._typed_cells_as_text(sheet, text, False, {})
    assert rendered is not None and rendered.equals(typed)
    for index, column in enumerate(columns):
        read = rendered.get_column(f"_{index + 1}").to_list()[1 : len(column) + 1]
        assert read == [expected_text(cell) for cell in column]


@shortcut_settings
@given(columns=st.lists(st.lists(integers, min_size=1, max_size=6), min_size=1, max_size=3))
def test_integers_of_up_to_15_digits_take_one_parse_and_keep_their_digits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[int]]
) -> None:
    chosen, typed, one_parse = reads_of(tmp_path / "integers.xlsx", monkeypatch, columns)
    assert one_parse
    assert chosen == typed == [[str(number) for number in column] for column in columns]


@settings(max_examples=300, deadline=None)
@given(
    written=st.one_of(
        st.from_regex(xlsx_reader.CALAMINE_NUMBER_EXACT, fullmatch=True),
        st.integers(min_value=-(10**20), max_value=10**20).map(str),
        st.sampled_from(["0", "-0", "9007199254740993", "-9007199254740993", "999999999999999", "0.5"]),
    )
)
def test_only_number_text_that_may_change_is_rewritten(written: str) -> None:
    # What NUMBER_TEXT_MAY_CHANGE leaves alone, `_number_text` would have written as it is.
    rewritten = pl.select(xlsx_reader._number_text(pl.lit(written).cast(pl.Float64))).item()
    if not re.search(xlsx_reader.NUMBER_TEXT_MAY_CHANGE, written):
        assert rewritten == written
    if re.fullmatch(r"-?[0-9]{1,15}", written) and written == str(int(written)) and written != "-0":
        assert not re.search(xlsx_reader.NUMBER_TEXT_MAY_CHANGE, written)  # kept, never reparsed
