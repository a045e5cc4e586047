"""validate() end to end on small real frames: the row as the unit, contacts, duplicates, contract."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import GENERIC, GENERIC_HEADERS, build_frame
from pipeline.mapping import apply_mapping, load_mapping
from pipeline.model import (
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    Extracted,
    MappingSpec,
    SourceInfo,
    UserError,
    ValidationResult,
)
from pipeline.validate import case_schema, client_contract, client_schema, validate
from pipeline.validate.schema import check_output

COLUMNS = GENERIC_HEADERS
GENERIC_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "generic.yaml"

TODAY = dt.date(2026, 6, 15)

GOOD: dict[str, str] = {
    "Contact ID": "C1", "First Name": "Ana", "Last Name": "López", "Email": "ana@example.com",
    "Mobile Phone": "(212) 555-1234", "Date of Birth": "03/04/1980", "Address 1": "1 Main St", "Address 2": "",
    "City": "Boston", "State": "ma", "ZIP": "2134", "Case ID": "K1", "Case Number": "2024-1",
    "Case Name": "Ana v. Bus Co", "Case Type": "PI", "Case Status": "Open - Active",
    "Incident Date": "2024-01-02T00:00:00", "Description": "Rear-end collision",
}  # fmt: skip


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> MappingSpec:
    path = tmp_path_factory.mktemp("mapping") / "generic.yaml"
    path.write_bytes(GENERIC_MAPPING.read_bytes())
    return load_mapping(path)


def row(**cells: str) -> dict[str, str]:
    return GOOD | {k.replace("_", " "): v for k, v in cells.items()}


def source(
    rows: list[dict[str, str]], file_name: str = "leads.csv", problems: pl.DataFrame | None = None
) -> Extracted:
    frame = pl.DataFrame({c: [r[c] for r in rows] for c in COLUMNS}, schema={c: pl.String for c in COLUMNS})
    frame = frame.with_columns(
        pl.lit(file_name).alias(SOURCE_FILE), pl.Series(SOURCE_ROW, range(2, 2 + len(rows)), dtype=pl.Int64)
    )
    info = SourceInfo(path=file_name, format="csv", rows=len(rows), columns=COLUMNS)
    return Extracted(
        frame=frame,
        info=info,
        problems=problems if problems is not None else pl.DataFrame(schema=REJECT_SCHEMA),
    )


def generated(rows: int, defect_rate: float, seed: int) -> tuple[Extracted, dict[str, tuple[int, ...]]]:
    """The benchmark generator's generic export as the extract stage gives it, and its defects."""
    frame, _, defects = build_frame(GENERIC, rows, seed=seed, defect_rate=defect_rate)
    frame = frame.with_columns(
        pl.lit("export.csv").alias(SOURCE_FILE),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias(SOURCE_ROW),
    )
    info = SourceInfo(path="export.csv", format="csv", rows=frame.height, columns=COLUMNS)
    return Extracted(frame=frame, info=info), defects


def run(spec: MappingSpec, *sources: Extracted) -> ValidationResult:
    return validate(apply_mapping(list(sources), spec), spec, today=TODAY)


def rejects_of(result: ValidationResult) -> list[tuple[int, str, str]]:
    return [(r[SOURCE_ROW], r["field"], r["code"]) for r in result.rejects.iter_rows(named=True)]


# ---- a good row ------------------------------------------------------------------------


def test_a_good_row_becomes_one_client_and_one_case(spec: MappingSpec) -> None:
    result = run(spec, source([row()]))
    assert result.rows_read == 1 and result.rows_valid == 1 and result.rejects.height == 0
    assert result.clients.to_dicts() == [
        {"external_source_id": "C1", "first_name": "Ana", "last_name": "López", "email": "ana@example.com",
         "mobile": "+12125551234", "date_of_birth": "1980-03-04", "address_line1": "1 Main St",
         "address_line2": None, "city": "Boston", "state": "MA", "postal_code": "02134",
         "source_file": "leads.csv", "source_row": 2}
    ]  # fmt: skip
    assert result.cases.to_dicts() == [
        {"external_source_id": "K1", "case_number": "2024-1", "name": "Ana v. Bus Co", "type": "personal_injury",
         "status": "active", "description": "Rear-end collision", "external_source_data.incident_date": "2024-01-02",
         "client_external_source_id": "C1", "source_file": "leads.csv", "source_row": 2}
    ]  # fmt: skip
    assert result.rejects.schema == pl.Schema(REJECT_SCHEMA)
    assert result.warnings.schema == pl.Schema(REJECT_SCHEMA)


