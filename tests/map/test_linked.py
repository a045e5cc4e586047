"""Mappings over related tables: clients from one table, cases from another linked by a key,
values looked up in a third. Small CSV tables written here; validated through pipeline.run as
a user would (a folder, or the table files)."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import run
from pipeline.mapping import load_mapping
from pipeline.model import CASE_CLIENT_KEY, CLIENT_KEY, SOURCE_FILE, SOURCE_ROW, UserError, ValidationResult

ROOT = Path(__file__).resolve().parents[2]

LINKED = """
name: linked
external_source: import
tables: {contacts: contacts.csv, leads: leads.csv, stages: stages.csv}
client:
  table: contacts
  key: id
  fields:
    first_name: first
    last_name: last
    mobile: {column: mobile, fallback: phone}
    postal_code: zip
case:
  table: leads
  key: id
  client_key: contactId
  fields:
    case_number: id
    name: title
    type: {column: caseType, default: personal_injury, value_map: {"Auto": personal_injury, "WC": workers_comp}}
    status:
      column: stageId
      lookup: {table: stages, key: id, column: name}
      fallback: stageName
      value_map: {"Intake": open, "New Inquiry": open, "Signed": active}
allowed:
  case_types: [personal_injury, workers_comp]
  case_statuses: [open, active]
