"""`kayse-etl mappings init`: a mapping drafted from a file's headers is a valid mapping that
`validate` runs with as drafted, its guesses marked for a person, its allowed lists from the
account when a key is set."""

from __future__ import annotations

import ast
import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from pipeline.mapping import load_mapping
from pipeline.mapping_draft import draft_mapping, match_headers
from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data"


def kayse_etl(*args: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAYSE_")}
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args], env=env, capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("First Name", "first_name"),
        ("first", "first_name"),
        ("fname", "first_name"),
        ("Given name", "first_name"),
        ("Cell", "mobile"),
        ("Mobile Phone", "mobile"),
        ("DOB", "date_of_birth"),
        ("Zip", "postal_code"),
        ("Postal Code", "postal_code"),
        ("Matter Type", "type"),
        ("Case Type", "type"),
        ("E-mail Address", "email"),
        ("LastName", "last_name"),
        ("Frist Name", "first_name"),  # a typo: matched by likeness
    ],
)
def test_headers_are_matched_by_name_and_likeness(header: str, field: str) -> None:
    chosen, _ = match_headers(["Contact ID", header])
    assert chosen.get(field) == header


def test_each_header_feeds_one_field_and_the_rest_are_left_over() -> None:
    chosen, left = match_headers(["Client ID", "Phone", "Mobile", "Favourite colour"])
    assert chosen["client_key"] == "Client ID"
    assert chosen["mobile"] == "Mobile"  # the exact name wins over the looser "Phone"
    assert sorted(chosen.values()) == sorted(set(chosen.values()))
    assert "Favourite colour" in left


def test_type_values_map_onto_the_accounts_allowed_values() -> None:
    draft = draft_mapping(
        ["Contact ID", "First Name", "Case Type", "Status"],
        {"Case Type": ["Personal Injury", "Mass Tort", "Bankruptcy"], "Status": ["Open", "open", "Closed"]},
        source_name="x.csv",
        account_types={"personal_injury": ["open", "closed"], "mass_tort": ["open"]},
    )
    text = draft.text
    assert draft.allowed_from == "account"
    assert '"Personal Injury": "personal_injury"   # closest allowed value: check it' in text
    assert '# "Bankruptcy": ?' in text  # nothing close: left for the person, commented
    assert text.count('"Open": "open"') == 1  # "open" is the same value, once
    parsed = yaml.safe_load(text)
    assert parsed["allowed"] == {
        "case_types": ["personal_injury", "mass_tort"],
        "case_statuses": ["closed", "open"],
    }


def write_xlsx(path: Path, rows: list[list[Any]]) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    workbook.save(path)