def test_output_matches_its_pandera_contract(spec: MappingSpec) -> None:
    result = run(spec, source([row(), row(Contact_ID="C2", Case_ID="K2", Mobile_Phone="")]))
    client_schema(spec).validate(result.clients)
    case_schema(spec).validate(result.cases)
    assert result.clients.columns == list(client_schema(spec).columns)
    assert result.cases.columns == list(case_schema(spec).columns)


def test_a_broken_output_is_reported_in_one_line_not_as_a_pandera_table(spec: MappingSpec) -> None:
    clients = run(spec, source([row()])).clients.with_columns(
        mobile=pl.lit("212-555-1234"), state=pl.lit("XX")
    )
    with pytest.raises(UserError) as caught:
        check_output(clients, client_contract(spec))
    message = caught.value.message
    assert message.startswith("internal error: the validated clients broke their contract: ")
    assert "mobile" in message and "state" in message and "\n" not in message
    assert caught.value.hint is not None and "bug in kayse-etl" in caught.value.hint


# ---- the row as the unit ----------------------------------------------------------------


def test_a_bad_row_contributes_nothing_and_every_problem_is_reported(spec: MappingSpec) -> None:
    bad = row(
        Contact_ID="C2", Case_ID="K2", Mobile_Phone="555-0100", Email="ana at example", Date_of_Birth="02/30/1999",
        State="Narnia", ZIP="12", Case_Type="bankruptcy", Case_Status="stalled", Incident_Date="03/04/24",
        First_Name="  ",
    )  # fmt: skip
    result = run(spec, source([row(), bad]))
    assert result.rows_rejected == 1 and result.rows_valid == 1
    assert result.clients[("external_source_id")].to_list() == ["C1"]
    assert result.cases["external_source_id"].to_list() == ["K1"]
    assert rejects_of(result) == [
        (3, "First Name", "missing-required"),
        (3, "Email", "invalid-email"),
        (3, "Mobile Phone", "invalid-phone"),
        (3, "Date of Birth", "invalid-date"),
        (3, "State", "invalid-state"),
        (3, "ZIP", "invalid-zip"),
        (3, "Case Type", "unknown-case-type"),
        (3, "Case Status", "unknown-case-status"),
        (3, "Incident Date", "invalid-date"),
    ]
    by_field = {r["field"]: r for r in result.rejects.iter_rows(named=True)}
    assert (
        by_field["Mobile Phone"]["message"]
        == "Mobile Phone '555-0100' is not a valid phone number for region US"
    )
    assert by_field["Mobile Phone"]["value"] == "555-0100"
    assert by_field["First Name"]["value"] == "  "  # as read
    assert by_field["First Name"]["message"] == "First Name is empty, but it is required"
    assert by_field["Case Type"]["message"] == (
        "Case Type 'bankruptcy' is not a known case type; allowed: personal_injury, civil, mass_tort, "
        "workers_comp, criminal"
    )
    assert "two-digit year" in by_field["Incident Date"]["message"]
    assert result.rejected_rows.to_dicts() == [bad | {SOURCE_FILE: "leads.csv", SOURCE_ROW: 3}]


def test_a_bad_case_field_drops_the_rows_contact_too(spec: MappingSpec) -> None:
    result = run(spec, source([row(Case_Type="unknown")]))
    assert result.clients.height == 0 and result.cases.height == 0
    assert rejects_of(result) == [(2, "Case Type", "unknown-case-type")]


def test_missing_keys(spec: MappingSpec) -> None:
    result = run(spec, source([row(Contact_ID=" "), row(Case_ID="", Contact_ID="C2")]))
    assert rejects_of(result) == [(2, "Contact ID", "missing-required"), (3, "Case ID", "missing-required")]
    assert result.rows_valid == 0


