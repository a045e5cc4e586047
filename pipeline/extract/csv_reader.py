"""Read a delimited text file (CSV, TSV, …) into text columns, detecting encoding and delimiter.

Why it exists: CRM exports come in every encoding and dialect, and a million-row file must read at
about polars' own speed. polars parses the values; a second, line-level polars pass running beside
it counts the values of every record, because polars itself cannot tell a short row from trailing
empty cells. That pass is streamed and keeps two numbers per line, not the lines: only the
offending records' lines are read again and parsed in Python (to report them), and only a file
polars cannot parse falls back to Python's csv module entirely. A UTF-8 file (most exports) is
parsed by polars from disk while its bytes are searched a piece at a time, so it is never held
whole in memory unless a record needs the line pass; a file decoded from another encoding drops
its bytes before the frame is finished, so the peak holds the file once, not twice.

It must never infer types (a ZIP like 02134 keeps its zero), never pad or silently drop a ragged
row (it is reported as a problem), and never interpret a value.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import io
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipeline.extract._frame import RAGGED_ROW, finish, positional_names, ragged_problems, truncate_value
from pipeline.extract._legacy_text import refuse_if_not_western
from pipeline.model import REJECT_SCHEMA, SOURCE_FILE, SOURCE_ROW, Extracted, SourceInfo, UserError, problem

CANDIDATE_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"comma": ",", "semicolon": ";", "tab": "\t", "\\t": "\t", "pipe": "|"}
SAMPLE_BYTES = 1 << 16
QUOTE = '"'
LINE_SEPARATOR_CANDIDATES = ("\x1f", "\x1e", "\x1d", "\x1c", "\x01", "\x02", "\x03", "\x00")
FALLBACK_ERROR_HANDLER = "kayse-cp1252-latin1"
NUL = "\x00"
NUL_SHOWN = "\u2400"  # ␀, the printable symbol for a NUL byte
NUL_BYTE = problem("nul-byte").code


def _latin1_for_undefined(error: UnicodeError) -> tuple[str, int]:
    """cp1252 leaves five bytes undefined; read them as latin-1 (what Windows tools do too)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(FALLBACK_ERROR_HANDLER, _latin1_for_undefined)
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


@dataclass(frozen=True)
class Decoded:
    """The file as UTF-8 bytes and the encoding it was read with.

    `start` is where the text begins: past a UTF-8 BOM, which is left in place rather than cut
    off (a copy of the whole file); polars skips it itself.
    """

    data: bytes
    encoding: str
    start: int = 0

    @classmethod
    def utf8(cls, data: bytes, encoding: str) -> Decoded:
        return cls(data, encoding, len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)


class _NeedsSlowPath(Exception):
    """polars and the line counter disagree or cannot parse the file: use Python's csv module."""


class _NotUtf8(Exception):
    """The file is not valid UTF-8 after all (found while polars parsed it)."""


# ---- encoding ------------------------------------------------------------------------------------