"""

CONTACT_HEADER = ["id", "first", "last", "mobile", "phone", "zip"]
LEAD_HEADER = ["id", "title", "contactId", "caseType", "stageId", "stageName"]
STAGES = [["id", "name"], ["s1", "New Inquiry"], ["s2", "Signed"]]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def export(
    folder: Path, contacts: list[list[str]], leads: list[list[str]], mapping: str = LINKED
) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(folder / "contacts.csv", [CONTACT_HEADER, *contacts])
    write_csv(folder / "leads.csv", [LEAD_HEADER, *leads])
    write_csv(folder / "stages.csv", STAGES)
    mapping_path = folder.parent / "linked.yaml"
    mapping_path.write_text(mapping, encoding="utf-8")
    return folder, mapping_path


def rejects_by_row(result: ValidationResult) -> dict[tuple[str, int], list[tuple[str, str]]]:
    found: dict[tuple[str, int], list[tuple[str, str]]] = {}
    for row in result.rejects.iter_rows(named=True):
        found.setdefault((row[SOURCE_FILE], row[SOURCE_ROW]), []).append((row["code"], row["message"]))
    return found


CONTACTS = [
    ["c1", "Ana", "López", "", "(212) 555-1234 x12", "2134"],  # only `phone`: it becomes the mobile
    ["c2", "Bo", "Chen", "555-0100", "", "10001"],  # a number with no area code: rejected
    ["c3", "Zoë", "Ng", "+1 617 555 0199", "", ""],  # no lead: still a client
]
LEADS = [
    ["l1", "López – auto", "c1", "Auto", "s1", "Intake"],
    ["l2", "Chen – WC", "c2", "WC", "s2", "Signed"],
    ["l3", "Ghost", "c-gone", "Auto", "s1", "New Inquiry"],
    ["l4", "Nobody", "", "Auto", "s1", "New Inquiry"],
    ["l5", "Old stage", "c1", "", "s-deleted", "Intake"],  # its stage is gone: the name it carries
    ["l6", "Lost stage", "c1", "Auto", "s-deleted", ""],  # ... and nothing to fall back on
]


def test_clients_and_cases_come_from_their_own_tables(tmp_path: Path) -> None:
    folder, mapping = export(tmp_path / "export", CONTACTS, LEADS)
    result = run.validate([folder], mapping)

    clients = {row[CLIENT_KEY]: row for row in result.clients.iter_rows(named=True)}
    assert set(clients) == {"c1", "c3"}  # c2 rejected; c3 has no case and is loaded all the same
    assert clients["c1"]["mobile"] == "+12125551234"  # from `phone`, its extension dropped
    assert clients["c1"]["postal_code"] == "02134"  # the leading zero a spreadsheet lost
    assert (clients["c1"][SOURCE_FILE], clients["c1"][SOURCE_ROW]) == ("contacts.csv", 2)

    cases = {row[CLIENT_KEY]: row for row in result.cases.iter_rows(named=True)}
    assert set(cases) == {"l1", "l5"}
    assert cases["l1"]["status"] == "open"  # stage s1's name today ("New Inquiry"), mapped
    assert cases["l5"]["status"] == "open"  # the stage is gone: its old name "Intake", mapped
    assert cases["l5"]["type"] == "personal_injury"  # the default for an empty case type
    assert {row[CASE_CLIENT_KEY] for row in cases.values()} == {"c1"}
    assert (cases["l5"][SOURCE_FILE], cases["l5"][SOURCE_ROW]) == ("leads.csv", 6)

    rejects = rejects_by_row(result)
    assert [code for code, _ in rejects[("contacts.csv", 3)]] == ["invalid-phone"]
    assert rejects[("leads.csv", 3)] == [
        (
            "contact-rejected",
            "contactId 'c2': its contact, in row 3 of contacts.csv, was rejected "
            "(the phone number is not a real phone number)",
        )
    ]
    assert rejects[("leads.csv", 4)] == [
        (
            "contact-missing",
            "contactId 'c-gone': its contact is not in contacts.csv, so the case has no client",
        )
    ]
    assert [code for code, _ in rejects[("leads.csv", 5)]] == ["no-contact"]
    # the stage cannot be found, so the (required) status is empty as well
    assert [code for code, _ in rejects[("leads.csv", 7)]] == ["lookup-missing", "missing-required"]
    assert rejects[("leads.csv", 7)][0][1] == (
        "stageId 's-deleted' matches no row of stages.csv (column id), so its name cannot be looked up"
    )
    assert set(rejects) == {("contacts.csv", 3), *(("leads.csv", r) for r in (3, 4, 5, 7))}
    assert result.rows_read == 9 and result.rows_rejected == 5

    # rejects.csv names the table and the row, with the row's own columns
    rejected = {(r[SOURCE_FILE], r[SOURCE_ROW]): r for r in result.rejected_rows.iter_rows(named=True)}
    assert rejected[("contacts.csv", 3)]["first"] == "Bo"
    assert rejected[("leads.csv", 4)]["contactId"] == "c-gone"


def test_a_lead_is_rejected_with_every_problem_including_its_contact(tmp_path: Path) -> None:
    leads = [["l1", "", "c-gone", "Bankruptcy", "s1", ""]]  # no title is fine; an unknown type is not
    folder, mapping = export(tmp_path / "export", CONTACTS, leads)
    result = run.validate([folder], mapping)
    assert [code for code, _ in rejects_by_row(result)[("leads.csv", 2)]] == [
        "unknown-case-type",
        "contact-missing",
    ]


def test_the_table_files_can_be_given_one_by_one(tmp_path: Path) -> None:
    folder, mapping = export(tmp_path / "export", CONTACTS, LEADS)
    by_folder = run.validate([folder], mapping)
    files = [folder / "stages.csv", folder / "leads.csv", folder / "contacts.csv"]
    by_files = run.validate(files, mapping)
    assert by_files.cases.equals(by_folder.cases) and by_files.clients.equals(by_folder.clients)
    assert by_files.rejects.equals(by_folder.rejects)


def test_a_file_given_by_itself_wins_over_the_folders(tmp_path: Path) -> None:
    folder, mapping = export(tmp_path / "export", CONTACTS, LEADS)
    fixed = write_csv(
        tmp_path / "contacts.csv", [CONTACT_HEADER, ["c2", "Bo", "Chen", "212-555-0100", "", ""]]
    )
    result = run.validate([folder, fixed], mapping)
    assert set(result.clients.get_column(CLIENT_KEY)) == {"c2"}
    assert "l2" in set(result.cases.get_column(CLIENT_KEY))


def test_a_missing_or_unknown_table_file_is_a_usage_error(tmp_path: Path) -> None:
    folder, mapping = export(tmp_path / "export", CONTACTS, LEADS)
    (folder / "stages.csv").unlink()
    with pytest.raises(UserError, match=r"missing stages\.csv"):
        run.validate([folder], mapping)
    stray = write_csv(tmp_path / "notes.csv", [["a"], ["b"]])
    with pytest.raises(UserError, match=r"notes\.csv is not one of the tables"):
        run.validate([folder / "contacts.csv", stray], mapping)


def test_a_column_a_table_lacks_is_named_with_its_table(tmp_path: Path) -> None:
    folder, mapping = export(tmp_path / "export", CONTACTS, LEADS)
    write_csv(folder / "stages.csv", [["id", "label"], ["s1", "New Inquiry"]])
    with pytest.raises(UserError, match=r"stages\.csv lacks 1 column\(s\) .*'name'"):
        run.validate([folder], mapping)


def test_validate_plan_and_the_cli_take_the_folder(tmp_path: Path) -> None:
    folder, mapping = export(tmp_path / "export", CONTACTS, LEADS)
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "validate", str(folder), "--mapping", str(mapping)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "Read contacts.csv" in result.stdout and "Read leads.csv" in result.stdout
    assert "[contact-rejected]" in result.stdout and "[contact-missing]" in result.stdout
    outcome = run.plan([folder], mapping, base_url="http://127.0.0.1:9/v1", ledger_path=tmp_path / "l.sqlite")
    assert outcome.plan.count(outcome.plan.clients, create=True) == 2
    assert outcome.plan.count(outcome.plan.cases, create=True) == 2


def test_fallback_works_in_the_flat_form_too(tmp_path: Path) -> None:
    mapping = tmp_path / "flat.yaml"
    mapping.write_text(
        """
