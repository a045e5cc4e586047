"""A small SpreadsheetML (.xlsx) writer: sheets of text and number cells in four fixed looks,
with column widths, frozen panes, filters, links within the workbook and comments.

annotated.xlsx holds some 400,000 cells; a general writer (openpyxl) builds an object per cell
and writes about 40,000 a second. Here a sheet's rows become XML through polars string
expressions, a column at a time, so the cost is about that of the bytes. Only what
annotated.xlsx needs is written: inline strings (no shared-strings part), numbers, the looks of
STYLES_XML. Texts must already be what a cell may hold (no control characters but tab and line
ends, at most 32,767 characters): callers decide how to make them so.
"""

from __future__ import annotations

import re
import struct
import time
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import polars as pl

DEFAULT, BOLD, PROBLEM, LINK = 0, 1, 2, 3
"""Cell looks, indexes into STYLES_XML's cellXfs: plain; bold (headers, a rejected row's number);
a problem (light red fill, dashed dark-red border, bold dark-red text); a link."""

_DARK_RED = "009C0006"
_FONT = '<sz val="11"/><name val="Calibri"/><family val="2"/>'
STYLES_XML = (
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<fonts count="4">'
    f"<font>{_FONT}</font>"
    f'<font><b val="1"/>{_FONT}</font>'
    f'<font><color rgb="000563C1"/><u val="single"/>{_FONT}</font>'
    f'<font><b val="1"/><color rgb="{_DARK_RED}"/>{_FONT}</font>'
    "</fonts>"
    '<fills count="3"><fill><patternFill/></fill><fill><patternFill patternType="gray125"/></fill>'
    '<fill><patternFill patternType="solid"><fgColor rgb="00FFC7CE"/></patternFill></fill></fills>'
    '<borders count="2"><border><left/><right/><top/><bottom/><diagonal/></border><border>'
    + "".join(
        f'<{side} style="mediumDashed"><color rgb="{_DARK_RED}"/></{side}>'
        for side in ("left", "right", "top", "bottom")
    )
    + "<diagonal/></border></borders>"
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="0" fontId="3" fillId="2" borderId="1" xfId="0" applyFont="1" applyFill="1" applyBorder="1"/>'
    '<xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)

COMPRESSION_LEVEL = 1
"""zlib's fastest: the parts are repetitive XML, which even level 1 shrinks some sevenfold."""

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_TYPE = "application/vnd.openxmlformats-officedocument."
_ROW = "__row"  # the sheet row number, as text, while a sheet's cells are built


@dataclass(frozen=True)
class Sheet:
    """One worksheet. `rows`: its <row> elements (see row_xml, data_rows); `links`: its cells
    that link within the workbook, columns `cell` and `location` (such as 'Rows'!B2);
    `comments`: (row, column, text), 1-based, in row order."""

    name: str
    rows: Sequence[bytes]  # UTF-8, in one chunk or more
    widths: Sequence[float] = ()
    freeze: str | None = None  # the top-left cell that scrolls, e.g. "B2"
    auto_filter: str | None = None  # e.g. "A1:T100"
    links: pl.DataFrame | None = None
    comments: Sequence[tuple[int, int, str]] = ()


def column_letter(index: int) -> str:
    """Excel's name of the 1-based column `index` (1 -> A, 27 -> AA)."""
    letters = ""
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


# ---- cells ----------------------------------------------------------------------------

_ESCAPE_LOOKALIKE = r"_x[0-9A-Fa-f]{4}_"
_ESCAPE_START = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")


def xstring(text: str) -> str:
    """`text` as a cell or comment text (ECMA-376 ST_Xstring), where `_x0041_` is read as "A":
    every underscore that starts such a sequence, overlapping ones too, is written as `_x005F_`,
    so that the text reads back as it was written."""
    return _ESCAPE_START.sub("_x005F_", text)


def _xstrings(column: pl.Series) -> pl.Series:
    """`xstring` of the (few) cells of a text column that hold an escape lookalike."""
    at = column.str.contains(_ESCAPE_LOOKALIKE).fill_null(False).arg_true()
    escaped = pl.Series([xstring(text) for text in column.gather(at).to_list()], dtype=pl.String)
    return column.clone().scatter(at, escaped)


def row_xml(number: int, values: Sequence[object], style: int = DEFAULT) -> str:
    """One row built cell by cell (a header, a small sheet): texts, numbers, None for no cell."""
    look = f' s="{style}"' if style else ""
    cells = []
    for index, value in enumerate(values, start=1):
        reference = f"{column_letter(index)}{number}"
        if value is None or value == "":
            continue
        if isinstance(value, int | float) and not isinstance(value, bool):
            cells.append(f'<c r="{reference}"{look}><v>{value}</v></c>')
        else:
            text = str(value)
            space = ' xml:space="preserve"' if text.strip() and text != text.strip() else ""
            shown = escape(xstring(text))
            cells.append(f'<c r="{reference}"{look} t="inlineStr"><is><t{space}>{shown}</t></is></c>')
    return f'<row r="{number}">{"".join(cells)}</row>'


def data_rows(cells: pl.DataFrame, looks: Mapping[str, int | pl.Series], first_row: int) -> list[bytes]:
    """The <row> elements of `cells` (a column per sheet column, in order: texts as inline
    strings, numbers as numbers, nulls and empty texts as no value) numbered from `first_row`,
    as UTF-8 in chunks of a few MB.
    `looks`: a column's look, for the whole column or one per row (a styled cell without a
    value is still written, so its look shows); a column not named is plain."""
    if not cells.height:
        return []
    numbers = pl.int_range(first_row, first_row + cells.height, eager=True).cast(pl.String)
    needs = _text_needs(cells)
    cells = cells.with_columns(
        _xstrings(cells.get_column(name)) for name, need in needs.items() if "xstring" in need
    )
    frame = cells.with_columns(numbers.alias(_ROW))
    letters = {name: column_letter(index) for index, name in enumerate(cells.columns, start=1)}

    def xml(name: str, look: int, at: pl.Series | None = None) -> pl.Expr:
        """Column `name` as cells of `look`; only its rows `at` if given."""
        value, row = pl.col(name), pl.col(_ROW)
        if at is not None:
            value, row = value.gather(at), row.gather(at)
        return _cell_xml(value, row, letters[name], needs.get(name), look).alias(f"{name}:{look}")

    whole = {name: look if isinstance(look, int) else DEFAULT for name, look in looks.items()}
    columns = list(frame.select(xml(name, whole.get(name, DEFAULT)) for name in cells.columns).iter_columns())
    styled = [  # the few cells with a look of their own: (column, look, their rows)
        (cells.columns.index(name), code, (look == code).arg_true())
        for name, look in looks.items()
        if isinstance(look, pl.Series)
        for code in look.unique().to_list()
        if code != DEFAULT
    ]
    if styled:
        rebuilt = frame.select(xml(cells.columns[index], code, at).implode() for index, code, at in styled)
        for (index, _, at), cells_there in zip(
            styled, (built[0] for built in rebuilt.iter_columns()), strict=True
        ):
            columns[index] = columns[index].scatter(at, cells_there)
    rows = pl.select(pl.concat_str([pl.lit('<row r="'), numbers, pl.lit('">'), *columns, pl.lit("</row>")]))
    # joined a piece at a time: a few MB to allocate at once rather than the whole sheet (twice)
    joined = rows.to_series()
    ends = (joined.str.len_bytes().cum_sum() // _JOINED).unique_counts().cum_sum().to_list()
    return [
        bytes(joined.slice(start, end - start).str.join("").cast(pl.Binary).item())
        for start, end in zip([0, *ends[:-1]], ends, strict=True)
    ]


_JOINED = 4 << 20  # bytes of rows joined into one chunk of the sheet's XML

_LOOK_ATTRIBUTE = {look: f' s="{look}"' if look else "" for look in (DEFAULT, BOLD, PROBLEM, LINK)}


def _padded(value: pl.Expr) -> pl.Expr:
    """Texts with leading or trailing white space and something else (kept as they are only
    with xml:space="preserve")."""
    kept = value.str.strip_chars().str.len_bytes()
    return (kept != value.str.len_bytes()) & (kept > 0)


_NEEDS = {
    "escape": lambda value: value.str.contains("[&<>]"),
    "padded": _padded,
    "empty": lambda value: value == "",
    "xstring": lambda value: value.str.contains(_ESCAPE_LOOKALIKE),
}


def _text_needs(cells: pl.DataFrame) -> dict[str, set[str]]:
    """For each text column, which of _NEEDS any of its cells has (most columns have none, and
    are written without those steps)."""
    texts = [name for name, dtype in cells.schema.items() if dtype == pl.String]
    found = cells.select(
        test(pl.col(name)).any().alias(f"{need}:{name}") for name in texts for need, test in _NEEDS.items()
    )
    named = found.row(0, named=True) if found.width else {}
    return {name: {need for need in _NEEDS if named[f"{need}:{name}"]} for name in texts}


def _cell_xml(value: pl.Expr, row: pl.Expr, letter: str, needs: set[str] | None, look: int) -> pl.Expr:
    """Cells of column `letter` as XML ('' for a plain cell without a value): `value` and `row`
    (its number, as text) one per cell. `needs`: None for numbers, else what the texts need
    (see _text_needs)."""
    start = [pl.lit(f'<c r="{letter}'), row, pl.lit(f'"{_LOOK_ATTRIBUTE[look]}')]
    without_value = pl.concat_str([*start, pl.lit("/>")]) if look else pl.lit("")
    if needs is None:
        return pl.concat_str([*start, pl.lit("><v>"), value.cast(pl.String), pl.lit("</v></c>")]).fill_null(
            without_value
        )
    if "empty" in needs:
        value = pl.when(value != "").then(value)  # an empty text: no value, as null
    text = value
    if "escape" in needs:
        for special, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            text = text.str.replace_all(special, entity, literal=True)
    space = pl.lit("")
    if "padded" in needs:  # leading or trailing white space kept, as Excel otherwise drops it
        space = pl.when(_padded(value)).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
    inline = [pl.lit(' t="inlineStr"><is><t'), space, pl.lit(">"), text, pl.lit("</t></is></c>")]
    return pl.concat_str([*start, *inline]).fill_null(without_value)


# ---- the package ----------------------------------------------------------------------


class Package:
    """An .xlsx file being written: add its sheets in order (the first one is shown on opening),
    then close. Each large part is compressed on a worker thread (zlib lets go of the GIL) while
    the next sheet is built; the file is written on close."""

    def __init__(self, path: Path, comment_author: str) -> None:
        self.path = path
        self.comment_author = comment_author
        self.sheets: list[Sheet] = []
        self.overrides = {
            "/xl/workbook.xml": _TYPE + "spreadsheetml.sheet.main+xml",
            "/xl/styles.xml": _TYPE + "spreadsheetml.styles+xml",
        }
        self.parts: dict[str, _Deflating] = {}
        self.workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="xlsx")

    def __enter__(self) -> Package:
        return self

    def __exit__(self, failure: type[BaseException] | None, *_: object) -> None:
        try:
            if failure is None:
                self._finish()
        finally:
            self.workers.shutdown(cancel_futures=True)

    def add(self, sheet: Sheet) -> None:
        self.sheets.append(sheet)
        number = len(self.sheets)
        self._part(
            f"xl/worksheets/sheet{number}.xml", _TYPE + "spreadsheetml.worksheet+xml", *_worksheet(sheet)
        )
        if sheet.comments:
            self._part(
                f"xl/comments{number}.xml",
                _TYPE + "spreadsheetml.comments+xml",
                _comments(sheet, self.comment_author).encode(),
            )
            self._part(f"xl/drawings/vmlDrawing{number}.vml", None, _vml_drawing(sheet).encode())
            relationships = [
                ("rId1", "comments", f"../comments{number}.xml"),
                ("rId2", "vmlDrawing", f"../drawings/vmlDrawing{number}.vml"),
            ]
            self._part(f"xl/worksheets/_rels/sheet{number}.xml.rels", None, _relationships(relationships))

    def _part(self, name: str, content_type: str | None, *chunks: bytes | str) -> None:
        if content_type:
            self.overrides["/" + name] = content_type
        data = [chunk.encode() if isinstance(chunk, str) else chunk for chunk in chunks]
        self.parts[name] = _Deflating(data, self.workers)

    def _finish(self) -> None:
        count = len(self.sheets)
        workbook_rels = [(f"rId{n}", "worksheet", f"worksheets/sheet{n}.xml") for n in range(1, count + 1)]
        self._part("xl/workbook.xml", None, _workbook(self.sheets))
        self._part(
            "xl/_rels/workbook.xml.rels",
            None,
            _relationships([*workbook_rels, (f"rId{count + 1}", "styles", "styles.xml")]),
        )
        self._part("xl/styles.xml", None, _XML_DECLARATION + STYLES_XML)
        self._part("_rels/.rels", None, _relationships([("rId1", "officeDocument", "xl/workbook.xml")]))
        content_types = _Deflating([_content_types(self.overrides).encode()], self.workers)
        entries = [("[Content_Types].xml", content_types), *self.parts.items()]
        _write_zip(self.path, entries)


class _Deflating:
    """One part being compressed as a zip entry holds it (raw deflate, with the CRC and size of
    the original), in pieces side by side: a piece but the last ends on a byte boundary
    (Z_SYNC_FLUSH) without closing the stream, so the pieces one after another are one stream,
    as pigz does."""

    PIECE = 4 << 20

    def __init__(self, chunks: Sequence[bytes], workers: ThreadPoolExecutor) -> None:
        self.size = sum(map(len, chunks))
        views = [memoryview(chunk) for chunk in chunks if chunk] or [memoryview(b"")]
        pieces = [
            view[start : start + self.PIECE]
            for view in views
            for start in range(0, max(len(view), 1), self.PIECE)
        ]
        last = len(pieces) - 1
        self.pieces = [workers.submit(_deflate, piece, at == last) for at, piece in enumerate(pieces)]
        self.crc = workers.submit(_crc, views)

    def compressed(self) -> list[bytes]:
        return [piece.result() for piece in self.pieces]


def _crc(views: Sequence[memoryview]) -> int:
    crc = 0
    for view in views:
        crc = zlib.crc32(view, crc)
    return crc


def _deflate(data: memoryview, last: bool) -> bytes:
    compressor = zlib.compressobj(COMPRESSION_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _write_zip(path: Path, entries: Sequence[tuple[str, _Deflating]]) -> None:
    """A zip file of deflated entries (PKWARE's APPNOTE: a local header before each entry, then
    the central directory and its end record); zipfile cannot take data compressed elsewhere.
    Every part is far below zip64's 4 GB."""
    now = time.localtime()
    dos_time = now.tm_hour << 11 | now.tm_min << 5 | now.tm_sec // 2
    dos_date = (now.tm_year - 1980) << 9 | now.tm_mon << 5 | now.tm_mday
    version, flags = 20, 0  # deflate needs zip 2.0; no flags (names are ASCII)
    directory = []
    with path.open("wb") as out:
        for name, entry in entries:
            encoded = name.encode()
            data = entry.compressed()
            # version needed, flags, method, time, date; CRC, compressed and original size
            described = (
                version,
                flags,
                zipfile.ZIP_DEFLATED,
                dos_time,
                dos_date,
                entry.crc.result(),
                sum(map(len, data)),
                entry.size,
            )
            # made by, the above, name length, extra, comment, disk, internal and external attributes, offset
            directory.append(
                struct.pack(
                    "<4s6H3I5H2I", b"PK\x01\x02", version, *described, len(encoded), 0, 0, 0, 0, 0, out.tell()
                )
                + encoded
            )
            out.write(struct.pack("<4s5H3I2H", b"PK\x03\x04", *described, len(encoded), 0) + encoded)
            out.writelines(data)
        start = out.tell()
        out.writelines(directory)
        size = out.tell() - start
        out.write(struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(entries), len(entries), size, start, 0))


def _content_types(overrides: Mapping[str, str]) -> str:
    return (
        _XML_DECLARATION + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Default Extension="vml" ContentType="{_TYPE}vmlDrawing"/>'
        + "".join(f'<Override PartName="{name}" ContentType="{kind}"/>' for name, kind in overrides.items())
        + "</Types>"
    )


def _relationships(targets: Sequence[tuple[str, str, str]]) -> str:
    """A .rels part: (id, relationship type, target) each; the officeDocument type is the one
    package-level relationship, the rest are the workbook's and sheets'."""
    return (
        _XML_DECLARATION
        + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(
            f'<Relationship Id="{key}" Type="{_RELATIONSHIPS}/{kind}" Target="{target}"/>'
            for key, kind, target in targets
        )
        + "</Relationships>"
    )


def _workbook(sheets: Sequence[Sheet]) -> str:
    listed = "".join(
        f'<sheet name={quoteattr(sheet.name)} sheetId="{number}" r:id="rId{number}"/>'
        for number, sheet in enumerate(sheets, start=1)
    )
    filters = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{index}" hidden="1">'
        f"{escape(_quoted(sheet.name))}!{_absolute(sheet.auto_filter)}</definedName>"
        for index, sheet in enumerate(sheets)
        if sheet.auto_filter
    )
    return (
        _XML_DECLARATION + f'<workbook xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">'
        f'<bookViews><workbookView activeTab="0"/></bookViews><sheets>{listed}</sheets>'
        + (f"<definedNames>{filters}</definedNames>" if filters else "")
        + "</workbook>"
    )