def _canonical_encoding(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UserError(
            f"unknown encoding {name!r}",
            "use a Python codec name such as utf-8, cp1252, latin-1 or utf-16",
        ) from None


def _decode_with(data: bytes, encoding: str, source_file: str) -> bytes:
    """Decode with an explicit encoding and return UTF-8 bytes without a BOM."""
    errors = FALLBACK_ERROR_HANDLER if encoding == "cp1252" else "strict"
    try:
        text = data.decode(encoding, errors=errors)
    except UnicodeDecodeError as error:
        raise UserError(
            f"{source_file} is not valid {encoding}: byte {error.object[error.start]:#04x} "
            f"at offset {error.start} cannot be decoded",
            "check the file's encoding and pass it with --encoding (e.g. cp1252, utf-8, utf-16)",
        ) from None
    return text.removeprefix("\ufeff").encode("utf-8")


def decode(data: bytes, encoding: str | None, source_file: str) -> Decoded:
    """Turn the file's bytes into UTF-8 bytes for polars, detecting the encoding unless given.

    Detection: a BOM (UTF-8, UTF-16, UTF-32) wins; else a start that is valid UTF-8 is UTF-8
    (the caller confirms the full file through polars); else cp1252.
    """
    utf8 = _utf8_as_it_is(data, encoding)
    if utf8 is not None:
        return Decoded.utf8(data, utf8)
    if encoding is not None:
        canonical = _canonical_encoding(encoding)
        return Decoded(_decode_with(data, canonical, source_file), canonical)
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return Decoded(_decode_with(data, "utf-32", source_file), "utf-32")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Decoded(_decode_with(data, "utf-16", source_file), "utf-16")
    return _as_cp1252(data, source_file)


def _as_cp1252(data: bytes, source_file: str) -> Decoded:
    """The fallback for a file that is not UTF-8 (nor asked to be read otherwise): cp1252, unless
    its text would come out garbled that way (Greek, Cyrillic, East Asian): then it is refused."""
    refuse_if_not_western(data, source_file)
    return Decoded(_decode_with(data, "cp1252", source_file), "cp1252")


def _utf8_as_it_is(head: bytes, encoding: str | None) -> str | None:
    """The encoding to report ("utf-8" or "utf-8-sig") when the file, judged from its first bytes
    `head`, is UTF-8 as it lies (polars can parse its bytes unchanged); None when it must be
    decoded first."""
    if encoding is not None:
        canonical = _canonical_encoding(encoding)
        return canonical if canonical in ("utf-8", "utf-8-sig") else None
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head[:SAMPLE_BYTES], final=False)
    except UnicodeDecodeError:
        return None
    return "utf-8"


# ---- dialect -------------------------------------------------------------------------------------


def _sample_text(data: bytes, start: int) -> str:
    """The start of the file's text, cut at a line end so the last record is complete."""
    sample = data[start : start + SAMPLE_BYTES]
    if len(data) > start + SAMPLE_BYTES and b"\n" in sample:
        sample = sample[: sample.rindex(b"\n") + 1]
    return sample.decode("utf-8", errors="ignore")


def _records(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=QUOTE))


def _non_blank(records: list[list[str]]) -> list[list[str]]:
    return [record for record in records if any(field.strip() for field in record)]


def detect_delimiter(sample: str) -> str:
    """Pick the candidate that splits the header into most columns with rows agreeing most.

    Scored on the header and the sample's records, respecting quotes; a file that no candidate
    splits is read as a single comma-separated column.
    """
    best: tuple[float, int] | None = None
    chosen = ","
    for candidate in CANDIDATE_DELIMITERS:
        try:
            records = _non_blank(_records(sample, candidate))
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        rows = records[1:]
        agreement = sum(len(row) == width for row in rows) / len(rows) if rows else 1.0
        score = (agreement, width)
        if best is None or score > best:
            best, chosen = score, candidate
    return chosen


def parse_delimiter(delimiter: str) -> str:
    """Accept a single character or a name (comma, semicolon, tab, pipe, \\t)."""
    value = DELIMITER_NAMES.get(delimiter.lower(), delimiter)
    if len(value) != 1 or not value.isascii() or value in ('"', "\n", "\r"):
        raise UserError(
            f"unusable delimiter {delimiter!r}",
            'give one character, or one of: comma, semicolon, tab, pipe (e.g. --delimiter ";")',
        )
    return value


# ---- the fast path: polars for values, a polars line pass for counts ------------------------------


def _read_values(
    source: str | bytes, delimiter: str, width: int, *, truncate_long_rows: bool
) -> pl.DataFrame:
    """The file's values in `width` text columns; a short record is padded with empty strings.

    `source` is the file's bytes, or the absolute path of a UTF-8 file polars reads itself.
    With truncate_long_rows False, a record with more values than `width` is an error.
    """
    return pl.read_csv(
        source,
        glob=False,  # a path is the file's own name, even with * or ? in it
        has_header=False,
        separator=delimiter,
        quote_char=QUOTE,
        schema={name: pl.String for name in positional_names(width)},
        missing_columns="insert",
        truncate_ragged_lines=truncate_long_rows,
        empty_string_is_null=False,
        raise_if_empty=False,
    )


