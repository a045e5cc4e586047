"""Against the local Axiomatic over real HTTP: the folder holds exactly what was served, once."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pipeline.extract.axiomatic import extract
from tests.extract.axiomatic.helpers import assert_table_is_exactly, read_table, small, summary

RESOURCES = ("contacts", "companies", "memberships", "pipeline_stages", "leads", "activities", "tasks")


def test_the_messy_crm_is_extracted_exactly(axiomatic: Any, tmp_path: Path) -> None:
    out = tmp_path / "crm"
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    truth = axiomatic.dataset()
    for resource in RESOURCES:
        assert_table_is_exactly(read_table(out / f"{resource}.csv"), truth[resource], resource)
    assert result.complete and result.exit_code == 0
    assert result.entity_name == "Demo Injury Law LLP"
    report = summary(out)
    assert report["entity"] == {"id": axiomatic.entity_id, "name": "Demo Injury Law LLP"}
    assert report["files"] == {f"{r}.csv": len(truth[r]) for r in RESOURCES}
    # the envelope of every endpoint, found on its first page and reported
    keys = {name: e["list_key"] for name, e in report["endpoints"].items()}
    assert keys == {
        "contacts": "contacts",
        "companies": "(bare array)",
        "memberships": "memberships",
        "pipeline_stages": "stages",
        "leads": "data",
        "activities": "items",
        "tasks": "results",
        "company_contacts": "contacts",
    }
    assert report["endpoints"]["leads"]["page_size_served"] == 100  # the server's cap, not the 1000 asked
    # the messy data is reported, not fixed
    codes = {f["code"] for f in report["findings"]}
    assert {"lead-contact-missing", "lead-without-contact", "field-type-changed"} <= codes
    # nothing but GET, every one naming the entity
    log = axiomatic.request_log()
    assert {entry["method"] for entry in log} == {"GET"}
    assert all(entry["query"].get("entityId") == axiomatic.entity_id for entry in log)
    assert report["requests"] == len(log) == result.requests
    # personal data: the folder 0700, each file 0600
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in out.iterdir()} == {0o600}


def test_timelines_are_one_request_per_lead_and_exact(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic)
    out = tmp_path / "crm"
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out, timelines=True)
    truth = axiomatic.dataset()
    events = [event for lead_events in truth["timelines"].values() for event in lead_events]
    assert_table_is_exactly(read_table(out / "timelines.csv"), events, "timelines")
    timeline_requests = [e for e in axiomatic.request_log() if e["path"].endswith("/timeline")]
    assert len(timeline_requests) == len(truth["leads"])


def test_memberships_via_the_companies_read_only_member_contacts(axiomatic: Any, tmp_path: Path) -> None:
    out = tmp_path / "crm"
    small(axiomatic)
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    truth = axiomatic.dataset()
    members = {m["contactId"] for m in truth["memberships"]}
    log = axiomatic.request_log()
    per_contact = [e for e in log if e["path"].endswith("/company-memberships")]
    per_company = [e for e in log if e["path"].startswith("/api/crm/companies/")]
    assert result.memberships_via == "companies"
    assert len(per_company) == len(truth["companies"])
    assert {e["path"].split("/")[4] for e in per_contact} == members
    assert_table_is_exactly(read_table(out / "memberships.csv"), truth["memberships"], "memberships")
    # the other way reads the same memberships with one list per contact
    again = tmp_path / "again"
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, again, memberships_via="contacts")
    assert read_table(again / "memberships.csv") == read_table(out / "memberships.csv")


def test_a_rerun_replaces_the_folder(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic)
    out = tmp_path / "crm"
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    (out / "stale.csv").write_text("left over")
    small(axiomatic, seed=8)
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    assert not (out / "stale.csv").exists()
    assert_table_is_exactly(read_table(out / "leads.csv"), axiomatic.dataset()["leads"], "leads")
    assert [p.name for p in tmp_path.iterdir()] == ["crm"]  # no staging folder left behind