def _quoted(sheet_name: str) -> str:
    return "'" + sheet_name.replace("'", "''") + "'"


def _absolute(area: str) -> str:
    """A1:T100 -> $A$1:$T$100."""
    return ":".join(
        "$" + "".join(c for c in cell if c.isalpha()) + "$" + "".join(c for c in cell if c.isdigit())
        for cell in area.split(":")
    )


def _split(cell: str) -> tuple[int, int]:
    """B2 -> (column 2, row 2)."""
    letters = "".join(c for c in cell if c.isalpha())
    column = 0
    for letter in letters:
        column = column * 26 + ord(letter.upper()) - 64
    return column, int(cell[len(letters) :])


def _sheet_view(freeze: str | None) -> str:
    if not freeze or freeze == "A1":
        return '<sheetViews><sheetView workbookViewId="0"/></sheetViews>'
    column, row = _split(freeze)
    pane = "bottomRight" if column > 1 and row > 1 else ("bottomLeft" if row > 1 else "topRight")
    splits = (f' xSplit="{column - 1}"' if column > 1 else "") + (f' ySplit="{row - 1}"' if row > 1 else "")
    return (
        f'<sheetViews><sheetView workbookViewId="0"><pane{splits} topLeftCell="{freeze}" '
        f'activePane="{pane}" state="frozen"/><selection pane="{pane}" activeCell="{freeze}" '
        f'sqref="{freeze}"/></sheetView></sheetViews>'
    )