def test_birth_date_limits_use_today(spec: MappingSpec) -> None:
    result = run(
        spec,
        source(
            [row(Date_of_Birth="06/16/2026"), row(Contact_ID="C2", Case_ID="K2", Date_of_Birth="1899-12-31")]
        ),
    )
    assert rejects_of(result) == [
        (2, "Date of Birth", "date-of-birth-in-future"),
        (3, "Date of Birth", "date-of-birth-too-old"),
    ]


def test_defaults_and_case_insensitive_choices(spec: MappingSpec) -> None:
    result = run(
        spec, source([row(Case_Status=""), row(Case_ID="K2", Case_Status=" CLOSED ", Case_Type="Civil")])
    )
    assert result.cases["status"].to_list() == ["open", "closed"]
    assert result.cases["type"].to_list() == ["personal_injury", "civil"]


# ---- contacts and duplicate cases -----------------------------------------------------


def test_one_contact_several_cases(spec: MappingSpec) -> None:
    result = run(
        spec, source([row(), row(Case_ID="K2", Mobile_Phone="212.555.1234", State="MA", ZIP="02134")])
    )
    assert result.clients.height == 1 and result.cases.height == 2
    assert result.cases["client_external_source_id"].to_list() == ["C1", "C1"]
    assert result.warnings.height == 0  # same values once normalized


def test_conflicting_contact_takes_the_first_valid_row_and_warns(spec: MappingSpec) -> None:
    rows = [
        row(Case_ID="K0", Case_Type="nope", Email="first@example.com"),  # rejected: not the contact's source
        row(Case_ID="K1", Email="second@example.com"),
        row(Case_ID="K2", Email="third@example.com", City="Salem"),
        row(Case_ID="K3", Email="second@example.com"),
    ]
    result = run(spec, source(rows))
    assert result.clients.select("email", "city", "source_row").to_dicts() == [
        {"email": "second@example.com", "city": "Boston", "source_row": 3}
    ]
    warnings = [
        (w[SOURCE_ROW], w["field"], w["code"], w["value"]) for w in result.warnings.iter_rows(named=True)
    ]
    assert warnings == [
        (4, "Email", "conflicting-contact", "third@example.com"),
        (4, "City", "conflicting-contact", "Salem"),
    ]
    assert result.warnings["message"][0] == (
        "Contact ID 'C1' has Email 'third@example.com' here but 'second@example.com' in row 3 of leads.csv; "
        "the contact is sent with the first row's value"
    )
    assert result.cases["external_source_id"].to_list() == ["K1", "K2", "K3"]  # warnings reject nothing


def test_duplicate_case_ids_keep_the_first_valid_occurrence(spec: MappingSpec) -> None:
    rows = [
        row(Case_ID="K1", Case_Type="nope"),  # invalid: not the one kept
        row(Case_ID="K1", Case_Number="kept"),
        row(Case_ID="K1", Case_Number="dup"),
        row(Case_ID="K1", Case_Number="dup and bad", ZIP="1"),
    ]
    result = run(spec, source(rows))
    assert result.cases["case_number"].to_list() == ["kept"]
    assert rejects_of(result) == [
        (2, "Case Type", "unknown-case-type"),
        (4, "Case ID", "duplicate-case-id"),
        (5, "ZIP", "invalid-zip"),
        (5, "Case ID", "duplicate-case-id"),
    ]
    duplicate = result.rejects.filter(pl.col("code") == "duplicate-case-id").row(0, named=True)
    assert (
        duplicate["message"]
        == "Case ID 'K1' appears more than once; the first, in row 3 of leads.csv, is kept"
    )
    assert result.rows_rejected == 3


def test_several_sources_and_duplicates_across_them(spec: MappingSpec) -> None:
    result = run(spec, source([row()], "a.csv"), source([row(Contact_ID="C2")], "b.csv"))
    assert rejects_of(result) == [(2, "Case ID", "duplicate-case-id")]
    assert result.rejects[SOURCE_FILE].to_list() == ["b.csv"]
    assert "row 2 of a.csv" in result.rejects["message"][0]
    assert [s.path for s in result.sources] == ["a.csv", "b.csv"]


