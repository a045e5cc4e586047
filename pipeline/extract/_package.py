"""What calamine does not tell us about an .xlsx package, read from the package's own XML.

Why it exists: calamine reads cell values fast, but some facts it gets wrong or hides:
- the date system (Mac Excel's 1904 epoch is missed when a `x14:workbookPr` extension follows
  the workbook's own `workbookPr`), so dates would come out four years and a day early;
- which cells are elapsed times (`[h]:mm:ss`): calamine gives them as 1900 dates;
- which cells hold Excel errors (`#DIV/0!`): calamine gives them as empty cells;
- where the workbook part is: a package names it through `_rels/.rels`, not always at
  `xl/workbook.xml`, and some writers store zip names with backslashes;
- whether calamine's text of the sheet can be trusted alone (see `SheetScan.unsure`): it
  writes a number, a date and a boolean as text a text cell could also hold, and rounds numbers.
This module reads only the small parts (relationships, workbook, styles) whole; a sheet (and
the shared strings, when the sheet uses them) is scanned in chunks with byte searches only,
never cell by cell, so the scan costs about as much as unzipping the sheet.

It must never interpret cell values beyond those facts: calamine stays the reader of values.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ElementTree
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

DAMAGED_PART_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, ElementTree.ParseError)
"""What reading a damaged package's part raises: a bad CRC or deflate stream, a member cut short,
a version or compression method zipfile does not know (a spoiled header, mostly), broken XML."""
OFFICE_DOCUMENT = "/officedocument"  # relationship types end with .../relationships/officeDocument
WORKSHEET = "/worksheet"
STYLES = "/styles"
CALAMINE_SHARED_STRINGS_NAME = "sharedStrings.xml"  # calamine reads the one beside the workbook part
DEFAULT_WORKBOOK = "xl/workbook.xml"
CALAMINE_WORKBOOK_NAME = "workbook.xml"  # calamine looks for this file name in the folder found
CALAMINE_SHEET_KINDS = ("worksheet", "chartsheet", "dialogsheet")  # any other sheet fails its whole workbook
SHEET_ELEMENT = re.compile(rb"<(?:[\w.-]+:)?sheet\s[^>]*?(?:/>|>\s*</(?:[\w.-]+:)?sheet>)")
SHEET_RELATIONSHIP = re.compile(rb"""[\s:]id\s*=\s*(?:"([^"]*)"|'([^']*)')""")
RELATIONSHIPS_NS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
)
# Built-in number formats that are elapsed times: 46 is [h]:mm:ss.
BUILTIN_ELAPSED_FORMATS = frozenset({46})
ELAPSED_TOKEN = re.compile(r"\[(h+|m+|s+)\]", re.IGNORECASE)
QUOTED_OR_ESCAPED = re.compile(r'"[^"]*"|\\.')
SCAN_CHUNK_BYTES = 1 << 20  # small enough to be searched while still in the cache it was unzipped into
CELL = re.compile(rb"<c\s([^>]*?)(/>|>(.*?)</c>)", re.DOTALL)
ATTRIBUTE = re.compile(rb"""([\w:]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
VALUE = re.compile(rb"<v>([^<]*)</v>")
REFERENCE = re.compile(rb"([A-Z]{1,3})(\d+)")
ERROR_MARKERS = (b't="e"', b"t='e'")
ERROR_MARKERS_TEXT = ('t="e"', "t='e'")
# Built-in number formats calamine reads as dates or times (formats.rs: 14-22, 45-47); any other
# built-in id it reads as a number. Custom formats count as dates here when they hold any letter
# calamine's own test looks for, which errs towards "may be a date" (the safe side).
BUILTIN_DATE_FORMATS = frozenset({*range(14, 23), 45, 46, 47})
DATE_LETTERS = frozenset("dmhysapDMHYSAP/")
# What the scan looks for to tell whether calamine's text of a sheet is enough (SheetScan.unsure):
# one regular expression, run by polars over each chunk, matches each of these (ASCII digits only).
LOOKALIKE = r"(?:true|false|-?[0-9][0-9.]*|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}[.0-9]*)"
NOT_WHOLE = r"<v>(?:-[0-9]{0,20}[^0-9<]|[0-9]{1,20}[^0-9<]|[^0-9<#-]|-?[0-9]{21}|-?<)"  # #… is an error
# Comments, CDATA, entities and Excel's _xHHHH_ escapes (calamine decodes both), odd quoting or
# spacing of attributes, formulas whose results are text.
OPAQUE = r"<!|&#|_x[0-9A-Fa-f]{4}_|='| s =| s= |\ns=|\ts=|t=\"str\""
ERROR_CELL = r"t=\"e\"|t='e'"
SHARED_STRING_CELL = 't="s"'


def _text_checks(item: str) -> str:
    """Text items (`<is>` inline, `<si>` shared) holding a lookalike, or not one plain `<t>` run."""
    closing = f"</{item}>"
    not_closing = "|".join(f"{closing[:index]}[^{closing[index]}]" for index in range(len(closing)))
    return (
        rf"<{item}><t(?:\s[^>]*)?>\s*{LOOKALIKE}\s*</t>{closing}"
        rf"|<{item}>(?:[^<]|<[^t]|<t[^ >])|</t>(?:{not_closing})"
    )


class NotAWorkbook(Exception):
    """The zip holds no workbook part (neither through `_rels/.rels` nor at xl/workbook.xml)."""


class AmbiguousPackage(zipfile.BadZipFile):
    """Two zip members are one part (names differing only in case or slashes, or equal): readers
    pick different ones (calamine the last, Python's zipfile the last, a search the first), so
    the workbook could read otherwise here than in Excel. Such a package is invalid (OPC)."""


def column_letters(index: int) -> str:
    """Excel's letters for a 0-based column index: 0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def column_index(letters: str) -> int:
    """The 0-based column index of Excel's letters: A → 0, AA → 26."""
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def _member_names(archive: zipfile.ZipFile) -> dict[str, str]:
    """Part name (forward slashes, no leading slash, lower case: parts are case-insensitive) →
    the zip member's own name."""
    names: dict[str, str] = {}
    for name in archive.namelist():
        part = name.replace("\\", "/").lstrip("/").lower()
        if part in names and not part.endswith("/"):  # a folder entry may repeat harmlessly
            raise AmbiguousPackage(f"it holds two parts named {part!r}")
        names[part] = name
    return names


def _resolve(source_part: str, target: str) -> str:
    """A relationship target as a part name, relative to the folder of the part it belongs to."""
    target = target.replace("\\", "/")
    if target.startswith("/"):
        joined = target.lstrip("/")
    else:
        joined = posixpath.join(posixpath.dirname(source_part), target)
    return posixpath.normpath(joined).lstrip("/")


def _relationships_part(part: str) -> str:
    folder, name = posixpath.split(part)
    return posixpath.join(folder, "_rels", f"{name}.rels")


@dataclass(frozen=True)
class _Relationship:
    id: str
    type: str
    target: str  # resolved part name


class _Parts:
    """Read parts of an open archive by part name, whatever slashes or case the zip uses."""

    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive
        self.names = _member_names(archive)

    def has(self, part: str) -> bool:
        return part.lower() in self.names

    def member(self, part: str) -> str:
        return self.names[part.lower()]

    def read(self, part: str) -> bytes:
        return self.archive.read(self.member(part))

    def relationships(self, part: str) -> list[_Relationship]:
        """The relationships of `part` ("" for the package's own), empty when it has none."""
        rels = "_rels/.rels" if part == "" else _relationships_part(part)
        if not self.has(rels):
            return []
        root = ElementTree.fromstring(self.read(rels))
        found = []
        for element in root:
            if _local(element.tag) != "Relationship" or element.get("TargetMode") == "External":
                continue
            found.append(
                _Relationship(
                    id=element.get("Id", ""),
                    type=element.get("Type", "").lower(),
                    target=_resolve(part, element.get("Target", "")),
                )
            )
        return found


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def find_workbook_part(archive: zipfile.ZipFile) -> str | None:
    """The workbook part's name: the package's officeDocument relationship, else xl/workbook.xml."""
    parts = _Parts(archive)
    return _workbook_part(parts)


def _workbook_part(parts: _Parts) -> str | None:
    try:
        relationships = parts.relationships("")
    except ElementTree.ParseError:
        relationships = []
    for relationship in relationships:
        if relationship.type.endswith(OFFICE_DOCUMENT) and parts.has(relationship.target):
            return relationship.target
    return DEFAULT_WORKBOOK if parts.has(DEFAULT_WORKBOOK) else None


@dataclass(frozen=True)
class Package:
    """The facts read from a workbook package (see the module docstring)."""

    workbook: str
    date1904: bool
    sheets: dict[str, str]  # sheet name → its part name
    elapsed_styles: frozenset[int]  # cell style indices whose number format is an elapsed time
    calamine_can_open: bool  # calamine finds the workbook only as <folder>/workbook.xml
    date_styles: frozenset[int] = frozenset()  # style indices whose format may be a date or time
    shared_strings: str | None = None  # the shared strings part calamine reads, when there is one
    mentions_1904: bool = False  # any element of the workbook part sets date1904, as calamine may read it
    hidden_sheets: frozenset[str] = frozenset()  # sheets Excel does not show (state hidden, veryHidden)
    not_worksheets: dict[str, str] = field(default_factory=dict)  # name → kind: "chartsheet", …
    left_out_ids: frozenset[str] = frozenset()  # relationship ids of the `left_out` sheets

    @property
    def left_out(self) -> list[tuple[str, str]]:
        """(name, kind) of the sheets calamine cannot open, which fail its whole workbook: not read."""
        return [
            (name, kind) for name, kind in self.not_worksheets.items() if kind not in CALAMINE_SHEET_KINDS
        ]


def _is_elapsed_format(code: str) -> bool:
    return ELAPSED_TOKEN.search(QUOTED_OR_ESCAPED.sub("", code)) is not None


def _may_be_date_format(code: str) -> bool:
    return any(letter in DATE_LETTERS for letter in QUOTED_OR_ESCAPED.sub("", code))


def _style_facts(parts: _Parts, workbook: str) -> tuple[frozenset[int], frozenset[int]]:
    """The cell style indices whose number format is an elapsed time, and those that may be a date."""
    styles = next(
        (r.target for r in parts.relationships(workbook) if r.type.endswith(STYLES) and parts.has(r.target)),
        None,
    )
    if styles is None:
        return frozenset(), frozenset()
    root = ElementTree.fromstring(parts.read(styles))
    elapsed_formats = set(BUILTIN_ELAPSED_FORMATS)
    date_formats = set(BUILTIN_DATE_FORMATS)
    cell_formats: list[ElementTree.Element] = []
    for child in root:
        if _local(child.tag) == "numFmts":
            for number_format in child:
                code, number = number_format.get("formatCode", ""), int(number_format.get("numFmtId", "-1"))
                if _is_elapsed_format(code):
                    elapsed_formats.add(number)
                if _may_be_date_format(code):
                    date_formats.add(number)
        elif _local(child.tag) == "cellXfs":
            cell_formats = [xf for xf in child if _local(xf.tag) == "xf"]
    numbers = [int(xf.get("numFmtId", "0") or 0) for xf in cell_formats]
    return (
        frozenset(index for index, number in enumerate(numbers) if number in elapsed_formats),
        frozenset(index for index, number in enumerate(numbers) if number in date_formats),
    )


def read_package(path: str) -> Package:
    """Read the workbook's facts; raises NotAWorkbook, zipfile.BadZipFile or ParseError."""
    with zipfile.ZipFile(path) as archive:
        parts = _Parts(archive)
        workbook = _workbook_part(parts)
        if workbook is None:
            raise NotAWorkbook(path)
        root = ElementTree.fromstring(parts.read(workbook))
        main = _namespace(root.tag)
        # Only the workbook's own workbookPr (a direct child in its namespace) sets the date system;
        # extension elements of the same local name (x14:workbookPr) say nothing about it.
        properties = root.find(f"{{{main}}}workbookPr" if main else "workbookPr")
        date1904 = properties is not None and properties.get("date1904", "").lower() in ("1", "true")
        relationships = parts.relationships(workbook)
        targets = {r.id: r.target for r in relationships if r.type.endswith(WORKSHEET)}
        kinds = {r.id: r.type.rsplit("/", 1)[-1] for r in relationships}
        sheets: dict[str, str] = {}
        hidden: set[str] = set()
        not_worksheets: dict[str, str] = {}
        left_out_ids: set[str] = set()
        for element in root.iter():
            if _local(element.tag) != "sheet":
                continue
            relationship_id = next(
                (found for ns in RELATIONSHIPS_NS if (found := element.get(f"{{{ns}}}id"))), ""
            )
            name = element.get("name")
            if name is None:
                continue
            if relationship_id in targets:
                sheets[name] = targets[relationship_id]
            if element.get("state") in ("hidden", "veryHidden"):
                hidden.add(name)
            kind = kinds.get(relationship_id, "")
            if relationship_id not in targets:
                not_worksheets[name] = kind
            if kind not in CALAMINE_SHEET_KINDS:  # an Excel 4 macro sheet, or a sheet with no part
                left_out_ids.add(relationship_id)
        elapsed_styles, date_styles = _style_facts(parts, workbook)
        shared_strings = posixpath.join(posixpath.dirname(workbook), CALAMINE_SHARED_STRINGS_NAME)
        return Package(
            workbook=workbook,
            date1904=date1904,
            sheets=sheets,
            elapsed_styles=elapsed_styles,
            calamine_can_open=posixpath.basename(workbook) == CALAMINE_WORKBOOK_NAME and not left_out_ids,
            date_styles=date_styles,
            shared_strings=shared_strings if parts.has(shared_strings) else None,
            mentions_1904=any(
                element.get("date1904", "").lower() in ("1", "true") for element in root.iter()
            ),
            hidden_sheets=frozenset(hidden),
            not_worksheets=not_worksheets,
            left_out_ids=frozenset(left_out_ids),
        )


def copy_for_calamine(path: str, package: Package, destination: Path) -> None:
    """Write the package again in the shape calamine opens: its workbook part (and relationships)
    at `<folder>/workbook.xml`, the one name calamine reads, and without the sheets calamine
    cannot open (`left_out`), which would fail the whole workbook. Same folder, so every relative
    target still resolves; only for packages calamine cannot open as they are."""
    folder = posixpath.dirname(package.workbook)
    alias = posixpath.join(folder, CALAMINE_WORKBOOK_NAME)
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED) as copy:
        parts = _Parts(source)
        for info in source.infolist():
            name = info.filename.replace("\\", "/")
            if name.lower() != alias.lower():  # written below, once
                copy.writestr(name, source.read(info), zipfile.ZIP_DEFLATED)
        copy.writestr(alias, _without_sheets(parts.read(package.workbook), package.left_out_ids))
        relationships = _relationships_part(package.workbook)
        if alias.lower() != package.workbook.lower() and parts.has(relationships):
            copy.writestr(_relationships_part(alias), parts.read(relationships))


def _without_sheets(workbook: bytes, relationship_ids: frozenset[str]) -> bytes:
    """The workbook part's XML without the `<sheet>` elements that name these relationships: a
    byte edit, so that everything else (namespaces, prefixes) stays as the writer wrote it."""

    def kept(element: re.Match[bytes]) -> bytes:
        found = SHEET_RELATIONSHIP.search(element.group(0))
        relationship_id = (found.group(1) or found.group(2) or b"").decode() if found else ""
        return b"" if relationship_id in relationship_ids else element.group(0)

    return SHEET_ELEMENT.sub(kept, workbook) if relationship_ids else workbook


@dataclass
class SheetScan:
    """Cells of one sheet calamine does not describe: errors and elapsed times (0-based column
    index as in the sheet, Excel row number), and whether its text of the sheet is enough.

    `unsure` is None when calamine's text of every cell tells its kind and value: no text cell
    (inline, shared or formula) holds text calamine also writes for a date or a boolean, or a
    number-like text that reads back as another number (`lookalikes` lists the number-like ones
    found, to check), every number is whole (so its text is exact), and no date is so far out
    that calamine writes no text for it. Otherwise it says why, and the typed reads must decide.
    """

    errors: list[tuple[int, int, str]] = field(default_factory=list)
    elapsed: list[tuple[int, int]] = field(default_factory=list)
    unsure: str | None = None
    lookalikes: set[str] = field(default_factory=set)


def _chunks(archive: zipfile.ZipFile, member: str, element: bytes = b"<c ") -> Iterator[bytes]:
    """The part's XML in pieces that each end before `element` starts (a cell of a sheet, an
    item of the shared strings), so that none is cut in two."""
    leftover = b""
    with archive.open(member) as stream:
        while block := stream.read(SCAN_CHUNK_BYTES):
            buffer = leftover + block
            cut = buffer.rfind(element)
            if cut <= 0:
                leftover = buffer
                continue
            yield buffer[:cut]
            leftover = buffer[cut:]
    if leftover:
        yield leftover


def scan_sheet(path: str, package: Package, sheet: str) -> SheetScan:
    """Find the sheet's error cells and elapsed-time cells (only what the byte search hints at),
    and check whether calamine's text of the sheet is enough (`SheetScan.unsure`)."""
    scan = SheetScan()
    part = package.sheets.get(sheet)
    if part is None:
        scan.unsure = "the sheet part was not found"
        return scan
    style_markers = [f's="{index}"'.encode() for index in sorted(package.elapsed_styles)]
    checks = "|".join([_text_checks("is"), NOT_WHOLE, OPAQUE, ERROR_CELL, *_far_dates(package.date_styles)])
    uses_shared_strings = False
    with zipfile.ZipFile(path) as archive:
        parts = _Parts(archive)
        if not parts.has(part):
            scan.unsure = "the sheet part was not found"
            return scan
        for number, chunk in enumerate(_chunks(archive, parts.member(part))):
            if number == 0 and b"<sheetData" not in chunk:
                scan.unsure = scan.unsure or "the sheet's markup is prefixed or has no sheetData"
            wants_elapsed = any(marker in chunk for marker in style_markers)
            if wants_elapsed:
                scan.unsure = scan.unsure or "elapsed times"
            if scan.unsure is None:
                found = _matches(chunk, checks)
                wants_errors = found is None or any(match in ERROR_MARKERS_TEXT for match in found)
                scan.unsure = (
                    "the sheet is not UTF-8" if found is None else _unsure_of(found, scan.lookalikes)
                )
                if package.shared_strings is not None and not uses_shared_strings:
                    uses_shared_strings = SHARED_STRING_CELL.encode() in chunk
            else:
                wants_errors = any(marker in chunk for marker in ERROR_MARKERS)
            if wants_errors or wants_elapsed:
                _scan_cells(chunk, package.elapsed_styles, scan)
        if scan.unsure is None and uses_shared_strings and package.shared_strings is not None:
            shared_checks = "|".join([_text_checks("si"), OPAQUE])
            for chunk in _chunks(archive, parts.member(package.shared_strings), b"<si>"):
                found = _matches(chunk, shared_checks)
                scan.unsure = scan.unsure or (
                    "the shared strings are not UTF-8"
                    if found is None
                    else _unsure_of(found, scan.lookalikes)
                )
    return scan


def _far_dates(date_styles: frozenset[int]) -> list[str]:
    """Cells that may be dates whose value is negative or at least 1,000,000 days (year 4637 on):
    calamine writes no text, or not the usual text, for dates that far out."""
    if not date_styles:
        return []
    styles = "|".join(str(index) for index in sorted(date_styles))
    return [rf' s="0*(?:{styles})"[^>]*>\s*(?:<f[^>]*/>\s*|<f[^>]*>[^<]*</f>\s*)?<v>(?:-|[0-9]{{7}})']


def _matches(chunk: bytes, pattern: str) -> list[str] | None:
    """Every match of `pattern` in the chunk (polars: one pass, no object per cell), or None when
    the chunk is not UTF-8."""
    try:
        text = pl.Series([chunk], dtype=pl.Binary).cast(pl.String)
    except pl.exceptions.InvalidOperationError:
        return None
    found = text.str.extract_all(pattern)[0]
    return [] if found is None else found.to_list()


def _unsure_of(found: list[str], lookalikes: set[str]) -> str | None:
    """Why calamine's text may not be enough, given the checks' matches in a chunk, or None."""
    for match in found:
        if match in ERROR_MARKERS_TEXT:
            continue
        if match.startswith(("<is><t", "<si><t")) and match.endswith(("</t></is>", "</t></si>")):
            text = match[match.index(">", 5) + 1 : -len("</t></is>")].strip()  # as calamine trims
            if text in ("true", "false") or " " in text:
                return "text cells holding what calamine writes for a boolean or a date"
            lookalikes.add(text)
        elif match.startswith("<v>"):
            return "numbers that are not whole, or values that are not numbers"
        elif match.startswith(" s="):
            return "dates far outside Excel's range"
        elif match.startswith(("<is>", "<si>", "</t>")):
            return "text cells the scan cannot read as one plain run"
        else:
            return "markup the scan does not read (comments, entities, odd quoting, text formulas)"
    return None


def _scan_cells(chunk: bytes, elapsed_styles: frozenset[int], scan: SheetScan) -> None:
    for cell in CELL.finditer(chunk):
        attributes = {
            match.group(1): match.group(2) if match.group(2) is not None else match.group(3)
            for match in ATTRIBUTE.finditer(cell.group(1))
        }
        reference = REFERENCE.fullmatch(attributes.get(b"r", b""))
        if reference is None:
            continue  # a cell without its reference cannot be named; calamine still reads it
        column, row = column_index(reference.group(1).decode()), int(reference.group(2))
        body = cell.group(3) or b""
        if attributes.get(b"t") == b"e":
            value = VALUE.search(body)
            scan.errors.append((column, row, value.group(1).decode(errors="replace") if value else "#error"))
        elif (
            attributes.get(b"s", b"").isdigit()
            and int(attributes[b"s"]) in elapsed_styles
            and VALUE.search(body)
        ):
            scan.elapsed.append((column, row))