def _worksheet(sheet: Sheet) -> list[str | bytes]:
    """A worksheet's XML before its rows, the rows, and after, in the order the schema requires."""
    columns = "".join(
        f'<col min="{index}" max="{index}" width="{width:g}" customWidth="1"/>'
        for index, width in enumerate(sheet.widths, start=1)
    )
    links = ""
    if sheet.links is not None and sheet.links.height:
        link = [
            pl.lit('<hyperlink ref="'),
            _attribute("cell"),
            pl.lit('" location="'),
            _attribute("location"),
        ]
        links = str(sheet.links.select(pl.concat_str([*link, pl.lit('"/>')]).str.join("")).item())
    before = (
        f'{_XML_DECLARATION}<worksheet xmlns="{_MAIN}" xmlns:r="{_RELATIONSHIPS}">{_sheet_view(sheet.freeze)}'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{columns}</cols>" if columns else "")
        + "<sheetData>"
    )
    after = "".join(
        [
            "</sheetData>",
            f'<autoFilter ref="{sheet.auto_filter}"/>' if sheet.auto_filter else "",
            f"<hyperlinks>{links}</hyperlinks>" if links else "",
            '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/>',
            '<legacyDrawing r:id="rId2"/>' if sheet.comments else "",
            "</worksheet>",
        ]
    )
    return [before, *sheet.rows, after]