def _read_values_strictly_first(source: str | bytes, delimiter: str, width: int) -> tuple[pl.DataFrame, bool]:
    """The values, and whether some record may have had values cut off (read again leniently).

    Most files have no record longer than the header, and knowing that lets `_suspect_records`
    skip its exact count for most records: only a long record can look right by length alone.
    """
    try:
        return _read_values(source, delimiter, width, truncate_long_rows=False), False
    except pl.exceptions.PolarsError:
        return _read_values(source, delimiter, width, truncate_long_rows=True), True


def _scan_lines(data: bytes, line_separator: str) -> pl.LazyFrame:
    """The file's lines as one text column "line" (a separator byte that never occurs)."""
    return pl.scan_csv(
        data,
        has_header=False,
        separator=line_separator,
        quote_char=None,
        schema={"line": pl.String},
        missing_columns="insert",
        truncate_ragged_lines=True,
        empty_string_is_null=False,
        raise_if_empty=False,
    )


def _measure_lines(data: bytes, line_separator: str, has_quotes: bool) -> pl.DataFrame:
    """Per line: `length` (bytes, line-end \\r not counted) and `quotes` (quote characters).

    Streamed: the lines themselves are never held, only two numbers per line.
    """
    return (
        _scan_lines(data, line_separator)
        .select(
            pl.col("line").str.len_bytes().cast(pl.Int64).alias("length"),
            (pl.col("line").str.count_matches(QUOTE, literal=True) if has_quotes else pl.lit(0))
            .cast(pl.Int64)
            .alias("quotes"),
        )
        .collect(engine="streaming")
    )


def _records_of_lines(measured: pl.DataFrame, has_quotes: bool) -> pl.DataFrame:
    """One row per record: `length` (its bytes, lines joined by one \\n each, line-end \\r not
    counted), `quotes` (quote characters in it) and `lines` (how many lines it spans: a quote
    left open continues the record on the next line). `measured` is `_measure_lines`' output."""
    if not has_quotes or not (measured.get_column("quotes") % 2 == 1).any():
        return measured.with_columns(lines=pl.lit(1, dtype=pl.Int64))  # no quote left open
    measured = measured.with_row_index("line_number").with_columns(
        open_after=(pl.col("quotes") % 2).cum_sum() % 2,
        length_so_far=pl.col("length").cum_sum(),
        quotes_so_far=pl.col("quotes").cum_sum(),
    )
    if measured.height and measured.get_column("open_after")[-1] == 1:
        raise _NeedsSlowPath("a quote is never closed")
    ends = measured.filter(pl.col("open_after") == 0)
    line_count = pl.col("line_number").cast(pl.Int64).diff().fill_null(pl.col("line_number").first() + 1)
    return ends.select(
        (pl.col("length_so_far").diff().fill_null(pl.col("length_so_far").first()) + line_count - 1).alias(
            "length"
        ),
        pl.col("quotes_so_far").diff().fill_null(pl.col("quotes_so_far").first()).alias("quotes"),
        line_count.alias("lines"),
    )


