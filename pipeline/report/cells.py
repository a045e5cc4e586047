"""Spreadsheet safety: the one rule for every CSV cell the reports write.

Control characters (an ESC starting a terminal escape sequence, C1 bytes, NULs) are written as
their visible escapes (\\x1b), so a report shown in a terminal cannot forge lines or colours.

Reports are opened in Excel by the people fixing their data, and a cell that starts with = + - @,
tab or CR is run there as a formula (a CSV can carry an attack that way). Every such text cell
gets a leading apostrophe, except a plain signed number such as an E.164 phone (+12125550123),
which Excel can only read as a number. The cell version and the frame version apply the same
rule, so every report file agrees.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

import polars as pl

_FORMULA_START = r"^[=+\-@\t\r]"
_PLAIN_SIGNED_NUMBER = r"^[+-][0-9]+(\.[0-9]+)?$"  # for polars: $ is the very end of the text
_PLAIN_SIGNED_NUMBER_PY = r"[+-][0-9]+(\.[0-9]+)?\Z"  # Python's $ would also accept a trailing newline


# Control characters no cell needs (tab and line ends aside, which CSV quoting carries): an ESC
# starts a terminal escape sequence (colours, cursor moves, a forged line when the file is shown
# with `cat`), C1 bytes do the same on some terminals. Each is written as its visible escape.
_CONTROLS = [chr(c) for c in (*range(0, 9), 11, 12, *range(14, 32), *range(127, 160))]
_CONTROL_ESCAPES = [repr(c)[1:-1] for c in _CONTROLS]
_CONTROL_CLASS = "[" + "".join(f"\\x{ord(c):02x}" for c in _CONTROLS) + "]"
_SUSPECT = f"{_CONTROL_CLASS}|{_FORMULA_START}"  # a cell that may need either treatment


def neutralize_cell(text: str) -> str:
    """One cell made safe to open in Excel or show in a terminal: control characters written as
    their escapes, and a formula-looking value given a leading apostrophe."""
    if re.search(_CONTROL_CLASS, text):
        text = re.sub(_CONTROL_CLASS, lambda m: repr(m.group())[1:-1], text)
    if re.match(_FORMULA_START, text) and not re.match(_PLAIN_SIGNED_NUMBER_PY, text):
        return "'" + text
    return text


def neutralize_formulas(frame: pl.DataFrame, tested: Collection[str] | None = None) -> pl.DataFrame:
    """Every text column (only those in `tested`, if given) and every header made safe to open in
    Excel (see neutralize_cell)."""
    text_columns = [
        name
        for name, dtype in frame.schema.items()
        if dtype == pl.String and (tested is None or name in tested)
    ]
    # One scan of each column marks the cells that may need either treatment: most columns hold
    # none, and for them that scan is all the work there is. Only the marked cells (a few in a
    # million-row description column) are then made safe and scattered back.
    marks = frame.select(pl.col(name).str.contains(_SUSPECT) for name in text_columns)
    fixed = []
    for name in text_columns:
        at = marks.get_column(name).arg_true()
        if at.len():
            column = frame.get_column(name)
            fixed.append(column.clone().scatter(at, _neutralized(column.gather(at))))
    return _safe_headers(frame.with_columns(fixed) if fixed else frame)


def _neutralized(cells: pl.Series) -> pl.Series:
    """neutralize_cell for each (non-null) cell, in polars: control characters escaped, then an
    apostrophe before a formula-looking value."""
    escaped = pl.col(cells.name).str.replace_many(_CONTROLS, _CONTROL_ESCAPES)
    formula = escaped.str.contains(_FORMULA_START) & ~escaped.str.contains(_PLAIN_SIGNED_NUMBER)
    return (
        cells.to_frame()
        .select(pl.when(formula).then(pl.lit("'") + escaped).otherwise(escaped).alias(cells.name))
        .to_series()
    )


def _safe_headers(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.rename(
        {name: neutralize_cell(name) for name in frame.columns if neutralize_cell(name) != name}
    )


def write_excel_safe_csv(frame: pl.DataFrame, path: Path, tested: Collection[str] | None = None) -> Path:
    """UTF-8 with a BOM (so Excel shows accents), formula cells neutralized (in the `tested`
    columns only, if given: see neutralize_formulas)."""
    neutralize_formulas(frame, tested).write_csv(path, include_bom=True)
    return path
