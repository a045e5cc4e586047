"""Property: any table of text written by Python's csv module reads back exactly, at the right row."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Literal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source
from pipeline.model import SOURCE_FILE, SOURCE_ROW

CELL_ALPHABET = st.sampled_from([*"ab Z09,;\t|\"\n\r'éüß€Ω-", "日", "😀"])
cells = st.text(alphabet=CELL_ALPHABET, max_size=8)
header_names = (
    st.text(alphabet=st.sampled_from(list("abcXYZé_ 1")), min_size=1, max_size=6).map(str.strip).filter(bool)
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    header = draw(st.lists(header_names, min_size=1, max_size=5, unique=True))
    rows = draw(st.lists(st.lists(cells, min_size=len(header), max_size=len(header)), max_size=12))
    return header, rows


def _expected(rows: list[list[str]]) -> list[tuple[tuple[str | None, ...], int]]:
    """Rows as the reader should return them: empty → null, blank rows gone, row numbers kept."""
    kept = []
    for index, row in enumerate(rows):
        if not any(cell.strip() for cell in row):
            continue
        kept.append((tuple(cell if cell != "" else None for cell in row), index + 2))
    return kept


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables(),
    delimiter=st.sampled_from([",", ";", "\t"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    line_end=st.sampled_from(["\r\n", "\n"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
)
def test_any_written_table_reads_back_exactly(
    tmp_path: Path,
    table: tuple[list[str], list[list[str]]],
    delimiter: str,
    quoting: Literal[0, 1, 2, 3],
    line_end: str,
    encoding: str,
) -> None:
    header, rows = table
    if line_end == "\n" and quoting == csv.QUOTE_MINIMAL:
        # The writer leaves a lone \r unquoted then, which no reader can tell from a line end.
        rows = [[cell.replace("\r", "") for cell in row] for row in rows]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        assume(False)
        return
    # cp1252 bytes that happen to be valid UTF-8 cannot be told apart: say the encoding then. So
    # too for random runs of accented letters ("éüß"), which no Western text has: the reader
    # refuses those as another script garbled (tests/extract/test_legacy_text.py).
    ambiguous = encoding == "cp1252" and not text.isascii() and (_is_utf8(data) or _accented_run(text))
    path = tmp_path / "table.csv"
    path.write_bytes(data)

    extracted = read_source(path, delimiter=delimiter, encoding="cp1252" if ambiguous else None)

    assert extracted.info.columns == tuple(header)
    assert extracted.problems.height == 0
    got = [
        (tuple(row[: len(header)]), row[-1])
        for row in extracted.frame.select([*header, SOURCE_ROW]).iter_rows()
    ]
    assert got == _expected(rows)
    assert set(extracted.frame.get_column(SOURCE_FILE).to_list()) <= {"table.csv"}
    if not text.isascii() and not ambiguous:
        assert (
            extracted.info.encoding
            == {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "cp1252": "cp1252"}[encoding]
        )


def _accented_run(text: str) -> bool:
    return re.search(r"(?<![a-zA-Zéüß])[éüß]{3,}", text) is not None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    table=tables().filter(lambda table: len(table[0]) >= 2),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_delimiter_is_detected_whatever_the_cells_hold(
    tmp_path: Path, table: tuple[list[str], list[list[str]]], delimiter: str, quoting: Literal[0, 1, 2, 3]
) -> None:
    header, rows = table
    buffer = io.StringIO(newline="")
    csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n").writerows([header, *rows])
    path = tmp_path / "detect.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8"))

    extracted = read_source(path)

    assert extracted.info.delimiter == delimiter
    assert extracted.info.columns == tuple(header)
    assert [row[-1] for row in extracted.frame.iter_rows()] == [row for _, row in _expected(rows)]
