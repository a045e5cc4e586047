"""The report writers on hand-built results: spreadsheet safety, row grouping and ordering, files."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.model import (
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    EntitySpec,
    FailedRecord,
    FieldSpec,
    MappingSpec,
    Plan,
    RunResult,
    SourceInfo,
    ValidationResult,
    empty_rejects,
)
from pipeline.report.cells import neutralize_cell, neutralize_formulas
from pipeline.report.load import write_load_report
from pipeline.report.validation import render_text, summary, write_validation_report

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
formula_ish = st.text(
    alphabet=st.sampled_from(["=", "+", "-", "@", "\t", "\r", "\n", "1", "²", ".", "a", "'", " ", "é"])
)


def is_plain_signed_number(text: str) -> bool:
    whole, _, fraction = text[1:].partition(".")
    ascii_digits = set("0123456789")
    return (
        text[:1] in ("+", "-")
        and whole != ""
        and set(whole) <= ascii_digits
        and ("." not in text or (fraction != "" and set(fraction) <= ascii_digits))
    )


def escaped_controls(text: str) -> str:
    """Every control character but tab and line ends written as its escape (\\x1b)."""
    return "".join(
        repr(c)[1:-1] if (ord(c) < 32 or 127 <= ord(c) < 160) and c not in "\t\n\r" else c for c in text
    )


@given(st.one_of(formula_ish, st.text()))
def test_a_neutralized_cell_never_starts_a_formula_and_loses_nothing(text: str) -> None:
    safe = neutralize_cell(text)
    visible = escaped_controls(text)  # an escape sequence cannot reach a terminal
    if visible.startswith(TRIGGERS) and not is_plain_signed_number(visible):
        assert safe == "'" + visible
    else:
        assert safe == visible
    assert neutralize_cell(safe) == safe


def test_escape_sequences_and_c1_bytes_are_written_visibly() -> None:
    assert neutralize_cell("Ty\x1b[31mler\x9b") == "Ty\\x1b[31mler\\x9b"
    assert neutralize_cell("\x1b]0;title\x07=x") == "\\x1b]0;title\\x07=x"
    assert neutralize_cell("two\nlines\tand a tab") == "two\nlines\tand a tab"  # CSV quoting carries these


@given(st.lists(st.one_of(st.none(), formula_ish, st.text()), max_size=30))
def test_the_frame_version_agrees_with_the_cell_version(values: list[str | None]) -> None:
    frame = pl.DataFrame(
        {"text": values, "number": list(range(len(values)))}, schema={"text": pl.String, "number": pl.Int64}
    )
    safe = neutralize_formulas(frame)
    assert safe["text"].to_list() == [None if v is None else neutralize_cell(v) for v in values]
    assert safe["number"].to_list() == list(range(len(values)))


@given(st.lists(st.lists(st.one_of(st.none(), formula_ish, st.text()), max_size=8), min_size=1, max_size=5))
def test_the_frame_version_agrees_across_chunks_and_leaves_its_input_alone(
    parts: list[list[str | None]],
) -> None:
    # Only the marked cells are rebuilt (gathered and scattered back): a frame of several chunks,
    # as validation hands over, must come out cell for cell, and the frame given must not change.
    frame = pl.concat(
        [pl.DataFrame({"text": part}, schema={"text": pl.String}) for part in parts], rechunk=False
    )
    values = [v for part in parts for v in part]
    safe = neutralize_formulas(frame)
    assert safe["text"].to_list() == [None if v is None else neutralize_cell(v) for v in values]
    assert frame["text"].to_list() == values


@given(
    st.lists(
        st.tuples(st.one_of(st.none(), formula_ish, st.text()), st.one_of(st.none(), formula_ish, st.text())),
        max_size=30,
    )
)
def test_only_the_tested_columns_are_neutralized_and_every_header_is(
    pairs: list[tuple[str | None, str | None]],
) -> None:
    # The report writers test only the columns whose values could look like a formula: those
    # follow the cell rule exactly, the others are written as given; headers are always safe.
    tested = [v for v, _ in pairs]
    untested = [v for _, v in pairs]
    frame = pl.DataFrame(
        {"=note": tested, "mobile": untested}, schema={"=note": pl.String, "mobile": pl.String}
    )
    safe = neutralize_formulas(frame, tested=["=note"])
    assert safe.columns == ["'=note", "mobile"]
    assert safe["'=note"].to_list() == [None if v is None else neutralize_cell(v) for v in tested]
    assert safe["mobile"].to_list() == untested


def test_e164_phones_stay_exact_but_formulas_do_not() -> None:
    assert neutralize_cell("+12125550123") == "+12125550123"
    assert neutralize_cell("-42.5") == "-42.5"
    assert neutralize_cell("+1 212 555 0123") == "'+1 212 555 0123"
    assert neutralize_cell('=HYPERLINK("http://x","y")') == '\'=HYPERLINK("http://x","y")'
    assert neutralize_cell("-2+3") == "'-2+3"
    assert neutralize_cell("@SUM(A1)") == "'@SUM(A1)"
    assert neutralize_cell("\t=1") == "'\t=1"
    assert neutralize_cell("+1\n") == "'+1\n"  # not a plain number: a line break follows
    assert neutralize_cell("+²") == "'+²"  # only ASCII digits make a plain number


def test_the_load_report_follows_the_same_rule(tmp_path: Path) -> None:
    """failed.csv and the validation files share one rule: no formula runs, phones stay numbers."""
    refused = [
        FailedRecord("client", "=HYPERLINK(1)", "leads.csv", 2, "validation", "-2+3 is not allowed"),
        FailedRecord("case", "K1", "=evil.csv", 3, "validation", "+12125550123"),
    ]
    result = RunResult(run_id=1, target="t", planned_requests=2, failed=refused)
    plan = Plan("t", 100, (), (), (), (), {}, (), (), {})
    failed_csv = next(path for path in write_load_report(result, plan, tmp_path) if path.name == "failed.csv")
    with failed_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    # code, reason, kind, key, then where the row came from (no validation given: no original columns)
    assert rows == [
        ["validation", "'-2+3 is not allowed", "client", "'=HYPERLINK(1)", "leads.csv", "2"],
        ["validation", "+12125550123", "case", "K1", "'=evil.csv", "3"],
    ]
    for row in rows:
        assert all(neutralize_cell(cell) == cell for cell in row)


def _mapping() -> MappingSpec:
    return MappingSpec(
        name="hand",
        path="hand.yaml",
        external_source="import",
        client=EntitySpec(key_column="id", fields=()),
        case=EntitySpec(key_column="case", fields=()),
    )


def _result(with_warnings: bool) -> ValidationResult:
    sources = (
        SourceInfo(
            path="/x/b.csv", format="csv", rows=3, columns=("id", "=evil"), encoding="utf-8", delimiter=","
        ),
        SourceInfo(path="/x/a.xlsx", format="xlsx", rows=2, columns=("id", "phone"), sheet="Leads"),
    )
    rejects = pl.DataFrame(
        {
            SOURCE_FILE: ["a.xlsx", "b.csv", "b.csv", "b.csv"],
            SOURCE_ROW: [2, 4, 2, 4],
            "field": ["phone", "id", None, "=evil"],
            "value": ["12", None, None, "=1+2"],
            "code": ["invalid-phone", "missing-required", "ragged-row", "invalid-state"],
            "message": [
                "phone '12' is not valid",
                "id is empty",
                "row 2 has 3 cells",
                "=evil '=1+2' is not a state",
            ],
        },
        schema=REJECT_SCHEMA,
    )
    rejected_rows = pl.DataFrame(
        {
            SOURCE_FILE: ["b.csv", "b.csv", "a.xlsx"],
            SOURCE_ROW: [2, 4, 2],
            "id": ["1", None, "9"],
            "=evil": ["x", "=1+2", None],
            "phone": [None, None, "12"],
        }
    )
    clients = pl.DataFrame(
        {
            "external_source_id": ["7"],
            "first_name": ["Zoë"],
            "mobile": ["+12125550123"],
            SOURCE_FILE: ["b.csv"],
            SOURCE_ROW: [3],
        }
    )
    cases = pl.DataFrame(
        {
            "external_source_id": ["K7"],
            "client_external_source_id": ["7"],
            "description": ["@SUM(A1)"],
            SOURCE_FILE: ["b.csv"],
            SOURCE_ROW: [3],
        }
    )
    warnings = (
        pl.DataFrame(
            {
                SOURCE_FILE: ["b.csv"],
                SOURCE_ROW: [3],
                "field": ["first_name"],
                "value": ["Zoë"],
                "code": ["conflicting-contact"],
                "message": ["-differs"],
            },
            schema=REJECT_SCHEMA,
        )
        if with_warnings
        else empty_rejects()
    )
    return ValidationResult(
        sources=sources,
        mapping=_mapping(),
        rows_read=5,
        clients=clients,
        cases=cases,
        rejects=rejects,
        rejected_rows=rejected_rows,
        warnings=warnings,
    )


def _read(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))


def test_rejects_group_problems_per_row_in_source_order(tmp_path: Path) -> None:
    written = write_validation_report(_result(with_warnings=True), tmp_path)
    assert [p.name for p in written] == [
        "summary.json",
        "rejects.csv",
        "clients.csv",
        "cases.csv",
        "warnings.csv",
        "annotated.xlsx",
        "report.html",
    ]
    header, *rows = _read(tmp_path / "rejects.csv")
    # the original columns first (so the fixed file validates again), then what to filter on
    assert header == [
        "id", "'=evil", "phone", "code", "field", "reason", "kayse_source_file", "kayse_source_row", "raw_line",
    ]  # fmt: skip
    assert [(r[6], r[7]) for r in rows] == [("b.csv", "2"), ("b.csv", "4"), ("a.xlsx", "2")]
    assert rows[1][5] == "id is empty; =evil '=1+2' is not a state"  # all problems of the row, in order
    assert rows[1][3:5] == ["missing-required; invalid-state", "id; =evil"]
    assert rows[1][1] == "'=1+2"
    clients = _read(tmp_path / "clients.csv")
    assert clients[0] == [
        "external_source",
        "external_source_id",
        "first_name",
        "mobile",
        "source_file",
        "source_row",
    ]
    assert clients[1] == ["import", "7", "Zoë", "+12125550123", "b.csv", "3"]
    cases = _read(tmp_path / "cases.csv")
    assert cases[0][:3] == ["external_source", "external_source_id", "client_external_source_id"]
    assert cases[1][3] == "'@SUM(A1)"
    assert _read(tmp_path / "warnings.csv")[1][-1] == "'-differs"
    assert json.loads((tmp_path / "summary.json").read_text(encoding="utf-8")) == summary(_result(True))


def test_summary_counts_rows_and_problems_separately() -> None:
    data = summary(_result(with_warnings=False))
    assert (data["rows_read"], data["rows_valid"], data["rows_rejected"]) == (5, 2, 3)
    assert data["problems"] == 4
    assert data["errors_by_code"] == {
        "invalid-phone": 1, "invalid-state": 1, "missing-required": 1, "ragged-row": 1,
    }  # fmt: skip
    assert data["errors_by_field"]["(whole row)"] == 1
    assert [s["detected"] for s in data["sources"]] == [
        "b.csv: csv, utf-8, comma-delimited, 3 rows",
        "a.xlsx: xlsx, sheet 'Leads', 2 rows",
    ]
    text = render_text(_result(with_warnings=False))
    assert "a.xlsx row 2: phone '12' is not valid" in text  # several files: rows are named with their file


def test_a_stale_warnings_file_is_removed_when_there_are_none(tmp_path: Path) -> None:
    write_validation_report(_result(with_warnings=True), tmp_path)
    written = write_validation_report(_result(with_warnings=False), tmp_path)
    assert "warnings.csv" not in [p.name for p in written]
    assert not (tmp_path / "warnings.csv").exists()


def test_only_the_cells_that_need_it_change_in_a_wide_frame() -> None:
    # Columns are tested first and only those holding a formula-like cell are rewritten: a
    # column of E.164 phones (all starting with +) must come out exactly as it went in.
    frame = pl.DataFrame(
        {
            "mobile": ["+12125550123", "+13125550188", None],
            "note": ["fine", "=SUM(A1)", "-x"],
            "=head": ["plain", "text", "here"],
            "count": [1, 2, 3],
        }
    )
    safe = neutralize_formulas(frame)
    assert safe.columns == ["mobile", "note", "'=head", "count"]
    assert safe.rows() == [
        ("+12125550123", "fine", "plain", 1),
        ("+13125550188", "'=SUM(A1)", "text", 2),
        (None, "'-x", "here", 3),
    ]


@pytest.mark.parametrize(
    ("external_source", "case_types", "shown_source", "shown_type"),
    [
        ("import", ("PI", "MT"), "import", "PI"),
        ("=evil", ("-PI", "MT"), "'=evil", "'-PI"),  # a mapping's own words are checked too
    ],
)
def test_mapping_words_in_clients_and_cases_follow_the_formula_rule(
    tmp_path: Path, external_source: str, case_types: tuple[str, ...], shown_source: str, shown_type: str
) -> None:
    """external_source and the case types come from the mapping, not from cells: checked once
    each rather than per cell, they still follow the rule every other value does."""
    case_type = FieldSpec(kayse_field="type", column="Type", type="case_type")
    mapping = dataclasses.replace(
        _mapping(),
        external_source=external_source,
        case_types=case_types,
        case=EntitySpec(key_column="case", fields=(case_type,)),
    )
    result = dataclasses.replace(
        _result(with_warnings=False),
        mapping=mapping,
        cases=_result(with_warnings=False).cases.with_columns(type=pl.lit(case_types[0])),
    )
    write_validation_report(result, tmp_path)

    header, row = _read(tmp_path / "cases.csv")
    assert row[header.index("external_source")] == shown_source
    assert row[header.index("type")] == shown_type
    assert _read(tmp_path / "clients.csv")[1][0] == shown_source


@pytest.mark.parametrize(("source_name", "shown"), [("b.csv", "b.csv"), ("=b.csv", "'=b.csv")])
def test_source_file_in_clients_and_cases_follows_the_formula_rule(
    tmp_path: Path, source_name: str, shown: str
) -> None:
    """source_file holds the names of the sources read: checked once per name rather than per
    cell, a name that looks like a formula is still neutralized in every row."""
    base = _result(with_warnings=False)
    sources = (dataclasses.replace(base.sources[0], path=f"/x/{source_name}"), base.sources[1])
    result = dataclasses.replace(
        base,
        sources=sources,
        clients=base.clients.with_columns(pl.lit(source_name).alias(SOURCE_FILE)),
        cases=base.cases.with_columns(pl.lit(source_name).alias(SOURCE_FILE)),
    )
    write_validation_report(result, tmp_path)

    for name in ("clients.csv", "cases.csv"):
        header, row = _read(tmp_path / name)
        assert row[header.index(SOURCE_FILE)] == shown
