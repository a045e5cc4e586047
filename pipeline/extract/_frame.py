"""Shared finishing steps of the readers: header checks, blank rows, source columns, problems.

Both readers end the same way (a frame of text columns named as in the file, plus SOURCE_FILE
and SOURCE_ROW), so the rules for header names and blank rows live here once. This module must
never interpret values: it only decides which rows and columns exist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from pipeline.model import REJECT_SCHEMA, SOURCE_FILE, SOURCE_ROW, UserError, problem

RAGGED_ROW = problem("ragged-row")
MAX_PROBLEM_VALUE_CHARS = 500


@dataclass(frozen=True)
class Finished:
    """A reader's frame with its final column names and what was dropped on the way."""

    frame: pl.DataFrame
    columns: tuple[str, ...]
    notes: tuple[str, ...]


def positional_names(count: int) -> list[str]:
    """Internal column names used before the header is checked (`_0`, `_1`, …)."""
    return [f"_{index}" for index in range(count)]


def empty_to_null(column: str) -> pl.Expr:
    """An empty cell means "no value": keep one spelling of it (null)."""
    return pl.when(pl.col(column) != "").then(pl.col(column)).alias(column)


def blank_rows(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Positions of the rows where every cell is missing or only whitespace.

    Checked one column at a time over the rows still in question, so a large file pays for
    about one column, not all of them.
    """
    candidates = pl.Series("row", range(frame.height), dtype=pl.UInt32)
    for column in columns:
        if candidates.len() == 0:
            break
        cells = (
            frame.get_column(column).gather(candidates)
            if candidates.len() < frame.height
            else frame.get_column(column)
        )
        empty = cells.is_null() | ~cells.str.contains(r"\S")
        candidates = candidates.filter(empty.fill_null(True))
    return candidates


def _all_empty(cells: pl.Series) -> bool:
    """True when every cell is missing or the empty string."""
    return cells.null_count() + int((cells == "").sum()) == cells.len()


def finish(
    raw: pl.DataFrame,
    header: Sequence[str | None],
    *,
    source_file: str,
    place: str,
    blank_elsewhere: int = 0,
    column_label: Callable[[int], str] | None = None,
) -> Finished:
    """Name the positional columns `_0…` of `raw` after `header`, drop blank rows, add SOURCE_FILE.

    `raw` already holds SOURCE_ROW and only data rows; empty strings are turned into nulls here.
    `place` says where the header is ("row 1") for messages; `blank_elsewhere` counts blank rows
    the reader already left out (e.g. an empty line in a many-column CSV). `column_label` names
    the header's 0-based position i in messages (default: i + 1; a workbook gives Excel's letters).
    """
    label = column_label or (lambda index: str(index + 1))
    internal = positional_names(len(header))
    names = [(name or "").strip() for name in header]
    notes: list[str] = []

    keep: list[int] = []
    unnamed_with_values: list[int] = []
    for index, name in enumerate(names):
        if name:
            keep.append(index)
        elif _all_empty(raw.get_column(internal[index])):
            notes.append(f"ignored column {label(index)}: no header name and no values")
        else:
            unnamed_with_values.append(index)
    if unnamed_with_values:
        listed = ", ".join(label(position) for position in unnamed_with_values)
        raise UserError(
            f"{source_file}: column{'s' if len(unnamed_with_values) > 1 else ''} {listed} of the header "
            f"({place}) {'have' if len(unnamed_with_values) > 1 else 'has'} values but no name",
            "give every column a name in the header row, or delete the column",
        )

    seen: dict[str, list[int]] = {}
    for index in keep:
        seen.setdefault(names[index], []).append(index)
    duplicates = {name: positions for name, positions in seen.items() if len(positions) > 1}
    if duplicates:
        listed = "; ".join(
            f"{name!r} (columns {', '.join(map(label, positions))})" for name, positions in duplicates.items()
        )
        raise UserError(
            f"{source_file}: duplicate column names in the header ({place}): {listed}",
            "rename the columns so that each name appears once",
        )

    reserved = [name for name in (SOURCE_FILE, SOURCE_ROW) if name in seen]
    if reserved:
        listed = " and ".join(repr(name) for name in reserved)
        raise UserError(
            f"{source_file}: the header ({place}) has a column named {listed}, a name kayse-etl "
            "gives its own column (where each row came from)",
            "rename that column; to check a rejects.csv again, use the one this version writes "
            "(its own columns are named kayse_source_file and kayse_source_row)",
        )

    # Blank rows are found before empty cells become nulls (both count as blank). The frame is
    # then made one chunk per column, so later stages select from it without copying.
    blank = blank_rows(raw, [internal[index] for index in keep])
    blank_here = blank.len()
    blank_count = blank_here + blank_elsewhere
    if blank_count:
        notes.append(f"skipped {blank_count:,} blank row{'s' if blank_count != 1 else ''}")
    if blank_here:
        raw = raw.filter(~pl.int_range(pl.len(), dtype=pl.UInt32).is_in(blank.implode()))
    frame = raw.with_columns(empty_to_null(internal[index]) for index in keep).select(
        [pl.col(internal[index]).alias(names[index]) for index in keep]
        + [pl.lit(source_file, dtype=pl.String).alias(SOURCE_FILE), pl.col(SOURCE_ROW).cast(pl.Int64)]
    )
    del raw  # the reader handed its only reference over: free it before the copy below
    frame = frame.rechunk()
    return Finished(frame=frame, columns=tuple(names[index] for index in keep), notes=tuple(notes))


def truncate_value(text: str) -> str:
    """Shorten a raw record for the rejects report."""
    if len(text) <= MAX_PROBLEM_VALUE_CHARS:
        return text
    return text[: MAX_PROBLEM_VALUE_CHARS - 1] + "…"


def ragged_problems(
    source_file: str, rows: Sequence[tuple[int, int, str]], header_width: int
) -> pl.DataFrame:
    """Problems for rows whose number of values differs from the header: (source_row, count, raw)."""
    return pl.DataFrame(
        {
            SOURCE_FILE: [source_file] * len(rows),
            SOURCE_ROW: [row for row, _, _ in rows],
            "field": [None] * len(rows),
            "value": [truncate_value(raw) for _, _, raw in rows],
            "code": [RAGGED_ROW.code] * len(rows),
            "message": [
                RAGGED_ROW.message(
                    row=row,
                    found=f"{count} value{'s' if count != 1 else ''}",
                    expected=f"{header_width} column{'s' if header_width != 1 else ''}",
                )
                for row, count, _ in rows
            ],
        },
        schema=REJECT_SCHEMA,
    )
