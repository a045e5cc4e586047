"""The extract stage: read a source file into text columns and say what was detected.

Why it exists: every later stage wants the same thing from any spreadsheet — every column as text
named as in the file, plus SOURCE_FILE and SOURCE_ROW (the row number a person sees) — and the
report wants to say how the file was read. The format is decided by the file's content, not
only its name. It must never interpret values (that is validate's job) nor print: problems a
person can fix are raised as UserError with a hint.

Public API: `read_source`, `read_sources` and `read_tables` (the named tables of a folder, for a
mapping whose clients and cases come from separate files).
"""

from __future__ import annotations

import dataclasses
import stat
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from pipeline.extract._package import DAMAGED_PART_ERRORS, AmbiguousPackage, find_workbook_part
from pipeline.extract.csv_reader import read_csv, read_file_bytes
from pipeline.extract.xlsx_reader import read_xlsx
from pipeline.model import Extracted, UserError, printable

__all__ = ["read_source", "read_sources", "read_tables", "sniff_format"]

SAVE_AS_HINT = "open it in Excel or LibreOffice and save it as .xlsx or .csv"
HEAD_BYTES = 8192
# Bytes text never holds (tab, line ends, form feed and escape aside).
CONTROL_BYTES = bytes([*range(0, 9), 11, *range(14, 27), *range(28, 32)])
MIN_CONTROL_BYTES = 4
CONTROL_BYTES_PER = 1000  # more control bytes than one in this many: not text
BINARY_SIGNATURES = (
    b"\x89PNG",
    b"\xff\xd8\xff",  # JPEG
    b"GIF8",
    b"\x1f\x8b",  # gzip
    b"\x7fELF",
    b"7z\xbc\xaf",
    b"Rar!",
    b"SQLite format 3\x00",
)


def sniff_format(path: Path, head: bytes) -> Literal["csv", "xlsx"]:
    """Tell an .xlsx (a zip holding a workbook part) from delimited text, refusing anything else.

    The workbook part is the one the package's `_rels/.rels` names (usually xl/workbook.xml);
    zip names written with backslashes count as the same parts.
    """
    name = path.name
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = set(archive.namelist())
                workbook = find_workbook_part(archive)
        except AmbiguousPackage as error:
            raise UserError(f"{name} is a damaged workbook: {error}", SAVE_AS_HINT) from None
        except (*DAMAGED_PART_ERRORS, OSError):
            raise UserError(f"{name} is a damaged zip file, not a spreadsheet", SAVE_AS_HINT) from None
        if workbook is not None:
            return "xlsx"
        if "content.xml" in members and "mimetype" in members:
            raise UserError(f"{name} is an OpenDocument spreadsheet (.ods), which is not read", SAVE_AS_HINT)
        raise UserError(
            f"{name} is a zip archive, not a spreadsheet", "unzip it and pass the .xlsx or .csv inside"
        )
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        raise UserError(
            f"{name} is an old Excel .xls file (or a password-protected workbook), which is not read",
            "open it in Excel and save it as .xlsx (without a password) or .csv",
        )
    if head.startswith(b"%PDF"):
        raise UserError(
            f"{name} is a PDF, not a spreadsheet", "export the data from its source as .xlsx or .csv"
        )
    return "csv"


