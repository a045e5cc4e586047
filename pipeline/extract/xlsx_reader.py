"""Read one sheet of an .xlsx workbook into text columns, turning typed cells into the text meant.

Why it exists: spreadsheets store phones as numbers, dates as serial numbers and flags as
booleans; the rest of the pipeline wants the text a person sees. calamine (through fastexcel)
reads the sheet fast; every column is read as text (never typed from a sample of rows, so a
column that turns from numbers to text after row 1,000 keeps every value). Asked for text,
calamine writes a date as "2024-03-05 00:00:00", a boolean as "true" and a number rounded to
nine decimals (1e-10 becomes "0"), so a typed cell cannot always be told from a text cell
holding the same characters. A scan of the sheet's XML, run while calamine parses, says when
they can (no text cell holds such characters, every number is whole): then that one parse is
enough. Otherwise one more typed read of only the columns that may hold typed cells tells them
apart, and a float read (only where text lost precision) gives numbers their full value.

It must never guess types from values, restore leading zeros (validate knows which column is a
ZIP), or renumber rows: SOURCE_ROW is Excel's own row number.
"""

from __future__ import annotations

import datetime as dt
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastexcel
import polars as pl

from pipeline.extract._frame import finish
from pipeline.extract._package import (
    DAMAGED_PART_ERRORS,
    Package,
    SheetScan,
    column_letters,
    copy_for_calamine,
    read_package,
    scan_sheet,
)
from pipeline.model import SOURCE_ROW, Extracted, SourceInfo, UserError, problem

# How calamine renders a date/time cell when asked for a string.
CALAMINE_DATETIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?$"
CALAMINE_DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S%.f"
CALAMINE_BOOLEANS = ("true", "false")
# How calamine renders a number cell as a string (integral in full, others rounded).
CALAMINE_NUMBER = r"^-?[0-9]+(\.[0-9]+)?$"
# Exactly the text calamine writes for a number: no leading zeros, no trailing zeros after the point.
CALAMINE_NUMBER_EXACT = r"^-?(0|[1-9][0-9]*)(\.[0-9]*[1-9])?$"
# Of those, the ones `_number_text` may write otherwise: an integer of up to 15 digits comes back
# as it is (a float holds it exactly), so only fractions, longer integers and -0 are rewritten.
NUMBER_TEXT_MAY_CHANGE = r"^-?(0|[1-9][0-9]*)\.[0-9]*[1-9]$|^-?[1-9][0-9]{15,}$|^-0$"
# A cell `_rendered_as_text` may rewrite: a date, a boolean or a number `_number_text` may write otherwise.
RENDERED_ANY = rf"{CALAMINE_DATETIME}|^(?:true|false)$|{NUMBER_TEXT_MAY_CHANGE}"
INT64_SAFE = 2.0**63
EPOCH_1900 = dt.datetime(1899, 12, 30)
EPOCH_1900_EARLY = dt.datetime(1899, 12, 31)  # for serials before Excel's fictional 29 Feb 1900
FICTIONAL_LEAP_DAY_SERIAL = 60
EPOCH_1904 = dt.datetime(1904, 1, 1)
FIRST_DAY_1900 = dt.datetime(1900, 1, 1)  # serial 1: earlier moments are times of day alone
ONE_DAY_MS = 86_400_000
HEADER_SEARCH_ROWS = 20  # a title block above the header is at most this many rows
HEADER_CHECK_ROWS = 50  # rows below a header candidate whose values it must name
# A cell that is a number, a date or a time, as read: a header names columns with words.
VALUE_LIKE = re.compile(r"^[-+]?[\d.,:/ T]+$|^(TRUE|FALSE)$")
EXCEL_ERROR = problem("excel-error").code
MAX_NAMED_CELLS = 5


