"""Paging and record quirks become named findings, never a loop, a traceback or a shorter table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.extract.axiomatic import ReadOnlyClient, extract
from pipeline.extract.axiomatic.pages import read_list
from tests.extract.axiomatic.helpers import assert_table_is_exactly, read_table, small, summary


def _codes(out: Path) -> dict[str, dict[str, Any]]:
    return {f"{f['resource']}:{f['code']}": f for f in summary(out)["findings"]}


def test_a_repeated_page_is_an_error_finding_not_an_endless_loop(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, leads=250, repeat_page=1, quirks_on=("leads",))
    out = tmp_path / "crm"
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    findings = _codes(out)
    assert findings["leads:repeated-page"]["severity"] == "error"
    assert not result.complete and result.exit_code == 1
    report = summary(out)
    assert report["complete"] is False and report["endpoints"]["leads"]["complete"] is False
    assert report["endpoints"]["leads"]["pages"] == 2  # page 2 repeated page 1: stopped there
    assert len(read_table(out / "leads.csv")) == 100


def test_a_page_ceiling_stops_any_loop(axiomatic: Any) -> None:
    small(axiomatic)
    with ReadOnlyClient(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id) as client:
        read = read_list(client, "activities", "/api/crm/activities", page_size=10, max_pages=3)
    assert [f.code for f in read.findings] == ["page-ceiling"]
    assert read.stats.pages == 3 and not read.stats.complete


def test_records_repeated_across_pages_are_kept_once(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, leads=250, duplicate_across_pages=True, quirks_on=("leads",))
    out = tmp_path / "crm"
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    assert_table_is_exactly(read_table(out / "leads.csv"), axiomatic.dataset()["leads"], "leads")
    assert _codes(out)["leads:duplicates-dropped"]["count"] >= 1  # a record served again on the next page
    assert result.complete


def test_records_without_id_are_kept_and_counted(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, missing_id_every=7)
    out = tmp_path / "crm"
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    truth = axiomatic.dataset()
    findings = _codes(out)
    for resource in ("contacts", "leads", "activities", "tasks", "companies"):
        assert_table_is_exactly(read_table(out / f"{resource}.csv"), truth[resource], resource)
        missing = sum(1 for r in truth[resource] if "id" not in r)
        assert findings[f"{resource}:record-without-id"]["count"] == missing > 0


def test_a_field_that_changes_type_is_named(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, type_flip="leads.value")
    out = tmp_path / "crm"
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    flips = [
        f for f in summary(out)["findings"] if f["code"] == "field-type-changed" and f["resource"] == "leads"
    ]
    assert [f["field"] for f in flips] == ["value"]
    assert "number" in flips[0]["message"] and "string" in flips[0]["message"]
    assert_table_is_exactly(read_table(out / "leads.csv"), axiomatic.dataset()["leads"], "leads")


def test_an_envelope_without_a_list_is_an_error_finding(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, envelopes={"tasks": "nolist+total"})
    out = tmp_path / "crm"
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    finding = _codes(out)["tasks:envelope-without-list"]
    assert finding["severity"] == "error" and "total" in finding["message"] + str(finding)
    assert not result.complete
    assert read_table(out / "tasks.csv") == []


def test_other_envelopes_are_found_and_pinned(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, envelopes={"contacts": "array", "leads": "records+total+page", "tasks": "tasks+hasMore"})
    out = tmp_path / "crm"
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    endpoints = summary(out)["endpoints"]
    assert (
        endpoints["contacts"]["list_key"],
        endpoints["leads"]["list_key"],
        endpoints["tasks"]["list_key"],
    ) == (
        "(bare array)",
        "records",
        "tasks",
    )
    assert result.complete
    for resource in ("contacts", "leads", "tasks"):
        assert_table_is_exactly(read_table(out / f"{resource}.csv"), axiomatic.dataset()[resource], resource)


def test_a_page_that_stays_not_json_is_an_error_finding(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, leads=250)
    axiomatic.inject("badjson", path="/api/crm/leads", count=50)
    out = tmp_path / "crm"
    result = extract(
        axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out, client_options={"backoff_base": 0.01}
    )
    finding = _codes(out)["leads:page-not-json"]
    assert finding["severity"] == "error" and "page 1" in finding["message"] + str(finding)
    assert not result.complete and result.exit_code == 1


def test_a_stage_count_that_disagrees_is_named(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, lead_count_skew=3)
    out = tmp_path / "crm"
    extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out)
    mismatches = [f for f in summary(out)["findings"] if f["code"] == "stage-count-mismatch"]
    assert len(mismatches) == 1
