"""Property: whatever typed cells a workbook holds, each reads as text that means the same value."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source
from pipeline.model import SOURCE_ROW

texts = st.one_of(
    st.text(alphabet=st.sampled_from("ab Z09.-:eé,;\"'"), min_size=1),
    st.sampled_from(["true", "FALSE", "2024-03-05 00:00:00", "02134", "12", "0.1"]),
)
# openpyxl writes a whitespace-only string without xml:space="preserve", so it is lost.
kept_texts = texts.filter(lambda text: not text.startswith("=") and text.strip() != "")
cells: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.dates(min_value=dt.date(1900, 3, 1), max_value=dt.date(2199, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 3, 1), max_value=dt.datetime(2199, 12, 31)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
    kept_texts,
)


def check_cell(written: Any, read: str | None) -> None:
    """`written` is the value as openpyxl reads the file back (it stores floats to 16 digits)."""
    if written is None:
        assert read is None
    elif isinstance(written, bool):
        assert read == ("TRUE" if written else "FALSE")
    elif isinstance(written, int | float):
        assert read is not None and float(read) == float(written)  # exactly the stored number
        if float(written).is_integer() and abs(written) < 2**63:
            assert read.lstrip("-").isdigit()  # integral numbers as plain digits
    elif isinstance(written, dt.datetime):
        expected = written.date().isoformat() if written.time() == dt.time(0) else written.isoformat()
        assert read == expected
    elif isinstance(written, dt.date):
        assert read == written.isoformat()
    else:
        assert read == written


def workbook_of(path: Path, columns: list[list[Any]]) -> Path:
    height = max(len(column) for column in columns)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["id", *[f"c{index}" for index in range(len(columns))]])
    for row in range(height):
        sheet.append([f"r{row}", *[column[row] if row < len(column) else None for column in columns]])
    workbook.save(path)
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.lists(cells, min_size=1, max_size=8), min_size=1, max_size=4))
def test_typed_cells_read_as_the_value_they_hold(tmp_path: Path, columns: list[list[Any]]) -> None:
    height = max(len(column) for column in columns)
    path = workbook_of(tmp_path / "cells.xlsx", columns)

    frame = read_source(path).frame
    stored = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True))

    assert frame.get_column(SOURCE_ROW).to_list() == list(range(2, height + 2))
    for index in range(len(columns)):
        read = frame.get_column(f"c{index}").to_list()
        for row in range(height):
            check_cell(stored[row][index + 1], read[row])


# Within 5e-10 of an integer, calamine's text (nine decimals) is the integer itself: "5".
near_integers = st.builds(
    lambda whole, nudge: whole + nudge * 1e-10,
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=-4, max_value=4).filter(lambda nudge: nudge != 0),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    near=st.lists(near_integers, min_size=1, max_size=4),
    others=st.lists(st.one_of(st.integers(min_value=-(10**9), max_value=10**9), kept_texts), max_size=4),
)
def test_numbers_next_to_an_integer_keep_their_fraction(
    tmp_path: Path, near: list[float], others: list[Any]
) -> None:
    """A column of near-integers among integers or text: no cell's text says its value was rounded."""
    path = workbook_of(tmp_path / "near.xlsx", [[*near, *others]])

    read = read_source(path).frame.get_column("c0").to_list()
    stored = [
        row[1] for row in openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True)
    ]

    for written, value in zip(stored, read, strict=True):
        check_cell(written, value)
    expected = [
        str(int(number)) if number.is_integer() else repr(number)
        for number in (float(written) for written in stored[: len(near)])
    ]
    assert read[: len(near)] == expected  # the stored number's shortest text, not a rounded one