external_source: import
client:
  key: cid
  fields: {first_name: first, last_name: last, mobile: {column: mobile, fallback: phone}}
case:
  key: kid
  fields: {case_number: kid}
""",
        encoding="utf-8",
    )
    source = write_csv(tmp_path / "f.csv", [["cid", "first", "last", "mobile", "phone", "kid"],
                                             ["c1", "A", "B", "", "2125551234", "k1"]])  # fmt: skip
    result = run.validate([source], mapping)
    assert result.clients.get_column("mobile").to_list() == ["+12125551234"]


# ---- the mapping file's linked keys --------------------------------------------------------


def mapping_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "m.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_mapping(path)
    return str(caught.value)


def test_the_linked_keys_are_read(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(LINKED, encoding="utf-8")
    spec = load_mapping(path)
    assert spec.linked and spec.tables == {
        "contacts": "contacts.csv",
        "leads": "leads.csv",
        "stages": "stages.csv",
    }
    assert (spec.client.table, spec.case.table, spec.case.client_key_column) == (
        "contacts",
        "leads",
        "contactId",
    )
    status = next(f for f in spec.case.fields if f.kayse_field == "status")
    assert status.lookup is not None and (status.lookup.table, status.lookup.key, status.lookup.column) == (
        "stages",
        "id",
        "name",
    )
    assert status.fallback == "stageName"
    shipped = load_mapping(ROOT / "mappings" / "axiomatic.yaml")
    assert shipped.tables["leads"] == "leads.csv" and shipped.case.client_key_column == "contactId"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("table: leads", "table: lead"), "case.table is 'lead', not a name under tables:"),
        (("lookup: {table: stages,", "lookup: {table: stage,"), "status.lookup.table is 'stage'"),
        (("  client_key: contactId\n", ""), "case.client_key is required but missing"),
        (("table: leads", "table: contacts"), "case.table is 'contacts', the client's table too"),
        (("stages: stages.csv}", "stages: exports/stages.csv}"), "tables.stages is 'exports/stages.csv'"),
        (("stages: stages.csv}", "stages: Contacts.csv}"), "tables.stages names 'Contacts.csv'"),
        (
            ("lookup: {table: stages, key: id, column: name}", "lookup: {table: stages, key: id}"),
            "status.lookup.column is required",
        ),
    ],
)
def test_mistakes_in_the_linked_keys_name_the_key(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in LINKED
    assert expected in mapping_error(tmp_path, LINKED.replace(old, new, 1))


def test_linked_keys_in_the_flat_form_are_refused(tmp_path: Path) -> None:
    flat = LINKED.replace("tables: {contacts: contacts.csv, leads: leads.csv, stages: stages.csv}\n", "")
    assert "client.table belongs to the linked form" in mapping_error(tmp_path, flat)
    no_tables = flat.replace("  table: contacts\n", "").replace("  table: leads\n", "")
    assert "case.client_key belongs to the linked form" in mapping_error(tmp_path, no_tables)
    no_link = no_tables.replace("  client_key: contactId\n", "")
    assert "case.fields.status.lookup belongs to the linked form" in mapping_error(tmp_path, no_link)


# ---- every lead once: a case or a reject with the reason its contact gives -----------------

CONTACT_KINDS = st.sampled_from(["valid", "bad-phone", "bad-email"])
LEAD_LINKS = st.sampled_from(["valid", "rejected", "gone", "empty"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    contacts=st.lists(CONTACT_KINDS, min_size=1, max_size=6),
    links=st.lists(st.tuples(LEAD_LINKS, st.integers(0, 5)), min_size=1, max_size=10),
)
def test_every_lead_is_a_case_or_rejected_for_its_contact(
    tmp_path_factory: pytest.TempPathFactory, contacts: list[str], links: list[tuple[str, int]]
) -> None:
    contact_rows: list[list[str]] = []
    for i, kind in enumerate(contacts):
        mobile = "555-0100" if kind == "bad-phone" else "2125550100"
        contact_rows.append([f"c{i}", "Ana", "López" if kind != "bad-email" else "", mobile, "", ""])
    valid = [f"c{i}" for i, kind in enumerate(contacts) if kind == "valid"]
    rejected = [f"c{i}" for i, kind in enumerate(contacts) if kind != "valid"]
    lead_rows: list[list[str]] = []
    expected: dict[str, Any] = {}
    for j, (link, pick) in enumerate(links):
        pool = {"valid": valid, "rejected": rejected}.get(link, [])
        if link in ("valid", "rejected") and not pool:
            link, pool = "gone", []
        contact = (
            {"gone": "c-gone", "empty": ""}[link] if link in ("gone", "empty") else pool[pick % len(pool)]
        )
        lead_rows.append([f"l{j}", "t", contact, "Auto", "s1", ""])
        expected[f"l{j}"] = {"valid": contact, "rejected": "contact-rejected", "gone": "contact-missing",
                             "empty": "no-contact"}[link]  # fmt: skip
    folder, mapping = export(tmp_path_factory.mktemp("x") / "export", contact_rows, lead_rows)
    result = run.validate([folder], mapping)

    cases = {row[CLIENT_KEY]: row[CASE_CLIENT_KEY] for row in result.cases.iter_rows(named=True)}
    lead_rejects = {
        row[SOURCE_ROW]: row["code"]
        for row in result.rejects.iter_rows(named=True)
        if row[SOURCE_FILE] == "leads.csv"
    }
    for j in range(len(links)):
        lead, want = f"l{j}", expected[f"l{j}"]
        if want not in ("contact-rejected", "contact-missing", "no-contact"):
            assert cases.get(lead) == want and j + 2 not in lead_rejects
        else:
            assert lead not in cases and lead_rejects[j + 2] == want
    assert set(result.clients.get_column(CLIENT_KEY)) == set(valid)  # with or without a case