def _suspect_records(
    values: pl.DataFrame, records: pl.DataFrame, *, may_be_cut: bool, has_carriage_return: bool
) -> pl.Series:
    """Indices of records that may not have exactly as many values as the header.

    polars pads a short row with empty strings, so counts are checked through lengths: a record
    of exactly N values is N-1 delimiters plus each value's bytes, plus its quoting (two quotes
    per quoted value and one more per quote inside a value), minus the \\r of each \\r\\n
    inside a value (the line pass drops it). Any other number of values gives another length.

    First without the quotes and \\r\\n inside values, which only overstates a length: a short
    record then still differs, and so does a record of the right width holding such a value, so
    only those are counted exactly. A cut-off long record could match by accident (the value's
    inner quote making up for a dropped empty value): when `may_be_cut`, every record is counted.
    """
    names = values.columns
    # Lengths summed as 32-bit (no record of a file polars reads reaches 4 GB), then widened.
    value_bytes = pl.sum_horizontal([pl.col(name).str.len_bytes() for name in names])
    mismatch = pl.col("value_bytes") + pl.col("quotes") != pl.col("length")
    if may_be_cut:
        suspect = pl.repeat(True, values.height, dtype=pl.Boolean, eager=True)
    else:
        expected = values.select(value_bytes.cast(pl.Int64).alias("value_bytes")).to_series() + (
            len(names) - 1
        )
        suspect = records.with_columns(expected).select(mismatch).to_series()
    candidates = suspect.arg_true()
    if candidates.len() == 0:
        return candidates.cast(pl.Int64)
    # Taken by mask, not by index: polars filters its many parse chunks far cheaper than it gathers.
    inner = [pl.col(name).str.count_matches(QUOTE, literal=True) for name in names]
    if has_carriage_return:  # without a \r in the file no value holds a \r\n: half the counting
        inner += [pl.col(name).str.count_matches("\r\n", literal=True) for name in names]
    exact_expected = (
        values.lazy()
        .filter(suspect)
        .select(
            (value_bytes.cast(pl.Int64) + (len(names) - 1) - pl.sum_horizontal(inner).cast(pl.Int64)).alias(
                "value_bytes"
            )
        )
        .collect()
    )
    still = records.filter(suspect).with_columns(exact_expected.to_series()).select(mismatch).to_series()
    return candidates.filter(still).cast(pl.Int64)


def _record_texts(
    data: bytes, line_separator: str, records: pl.DataFrame, wanted: list[int]
) -> dict[int, str]:
    """The raw text of the given records (lines joined with \n), read again for those lines only."""
    if not wanted:
        return {}
    first_line = records.select((pl.col("lines").cum_sum() - pl.col("lines")).alias("first")).get_column(
        "first"
    )
    spans = {record: (int(first_line[record]), int(records.get_column("lines")[record])) for record in wanted}
    numbers = sorted({start + offset for start, count in spans.values() for offset in range(count)})
    found = (
        _scan_lines(data, line_separator)
        .with_row_index("number")
        .filter(pl.col("number").is_in(pl.Series(numbers, dtype=pl.UInt32).implode()))
        .collect(engine="streaming")
    )
    line_at = dict(zip(found.get_column("number").to_list(), found.get_column("line").to_list(), strict=True))
    return {
        record: "\n".join(line_at[start + offset] for offset in range(count))
        for record, (start, count) in spans.items()
    }


def _pick_line_separator(data: bytes, delimiter: str) -> str:
    for candidate in LINE_SEPARATOR_CANDIDATES:
        if candidate != delimiter and candidate.encode() not in data:
            return candidate
    raise _NeedsSlowPath("no free byte to read whole lines")


def _parse_record(text: str, delimiter: str) -> list[str]:
    records = _records(text, delimiter)
    return records[0] if records else []


@dataclass
class _Parsed:
    """Data rows (positional columns + SOURCE_ROW), the header, and ragged rows found."""

    rows: pl.DataFrame
    header: list[str]
    header_row: int
    ragged: list[tuple[int, int, str]]
    blank_elsewhere: int = 0
    has_nul: bool = False  # the file holds a NUL byte somewhere (a stray one in a text export)

    def take_rows(self) -> pl.DataFrame:
        """Hand the rows over, keeping no reference, so they can be freed once finished."""
        rows, self.rows = self.rows, pl.DataFrame()
        return rows


def _header_index(values: pl.DataFrame) -> int:
    """Index of the first record with any non-blank value (leading blank lines are skipped)."""
    for start in range(0, values.height, 1024):
        window = values.slice(start, 1024)
        non_blank = window.select(
            pl.any_horizontal([pl.col(name).str.contains(r"\S") for name in window.columns])
        ).to_series()
        found = non_blank.arg_true()
        if found.len():
            return start + int(found[0])
    return -1


def _separated_lines(data: bytes, delimiter: str) -> tuple[str, pl.DataFrame]:
    """A line separator for `_scan_lines` and `_measure_lines`' output with it."""
    line_separator = _pick_line_separator(data, delimiter)
    return line_separator, _measure_lines(data, line_separator, QUOTE.encode() in data)


