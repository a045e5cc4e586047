"""The validation report on the committed samples: exact counts, every rejected row once with all its
problems, normalized records, and nothing Excel would run as a formula."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from pathlib import Path

import phonenumbers
import polars as pl
from polars.testing import assert_frame_equal

from bench.generate import GENERIC_HEADERS, GeneratedExport
from bench.make_samples import SAMPLE_DIR
from pipeline.model import SOURCE_FILE, ValidationResult
from pipeline.report.cells import neutralize_cell
from pipeline.report.validation import render_text, summary

US_STATE_CODES = (
    "AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"
)
US_STATES = set(US_STATE_CODES.split(" "))

# The generator's defect kinds → the problem codes the validator reports for them.
CODES_OF_KIND = {
    "invalid_phone": ["invalid-phone"],
    "impossible_date": ["invalid-date"],
    "future_birth_date": ["date-of-birth-in-future"],
    "pre1900_birth_date": ["date-of-birth-too-old"],
    "malformed_email": ["invalid-email"],
    "unknown_state": ["invalid-state"],
    "bad_zip": ["invalid-zip"],
    "missing_first_name": ["missing-required"],
    "missing_last_name": ["missing-required"],
    "unknown_case_type": ["unknown-case-type"],
    "unknown_case_status": ["unknown-case-status"],
    "duplicate_case_id": ["duplicate-case-id"],
    "several_problems": ["invalid-phone", "invalid-email", "missing-required"],
    "ragged_row": ["ragged-row"],
}
NOT_REJECTED = {"conflicting_contact", "formula_description"}


def read_report_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), f"{path.name} must start with a UTF-8 BOM for Excel"
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def expected_rows_by_code(export: GeneratedExport) -> dict[str, int]:
    expected: dict[str, int] = {}
    for kind, rows in export.defects.items():
        for code in CODES_OF_KIND.get(kind, []):
            expected[code] = expected.get(code, 0) + len(rows)
    return expected


def rejected_source_rows(export: GeneratedExport) -> set[int]:
    return {row for kind, rows in export.defects.items() if kind not in NOT_REJECTED for row in rows}


def test_summary_counts_every_problem_exactly(
    csv_result: ValidationResult, manifest: dict[str, GeneratedExport]
) -> None:
    export = manifest["leads.csv"]
    data = summary(csv_result)
    assert data["rows_by_code"] == expected_rows_by_code(export)
    assert data["rows_read"] == 300
    assert data["rows_rejected"] == len(rejected_source_rows(export)) == 28
    assert data["rows_valid"] == 272
    assert data["cases"] == 272
    assert data["clients"] == csv_result.clients.height
    assert sum(data["cases_by_type"].values()) == 272
    assert set(data["cases_by_type"]) <= {"personal_injury", "civil", "mass_tort", "workers_comp", "criminal"}
    assert data["warning_rows_by_code"] == {"conflicting-contact": 2}
    assert data["errors_by_field"]["Mobile Phone"] == 4
    assert data["errors_by_field"]["(whole row)"] == 2  # the two ragged rows
    assert data["problems"] == sum(data["errors_by_code"].values())
    (source,) = data["sources"]
    assert (source["file"], source["format"], source["encoding"], source["delimiter"]) == (
        "leads.csv", "csv", "utf-8", ",",
    )  # fmt: skip
    assert source["detected"].startswith("leads.csv: csv, utf-8, comma-delimited")
    json.dumps(data)  # plain data all the way down


def test_legaledge_counts_every_problem_exactly(
    legaledge_result: ValidationResult, manifest: dict[str, GeneratedExport]
) -> None:
    export = manifest["legaledge_matters.csv"]
    data = summary(legaledge_result)
    assert data["rows_by_code"] == expected_rows_by_code(export)
    assert data["rows_rejected"] == len(rejected_source_rows(export)) == 14
    assert data["sources"][0]["encoding"] == "cp1252" and data["sources"][0]["delimiter"] == ";"


def test_rejects_csv_lists_each_rejected_row_once_with_all_its_problems(
    csv_report: Path, manifest: dict[str, GeneratedExport]
) -> None:
    export = manifest["leads.csv"]
    rejects = read_report_csv(csv_report / "rejects.csv")
    assert list(rejects[0])[: len(GENERIC_HEADERS)] == list(GENERIC_HEADERS)  # as read, first
    assert list(rejects[0])[len(GENERIC_HEADERS) :] == [
        "code", "field", "reason", "kayse_source_file", "kayse_source_row", "raw_line",
    ]  # fmt: skip
    rows = [int(r["kayse_source_row"]) for r in rejects]
    assert len(rows) == len(set(rows)) and rows == sorted(rows)
    assert set(rows) == rejected_source_rows(export)
    by_row = {int(r["kayse_source_row"]): r for r in rejects}
    for row in export.defects["several_problems"]:
        errors = by_row[row]["reason"]
        assert "Mobile Phone '12345'" in errors and "Email 'jose at example.com'" in errors
        assert "Last Name is empty" in errors and errors.count("; ") == 2
        assert set(by_row[row]["code"].split("; ")) == {"invalid-phone", "invalid-email", "missing-required"}
    for row in export.defects["invalid_phone"]:
        assert by_row[row]["Mobile Phone"] in by_row[row]["reason"]  # original value, as read
        assert by_row[row]["field"] == "Mobile Phone" and not by_row[row]["raw_line"]
    for row in export.defects["ragged_row"]:
        assert by_row[row]["code"] == "ragged-row" and by_row[row]["raw_line"]


def test_clients_csv_holds_normalized_values(
    csv_report: Path, manifest: dict[str, GeneratedExport], csv_result: ValidationResult
) -> None:
    clients = read_report_csv(csv_report / "clients.csv")
    assert list(clients[0])[:3] == ["external_source", "external_source_id", "first_name"]
    assert len(clients) == csv_result.clients.height
    assert len({c["external_source_id"] for c in clients}) == len(clients)
    source = pl.read_csv(SAMPLE_DIR / "leads.csv", infer_schema=False, truncate_ragged_lines=True)
    original = {i + 2: row for i, row in enumerate(source.iter_rows(named=True))}
    for client in clients:
        assert client["external_source"] == "import"
        raw = original[int(client["source_row"])]
        if client["mobile"]:
            assert re.fullmatch(r"\+1[2-9]\d{9}", client["mobile"])
            parsed = phonenumbers.parse(raw["Mobile Phone"], "US")
            assert client["mobile"] == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if client["date_of_birth"]:
            born = dt.date.fromisoformat(client["date_of_birth"])
            text = raw["Date of Birth"]
            assert born == (
                dt.date.fromisoformat(text) if "-" in text else dt.datetime.strptime(text, "%m/%d/%Y").date()
            )
        assert client["state"] in US_STATES
        assert re.fullmatch(r"\d{5}(-\d{4})?", client["postal_code"])
        assert client["postal_code"][:5] == raw["ZIP"][:5]
        assert client["first_name"] == client["first_name"].strip()
    boston = [c for c in clients if c["city"] == "Boston"]
    assert boston and all(c["postal_code"].startswith("02108") for c in boston)
    assert {"José", "Zoë"} <= {c["first_name"] for c in clients}


def test_cases_csv_holds_normalized_values_and_neutralized_formulas(
    csv_report: Path, manifest: dict[str, GeneratedExport]
) -> None:
    cases = read_report_csv(csv_report / "cases.csv")
    assert list(cases[0])[:3] == ["external_source", "external_source_id", "client_external_source_id"]
    assert {c["type"] for c in cases} <= {"personal_injury", "civil", "mass_tort", "workers_comp", "criminal"}
    assert {c["status"] for c in cases} == {"active", "open", "pending", "closed"}
    for case in cases:
        incident = case["external_source_data.incident_date"]
        assert incident == "" or dt.date.fromisoformat(incident)
    by_row = {int(c["source_row"]): c for c in cases}
    formulas = manifest["leads.csv"].defects["formula_description"]
    described = [by_row[row]["description"] for row in formulas]
    assert described == ['\'=HYPERLINK("http://example.com/claim?id=4411","Open claim file")', "'=1+2"]


def test_no_report_cell_can_run_as_a_formula(csv_report: Path, legaledge_report: Path) -> None:
    for folder in (csv_report, legaledge_report):
        for name in ("rejects.csv", "clients.csv", "cases.csv", "warnings.csv"):
            with (folder / name).open(encoding="utf-8-sig", newline="") as handle:
                for record in csv.reader(handle):
                    for cell in record:
                        assert neutralize_cell(cell) == cell, f"{folder.name}/{name}: {cell!r}"
    rejects = read_report_csv(csv_report / "rejects.csv")
    assert any(r["Mobile Phone"].startswith("'+1 ") for r in rejects)  # "+1 212 555 0123" as read


def test_warnings_csv_names_the_conflicting_rows(
    csv_report: Path, manifest: dict[str, GeneratedExport]
) -> None:
    warnings = read_report_csv(csv_report / "warnings.csv")
    assert {w["code"] for w in warnings} == {"conflicting-contact"}
    assert {int(w["source_row"]) for w in warnings} == set(
        manifest["leads.csv"].defects["conflicting_contact"]
    )


def test_xlsx_and_csv_samples_give_the_same_valid_records(
    csv_result: ValidationResult, xlsx_result: ValidationResult
) -> None:
    assert_frame_equal(csv_result.clients.drop(SOURCE_FILE), xlsx_result.clients.drop(SOURCE_FILE))
    assert_frame_equal(csv_result.cases.drop(SOURCE_FILE), xlsx_result.cases.drop(SOURCE_FILE))
    assert csv_result.rows_rejected == xlsx_result.rows_rejected


def test_legaledge_records_keep_the_crm_s_characters(legaledge_report: Path) -> None:
    clients = read_report_csv(legaledge_report / "clients.csv")
    names = {c["last_name"] for c in clients}
    assert any("’" in name for name in names)  # O’Brien, D’Angelo: cp1252 0x92 read correctly
    assert "Nguyen" in names
    cases = read_report_csv(legaledge_report / "cases.csv")
    assert all(dt.date.fromisoformat(c["created_date"]) for c in cases if c["created_date"])


def test_text_summary_speaks_plainly_and_points_at_rows(
    csv_result: ValidationResult, manifest: dict[str, GeneratedExport]
) -> None:
    text = render_text(csv_result)
    assert "Read leads.csv: csv, utf-8, comma-delimited" in text
    assert "300 rows read: 272 ready, 28 rejected" in text
    assert "the phone number is not a real phone number" in text
    first_phone_row = min(manifest["leads.csv"].defects["invalid_phone"])
    assert f"e.g. row {first_phone_row}: Mobile Phone" in text
    assert "Traceback" not in text and "None" not in text
