"""Write the committed workbook fixtures of tests/extract (run it again to remake them).

Each one reproduces a layout real workbooks have and calamine alone reads wrong: made with
openpyxl, then edited in the package XML where openpyxl cannot write the layout itself.
Run: .venv/bin/python tests/extract/data/make_fixtures.py
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
from openpyxl.utils.datetime import CALENDAR_MAC_1904

HERE = Path(__file__).parent
# What Mac Excel writes after the workbook's own workbookPr: an extension of the same local name.
X14_EXTENSION = (
    '<extLst><ext uri="{79F54976-1DA5-4618-B147-4CDE4B953A38}" '
    'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
    '<x14:workbookPr defaultImageDpi="220"/></ext></extLst>'
)


def rewrite(path: Path, edit: dict[str, str]) -> None:
    """Replace text in parts of the package: {part: "old=>new"}."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    for part, change in edit.items():
        old, new = change.split("=>")
        text = members[part].decode()
        assert old in text, (part, old)
        members[part] = text.replace(old, new).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def mac_1904_with_x14() -> None:
    workbook = openpyxl.Workbook()
    workbook.epoch = CALENDAR_MAC_1904
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name", "Signed", "Called at", "Time"])
    sheet.append(["Ann", dt.date(2024, 3, 5), dt.datetime(2024, 3, 5, 14, 30), dt.time(9, 30)])
    sheet.append(["Bob", dt.date(1904, 1, 2), dt.datetime(1999, 12, 31, 23, 59, 59), None])
    path = HERE / "mac_1904_x14.xlsx"
    workbook.save(path)
    rewrite(path, {"xl/workbook.xml": f"</workbook>=>{X14_EXTENSION}</workbook>"})


def elapsed_times() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Matter", "Billed", "Started", "Short"])
    sheet.append(
        ["M-1", dt.timedelta(hours=255, minutes=10, seconds=10), dt.date(2024, 3, 5), dt.time(9, 30)]
    )
    sheet.append(["M-2", dt.timedelta(hours=24), dt.date(1900, 1, 10), dt.timedelta(hours=3, minutes=5)])
    sheet.append(["M-3", dt.timedelta(minutes=45), None, None])
    for reference in ("B2", "B3", "B4", "D3"):
        sheet[reference].number_format = "[h]:mm:ss"
    workbook.save(HERE / "elapsed_times.xlsx")


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/{workbook}" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/{sheet}" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    "</Types>"
)
RELATIONSHIPS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="{type}" Target="{target}"/></Relationships>'
)
OFFICE_DOCUMENT = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
WORKSHEET = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Leads" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
SHEET = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    '<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>Phone</t></is></c></row>'
    '<row r="2"><c r="A2" t="inlineStr"><is><t>Ann</t></is></c><c r="B2"><v>2125550123</v></c></row>'
    "</sheetData></worksheet>"
)


def minimal_package(name: str, workbook: str, sheet: str, separator: str = "/") -> None:
    """A package written by hand: the workbook part where `_rels/.rels` says, no styles, no
    shared strings (inline text); `separator` is the one the zip's names use."""
    folder = workbook.rsplit("/", 1)[0]
    workbook_name = workbook.rsplit("/", 1)[1]
    parts = {
        "[Content_Types].xml": CONTENT_TYPES.format(workbook=workbook, sheet=sheet),
        "_rels/.rels": RELATIONSHIPS.format(type=OFFICE_DOCUMENT, target=workbook),
        workbook: WORKBOOK,
        f"{folder}/_rels/{workbook_name}.rels": RELATIONSHIPS.format(
            type=WORKSHEET, target=sheet.removeprefix(folder + "/")
        ),
        sheet: SHEET,
    }
    with zipfile.ZipFile(HERE / name, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, text in parts.items():
            archive.writestr(part.replace("/", separator), text)


def title_block_and_notes() -> None:
    workbook = openpyxl.Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Read me"
    notes["A1"] = "Intake export, March 2024"
    notes["A3"] = "One row per lead on the next sheet."
    notes["C5"] = "Questions: ops@example.org"
    leads = workbook.create_sheet("Leads")
    leads["B1"] = "Smith & Jones LLP: new leads"
    leads["B2"] = "Exported"
    leads["C2"] = dt.date(2024, 3, 5)
    leads.append([])
    leads.append([None, "Name", "Phone", "Signed", "Opt in"])
    leads.append([None, "Ann", 2125550123, dt.date(2024, 3, 1), True])
    leads.append([None, "Bob", 2125550124, dt.date(2024, 3, 2), False])
    workbook.save(HERE / "title_block_and_notes.xlsx")


if __name__ == "__main__":
    mac_1904_with_x14()
    elapsed_times()
    minimal_package("minimal_book_part.xlsx", "xl/book.xml", "xl/sheets/data.xml")
    minimal_package("minimal_backslashes.xlsx", "wb/workbook.xml", "wb/worksheets/sheet1.xml", "\\")
    title_block_and_notes()
