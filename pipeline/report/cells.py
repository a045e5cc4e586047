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


def _formula_like(name: str) -> pl.Expr:
    """Cells of text column `name` a spreadsheet would run as a formula (see neutralize_cell)."""
    return (
        pl.col(name).str.contains(_FORMULA_START) & ~pl.col(name).str.contains(_PLAIN_SIGNED_NUMBER)
    ).alias(name)


def neutralize_formulas(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column (and every header) made safe to open in Excel (see neutralize_cell)."""
    text_columns = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if text_columns:
        # One scan of each column for either kind of cell: most columns hold neither, and for them
        # that scan is all the work there is.
        suspect = frame.select(pl.col(name).str.contains(_SUSPECT).any() for name in text_columns)
        text_columns = [name for name in text_columns if suspect.get_column(name)[0]]
    if text_columns:
        with_controls = frame.select(pl.col(name).str.contains(_CONTROL_CLASS).any() for name in text_columns)
        escaped = [name for name in text_columns if with_controls.get_column(name)[0]]
        if escaped:
            frame = frame.with_columns(
                pl.col(name).str.replace_many(_CONTROLS, _CONTROL_ESCAPES) for name in escaped
            )
        # Test every column first: most hold no such cell at all (E.164 phones all start with +,
        # but are plain numbers), and those are written as they are, not rebuilt cell by cell.
        for test in (lambda name: pl.col(name).str.contains(_FORMULA_START), _formula_like):
            flagged = frame.select(test(name).any().alias(name) for name in text_columns)
            text_columns = [name for name in text_columns if flagged.get_column(name)[0]]
    safe = frame.with_columns(
        pl.when(_formula_like(name))
        .then(pl.concat_str(pl.lit("'"), pl.col(name)))
        .otherwise(pl.col(name))
        .alias(name)
        for name in text_columns
    )
    return safe.rename(
        {name: neutralize_cell(name) for name in safe.columns if neutralize_cell(name) != name}
    )


def write_excel_safe_csv(frame: pl.DataFrame, path: Path) -> Path:
    """UTF-8 with a BOM (so Excel shows accents), formula cells neutralized."""
    neutralize_formulas(frame).write_csv(path, include_bom=True)
    return path
