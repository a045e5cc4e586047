"""Read one sheet of an .xlsx workbook into text columns, turning typed cells into the text meant.

Why it exists: spreadsheets store phones as numbers, dates as serial numbers and flags as
booleans; the rest of the pipeline wants the text a person sees. calamine (through fastexcel)
reads the sheet fast; every column is read as text (never typed from a sample of rows, so a
column that turns from numbers to text after row 1,000 keeps every value). Asked for text,
calamine writes a date as "2024-03-05 00:00:00", a boolean as "true" and a number rounded to
nine decimals (1e-10 becomes "0"), so a typed cell cannot be told from a text cell holding the
same characters. One more typed read of only the columns that may hold typed cells tells them
apart, and a float read (only where text lost precision) gives numbers their full value.

It must never guess types from values, restore leading zeros (validate knows which column is a
ZIP), or renumber rows: SOURCE_ROW is Excel's own row number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastexcel
import polars as pl

from pipeline.extract._frame import finish
from pipeline.model import SOURCE_ROW, Extracted, SourceInfo, UserError

# How calamine renders a date/time cell when asked for a string.
CALAMINE_DATETIME = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d+)?$"
CALAMINE_BOOLEANS = ("true", "false")
# How calamine renders a number cell as a string (integral in full, others rounded).
CALAMINE_NUMBER = r"^-?\d+(\.\d+)?$"
INT64_SAFE = 2.0**63
MAX_EXACT_DIGITS = 15  # calamine's text of a longer integral number may not be the stored one
ONE_DAY_MS = 86_400_000


def _load(
    reader: Any, sheet: str, dtypes: str | dict[int, str], columns: list[int] | None = None
) -> pl.DataFrame:
    """Every row of the sheet from Excel row 1 (leading blank rows kept), no header.

    Columns are named `_<position>` after their position in the sheet's used range.
    """
    sheet_frame = reader.load_sheet(
        sheet, header_row=None, skip_rows=0, dtypes=dtypes, use_columns=columns
    ).to_polars()
    positions = columns if columns is not None else range(sheet_frame.width)
    return sheet_frame.rename(
        {old: f"_{position}" for old, position in zip(sheet_frame.columns, positions, strict=True)}
    )


def _date_text(text: pl.Expr, serial: pl.Expr) -> pl.Expr:
    """The ISO text of a date cell: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS with a time, HH:MM:SS alone."""
    moment = text.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="ms").dt.round("1s")
    time_only = serial.dt.total_milliseconds() < ONE_DAY_MS
    midnight = moment.dt.time() == pl.time(0, 0, 0)
    return (
        pl.when(time_only)
        .then(moment.dt.strftime("%H:%M:%S"))
        .when(midnight)
        .then(moment.dt.strftime("%Y-%m-%d"))
        .otherwise(moment.dt.strftime("%Y-%m-%dT%H:%M:%S"))
    )


def _number_text(number: pl.Expr) -> pl.Expr:
    """An integral number as integer text (a phone stays 2125550123), any other as its shortest repr.

    Only needed where calamine's own text may have lost precision (see `_typed_cells_as_text`).
    """
    integral = number == number.floor()
    return (
        pl.when(integral & (number.abs() < INT64_SAFE))
        .then(number.cast(pl.Int64).cast(pl.String))
        .otherwise(number.cast(pl.String))
    )


def _typed_cells_as_text(reader: Any, sheet: str, text: pl.DataFrame) -> pl.DataFrame:
    """Rewrite the cells that are numbers, dates or booleans into the text a person meant.

    Read as text, calamine rounds numbers to nine decimals, writes dates as "2024-03-05 00:00:00"
    and booleans as "true", so such cells look like text cells holding the same characters.
    Typed reads of only the columns that may hold them tell them apart: as durations only date
    cells have a value; as booleans only numbers and booleans do; as floats a number keeps the
    precision its text lost (read only for columns with such numbers).
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
    typed = _load(reader, sheet, first_read, sorted(first_read))
    both = [index for index in number_columns if index in date_columns]
    second = _load(reader, sheet, "boolean", both) if both else None

    helpers: dict[str, pl.Series] = {}
    rewritten = {name: pl.col(name) for name in names}
    for index in date_columns:
        name = names[index]
        serial = helpers[f"serial {index}"] = typed.get_column(name).alias(f"serial {index}")
        rewritten[name] = (
            pl.when(pl.col(serial.name).is_not_null())
            .then(_date_text(pl.col(name), pl.col(serial.name)))
            .otherwise(rewritten[name])
        )
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

    with_helpers = text.with_columns(list(helpers.values()))
    imprecise = with_helpers.select(
        [
            (
                number_cells[index]
                & (
                    pl.col(names[index]).str.contains(".", literal=True)
                    | pl.col(names[index]).is_in(["0", "-0"])  # a tiny number rounded away
                    | (pl.col(names[index]).str.len_bytes() > MAX_EXACT_DIGITS)
                )
            )
            .any()
            .alias(names[index])
            for index in number_columns
        ]
    )
    precise_columns = [index for index in number_columns if imprecise.get_column(names[index])[0]]
    if precise_columns:
        numbers = _load(reader, sheet, "float", precise_columns)
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


def read_xlsx(path: str, *, sheet: str | None) -> Extracted:
    """Read the first sheet (or `sheet` by name) of the workbook at `path`."""
    source_file = Path(path).name
    try:
        reader = fastexcel.read_excel(path)
    except Exception as error:  # calamine reports damaged workbooks with many error types
        raise UserError(
            f"{source_file} could not be read as an Excel workbook ({type(error).__name__})",
            "open it in Excel or LibreOffice and save it again as .xlsx, or export it as .csv",
        ) from None
    sheet_names = list(reader.sheet_names)
    if not sheet_names:
        raise UserError(f"{source_file} has no sheets", "save a workbook with the data on its first sheet")
    if sheet is None:
        chosen = sheet_names[0]
    elif sheet in sheet_names:
        chosen = sheet
    else:
        listed = ", ".join(repr(name) for name in sheet_names)
        raise UserError(f"{source_file} has no sheet named {sheet!r}", f"its sheets are: {listed}")

    try:
        text = _load(reader, chosen, "string")
        if text.width == 0 or text.height == 0:
            raise UserError(
                f"sheet {chosen!r} of {source_file} is empty", "pick the sheet with the data (--sheet)"
            )
        text = _typed_cells_as_text(reader, chosen, text)
    except fastexcel.FastExcelError as error:
        raise UserError(
            f"sheet {chosen!r} of {source_file} could not be read ({type(error).__name__})",
            "open the workbook in Excel or LibreOffice and save it again as .xlsx, or export it as .csv",
        ) from None
    internal = text.columns
    non_blank = text.select(
        pl.any_horizontal(
            [pl.col(name).is_not_null() & pl.col(name).str.contains(r"\S") for name in internal]
        )
    ).to_series()
    header_index = int(non_blank.arg_true()[0]) if non_blank.any() else -1
    if header_index < 0:
        raise UserError(
            f"sheet {chosen!r} of {source_file} is empty", "pick the sheet with the data (--sheet)"
        )
    header = list(text.row(header_index))
    rows = (
        text.with_row_index(SOURCE_ROW, offset=1)
        .with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        .slice(header_index + 1)
    )
    finished = finish(rows, header, source_file=source_file, place=f"row {header_index + 1}")
    info = SourceInfo(
        path=path,
        format="xlsx",
        rows=finished.frame.height,
        columns=finished.columns,
        sheet=chosen,
        notes=finished.notes,
    )
    return Extracted(frame=finished.frame, info=info)
