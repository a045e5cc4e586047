"""One calamine parse is enough only when the sheet's XML says so: then it reads exactly what the
typed reads would have, and whenever the XML leaves a doubt the typed reads still decide."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract import read_source, xlsx_reader
from pipeline.extract._package import read_package, scan_sheet
from pipeline.model import SOURCE_FILE, UserError

from .test_xlsx import set_cached_values
from .test_xlsx_property import check_cell, workbook_of

# Text a person types that looks like calamine's own rendering of a number, a date or a boolean.
LOOKALIKES = ["12", "-0", "0", "007", "12345678901234567890", "0.5", "true", "FALSE", "2024-03-05 00:00:00"]
whole_cells: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.booleans(),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2199, 12, 31)),
    st.sampled_from(LOOKALIKES),
    st.text(alphabet=st.sampled_from("ab Z09.-:é"), min_size=1).filter(lambda text: text.strip() != ""),
)
any_cells: st.SearchStrategy[Any] = st.one_of(
    whole_cells,
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2199, 12, 31)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
    st.times().map(lambda moment: moment.replace(microsecond=0)),
)


def read_both_ways(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[pl.DataFrame, pl.DataFrame, bool]:
    """The frame read as the reader chooses, the frame read through the typed reads, and whether
    the reader chose one parse."""
    typed_reads: list[bool] = []
    original = xlsx_reader._typed_cells_as_text

    def spy(*args: Any) -> pl.DataFrame:
        typed_reads.append(True)
        return original(*args)

    with monkeypatch.context() as patch:
        patch.setattr(xlsx_reader, "_typed_cells_as_text", spy)
        chosen = read_source(path).frame
    with monkeypatch.context() as patch:
        patch.setattr(xlsx_reader, "_rendered_as_text", lambda *_: None)
        typed = read_source(path).frame
    return chosen, typed, not typed_reads


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.lists(any_cells, min_size=1, max_size=6), min_size=1, max_size=4))
def test_one_parse_reads_what_the_typed_reads_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[Any]]
) -> None:
    path = workbook_of(tmp_path / "cells.xlsx", columns)
    chosen, typed, _ = read_both_ways(path, monkeypatch)
    assert chosen.equals(typed)
    stored = list(openpyxl.load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True))
    for index in range(len(columns)):
        read = chosen.get_column(f"c{index}").to_list()
        for row, cells in enumerate(stored):
            if isinstance(cells[index + 1], dt.time):
                assert read[row] == cells[index + 1].isoformat()
            else:
                check_cell(cells[index + 1], read[row])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.lists(whole_cells, min_size=1, max_size=6), min_size=1, max_size=4))
def test_whole_numbers_dates_and_plain_text_need_one_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[Any]]
) -> None:
    path = workbook_of(tmp_path / "whole.xlsx", columns)
    chosen, typed, one_parse = read_both_ways(path, monkeypatch)
    assert chosen.equals(typed)
    written = {value for column in columns for value in column if isinstance(value, str)}
    # Only text that calamine also writes for a date or a boolean, or that reads back as another
    # number, leaves a doubt the typed reads must settle.
    if written & {"-0", "12345678901234567890", "true", "2024-03-05 00:00:00"}:
        assert not one_parse
    elif all(text in ("12", "0", "0.5") or not re.fullmatch(r"-?[0-9][0-9.]*", text) for text in written):
        assert one_parse


def test_leading_zeros_and_digits_in_text_cells_keep_one_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = workbook_of(tmp_path / "ids.xlsx", [["007", "12", 2125550123, dt.date(2024, 3, 5), True, None]])
    chosen, typed, one_parse = read_both_ways(path, monkeypatch)
    assert one_parse and chosen.equals(typed)
    assert chosen.get_column("c0").to_list() == ["007", "12", "2125550123", "2024-03-05", "TRUE", None]


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (["true", True], "boolean or a date"),
        (["2024-03-05 00:00:00", dt.date(2024, 3, 5)], "boolean or a date"),
        ([0.1, 2], "not whole"),
        ([dt.datetime(2024, 3, 5, 14, 30)], "not whole"),
        ([dt.date(9999, 12, 31), 1], "far outside"),
        (['="x"&"y"'], "text formulas"),
    ],
)
def test_the_scan_says_why_one_parse_is_not_enough(tmp_path: Path, cells: list[Any], reason: str) -> None:
    path = workbook_of(tmp_path / "doubt.xlsx", [cells])
    if reason == "text formulas":
        set_cached_values(path, {"B2": ("str", "xy")})
    package = read_package(str(path))
    scan = scan_sheet(str(path), package, "Sheet")
    assert scan.unsure is not None and reason in scan.unsure


def test_a_far_date_keeps_its_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # calamine writes no ISO text for dates this far out; the typed read still gives their serial.
    path = workbook_of(tmp_path / "far.xlsx", [[dt.date(9999, 12, 31), dt.date(2024, 3, 5)]])
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    assert "<v>2958465</v>" in sheet
    members["xl/worksheets/sheet1.xml"] = sheet.replace("<v>2958465</v>", "<v>3000000</v>").encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    chosen, typed, one_parse = read_both_ways(path, monkeypatch)
    assert not one_parse and chosen.equals(typed)
    assert chosen.get_column("c0").to_list()[1] == "2024-03-05"
    assert chosen.get_column("c0").to_list()[0] is not None


def outcome(path: Path, sheet: str) -> object:
    try:
        extracted = read_source(path, sheet=sheet)
    except UserError as error:
        return error.message
    return extracted.frame, extracted.info


def test_the_fixtures_read_the_same_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    for path in sorted((Path(__file__).parent / "data").glob("*.xlsx")):
        for sheet in read_package(str(path)).sheets:
            chosen = outcome(path, sheet)
            with monkeypatch.context() as patch:
                patch.setattr(xlsx_reader, "_rendered_as_text", lambda *_: None)
                typed = outcome(path, sheet)
            if isinstance(chosen, str):
                assert chosen == typed, path.name
            else:
                assert isinstance(typed, tuple) and chosen[0].equals(typed[0]), path.name
                assert chosen[1] == typed[1], path.name


def members_of(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def to_shared_strings(path: Path) -> Path:
    """The workbook again with its inline strings in a shared strings part, as Excel writes them."""
    members = members_of(path)
    items: list[str] = []

    def shared(match: re.Match[str]) -> str:
        items.append(f"<si>{match.group(2)}</si>")
        return f'<c r="{match.group(1)}" t="s"><v>{len(items) - 1}</v></c>'

    sheet = re.sub(
        r'<c r="([A-Z]+\d+)" t="inlineStr"><is>(.*?)</is></c>',
        shared,
        members["xl/worksheets/sheet1.xml"].decode(),
    )
    members["xl/worksheets/sheet1.xml"] = sheet.encode()
    members["xl/sharedStrings.xml"] = (
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' + "".join(items) + "</sst>"
    ).encode()
    relationship = (
        '<Relationship Id="rIdShared" Target="sharedStrings.xml" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
    )
    rels = members["xl/_rels/workbook.xml.rels"].decode()
    members["xl/_rels/workbook.xml.rels"] = rels.replace(
        "</Relationships>", relationship + "</Relationships>"
    ).encode()
    override = (
        '<Override PartName="/xl/sharedStrings.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    )
    types = members["[Content_Types].xml"].decode()
    members["[Content_Types].xml"] = types.replace("</Types>", override + "</Types>").encode()
    write_members(path, members)
    return path


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=st.lists(st.lists(whole_cells, min_size=1, max_size=6), min_size=1, max_size=4))
def test_shared_strings_are_checked_as_inline_ones_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, columns: list[list[Any]]
) -> None:
    inline = workbook_of(tmp_path / "inline.xlsx", columns)
    inline_frame, _, inline_one_parse = read_both_ways(inline, monkeypatch)
    shared = to_shared_strings(workbook_of(tmp_path / "shared.xlsx", columns))
    assert 't="s"' in members_of(shared)["xl/worksheets/sheet1.xml"].decode()
    chosen, typed, one_parse = read_both_ways(shared, monkeypatch)
    assert chosen.equals(typed) and chosen.drop(SOURCE_FILE).equals(inline_frame.drop(SOURCE_FILE))
    assert one_parse == inline_one_parse


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize(
    "written",
    [
        "<t> true </t>",
        "<t>_x0074_rue</t>",
        "<t>tr&#117;e</t>",
        "<t><![CDATA[true]]></t>",
        "<r><t>tr</t></r><r><t>ue</t></r>",
    ],
)
def test_text_spelled_so_that_calamine_reads_true_stays_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: str, shared: bool
) -> None:
    # calamine trims unpreserved spaces and decodes entities, CDATA, _xHHHH_ escapes and rich runs.
    path = workbook_of(tmp_path / "spelled.xlsx", [["placeholder", True]])
    members = members_of(path)
    sheet = members["xl/worksheets/sheet1.xml"].decode()
    members["xl/worksheets/sheet1.xml"] = sheet.replace("<t>placeholder</t>", written).encode()
    write_members(path, members)
    if shared:
        to_shared_strings(path)
    chosen, typed, one_parse = read_both_ways(path, monkeypatch)
    assert not one_parse and chosen.equals(typed)
    assert chosen.get_column("c0").to_list() == ["true", "TRUE"]


@given(
    cells=st.lists(
        st.one_of(
            st.none(),
            st.text(alphabet=st.sampled_from("0123456789-.: truefalsTRUE\n"), max_size=24),
            st.sampled_from(["true", "false", "-0", "0.5", "1234567890123456", "2024-03-05 10:11:12.5"]),
        ),
        max_size=8,
    )
)
def test_the_first_pass_finds_every_column_the_rewrite_would_touch(cells: list[str | None]) -> None:
    """A column `_rendered_as_text` skips after its one cheap pass holds no cell of any kind it rewrites."""
    frame = pl.DataFrame({"c": cells}, schema={"c": pl.String})
    kinds = frame.select(
        kind.fill_null(False).alias(label) for label, kind in xlsx_reader._rendered_kinds(pl.col("c")).items()
    )
    holds = frame.select(pl.col("c").str.contains(xlsx_reader.RENDERED_ANY).fill_null(False)).to_series()
    assert holds.to_list() == [any(row) for row in kinds.rows()]  # cell by cell, so column by column