def _attribute(name: str) -> pl.Expr:
    """Text column `name` as an XML attribute value in double quotes."""
    text = pl.col(name)
    for special, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;")):
        text = text.str.replace_all(special, entity, literal=True)
    return text


def _comments(sheet: Sheet, author: str) -> str:
    notes = "".join(
        f'<comment ref="{column_letter(column)}{row}" authorId="0"><text>'
        f'<t xml:space="preserve">{escape(xstring(text))}</t></text></comment>'
        for row, column, text in sheet.comments
    )
    return (
        _XML_DECLARATION + f'<comments xmlns="{_MAIN}"><authors><author>{escape(author)}</author></authors>'
        f"<commentList>{notes}</commentList></comments>"
    )


_SHAPE_IDS_PER_BLOCK = 1024
_FIRST_SHAPE_ID = 1025


def _vml_drawing(sheet: Sheet) -> str:
    """The legacy (VML) drawing Excel needs to show comments: one hidden note box per comment."""
    last_block = (_FIRST_SHAPE_ID + len(sheet.comments) - 1) // _SHAPE_IDS_PER_BLOCK
    blocks = ",".join(str(block) for block in range(1, last_block + 1))
    shapes = "".join(
        f'<v:shape id="_x0000_s{_FIRST_SHAPE_ID + index}" type="#_x0000_t202" '
        'style="position:absolute;margin-left:59.25pt;margin-top:1.5pt;width:320px;height:110px;'
        f'z-index:{index + 1};visibility:hidden" fillcolor="#ffffe1" o:insetmode="auto">'
        '<v:fill color2="#ffffe1"/><v:shadow on="t" color="black" obscured="t"/>'
        '<v:path o:connecttype="none"/><v:textbox style="mso-direction-alt:auto">'
        '<div style="text-align:left"/></v:textbox><x:ClientData ObjectType="Note"><x:MoveWithCells/>'
        f"<x:SizeWithCells/><x:AutoFill>False</x:AutoFill><x:Row>{row - 1}</x:Row>"
        f"<x:Column>{column - 1}</x:Column></x:ClientData></v:shape>"
        for index, (row, column, _text) in enumerate(sheet.comments)
    )
    return (
        '<xml xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" '
        'xmlns:x="urn:schemas-microsoft-com:office:excel">'
        f'<o:shapelayout v:ext="edit"><o:idmap v:ext="edit" data="{blocks}"/></o:shapelayout>'
        '<v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
        '<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
        f"{shapes}</xml>"
    )
