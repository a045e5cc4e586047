"""Dispatch on content, refusals with one line and a hint, and the public API."""

from __future__ import annotations

import inspect
import zipfile
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


def test_format_follows_content_not_suffix(tmp_path: Path) -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Name"])
    sheet.append(["Ann"])
    disguised = tmp_path / "export.csv"
    workbook.save(disguised)
    assert read_source(disguised).info.format == "xlsx"

    text = tmp_path / "export.xlsx"
    text.write_text("Name\nBob\n")
    assert read_source(text).info.format == "csv"


def test_damaged_workbook_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.xlsx"
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("xl/workbook.xml", "<not really a workbook")
    assert "could not be read as an Excel workbook" in refusal(path).message


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
