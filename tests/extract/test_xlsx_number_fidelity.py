"""Any finite number keeps its stored value, whichever path reads it (calamine's text rounds to
nine decimals), and a number-like text beside it stays as typed (a float read would turn it into a
number). The near-integers and the one-parse shortcuts have their own tests (test_xlsx_property,
test_xlsx_shortcuts)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source

from .test_xlsx_property import workbook_of


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