def _every_record_full(
    values: pl.DataFrame, delimiters_in_file: int, delimiter: str, *, has_quotes: bool
) -> bool:
    """True when every record has as many values as the header, told without the line pass.

    Every delimiter byte of the file either separates two values or sits inside a (quoted)
    value, where polars keeps it. A full record has width-1 separators, a short one (polars pads
    it) fewer, and a longer one was refused by the strict read. So the separators add up to
    records x (width-1) exactly when no record is short; any other count sends the file to the
    line pass, which finds the short records one by one.
    """
    inside_values = (
        values.select(
            pl.sum_horizontal(
                pl.col(name).str.count_matches(delimiter, literal=True).sum() for name in values.columns
            )
        ).item()
        if has_quotes  # only a quoted value can hold the delimiter
        else 0
    )
    return delimiters_in_file - int(inside_values or 0) == values.height * (values.width - 1)


@dataclass(frozen=True)
class _ByteFacts:
    """What the parse needs to know of the file's bytes besides polars' values."""

    delimiters: int  # delimiter bytes in the file, separators and those inside values
    has_quotes: bool
    has_carriage_return: bool
    has_nul: bool

    @classmethod
    def of(cls, data: bytes | bytearray, delimiter: str) -> _ByteFacts:
        return cls(
            data.count(delimiter.encode()), QUOTE.encode() in data, b"\r" in data, NUL.encode() in data
        )

    def __add__(self, other: _ByteFacts) -> _ByteFacts:
        return _ByteFacts(
            self.delimiters + other.delimiters,
            self.has_quotes or other.has_quotes,
            self.has_carriage_return or other.has_carriage_return,
            self.has_nul or other.has_nul,
        )


PIECE_BYTES = 1 << 23
"""A file polars reads from disk is searched in pieces of this size, through one buffer."""


