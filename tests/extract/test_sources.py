"""Dispatch on content, refusals with one line and a hint, and the public API."""

from __future__ import annotations

import inspect
import zipfile
from contextlib import nullcontext
from pathlib import Path

import openpyxl
import pytest

import pipeline.extract as extract
from pipeline.extract import read_source, read_sources
from pipeline.model import SOURCE_FILE, SOURCE_ROW, Extracted, UserError


def refusal(path: Path) -> UserError:
    with pytest.raises(UserError) as caught:
        read_source(path)
    error = caught.value
    assert "\n" not in error.message and error.hint
    return error


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert "no such file" in refusal(tmp_path / "nope.csv").message
    assert "is a folder" in refusal(tmp_path).message


def test_old_xls_pdf_zip_ods_and_binary_are_refused(tmp_path: Path) -> None:
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
    error = refusal(xls)
    assert "old Excel .xls" in error.message and ".xlsx" in (error.hint or "")

    pdf = tmp_path / "leads.csv"
    pdf.write_bytes(b"%PDF-1.7\n%\xe2\xe3\n")
    assert "is a PDF" in refusal(pdf).message

    archive = tmp_path / "bundle.xlsx"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("leads.csv", "a,b\n")
    assert "zip archive, not a spreadsheet" in refusal(archive).message

    ods = tmp_path / "sheet.ods"
    with zipfile.ZipFile(ods, "w") as bundle:
        bundle.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        bundle.writestr("content.xml", "<x/>")
    assert "OpenDocument" in refusal(ods).message

    image = tmp_path / "photo.csv"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "not a text or spreadsheet file" in refusal(image).message

    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    assert "empty" in refusal(empty).message


