"""The generator and the committed samples: realistic, deterministic, and defective exactly where
the generator says."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import re
from collections import Counter, defaultdict
from pathlib import Path

import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from bench.generate import (
    DEFECT_KINDS,
    FORMULA_DESCRIPTIONS,
    GENERIC,
    GENERIC_HEADERS,
    INVALID_PHONES,
    LEGALEDGE_HEADERS,
    RAGGED_KEEP_COLUMNS,
    GeneratedExport,
    build_frame,
    write_generic_export,
)
from bench.make_samples import SAMPLE_DIR

CONTACT_COLUMNS = GENERIC_HEADERS[1:11]


def read_generic_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_committed_samples_are_what_the_generator_makes(
    regenerated: tuple[Path, dict[str, GeneratedExport]],
) -> None:
    out, _ = regenerated
    for name in ("leads.csv", "leads.xlsx", "legaledge_matters.csv", "README.md"):
        assert (out / name).read_bytes() == (SAMPLE_DIR / name).read_bytes(), (
            f"run python -m bench.make_samples ({name})"
        )


def test_every_defect_kind_is_in_every_sample(manifest: dict[str, GeneratedExport]) -> None:
    for name, export in manifest.items():
        assert tuple(export.defects) == DEFECT_KINDS, name
    assert all(len(rows) == 2 for rows in manifest["leads.csv"].defects.values())


def test_generic_csv_has_the_exact_headers_and_a_row_per_lead() -> None:
    records = read_generic_csv(SAMPLE_DIR / "leads.csv")
    assert tuple(records[0]) == GENERIC_HEADERS
    assert len(records) == 301  # a quoted line break inside a description is still one record


def test_defects_sit_where_the_manifest_says(manifest: dict[str, GeneratedExport]) -> None:
    records = read_generic_csv(SAMPLE_DIR / "leads.csv")
    column = {name: i for i, name in enumerate(GENERIC_HEADERS)}

    def cell(row: int, name: str) -> str:
        return records[row - 1][column[name]]

    defects = manifest["leads.csv"].defects
    assert {cell(r, "Mobile Phone") for r in defects["invalid_phone"]} <= set(INVALID_PHONES)
    assert {cell(r, "Date of Birth") for r in defects["impossible_date"]} == {"02/30/1999", "2/30/1999"}
    assert all(cell(r, "First Name") == "" for r in defects["missing_first_name"])
    assert all(cell(r, "Case ID") == cell(r - 1, "Case ID") for r in defects["duplicate_case_id"])
    for row in defects["conflicting_contact"]:
        assert cell(row, "Contact ID") == cell(row - 1, "Contact ID")
        assert [cell(row, c) for c in CONTACT_COLUMNS] != [cell(row - 1, c) for c in CONTACT_COLUMNS]
    assert {cell(r, "Description") for r in defects["formula_description"]} <= set(FORMULA_DESCRIPTIONS)
    assert all(len(records[r - 1]) == RAGGED_KEEP_COLUMNS for r in defects["ragged_row"])
    whole = [r for r in range(2, 302) if r not in defects["ragged_row"]]
    assert all(len(records[r - 1]) == len(GENERIC_HEADERS) for r in whole)


def test_clean_export_is_realistic_and_every_phone_is_valid() -> None:
    frame, contacts, defects = build_frame(GENERIC, 4000, seed=11, defect_rate=0.0)
    assert defects == {}
    assert 2500 < contacts < 4000
    phones = frame["Mobile Phone"].drop_nulls().to_list()
    for phone in set(phones):
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, "US")), phone
    shapes = {
        r"^\(\d{3}\) 555-01\d\d$", r"^\d{3}\.555\.01\d\d$", r"^\+1 \d{3} 555 01\d\d$", r"^\d{10}$",
        r"^\d{3}-555-01\d\d$", r"^1-\d{3}-555-01\d\d$",
    }  # fmt: skip
    assert all(any(re.match(shape, p) for p in phones) for shape in shapes)
    names = set(frame["First Name"].str.strip_chars()) | set(frame["Last Name"])
    assert {"José", "Zoë", "O'Brien", "Nguyễn"} <= names
    states = set(frame["State"])
    assert {"NY", "ny", "New York", "NEW YORK", "new york"} <= states
    zips = frame["ZIP"].to_list()
    assert "02108" in zips and any(re.match(r"^\d{5}-\d{4}$", z) for z in zips)
    dobs = frame["Date of Birth"].drop_nulls().to_list()
    assert any(re.match(r"^\d{1,2}/\d{1,2}/\d{4}$", d) for d in dobs)
    assert any(re.match(r"^\d{4}-\d\d-\d\d$", d) for d in dobs)
    descriptions = frame["Description"].drop_nulls().to_list()
    assert any("," in d for d in descriptions) and any('"' in d for d in descriptions)
    assert any("\n" in d for d in descriptions)
    # rows sharing a contact id carry the same contact details
    groups: dict[str, set[tuple[object, ...]]] = defaultdict(set)
    for row in frame.select("Contact ID", *CONTACT_COLUMNS).iter_rows():
        groups[str(row[0])].add(row[1:])
    assert all(len(details) == 1 for details in groups.values())
    assert sum(1 for rows in Counter(frame["Contact ID"]).values() if rows > 1) > 200


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(min_value=20, max_value=3000),
    rate=st.floats(min_value=0.0, max_value=0.1),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_defects_come_at_the_given_rate_apart_and_in_every_kind(rows: int, rate: float, seed: int) -> None:
    frame, _, defects = build_frame(GENERIC, rows, seed=seed, defect_rate=rate, ragged=True)
    assert frame.height == rows
    positions = sorted(r for found in defects.values() for r in found)
    assert len(positions) == round(rows * rate)
    assert all(b - a > 1 for a, b in itertools.pairwise(positions))
    counts = [len(defects.get(kind, ())) for kind in DEFECT_KINDS]
    assert max(counts) - min(counts) <= 1


def test_same_seed_same_file_other_seed_other_file(tmp_path: Path) -> None:
    first = write_generic_export(tmp_path / "a.csv", 500, seed=3)
    again = write_generic_export(tmp_path / "b.csv", 500, seed=3)
    other = write_generic_export(tmp_path / "c.csv", 500, seed=4)
    assert first.path.read_bytes() == again.path.read_bytes() != other.path.read_bytes()
    assert first.defects == again.defects


def test_xlsx_holds_typed_cells_like_a_crm_export(manifest: dict[str, GeneratedExport]) -> None:
    sheet = load_workbook(SAMPLE_DIR / "leads.xlsx").active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert tuple(rows[0]) == GENERIC_HEADERS
    column = {name: i for i, name in enumerate(GENERIC_HEADERS)}
    phones = [r[column["Mobile Phone"]] for r in rows[1:]]
    zips = [r[column["ZIP"]] for r in rows[1:]]
    dobs = [r[column["Date of Birth"]] for r in rows[1:]]
    assert any(isinstance(p, int) for p in phones) and any(isinstance(p, str) for p in phones)
    assert 2108 in zips  # Boston's 02108, stored as a number: the leading zero is gone
    assert any(isinstance(d, dt.datetime) for d in dobs)
    impossible = manifest["leads.xlsx"].defects["impossible_date"]
    assert [rows[r - 1][column["Date of Birth"]] for r in impossible] == ["02/30/1999", "2/30/1999"]
    for row in manifest["leads.xlsx"].defects["ragged_row"]:
        assert all(value is None for value in rows[row - 1][RAGGED_KEEP_COLUMNS:])


def test_legaledge_is_semicolon_cp1252_with_day_first_dates() -> None:
    data = (SAMPLE_DIR / "legaledge_matters.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("cp1252")
    assert text.splitlines()[0] == ";".join(LEGALEDGE_HEADERS)
    assert "\r\n" in text and "’" in text
    frame = pl.read_csv(
        io.BytesIO(text.encode()), separator=";", infer_schema=False, truncate_ragged_lines=True
    )
    days = frame["DOB"].drop_nulls().str.extract(r"^(\d{1,2})/\d{1,2}/\d{4}$").drop_nulls().cast(pl.Int32)
    assert max(days.to_list()) > 12  # day first: 13–31 in the first position
