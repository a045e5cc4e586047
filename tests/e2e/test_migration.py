"""A migration end to end over real HTTP: extract from the local Axiomatic, then validate and load
the folder with the shipped mappings/axiomatic.yaml into the Kayse sandbox.

Every lead with a live contact and valid data becomes one case linked to its one client; every
other lead is named in the rejects with its reason; a second extract followed by a load sends
Kayse no write."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import axiomatic_sandbox, run
from pipeline.model import SOURCE_FILE, SOURCE_ROW
from pipeline.settings import Connection
from tests.conftest import SANDBOX_TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
MAPPING = ROOT / "mappings" / "axiomatic.yaml"


@pytest.fixture(scope="module")
def axiomatic() -> Iterator[Any]:
    """The local Axiomatic with its messy data and some 5xx and 429s; a read limit loose enough
    that the test does not spend its time waiting out the window."""
    config = axiomatic_sandbox.AxiomaticConfig(
        port=0, seed=7, contacts=120, leads=160, rate_limit=5000, faults="error=0.03,ratelimit=0.03,seed=5"
    )
    running = axiomatic_sandbox.start_in_thread(config)
    try:
        yield running
    finally:
        running.stop()


def extract(axiomatic: Any, out: Path) -> Path:
    run.extract_axiomatic(axiomatic.base_url, axiomatic.entity_id, out, api_key=axiomatic.api_key)
    return out


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def live(state: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [item for item in state[kind] if not item.get("deleted")]


def kayse_writes(sandbox: Any) -> list[dict[str, Any]]:
    return [r for r in sandbox.request_log() if r["method"] != "GET" and str(r["path"]).startswith("/v1")]


def test_a_crm_migrates_once_and_a_second_extract_sends_nothing(
    axiomatic: Any, sandbox: Any, tmp_path: Path
) -> None:
    connection = Connection(sandbox.base_url, SANDBOX_TEST_KEY)
    ledger = tmp_path / "axiomatic.ledger.sqlite"
    first_dir = extract(axiomatic, tmp_path / "first")
    outcome = run.load([first_dir], MAPPING, connection=connection, ledger_path=ledger)
    assert outcome.result is not None and outcome.result.failed == [] and outcome.result.uncertain == []

    contacts = {row["id"]: row for row in rows(first_dir / "contacts.csv")}
    leads = rows(first_dir / "leads.csv")
    lead_row = {lead["id"]: i + 2 for i, lead in enumerate(leads)}  # the header is row 1
    assert len(lead_row) == len(leads)  # the extract holds each lead once

    state = sandbox.state()
    clients = {c["external_source_id"]: c for c in live(state, "clients")}
    cases = {c["external_source_id"]: c for c in live(state, "cases")}
    assert len(clients) == len(live(state, "clients")) and len(cases) == len(live(state, "cases"))

    rejected_leads: dict[int, list[dict[str, Any]]] = {}
    rejected_contacts: set[int] = set()
    for problem in outcome.validation.rejects.iter_rows(named=True):
        if problem[SOURCE_FILE] == "leads.csv":
            rejected_leads.setdefault(problem[SOURCE_ROW], []).append(problem)
        else:
            assert problem[SOURCE_FILE] == "contacts.csv"
            rejected_contacts.add(problem[SOURCE_ROW])

    for lead in leads:
        row = lead_row[lead["id"]]
        if lead["id"] in cases:
            # one case, linked to exactly its one client, which is the lead's contact
            assert row not in rejected_leads
            case = cases[lead["id"]]
            assert case["client_ids"] == [clients[lead["contactId"]]["id"]]
            assert case["name"] == lead["title"] and case["case_number"] == lead["id"]
            continue
        # every other lead is named in the rejects, with its reason in words
        problems = rejected_leads[row]
        assert all(p["message"] for p in problems)
        codes = {p["code"] for p in problems}
        if not lead["contactId"]:
            assert "no-contact" in codes
        elif lead["contactId"] not in contacts:
            assert "contact-missing" in codes
            assert any(lead["contactId"] in p["message"] and "contacts.csv" in p["message"] for p in problems)
        elif lead["contactId"] not in clients:
            contact_row = list(contacts).index(lead["contactId"]) + 2
            assert contact_row in rejected_contacts
            assert any(
                p["code"] == "contact-rejected" and f"row {contact_row} of contacts.csv" in p["message"]
                for p in problems
            )
        else:
            assert codes - {"no-contact", "contact-missing", "contact-rejected"}, codes  # its own data
    assert set(cases) <= set(lead_row) and cases, "some leads must load"
    assert any(rejected_leads.values()), "the messy data must reject some leads"
    # contacts with no lead are clients too: every contact that passed validation is in Kayse
    assert set(clients) == set(outcome.validation.clients.get_column("external_source_id"))

    # a second extract of the unchanged CRM, loaded: nothing to send
    writes_before = len(kayse_writes(sandbox))
    second_dir = extract(axiomatic, tmp_path / "second")
    again = run.load([second_dir], MAPPING, connection=connection, ledger_path=ledger)
    assert again.result is not None
    assert again.plan.total_requests == 0 and again.result.requests_sent == 0
    assert len(kayse_writes(sandbox)) == writes_before