def _one_name_workbook(path: Path) -> Path:
    """A workbook as openpyxl saves it: a header "Name" and one row, "Ann"."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name"])
    sheet.append(["Ann"])
    workbook.save(path)
    return path


def test_format_follows_content_not_suffix(tmp_path: Path) -> None:
    disguised = _one_name_workbook(tmp_path / "export.csv")
    assert read_source(disguised).info.format == "xlsx"

    text = tmp_path / "export.xlsx"
    text.write_text("Name\nBob\n")
    assert read_source(text).info.format == "csv"


def test_damaged_workbook_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("xl/workbook.xml", "<not really a workbook")
    assert "could not be read as an Excel workbook" in refusal(path).message


def _damaged_member(source: Path, target: Path, member: str, how: str) -> Path:
    """`source` with the stored bytes of one member spoiled, as a bad disk or a cut download
    leaves them: "deflate" (a stream zlib refuses), "crc" (bytes that no longer match their CRC) or
    "method" (a compression method zipfile does not know)."""
    data = bytearray(source.read_bytes())
    with zipfile.ZipFile(source) as bundle:
        info = bundle.getinfo(member)
    name_length = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_length = int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_length + extra_length
    if how == "deflate":
        assert info.compress_type == zipfile.ZIP_DEFLATED
        data[start] = 0xFF  # a block of the reserved type 3: "invalid block type"
    elif how == "method":  # the central directory names a compression method zipfile lacks
        entry = data.index(b"PK\x01\x02")  # the central directory's entries follow each other
        while data[entry + 46 : entry + 46 + len(member)] != member.encode():
            lengths = [int.from_bytes(data[entry + at : entry + at + 2], "little") for at in (28, 30, 32)]
            entry += 46 + sum(lengths)
        data[entry + 10 : entry + 12] = (99).to_bytes(2, "little")
    else:
        assert info.compress_type == zipfile.ZIP_STORED
        cell = data.index(b"Ann", start, start + info.compress_size)
        data[cell : cell + 3] = b"Bob"  # same length, other bytes: only the CRC tells
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize(
    ("member", "how", "said"),
    [
        ("_rels/.rels", "deflate", "is a damaged zip file, not a spreadsheet"),
        ("xl/worksheets/sheet1.xml", "deflate", "could not be read"),
        ("xl/worksheets/sheet1.xml", "crc", "sheet 'Sheet' of damaged.xlsx could not be read (BadZipFile)"),
        ("_rels/.rels", "method", "is a damaged zip file, not a spreadsheet"),
    ],
)
def test_a_workbook_with_a_damaged_member_is_refused_in_one_line(
    tmp_path: Path, member: str, how: str, said: str
) -> None:
    # Found by mutating sample workbooks: zlib.error and a bad CRC escaped as tracebacks (calamine
    # itself reads past a bad CRC; the reader's own scan of the sheet does not).
    saved = _one_name_workbook(tmp_path / "saved.xlsx")
    compression = zipfile.ZIP_STORED if how == "crc" else zipfile.ZIP_DEFLATED
    rezipped = tmp_path / "rezipped.xlsx"
    with zipfile.ZipFile(saved) as original, zipfile.ZipFile(rezipped, "w", compression) as copy:
        for name in original.namelist():
            copy.writestr(name, original.read(name))
    assert read_source(rezipped).frame.get_column("Name").to_list() == ["Ann"]
    error = refusal(_damaged_member(rezipped, tmp_path / "damaged.xlsx", member, how))
    assert said in error.message
    assert "save it" in (error.hint or "")


@pytest.mark.parametrize("second_name", ["xl/worksheets/sheet1.xml", "xl/worksheets/Sheet1.xml"])
def test_a_package_with_one_part_twice_is_refused_not_read_either_way(
    tmp_path: Path, second_name: str
) -> None:
    # Readers disagree on which of the two they read (calamine took the later, empty one here and
    # called the sheet empty); Excel's package rules make part names unique, case aside.
    saved = _one_name_workbook(tmp_path / "saved.xlsx")
    path = tmp_path / "twice.xlsx"
    with zipfile.ZipFile(saved) as original, zipfile.ZipFile(path, "w") as copy:
        for name in original.namelist():
            copy.writestr(name, original.read(name))
        with (
            pytest.warns(UserWarning, match="Duplicate name")
            if second_name == "xl/worksheets/sheet1.xml"
            else nullcontext()
        ):
            copy.writestr(second_name, original.read("xl/worksheets/sheet1.xml").replace(b"<v>0</v>", b""))
    error = refusal(path)
    assert (
        error.message
        == "twice.xlsx is a damaged workbook: it holds two parts named 'xl/worksheets/sheet1.xml'"
    )


def test_read_sources_keeps_order_and_traces_rows_to_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("email\nx@a.org\n")
    second.write_text("email;name\ny@b.org;Bo\n")
    results = read_sources([first, second])
    assert [result.info.path for result in results] == [str(first), str(second)]
    assert results[1].info.delimiter == ";"
    assert results[1].frame.select(SOURCE_FILE, SOURCE_ROW).row(0) == ("b.csv", 2)


def test_public_api_is_pinned() -> None:
    assert set(extract.__all__) >= {"read_source", "read_sources"}
    read_source_parameters = inspect.signature(read_source).parameters
    options = ["sheet", "encoding", "delimiter", "header_row"]
    assert list(read_source_parameters) == ["path", *options]
    assert all(read_source_parameters[name].kind is inspect.Parameter.KEYWORD_ONLY for name in options)
    assert list(inspect.signature(read_sources).parameters) == ["paths", *options]
    assert inspect.signature(read_source).return_annotation in (Extracted, "Extracted")


def test_options_that_do_not_apply_are_noted_not_fatal(tmp_path: Path) -> None:
    text = tmp_path / "a.csv"
    text.write_text("Name\nAnn\n")
    assert read_source(text, sheet="Leads").info.notes == ("sheet 'Leads' ignored: not a workbook",)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name"])
    book = tmp_path / "b.xlsx"
    workbook.save(book)
    assert read_source(book, encoding="cp1252").info.notes == ("encoding ignored: a workbook has none",)