# ---- extract problems ------------------------------------------------------------------


def test_ragged_rows_become_rejects(spec: MappingSpec) -> None:
    problems = pl.DataFrame(
        {SOURCE_FILE: ["leads.csv", "leads.csv"], SOURCE_ROW: [3, 9], "field": [None, None],
         "value": ["C2,Bob,...", "x,y,z"], "code": ["ragged-row", "ragged-row"],
         "message": ["Row 3 has 19 cells, but the header has 18", "Row 9 has 3 cells, but the header has 18"]},
        schema=REJECT_SCHEMA,
    )  # fmt: skip
    result = run(spec, source([row(), row(Contact_ID="C2", Case_ID="K2", ZIP="1")], problems=problems))
    assert rejects_of(result) == [(3, None, "ragged-row"), (3, "ZIP", "invalid-zip"), (9, None, "ragged-row")]
    assert result.rows_read == 3  # row 9 was never in the frame: it still counts as read
    assert result.rows_rejected == 2 and result.rows_valid == 1
    assert result.rejected_rows[SOURCE_ROW].to_list() == [3, 9]
    assert result.clients["external_source_id"].to_list() == ["C1"]


# ---- scale and no network --------------------------------------------------------------


def test_generated_export_rejects_exactly_the_damaged_rows(spec: MappingSpec) -> None:
    extracted, defects = generated(3000, defect_rate=0.05, seed=3)
    result = validate(apply_mapping([extracted], spec), spec, today=TODAY)
    assert result.rejects["code"].value_counts().height >= 5
    # Every defect refuses its row, except a conflicting contact (a warning) and a formula-like
    # description (valid text, neutralized only in the report files).
    not_refused = {"conflicting_contact", "formula_description"}
    refused_rows = {row for kind, rows in defects.items() if kind not in not_refused for row in rows}
    assert set(result.rejected_rows[SOURCE_ROW].to_list()) == refused_rows
    several = len(defects["several_problems"])  # three problems in one row
    assert result.rejects.height == result.rows_rejected + 2 * several  # one defect per other damaged row
    assert set(result.warnings[SOURCE_ROW].to_list()) == set(defects["conflicting_contact"])
    assert result.cases.height == result.rows_valid
    assert result.clients.height == result.clients["external_source_id"].n_unique()


def test_validate_never_opens_a_socket(spec: MappingSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate tried to use the network")

    mapped = apply_mapping([source([row(), row(Case_ID="K2", Mobile_Phone="+44 20 7946 0958")])], spec)
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert validate(mapped, spec, today=TODAY).rows_valid == 2


def test_mapping_path_fixture_is_real(spec: MappingSpec) -> None:
    assert Path(spec.path).name == "generic.yaml" and len(spec.sha256) == 64


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0.0, max_value=0.6))
def test_rows_are_either_loaded_or_rejected_with_a_reason(spec: MappingSpec, seed: int, share: float) -> None:
    extracted, _ = generated(200, defect_rate=share, seed=seed)
    result = validate(apply_mapping([extracted], spec), spec, today=TODAY)
    assert result.rows_valid + result.rows_rejected == result.rows_read == 200
    rejected = set(result.rejected_rows[SOURCE_ROW].to_list())
    assert rejected == set(result.rejects[SOURCE_ROW].to_list())
    assert rejected.isdisjoint(result.cases[SOURCE_ROW].to_list())
    assert rejected.isdisjoint(result.clients[SOURCE_ROW].to_list())
    assert result.cases.height == result.rows_valid


def test_conflict_with_an_empty_cell_says_empty(spec: MappingSpec) -> None:
    result = run(spec, source([row(), row(Case_ID="K2", Mobile_Phone=" ")]))
    assert result.warnings["message"].to_list() == [
        "Contact ID 'C1' has Mobile Phone (empty) here but '(212) 555-1234' in row 2 of leads.csv; "
        "the contact is sent with the first row's value"
    ]
    assert result.clients["mobile"].to_list() == ["+12125551234"]