def _facts_of_file(path: Path, delimiter: str) -> _ByteFacts:
    """The byte facts of a file, read a piece at a time: the file is never held whole. Each fact
    is of single bytes (the delimiter is one byte here), so none is split between two pieces."""
    facts = _ByteFacts(0, False, False, False)
    buffer = bytearray(PIECE_BYTES)
    with path.open("rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            facts += _ByteFacts.of(buffer if size == len(buffer) else buffer[:size], delimiter)
    return facts


def _fast_parse(
    source: str | bytes,
    delimiter: str,
    header: list[str],
    facts: Callable[[], _ByteFacts],
    file_bytes: Callable[[], bytes],
) -> _Parsed:
    """polars' parse of `source` (bytes, or a path), checked against `facts()` of the file's bytes;
    `file_bytes()` is only called for the line pass, when a record may not be full."""
    width = len(header)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            values_job = pool.submit(_read_values_strictly_first, source, delimiter, width)
            found_in_bytes = facts()  # here while polars parses: it does not need the GIL
            values, may_be_cut = values_job.result()
    except pl.exceptions.PolarsError as error:
        if "utf-8" in str(error).lower() or "utf8" in str(error).lower():
            raise _NotUtf8 from None
        raise _NeedsSlowPath(str(error)) from None
    has_quotes, has_nul = found_in_bytes.has_quotes, found_in_bytes.has_nul
    header_index = _header_index(values)
    if header_index < 0:
        raise UserError("the file has no header row", "the first row must name the columns")
    if not may_be_cut and _every_record_full(
        values, found_in_bytes.delimiters, delimiter, has_quotes=has_quotes
    ):
        return _Parsed(
            rows=_data_rows(values, header_index),
            header=header,
            header_row=header_index + 1,
            ragged=[],
            has_nul=has_nul,
        )
    data = file_bytes()
    line_separator, measured = _separated_lines(data, delimiter)
    records = _records_of_lines(measured, has_quotes)
    if records.height != values.height:
        raise _NeedsSlowPath("record counts disagree")

    found = _suspect_records(
        values, records, may_be_cut=may_be_cut, has_carriage_return=found_in_bytes.has_carriage_return
    )
    suspects = [record for record in found.to_list() if record >= header_index]
    texts = _record_texts(data, line_separator, records, suspects)
    ragged: list[tuple[int, int, str]] = []
    excluded: list[int] = []
    blank_records = 0
    for record in suspects:
        fields = _parse_record(texts[record], delimiter)
        if record == header_index:
            if len(fields) != width:
                raise _NeedsSlowPath("header width disagrees")
            continue
        if len(fields) == width:
            continue  # only the quoting or line ends made the length differ
        excluded.append(record)
        if any(field.strip() for field in fields):
            ragged.append((record + 1, len(fields), texts[record]))
        else:
            blank_records += 1
    rows = _data_rows(values, header_index)
    if excluded:
        rows = rows.filter(~(pl.col(SOURCE_ROW) - 1).is_in(pl.Series(excluded, dtype=pl.Int64).implode()))
    return _Parsed(
        rows=rows,
        header=header,
        header_row=header_index + 1,
        ragged=ragged,
        blank_elsewhere=blank_records,
        has_nul=has_nul,
    )


def _data_rows(values: pl.DataFrame, header_index: int) -> pl.DataFrame:
    """The records after the header, each with its record number (the spreadsheet row) as SOURCE_ROW."""
    return (
        values.with_row_index(SOURCE_ROW, offset=1)
        .with_columns(pl.col(SOURCE_ROW).cast(pl.Int64))
        .slice(header_index + 1)
    )


def _slow_parse(data: bytes, start: int, delimiter: str) -> _Parsed:
    """Python's csv module over the whole file's text (from `start`): lenient with quotes polars
    rejects."""
    try:
        text = str(memoryview(data)[start:], "utf-8")
    except UnicodeDecodeError:
        raise _NotUtf8 from None
    try:
        records = _records(text, delimiter)
    except csv.Error as error:
        raise UserError(
            f"cannot parse the file as delimited text: {error}",
            "check the quoting, or save the file again from the spreadsheet program as CSV",
        ) from None
    header_index = next((i for i, record in enumerate(records) if any(f.strip() for f in record)), -1)
    if header_index < 0:
        raise UserError("the file has no header row", "the first row must name the columns")
    header = records[header_index]
    width = len(header)
    columns: list[list[str]] = [[] for _ in range(width)]
    row_numbers: list[int] = []
    ragged: list[tuple[int, int, str]] = []
    blank_elsewhere = 0
    writer_buffer = io.StringIO()
    writer = csv.writer(writer_buffer, delimiter=delimiter, lineterminator="\n")
    for index in range(header_index + 1, len(records)):
        record = records[index]
        if not any(field.strip() for field in record):
            if len(record) == width:
                row_numbers.append(index + 1)
                for position in range(width):
                    columns[position].append("")
            else:
                blank_elsewhere += 1
            continue
        if len(record) != width:
            writer_buffer.seek(0)
            writer_buffer.truncate()
            writer.writerow(record)
            ragged.append((index + 1, len(record), writer_buffer.getvalue().rstrip("\n")))
            continue
        row_numbers.append(index + 1)
        for position, field in enumerate(record):
            columns[position].append(field)
    names = positional_names(width)
    rows = pl.DataFrame(
        {SOURCE_ROW: row_numbers, **dict(zip(names, columns, strict=True))},
        schema={SOURCE_ROW: pl.Int64, **{name: pl.String for name in names}},
    )
    return _Parsed(
        rows=rows.select([*names, SOURCE_ROW]),
        header=header,
        header_row=header_index + 1,
        ragged=ragged,
        blank_elsewhere=blank_elsewhere,
        has_nul=NUL in text,
    )


# ---- entry point ---------------------------------------------------------------------------------


def read_file_bytes(path: Path, size: int = -1) -> bytes:
    """The file's bytes (the first `size` when given), or a UserError a person can act on."""
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as error:
        raise UserError(f"{path} cannot be read: {error.strerror}", "check the file's permissions") from None


def read_csv(path: str, *, encoding: str | None = None, delimiter: str | None = None) -> Extracted:
    """Read the delimited text file at `path` into an Extracted.

    encoding: a Python codec name (utf-8, cp1252, iso-8859-7, utf-16…) that replaces detection;
    an unknown name is a UserError. delimiter: one character or a name (comma, semicolon, tab,
    pipe) that replaces sniffing. A UTF-8 file is parsed from disk (`_parsed_on_disk`); any other
    file's bytes are dropped before the frame is finished, so a large file is not held twice (as
    bytes and as a frame) at the peak.
    """
    source_file = Path(path).name
    on_disk = _parsed_on_disk(Path(path), encoding, delimiter)
    if on_disk is not None:
        return _finish_parsed(path, source_file, *on_disk)
    parsed, used_encoding, chosen = _parse_file(source_file, read_file_bytes(Path(path)), encoding, delimiter)
    return _finish_parsed(path, source_file, parsed, used_encoding, chosen)


def _parsed_on_disk(
    path: Path, encoding: str | None, delimiter: str | None
) -> tuple[_Parsed, str, str] | None:
    """The common case without holding the file in memory: a UTF-8 file with \\n line ends,
    parsed by polars from disk while its bytes are searched a piece at a time beside it.

    Gives (parsed, encoding, delimiter) as `_parse_file` would, or None when the file needs its
    bytes in memory first: another encoding, no \\n in its start (classic Mac line ends), a blank
    start, a delimiter of several bytes, or not a regular file (a pipe cannot be read twice); and
    when polars cannot parse the file from disk. A file whose rest turns out not to be UTF-8 is
    read as cp1252, as `_parse_file` does.
    """
    head = read_file_bytes(path, SAMPLE_BYTES + len(codecs.BOM_UTF8) + 1)
    used_encoding = _utf8_as_it_is(head, encoding)
    start = len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0
    if used_encoding is None or b"\n" not in head[start:] or _is_blank(head, start) or not path.is_file():
        return None
    dialect = _dialect(head, start, delimiter)  # as of the whole file: the head runs past the sample
    if dialect is None or len(dialect[0].encode()) != 1:
        return None
    chosen, header = dialect
    try:
        parsed = _fast_parse(
            str(path.absolute()),
            chosen,
            header,
            lambda: _facts_of_file(path, chosen),
            lambda: read_file_bytes(path),
        )
    except (_NeedsSlowPath, OSError):  # rare: the bytes in memory decide, as for any file
        return None
    except _NotUtf8:
        return _not_utf8_after_all(path.name, read_file_bytes(path), encoding, delimiter)
    return parsed, used_encoding, chosen


def _parse_file(
    source_file: str, data: bytes, encoding: str | None, delimiter: str | None
) -> tuple[_Parsed, str, str]:
    """Parse the bytes (detecting the encoding unless given): rows, encoding used, delimiter.

    Only a file read as UTF-8 may turn out not to be and be read again from its bytes; a file
    decoded from another encoding drops its bytes first, so the parse holds the text once.
    """
    decoded = decode(data, encoding, source_file)
    if decoded.encoding not in ("utf-8", "utf-8-sig"):
        del data
        return _parse_decoded(source_file, decoded, delimiter)
    try:
        return _parse_decoded(source_file, decoded, delimiter)
    except _NotUtf8:
        del decoded
        return _not_utf8_after_all(source_file, data, encoding, delimiter)


def _not_utf8_after_all(
    source_file: str, data: bytes, encoding: str | None, delimiter: str | None
) -> tuple[_Parsed, str, str]:
    """A file whose start read as UTF-8 and whose rest does not: cp1252, unless UTF-8 was asked for."""
    if encoding is not None:
        raise UserError(
            f"{source_file} is not valid UTF-8",
            "pass the file's real encoding, e.g. --encoding cp1252",
        )
    return _parse_decoded(source_file, _as_cp1252(data, source_file), delimiter)


def _parse_decoded(source_file: str, decoded: Decoded, delimiter: str | None) -> tuple[_Parsed, str, str]:
    data, start = decoded.data, decoded.start
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")  # classic Mac line ends
    if _is_blank(data, start):
        raise UserError(f"{source_file} is empty", "export the data again; the file has no rows")
    dialect = _dialect(data, start, delimiter)
    if dialect is None:
        raise UserError(f"{source_file} has no header row", "the first non-blank row must name the columns")
    chosen, header = dialect
    try:
        parsed = _fast_parse(data, chosen, header, lambda: _ByteFacts.of(data, chosen), lambda: data)
    except _NeedsSlowPath:
        parsed = _slow_parse(data, start, chosen)
    return parsed, decoded.encoding, chosen


def _dialect(data: bytes, start: int, delimiter: str | None) -> tuple[str, list[str]] | None:
    """The delimiter (given, or sniffed from the sample) and the header as the sample's first
    non-blank record; None when the sample holds no such record. `data` may be only the file's
    start, if it runs past the sample."""
    sample = _sample_text(data, start)
    chosen = parse_delimiter(delimiter) if delimiter is not None else detect_delimiter(sample)
    sample_records = _non_blank(_records(sample, chosen)) if sample.strip() else []
    return (chosen, sample_records[0]) if sample_records else None


def _is_blank(data: bytes, start: int) -> bool:
    """True when the bytes from `start` are only whitespace (or none), looked at a slice at a time
    so that a file is not copied to tell."""
    return all(
        data[offset : offset + SAMPLE_BYTES].isspace() for offset in range(start, len(data), SAMPLE_BYTES)
    )


def _finish_parsed(path: str, source_file: str, parsed: _Parsed, encoding: str, chosen: str) -> Extracted:
    finished = finish(
        parsed.take_rows(),
        parsed.header,
        source_file=source_file,
        place=f"row {parsed.header_row}",
        blank_elsewhere=parsed.blank_elsewhere,
    )
    notes = list(finished.notes)
    if parsed.ragged:
        notes.append(
            f"{len(parsed.ragged):,} row{'s' if len(parsed.ragged) != 1 else ''} with the wrong number "
            f"of values reported as problems ({RAGGED_ROW.code})"
        )
    info = SourceInfo(
        path=path,
        format="csv",
        rows=finished.frame.height,
        columns=finished.columns,
        encoding=encoding,
        delimiter=chosen,
        notes=tuple(notes),
    )
    problems = ragged_problems(source_file, parsed.ragged, len(parsed.header))
    frame = finished.frame
    if parsed.has_nul:
        frame, nul_problems = _nul_cells(frame, finished.columns, source_file)
        if nul_problems.height:
            problems = pl.concat([problems, nul_problems])
            info = dataclasses.replace(
                info,
                notes=(
                    *info.notes,
                    f"{nul_problems.height:,} cell{'s' if nul_problems.height != 1 else ''} with a NUL "
                    f"byte reported as problems ({NUL_BYTE})",
                ),
            )
    return Extracted(frame=frame, info=info, problems=problems)


def _nul_cells(
    frame: pl.DataFrame, columns: tuple[str, ...], source_file: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Report each cell holding a NUL byte, and show the byte as ␀ so no report or request
    carries it. A stray NUL is a damaged export, not data: the row is refused, never guessed at."""
    found = []
    for position, name in enumerate(columns, start=1):
        hits = frame.filter(pl.col(name).str.contains(NUL, literal=True)).select(
            pl.col(SOURCE_FILE),
            pl.col(SOURCE_ROW),
            pl.lit(name).alias("field"),
            pl.col(name).str.replace_all(NUL, NUL_SHOWN, literal=True).alias("value"),
            pl.lit(NUL_BYTE).alias("code"),
            problem(NUL_BYTE)
            .expression(
                row=pl.col(SOURCE_ROW).cast(pl.String), column=name, position=str(position), shown=NUL_SHOWN
            )
            .alias("message"),
        )
        if hits.height:
            found.append(hits)
    if not found:
        return frame, pl.DataFrame(schema=REJECT_SCHEMA)
    frame = frame.with_columns(pl.col(name).str.replace_all(NUL, NUL_SHOWN, literal=True) for name in columns)
    problems = pl.concat(found).with_columns(pl.col("value").map_elements(truncate_value, pl.String))
    return frame, problems.cast(REJECT_SCHEMA)  # type: ignore[arg-type]