def test_drafts_from_the_sample_csv_and_a_workbook_validate_as_drafted(tmp_path: Path) -> None:
    workbook = tmp_path / "intake.xlsx"
    write_xlsx(
        workbook,
        [
            [
                "Client No",
                "Given name",
                "Surname",
                "Cell",
                "DOB",
                "Zip",
                "Matter Type",
                "Matter Status",
                "Matter No",
            ],
            ["A1", "Ana", "Diaz", "(512) 555-0131", "04/10/1975", "78701", "Personal Injury", "Open", "M-1"],
            ["A2", "Bo", "Lee", "312-555-0132", "9/25/1969", "60601", "Mass Tort", "Closed", "M-2"],
            ["A3", "", "Kim", "not a phone", "1/1/1980", "ABCDE", "Mass Tort", "Open", "M-3"],
        ],
    )
    for source in (SAMPLE / "leads.csv", SAMPLE / "leads.xlsx", workbook):
        out = tmp_path / f"{source.stem}-{source.suffix[1:]}.yaml"
        drafted = kayse_etl("mappings", "init", str(source), "--out", str(out))
        assert drafted.returncode == 0, drafted.stderr
        assert f"kayse-etl validate {source} --mapping {out}" in drafted.stdout
        checked = kayse_etl("validate", str(source), "--mapping", str(out))
        assert checked.returncode in (0, 1), checked.stderr
        assert "rows read" in checked.stdout
    spec = load_mapping(tmp_path / "intake-xlsx.yaml")
    assert spec.client.key_column == "Client No"
    assert {f.kayse_field: f.column for f in spec.client.fields}["mobile"] == "Cell"
    assert {f.kayse_field: f.column for f in spec.case.fields}["type"] == "Matter Type"
    assert spec.case_types == ("Personal Injury", "Mass Tort")  # the file's own, marked to replace
    assert "replace them with the account's" in (tmp_path / "intake-xlsx.yaml").read_text(encoding="utf-8")


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    out = tmp_path / "firm.yaml"
    out.write_text("mine\n", encoding="utf-8")
    refused = kayse_etl("mappings", "init", str(SAMPLE / "leads.csv"), "--out", str(out))
    assert refused.returncode == 2
    assert "already exists" in refused.stderr and "--force" in refused.stderr
    assert out.read_text(encoding="utf-8") == "mine\n"
    forced = kayse_etl("mappings", "init", str(SAMPLE / "leads.csv"), "--out", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert out.read_text(encoding="utf-8").startswith("# Drafted by")


def test_without_out_the_draft_is_printed_and_is_the_mapping(tmp_path: Path) -> None:
    printed = kayse_etl("mappings", "init", str(SAMPLE / "legaledge_matters.csv"))
    assert printed.returncode == 0, printed.stderr
    mapping = tmp_path / "legaledge.yaml"
    mapping.write_text(printed.stdout, encoding="utf-8")
    spec = load_mapping(mapping)
    fields = {f.kayse_field: f.column for f in (*spec.client.fields, *spec.case.fields)}
    assert fields["first_name"] == "Given Name" and fields["mobile"] == "Cell"
    assert fields["date_of_birth"] == "DOB" and fields["type"] == "Practice Area"


def test_with_a_key_the_allowed_lists_come_from_the_account(sandbox: Any, tmp_path: Path) -> None:
    out = tmp_path / "firm.yaml"
    drafted = kayse_etl(
        "mappings",
        "init",
        str(SAMPLE / "leads.csv"),
        "--out",
        str(out),
        env_extra={"KAYSE_API_KEY": SANDBOX_TEST_KEY, "KAYSE_BASE_URL": sandbox.base_url},
    )
    assert drafted.returncode == 0, drafted.stderr
    assert [r["path"] for r in sandbox.request_log()] == ["/v1/metadata"]
    spec = load_mapping(out)
    assert "personal_injury" in spec.case_types and "Mass Tort" not in spec.case_types
    type_map = next(f for f in spec.case.fields if f.kayse_field == "type").value_map
    assert type_map["mass tort"] == "mass_tort"  # each file value onto the closest allowed one
    assert "from the Kayse account" in out.read_text(encoding="utf-8")
    checked = kayse_etl("validate", str(SAMPLE / "leads.csv"), "--mapping", str(out))
    assert checked.returncode in (0, 1), checked.stderr


header_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
).filter(lambda t: t.strip() == t and t)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    headers=st.lists(header_text, min_size=1, max_size=8, unique=True),
    values=st.lists(header_text, max_size=5),
)
def test_any_headers_and_values_give_a_mapping_that_loads(
    tmp_path: Path, headers: list[str], values: list[str]
) -> None:
    """Quotes, colons, '#', accents or emoji in a header or a type value never break the YAML."""
    draft = draft_mapping(headers, dict.fromkeys(headers, values), source_name="odd.csv")
    path = tmp_path / "odd.yaml"
    path.write_text(draft.text, encoding="utf-8")
    spec = load_mapping(path)
    columns = {f.column for f in (*spec.client.fields, *spec.case.fields)}
    assert columns <= set(headers)
    assert spec.client.key_column in headers


def test_the_csv_source_is_read_through_the_extract_stage(tmp_path: Path) -> None:
    """A semicolon-delimited cp1252 export drafts like any other: run.py reads it via extract."""
    source = tmp_path / "export.csv"
    with open(source, "w", encoding="cp1252", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["Lead ID", "Prénom", "First Name", "Last Name", "Case Type"])
        writer.writerow(["1", "Zoë", "Zoë", "Müller", "Personal Injury"])
    printed = kayse_etl("mappings", "init", str(source))
    assert printed.returncode == 0, printed.stderr
    assert 'first_name: "First Name"' in printed.stdout
    assert '# external_source_data.pr_nom: "Prénom"' in printed.stdout


def test_the_drafter_imports_only_the_vocabulary() -> None:
    tree = ast.parse((ROOT / "pipeline" / "mapping_draft.py").read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pipeline")
    } | {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {name for name in imported if name.startswith("pipeline")} == {"pipeline.model"}
