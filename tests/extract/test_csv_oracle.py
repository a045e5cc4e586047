"""The CSV reader against an oracle, Python's csv module, over dialects and ragged, blank and
multi-line records: every record of the header's width is a row at its record number, every
other non-blank record is a ragged-row problem with the csv module's count of values.

The reader's shortcut counts delimiters over the whole file: the separators add up to records x
(width-1) only when no record is short, because the strict read has already refused any longer
one. A total that could also be reached by a short row and a long one, or a short row and a quirk
elsewhere, cancelling out would be wrong; these tests mix them in one file, and check that the
shortcut is taken exactly when every record has the header's width.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import csv_reader, read_source
from pipeline.model import SOURCE_ROW

cells = st.lists(st.sampled_from([*"ab Z09,;\t|\"\n'é-", "\r\n", "  "]), max_size=6).map("".join)
header_names = st.text(alphabet=st.sampled_from(list("abcXYZé_1")), min_size=1, max_size=5)

DIALECTS = {
    "delimiter": st.sampled_from([",", ";", "\t", "|"]),
    "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    "line_end": st.sampled_from(["\r\n", "\n"]),
}

Expected = tuple[list[tuple[tuple[str | None, ...], int]], list[tuple[int, int]]]


@st.composite
def records(draw: st.DrawFn, longest: int = 2) -> tuple[list[str], list[list[str]]]:
    """A header and records of mostly its width, some shorter or longer by up to `longest`
    values (at least one value)."""
    header = draw(st.lists(header_names, min_size=1, max_size=5, unique=True))
    width = len(header)
    widths = st.one_of(st.just(width), st.just(width), st.integers(min_value=1, max_value=width + longest))
    rows = draw(st.lists(widths.flatmap(lambda n: st.lists(cells, min_size=n, max_size=n)), max_size=14))
    return header, rows


def oracle(text: str, delimiter: str) -> Expected:
    """Rows and ragged (row, count) as the csv module reads `text`: record i is row i + 1."""
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    width = len(parsed[0])
    rows, ragged = [], []
    for index, record in enumerate(parsed[1:], start=2):
        if not any(field.strip() for field in record):
            continue  # blank: skipped (and counted), whatever its width
        if len(record) == width:
            rows.append((tuple(field if field != "" else None for field in record), index))
        else:
            ragged.append((index, len(record)))
    return rows, ragged


def read_back(path: Path, delimiter: str, *, header: list[str]) -> Expected:
    extracted = read_source(path, delimiter=delimiter)
    assert extracted.info.columns == tuple(header)
    rows = [
        (tuple(row[: len(header)]), row[-1])
        for row in extracted.frame.select([*header, SOURCE_ROW]).iter_rows()
    ]
    problems = extracted.problems.filter(extracted.problems.get_column("code") == "ragged-row")
    counts = [int(message.split(" has ")[1].split(" value")[0]) for message in problems.get_column("message")]
    return rows, list(zip(problems.get_column(SOURCE_ROW).to_list(), counts, strict=True))


def written(
    table: tuple[list[str], list[list[str]]], delimiter: str, quoting: Literal[0, 1, 2, 3], line_end: str
) -> str:
    header, rows = table
    if line_end == "\n" and quoting == csv.QUOTE_MINIMAL:
        # The writer leaves a lone \r unquoted then, which no reader can tell from a line end.
        rows = [[cell.replace("\r", "") for cell in row] for row in rows]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=st.one_of(records(), records(longest=0)), encoding=st.sampled_from(["utf-8", "utf-16"]), **DIALECTS
)
def test_the_reader_agrees_with_the_csv_module(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    table: tuple[list[str], list[list[str]]],
    encoding: str,
    delimiter: str,
    quoting: Literal[0, 1, 2, 3],
    line_end: str,
) -> None:
    # Half the tables have no record longer than the header, so the strict read refuses none:
    # the delimiter count alone decides whether the line pass runs, and delimiters, quotes and
    # line ends inside values must not sway it. A UTF-8 file is parsed from disk, its bytes
    # searched in pieces; a UTF-16 one is decoded first and parsed from memory.
    text = written(table, delimiter, quoting, line_end)
    path = tmp_path / "oracle.csv"
    path.write_bytes(text.encode(encoding))
    monkeypatch.setattr(csv_reader, "PIECE_BYTES", 7)  # pieces smaller than most files
    line_passes: list[int] = []
    measure = csv_reader._separated_lines
    monkeypatch.setattr(csv_reader, "_separated_lines", lambda *args: line_passes.append(1) or measure(*args))

    assert read_back(path, delimiter, header=table[0]) == oracle(text, delimiter)
    parsed = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    every_record_full = all(len(record) == len(parsed[0]) for record in parsed)
    assert (not line_passes) == every_record_full  # the shortcut is taken exactly then


def test_a_short_row_is_reported_beside_a_long_one_and_quotes_inside_values(tmp_path: Path) -> None:
    # One record has a delimiter too few, another one too many, and a third holds quotes that
    # are not at a value's start around a quoted value with delimiters in it (read as one value
    # each, as the csv module does): totals over the file would balance, each record does not.
    text = 'x,y,z\n1,2\na"b,"c,d,e,f",g"h\n1,2,3,4\n5,6,7\n' + "8,9,10\n" * 3000
    path = tmp_path / "balanced.csv"
    path.write_bytes(text.encode())
    assert read_back(path, ",", header=["x", "y", "z"]) == oracle(text, ",")
    rows, ragged = oracle(text, ",")
    assert ragged == [(2, 2), (4, 4)]
    assert rows[0] == (('a"b', "c,d,e,f", 'g"h'), 3)


def test_short_and_long_rows_far_apart_in_a_large_file(tmp_path: Path) -> None:
    lines = ["id,name,zip"] + [f'{i},"n, {i}",0{i:04d}' for i in range(2, 60_002)]
    lines[10] = "11,short"
    lines[50_000] = '50001,"long, one",1,2'
    text = "\n".join(lines) + "\n"
    path = tmp_path / "far.csv"
    path.write_bytes(text.encode())
    assert read_back(path, ",", header=["id", "name", "zip"]) == oracle(text, ",")