class _Sheet:
    """One sheet as calamine sees it: its name and the sheet's own index of each column read.

    calamine starts a sheet's columns at its first used column, but addresses columns (in
    `use_columns` and `dtypes`) by their index in the sheet (A = 0). Positions here are the
    frame's (`_0`, `_1`, …); `absolute` turns them into the sheet's own for every typed read.
    """

    def __init__(self, reader: Any, name: str):
        self.reader = reader
        self.name = name
        self.absolute: list[int] = []

    def load(self, dtypes: str | dict[int, str], positions: list[int] | None = None) -> pl.DataFrame:
        """Every row of the sheet from Excel row 1 (leading blank rows kept), no header.

        Columns are named `_<position>` after their position in the sheet's used range.
        """
        if positions is None:
            sheet = self.reader.load_sheet(self.name, header_row=None, skip_rows=0, dtypes=dtypes)
            self.absolute = [column.absolute_index for column in sheet.available_columns()]
            positions = list(range(len(self.absolute)))
        else:
            by_sheet_index = (
                {self.absolute[position]: dtype for position, dtype in dtypes.items()}
                if isinstance(dtypes, dict)
                else dtypes
            )
            sheet = self.reader.load_sheet(
                self.name,
                header_row=None,
                skip_rows=0,
                dtypes=by_sheet_index,
                use_columns=[self.absolute[position] for position in positions],
            )
        frame = sheet.to_polars()
        return frame.rename(
            {old: f"_{position}" for old, position in zip(frame.columns, positions, strict=True)}
        )


def _date_text(serial: pl.Expr, date1904: bool) -> pl.Expr:
    """The ISO text of a date cell from its serial number (days since the workbook's epoch):
    YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS with a time, HH:MM:SS alone (a serial under one day).

    The date comes from the serial and the date system read from the package, never from
    calamine's own text, which misses the 1904 system in some workbooks. In the 1900 system
    Excel counts a 29 February 1900 that never was, so serials before it start a day later.
    """
    if date1904:
        moment = pl.lit(EPOCH_1904, dtype=pl.Datetime("ms")) + serial
    else:
        moment = (
            pl.when(serial < pl.duration(days=FICTIONAL_LEAP_DAY_SERIAL))
            .then(pl.lit(EPOCH_1900_EARLY, dtype=pl.Datetime("ms")))
            .otherwise(pl.lit(EPOCH_1900, dtype=pl.Datetime("ms")))
            + serial
        )
    return _moment_text(moment, serial.dt.total_milliseconds() < ONE_DAY_MS)


def _moment_text(moment: pl.Expr, time_only: pl.Expr) -> pl.Expr:
    """A date cell's moment as ISO text, to the second (see `_date_text`)."""
    moment = moment.dt.round("1s")
    midnight = moment.dt.time() == pl.time(0, 0, 0)
    full = moment.dt.strftime("%Y-%m-%dT%H:%M:%S")  # formatted once: the time is its last 8 characters
    return pl.when(time_only).then(full.str.tail(8)).when(midnight).then(full.str.head(-9)).otherwise(full)