def _looks_binary(head: bytes) -> bool:
    """Control bytes are rare in text and common in binaries; UTF-16/32 files are recognized by
    their BOM first. A few stray NUL bytes in text happen (a bad export): the CSV reader reads
    such a file and reports the cells, so only a head where control bytes are more than a few,
    or a known binary signature, counts as binary."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\x00\x00\xfe\xff")):
        return False
    if head.startswith(BINARY_SIGNATURES):
        return True
    controls = len(head) - len(head.translate(None, CONTROL_BYTES))
    return controls > max(MIN_CONTROL_BYTES, len(head) // CONTROL_BYTES_PER)


def read_source(
    path: Path | str,
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
) -> Extracted:
    """Read one CSV/TSV or XLSX file into text columns plus source_file and source_row.

    sheet: XLSX sheet name (default: the first visible worksheet); ignored for delimited text.
    header_row: XLSX row number (as Excel shows it) of the header (default: found); ignored for
    delimited text, whose header is its first non-blank line.
    encoding, delimiter: override detection for delimited text; ignored for XLSX.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f"{printable(path)}: no such file", "check the path and the file name")
    if path.is_dir():
        raise UserError(f"{printable(path)} is a folder, not a file", "pass the spreadsheet files inside it")
    if not stat.S_ISREG(path.stat().st_mode):
        # A pipe (/dev/stdin too), a device or a socket would be read forever, or never end.
        raise UserError(
            f"{printable(path)} is not a regular file (a pipe, device or socket)",
            "save the data to a file and pass that file",
        )
    # Only the head here: the CSV reader reads the whole file itself, so that no caller keeps a
    # second reference to its bytes alive while the frame is built.
    head = _read_head(path)
    if not head:
        raise UserError(f"{path.name} is empty (0 bytes)", "export the data again; the file has no rows")
    if sniff_format(path, head) == "xlsx":
        extracted = read_xlsx(str(path), sheet=sheet, header_row=header_row)
        ignored = [
            name for name, value in (("encoding", encoding), ("delimiter", delimiter)) if value is not None
        ]
        return (
            _with_note(extracted, f"{' and '.join(ignored)} ignored: a workbook has none")
            if ignored
            else extracted
        )
    if encoding is None and _looks_binary(head):
        raise UserError(
            f"{path.name} is not a text or spreadsheet file",
            "pass a .csv or .xlsx; if it is UTF-16 text without a BOM, add --encoding utf-16",
        )
    extracted = read_csv(str(path), encoding=encoding, delimiter=delimiter)
    if sheet is not None:
        extracted = _with_note(extracted, f"sheet {sheet!r} ignored: not a workbook")
    if header_row is not None:
        extracted = _with_note(extracted, "header row ignored: a text file's header is its first line")
    return extracted


def _read_head(path: Path) -> bytes:
    return read_file_bytes(path, HEAD_BYTES)


def _with_note(extracted: Extracted, note: str) -> Extracted:
    info = dataclasses.replace(extracted.info, notes=(*extracted.info.notes, note))
    return dataclasses.replace(extracted, info=info)


def read_sources(
    paths: Iterable[Path | str],
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
) -> list[Extracted]:
    """Read several sources with the same options, in order."""
    return [
        read_source(path, sheet=sheet, encoding=encoding, delimiter=delimiter, header_row=header_row)
        for path in paths
    ]


def read_tables(
    paths: Iterable[Path | str],
    tables: Mapping[str, str],
    *,
    sheet: str | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    header_row: int | None = None,
) -> dict[str, Extracted]:
    """Read the named tables (name → file name) from folders and/or files, e.g. a CRM export's folder.

    A folder supplies every table whose file it holds; a file given by itself is the table whose
    file name it has (letter case aside) and wins over a folder's. Every table must be found
    exactly once, and a file that is none of the tables is refused, so a mistyped name never
    silently drops a table.
    """
    by_name = {file_name.lower(): name for name, file_name in tables.items()}
    found: dict[str, Path] = {}
    folders: list[Path] = []
    for given in map(Path, paths):
        if given.is_dir():
            folders.append(given)
            continue
        name = by_name.get(given.name.lower())
        if name is None:
            raise UserError(
                f"{printable(given)} is not one of the tables this mapping reads: "
                + ", ".join(tables.values()),
                "pass the folder that holds them, or rename the file to its table's name",
            )
        if name in found:
            raise UserError(
                f"{printable(tables[name])} was given twice ({printable(found[name])} and {printable(given)})",
                hint="give each table once: the folder, or each file",
            )
        found[name] = given
    for folder in folders:
        present = {entry.name.lower(): entry for entry in folder.iterdir() if entry.is_file()}
        for name, file_name in tables.items():
            if name not in found and file_name.lower() in present:
                found[name] = present[file_name.lower()]
    missing = [file_name for name, file_name in tables.items() if name not in found]
    if missing:
        where = ", ".join(printable(f) for f in folders) if folders else "the files given"
        raise UserError(
            f"{where}: missing {', '.join(missing)} (the mapping reads " + ", ".join(tables.values()) + ")",
            "pass the folder the export wrote, or every table file",
        )
    return {
        name: read_source(
            found[name], sheet=sheet, encoding=encoding, delimiter=delimiter, header_row=header_row
        )
        for name in tables
    }