def _elapsed_text(serial: pl.Expr) -> pl.Expr:
    """An elapsed time (`[h]:mm:ss`) as hours:minutes:seconds, hours past 24 kept: 255:10:10."""
    seconds = (serial.dt.total_milliseconds() / 1000).round(0).cast(pl.Int64)
    size = seconds.abs()
    return pl.concat_str(
        [
            pl.when(seconds < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (size // 3600).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (size % 3600 // 60).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (size % 60).cast(pl.String).str.zfill(2),
        ]
    )


def _number_text(number: pl.Expr) -> pl.Expr:
    """An integral number as integer text (a phone stays 2125550123), any other as its shortest repr.

    Only needed where calamine's own text may have lost precision (see `_typed_cells_as_text`).
    """
    integral = number == number.floor()
    return (
        pl.when(integral & (number.abs() < INT64_SAFE))
        .then(number.cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(number.cast(pl.String))
    )


def _typed_cells_as_text(
    sheet: _Sheet, text: pl.DataFrame, date1904: bool, elapsed: dict[int, list[int]]
) -> pl.DataFrame:
    """Rewrite the cells that are numbers, dates or booleans into the text a person meant.

    Read as text, calamine rounds numbers to nine decimals, writes dates as "2024-03-05 00:00:00"
    and booleans as "true", so such cells look like text cells holding the same characters.
    Typed reads of only the columns that may hold them tell them apart: as durations only date
    cells have a value; as booleans only numbers and booleans do; as floats a number keeps the
    precision its text may have lost (read for every column holding a number cell). `elapsed` names, per
    column position, the frame rows whose cells are elapsed times (`[h]:mm:ss`).
    """
    names = text.columns
    date_like = text.select([pl.col(name).str.contains(CALAMINE_DATETIME).any() for name in names]).row(0)
    number_like = text.select(
        [
            (pl.col(name).str.contains(CALAMINE_NUMBER) | pl.col(name).is_in(CALAMINE_BOOLEANS)).any()
            for name in names
        ]
    ).row(0)
    date_columns = [index for index, flag in enumerate(date_like) if flag]
    number_columns = [index for index, flag in enumerate(number_like) if flag]
    if not date_columns and not number_columns:
        return text

    # One typed read for most columns; a column that may hold both kinds needs a second one.
    first_read = {index: "duration" for index in date_columns} | {
        index: "boolean" for index in number_columns if index not in date_columns
    }
    typed = sheet.load(first_read, sorted(first_read))
    both = [index for index in number_columns if index in date_columns]
    second = sheet.load("boolean", both) if both else None

    helpers: dict[str, pl.Series] = {}
    rewritten = {name: pl.col(name) for name in names}
    for index in date_columns:
        name = names[index]
        serial = helpers[f"serial {index}"] = typed.get_column(name).alias(f"serial {index}")
        as_text = _date_text(pl.col(serial.name), date1904)
        if index in elapsed:
            rows = pl.Series(elapsed[index], dtype=pl.UInt32).implode()
            is_elapsed = pl.int_range(pl.len(), dtype=pl.UInt32).is_in(rows)
            as_text = pl.when(is_elapsed).then(_elapsed_text(pl.col(serial.name))).otherwise(as_text)
        rewritten[name] = pl.when(pl.col(serial.name).is_not_null()).then(as_text).otherwise(rewritten[name])
    number_cells: dict[int, pl.Expr] = {}
    for index in number_columns:
        name = names[index]
        flags = second if second is not None and index in both else typed
        flag = helpers[f"flag {index}"] = flags.get_column(name).alias(f"flag {index}")
        number_cells[index] = pl.col(flag.name).is_not_null() & ~pl.col(name).is_in(CALAMINE_BOOLEANS)
        is_boolean_cell = pl.col(flag.name).is_not_null() & pl.col(name).is_in(CALAMINE_BOOLEANS)
        rewritten[name] = (
            pl.when(is_boolean_cell).then(pl.col(name).str.to_uppercase()).otherwise(rewritten[name])
        )

    # Every number cell is read again as a float: calamine's text rounds to nine decimals, so
    # even an integer-looking "5" may be 5.0000000001, and no text tells which.
    with_helpers = text.with_columns(list(helpers.values()))
    has_numbers = with_helpers.select(
        [number_cells[index].any().alias(names[index]) for index in number_columns]
    )
    precise_columns = [index for index in number_columns if has_numbers.get_column(names[index])[0]]
    if precise_columns:
        numbers = sheet.load("float", precise_columns)
        for index in precise_columns:
            name = names[index]
            number = helpers[f"number {index}"] = numbers.get_column(name).alias(f"number {index}")
            rewritten[name] = (
                pl.when(number_cells[index])
                .then(_number_text(pl.col(number.name)))
                .otherwise(rewritten[name])
            )
        with_helpers = text.with_columns(list(helpers.values()))
    return with_helpers.select([expression.alias(name) for name, expression in rewritten.items()])


def _calamine_date_text(cell: pl.Expr, fractions: bool) -> pl.Expr:
    """The ISO text (as `_date_text`) of calamine's text of a date cell in the 1900 system.

    Without fractions of a second the text is only rearranged; with them it is parsed, since
    rounding to the second may carry into the next day.
    """
    if fractions:
        moment = cell.str.to_datetime(CALAMINE_DATETIME_FORMAT, time_unit="ms", strict=False)
        return _moment_text(moment, moment < pl.lit(FIRST_DAY_1900, dtype=pl.Datetime("ms")))
    return (
        pl.when(cell < FIRST_DAY_1900.strftime("%Y-%m-%d"))
        .then(cell.str.tail(8))
        .when(cell.str.ends_with(" 00:00:00"))
        .then(cell.str.head(10))
        .otherwise(cell.str.replace(" ", "T", literal=True))
    )


def _rendered_as_text(text: pl.DataFrame, lookalikes: set[str]) -> pl.DataFrame | None:
    """Calamine's text with its renderings of typed cells rewritten, when the scan found them
    unambiguous (`SheetScan.unsure` None, 1900 date system); None when a text cell's lookalike of
    a number would read back as another number, so the typed reads must decide.

    Every whole number's text is then exact, every date's text is its serial's moment (from
    1899-12-30, or 1899-12-31 before Excel's fictional 29 February 1900, as `_date_text`), and a
    text cell never holds what calamine writes for a date or a boolean. One cheap pass over every
    column says which hold any such cell, one more over those which kinds they hold; only those
    columns are rewritten, and numbers only where `_number_text` could write them otherwise.
    """
    if lookalikes:
        texts = pl.Series(sorted(lookalikes), dtype=pl.String)
        numbers = texts.filter(texts.str.contains(CALAMINE_NUMBER_EXACT))
        if not numbers.equals(pl.select(_number_text(pl.lit(numbers).cast(pl.Float64))).to_series()):
            return None
    holding = text.select(pl.col(name).str.contains(RENDERED_ANY).any() for name in text.columns).row(0)
    columns = [name for name, holds in zip(text.columns, holding, strict=True) if holds]
    if not columns:
        return text
    present = text.select(
        kind.any().alias(f"{label} {name}")
        for name in columns
        for label, kind in _rendered_kinds(pl.col(name)).items()
    ).row(0, named=True)
    rewritten: list[pl.Expr] = []
    for name in columns:
        cell = pl.col(name)
        as_text = cell
        if present[f"inexact number {name}"]:
            as_text = (
                pl.when(cell.str.contains(CALAMINE_NUMBER_EXACT))
                .then(_number_text(cell.cast(pl.Float64, strict=False)))
                .otherwise(as_text)
            )
        if present[f"boolean {name}"]:
            as_text = pl.when(cell.is_in(CALAMINE_BOOLEANS)).then(cell.str.to_uppercase()).otherwise(as_text)
        if present[f"date {name}"]:
            date_text = _calamine_date_text(cell, fractions=present[f"fractional date {name}"])
            as_text = pl.when(cell.str.contains(CALAMINE_DATETIME)).then(date_text).otherwise(as_text)
        if as_text is not cell:
            rewritten.append(as_text.alias(name))
    return text.with_columns(rewritten) if rewritten else text


def _rendered_kinds(cell: pl.Expr) -> dict[str, pl.Expr]:
    """Which cells of a column need `_rendered_as_text`'s rewrite, by kind."""
    date = cell.str.contains(CALAMINE_DATETIME)
    return {
        "date": date,
        "fractional date": date & (cell.str.len_bytes() > len("YYYY-MM-DD HH:MM:SS")),
        "boolean": cell.is_in(CALAMINE_BOOLEANS),
        "inexact number": cell.str.contains(NUMBER_TEXT_MAY_CHANGE),
    }


def _open(path: str, source_file: str) -> tuple[Package, Any]:
    """Read the package's own facts and open it with calamine (through a copy if it must)."""
    try:
        package = read_package(path)
        if package.calamine_can_open:
            return package, fastexcel.read_excel(path)
        with tempfile.TemporaryDirectory(prefix="kayse-xlsx-") as folder:  # made 0700
            copy = Path(folder) / "workbook.xlsx"
            copy_for_calamine(path, package, copy)
            copy.chmod(0o600)
            # calamine reads it from memory, so the copy (personal data) is gone when we return.
            return package, fastexcel.read_excel(copy.read_bytes())
    except Exception as error:  # a damaged package fails in many ways, in zipfile, XML or calamine
        raise UserError(
            f"{source_file} could not be read as an Excel workbook ({type(error).__name__})",
            "open it in Excel or LibreOffice and save it again as .xlsx, or export it as .csv",
        ) from None


SHEET_KINDS = {
    "chartsheet": "a chart sheet",
    "dialogsheet": "a dialog sheet",
    "xlmacrosheet": "an Excel 4 macro sheet",
    "xlintlmacrosheet": "an Excel 4 macro sheet",
    "": "a sheet with no part in the package",
}


@dataclass(frozen=True)
class _SheetChoice:
    """The sheet to read, and what a person should be told about the others."""

    chosen: str
    passed_over: list[str]  # sheets before it, not read by default: "'Chart' (a chart sheet)"
    others: list[str]  # worksheets after it, which --sheet reads
    elsewhere: list[str]  # every other worksheet, hidden ones too (marked): where the data may be


def _listed(names: list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def _choose_sheet(
    sheet_names: list[str], sheet: str | None, source_file: str, package: Package
) -> _SheetChoice:
    """`sheet`, else the first worksheet Excel shows: not a chart (nor a dialog) sheet, which holds
    no table, nor a hidden sheet, which the person who sends the workbook does not see."""
    known = package.sheets or package.not_worksheets  # else (never seen) trust calamine's list
    worksheets = [name for name in sheet_names if name in package.sheets] if known else sheet_names
    kinds = package.not_worksheets

    def described(name: str) -> str:
        if name in worksheets:
            return f"{name!r} (hidden, read with --sheet)"
        return f"{name!r} ({SHEET_KINDS.get(kinds.get(name, '?'), 'not a worksheet')})"

    def elsewhere(chosen: str) -> list[str]:
        marked = {name: f"{name!r} (hidden)" for name in package.hidden_sheets}
        return [marked.get(name, repr(name)) for name in worksheets if name != chosen]

    if sheet is not None:
        if sheet in worksheets:
            return _SheetChoice(sheet, [], [], elsewhere(sheet))
        if sheet in sheet_names or sheet in kinds:
            raise UserError(
                f"sheet {described(sheet)} of {source_file} holds no table to read",
                f"its worksheets are: {_listed(worksheets)}" if worksheets else SAVE_ON_A_WORKSHEET,
            )
        raise UserError(
            f"{source_file} has no sheet named {sheet!r}", f"its sheets are: {_listed(sheet_names)}"
        )
    if not worksheets:
        if not sheet_names and not kinds:
            raise UserError(f"{source_file} has no sheets", SAVE_ON_A_WORKSHEET)
        every = [described(name) for name in kinds]
        raise UserError(f"{source_file} has no worksheet, only {', '.join(every)}", SAVE_ON_A_WORKSHEET)
    visible = [name for name in worksheets if name not in package.hidden_sheets]
    chosen = (visible or worksheets)[0]
    before = sheet_names[: sheet_names.index(chosen)]
    after = [name for name in worksheets if sheet_names.index(name) > sheet_names.index(chosen)]
    return _SheetChoice(chosen, [described(name) for name in before], after, elsewhere(chosen))


SAVE_ON_A_WORKSHEET = "save a workbook with the data on a worksheet, as a table with a header row"


def _sheet_notes(choice: _SheetChoice, package: Package) -> list[str]:
    """Which sheet was read when none was asked for, and why the ones before it were not."""
    notes = []
    if choice.passed_over:
        note = f"read {choice.chosen!r}, the first visible worksheet; passed over {', '.join(choice.passed_over)}"
        if choice.others:
            note += f"; the others ({_listed(choice.others)}) can be read with --sheet"
        notes.append(note)
    elif choice.others:
        notes.append(
            f"read the first sheet {choice.chosen!r}; the others ({_listed(choice.others)}) can be read with --sheet"
        )
    notes += [
        f"sheet {name!r} ({SHEET_KINDS.get(kind, 'not a worksheet')}) was not read: it holds no table"
        for name, kind in package.left_out
    ]
    return notes


def _filled(cell: str | None) -> bool:
    return cell is not None and not cell.isspace() and cell != ""


def find_header(rows: list[tuple[str | None, ...]]) -> int:
    """Index of the header among the sheet's first rows, or -1 when every row is blank.

    The header is the first row, among the first HEADER_SEARCH_ROWS non-blank ones, that is wider
    than every non-blank row above it (a title block is narrower than the table), whose cells are
    mostly distinct text (not numbers or dates), and whose columns cover every value in the
    rows below it (checked over HEADER_CHECK_ROWS). When no row qualifies it is the first
    non-blank row, as a person would expect, and the header rules then say what is wrong.
    """
    filled = [{column for column, cell in enumerate(row) if _filled(cell)} for row in rows]
    non_blank = [index for index, columns in enumerate(filled) if columns]
    if not non_blank:
        return -1
    widest_above = 0
    for index in non_blank[:HEADER_SEARCH_ROWS]:
        columns = filled[index]
        values = [str(rows[index][column]).strip() for column in columns]
        below = set().union(*filled[index + 1 : index + 1 + HEADER_CHECK_ROWS])
        textual = sum(not VALUE_LIKE.match(value) for value in values)
        if (
            len(columns) > widest_above
            and 2 * textual >= len(values)
            and 2 * len(set(values)) > len(values)
            and below
            and below <= columns
        ):
            return index
        widest_above = max(widest_above, len(columns))
    return non_blank[0]


def _asked_header(
    text: pl.DataFrame, header_row: int, chosen: str, source_file: str
) -> tuple[int, str | None]:
    """The index in `text` of the header row given (Excel's number), and a note if rows were skipped."""
    if header_row < 1:
        raise UserError(f"header row {header_row} does not exist", "rows are numbered from 1, as in Excel")
    index = header_row - 1
    if index >= text.height or not any(_filled(cell) for cell in text.row(index)):
        raise UserError(
            f"row {header_row} of sheet {chosen!r} of {source_file} is blank, so it cannot be the header",
            "give the row that names the columns, as Excel numbers it (--header-row)",
        )
    skipped = any(_filled(cell) for row in text.head(index).iter_rows() for cell in row)
    return index, f"header at row {header_row} as asked; the rows above it were skipped" if skipped else None


def _found_header(text: pl.DataFrame, first: int) -> tuple[int, str | None]:
    """The index in `text` of the header found from `first`, the sheet's first row with a value
    (however many blank, formatted say, rows are above it), and a note if rows were skipped."""
    index = first + find_header(text.slice(first, HEADER_SEARCH_ROWS * 4 + HEADER_CHECK_ROWS).rows())
    if index == first:
        return index, None
    above = f"row {first + 1}" if index == first + 1 else f"rows {first + 1}–{index}"
    return index, (
        f"header found at row {index + 1} ({above} look like a title block and were skipped; "
        "pass --header-row to choose another)"
    )


def _with_sheet_context(error: UserError, chosen: str, sheet_names: list[str], source_file: str) -> UserError:
    """A header problem, said with the sheet that was read and the others a person may have meant."""
    others = [name for name in sheet_names if name != chosen]
    where = f"{error.message} (sheet {chosen!r} of {source_file}"
    where += f"; its other sheets: {_listed(others)})" if others else ")"
    hints = [error.hint] if error.hint else []
    hints.append("if the header is not the first row of the table, give its row with --header-row")
    if others:
        hints.append("if the data is on another sheet, pick it with --sheet")
    return UserError(where, "; ".join(hints), exit_code=error.exit_code)


def _named_error_cells(errors: list[tuple[int, int, str]]) -> str:
    """The first few error cells in reading order, as Excel names them: 'A1 (#DIV/0!), … and 3 more'."""
    errors = sorted(errors, key=lambda error: (error[1], error[0]))
    named = ", ".join(
        f"{column_letters(column)}{row} ({text})" for column, row, text in errors[:MAX_NAMED_CELLS]
    )
    return named + (f" and {len(errors) - MAX_NAMED_CELLS:,} more" if len(errors) > MAX_NAMED_CELLS else "")


def _error_notes(scan: SheetScan, header_index: int) -> list[str]:
    """Excel error cells below the header (read as empty): one note naming the first few."""
    errors = [(column, row, text) for column, row, text in scan.errors if row > header_index + 1]
    if not errors:
        return []
    count = len(errors)
    cells = f"{count:,} cell{'s' if count != 1 else ''}"
    return [problem(EXCEL_ERROR).message(count=cells, cells=_named_error_cells(errors))]


def _first_filled_row(text: pl.DataFrame) -> int:
    """Index of the sheet's first row that holds a value, or -1 (it stops at that row)."""
    return next((index for index, row in enumerate(text.iter_rows()) if any(map(_filled, row))), -1)


def _empty_sheet(choice: _SheetChoice, source_file: str, scan: SheetScan) -> UserError:
    """The sheet has no value to read. If its only cells are Excel errors (calamine reads them as
    empty), say so: a person looking at it in Excel sees cells, not an empty sheet. The hint names
    the workbook's other worksheets, hidden ones too: the data may well be on one of them."""
    elsewhere = ", ".join(choice.elsewhere)
    pick = (
        f"pick the sheet with the data (--sheet): its other worksheets are {elsewhere}" if elsewhere else ""
    )
    if scan.errors:
        return UserError(
            f"sheet {choice.chosen!r} of {source_file} has no values: its only cells hold Excel errors, "
            f"{_named_error_cells(scan.errors)}",
            f"fix the formulas in Excel (or paste their values){', or ' + pick if pick else ''}",
        )
    return UserError(
        f"sheet {choice.chosen!r} of {source_file} is empty",
        pick or "it is the workbook's only worksheet: check that this is the file you meant",
    )


def read_xlsx(path: str, *, sheet: str | None, header_row: int | None = None) -> Extracted:
    """Read the first visible worksheet (or `sheet` by name) of the workbook at `path`.

    header_row: the Excel row number of the header; found when None (see `find_header`).
    """
    source_file = Path(path).name
    package, reader = _open(path, source_file)
    sheet_names = list(reader.sheet_names)
    choice = _choose_sheet(sheet_names, sheet, source_file, package)
    chosen = choice.chosen
    calamine_sheet = _Sheet(reader, chosen)
    try:
        # calamine parses without the GIL: the XML scan runs meanwhile.
        with ThreadPoolExecutor(max_workers=1) as pool:
            scanning = pool.submit(scan_sheet, path, package, chosen)
            text = calamine_sheet.load("string")
            scan = scanning.result()
        if text.width == 0 or text.height == 0:
            raise _empty_sheet(choice, source_file, scan)
        first_column = calamine_sheet.absolute[0]
        one_parse = scan.unsure is None and not (package.date1904 or package.mentions_1904)
        rendered = _rendered_as_text(text, scan.lookalikes) if one_parse else None
        if rendered is not None:
            text = rendered
        else:
            elapsed: dict[int, list[int]] = {}
            for column, row in scan.elapsed:
                if 0 <= column - first_column < text.width and row <= text.height:
                    elapsed.setdefault(column - first_column, []).append(row - 1)
            text = _typed_cells_as_text(calamine_sheet, text, package.date1904, elapsed)
    except (fastexcel.FastExcelError, *DAMAGED_PART_ERRORS) as error:  # calamine's, or the scan's
        raise UserError(
            f"sheet {chosen!r} of {source_file} could not be read ({type(error).__name__})",
            "open the workbook in Excel or LibreOffice and save it again as .xlsx, or export it as .csv",
        ) from None
    if header_row is not None:
        header_index, header_note = _asked_header(text, header_row, chosen, source_file)
    elif (first := _first_filled_row(text)) < 0:  # rows of blank cells (or of error cells, read empty)
        raise _empty_sheet(choice, source_file, scan)
    else:
        header_index, header_note = _found_header(text, first)
    header = list(text.row(header_index))
    rows = (
        text.with_row_index(SOURCE_ROW, offset=1)
        .with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        .slice(header_index + 1)
    )
    try:
        finished = finish(
            rows,
            header,
            source_file=source_file,
            place=f"row {header_index + 1}",
            column_label=lambda position: column_letters(first_column + position),
        )
    except UserError as error:
        raise _with_sheet_context(error, chosen, sheet_names, source_file) from None
    notes = [note for note in (header_note,) if note]
    notes += [*_sheet_notes(choice, package), *finished.notes, *_error_notes(scan, header_index)]
    info = SourceInfo(
        path=path,
        format="xlsx",
        rows=finished.frame.height,
        columns=finished.columns,
        sheet=chosen,
        notes=tuple(notes),
    )
    return Extracted(frame=finished.frame, info=info)
