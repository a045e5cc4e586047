"""Every endpoint method of the client, over real HTTP against the sandbox: success and documented errors."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.kayse import AuthError, BadRequest, KayseClient, NotFound
from tests.kayse.helpers import MakeClient, case_record, client_record


def _calls(sandbox: Any, method: str, path: str) -> list[dict[str, Any]]:
    return [e for e in sandbox.request_log() if e["method"] == method and e["path"] == path]


def test_client_lifecycle(kayse: KayseClient) -> None:
    created = kayse.clients.create(client_record(1, city="Boston"))
    client_id = created["id"]
    assert isinstance(client_id, int)
    assert kayse.clients.get(client_id)["city"] == "Boston"

    updated = kayse.clients.update(client_id, client_record(1, city="Salem"))
    assert updated["city"] == "Salem"
    assert kayse.clients.get(client_id)["city"] == "Salem"

    kayse.clients.delete(client_id)
    with pytest.raises(NotFound) as caught:
        kayse.clients.get(client_id)
    assert caught.value.status == 404
    assert f"GET /v1/clients/{client_id}" in str(caught.value)


def test_invalid_client_is_a_bad_request_with_the_api_message(kayse: KayseClient, sandbox: Any) -> None:
    with pytest.raises(BadRequest) as caught:
        kayse.clients.create(client_record(1, mobile="12"))
    error = caught.value
    assert error.status == 400
    assert error.body["error"] == error.error == "bad request"
    assert "mobile" in (error.api_message or "")
    assert "POST /v1/clients → 400" in str(error)
    assert len(_calls(sandbox, "POST", "/v1/clients")) == 1  # a 400 is never retried
    assert sandbox.state()["clients"] == []


def test_wrong_key_is_an_auth_error_sent_once(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(api_key="not-the-right-key-42")
    with pytest.raises(AuthError) as caught:
        kayse.metadata.case_types()
    assert caught.value.status == 401
    assert "not-the-right-key-42" not in str(caught.value)
    assert "KAYSE_API_KEY" in str(caught.value)  # the hint says where the key comes from
    assert len(sandbox.request_log()) == 1


def test_case_lifecycle_links_clients(kayse: KayseClient) -> None:
    client_id = kayse.clients.create(client_record(1))["id"]
    case = kayse.cases.create(case_record(1, client_ids=[client_id], court_name="Superior"))
    assert case["client_ids"] == [client_id]
    assert kayse.cases.get(case["id"])["court_name"] == "Superior"

    # PUT replaces the whole case: a field left out becomes null.
    replaced = kayse.cases.update(case["id"], case_record(1, client_ids=[client_id]))
    assert replaced["court_name"] is None

    kayse.cases.delete(case["id"])
    with pytest.raises(NotFound):
        kayse.cases.get(case["id"])


def test_raw_bulk_upsert_creates_and_updates(kayse: KayseClient, sandbox: Any) -> None:
    answer = kayse.clients.bulk_upsert([client_record(1), client_record(2)])
    first, _second = answer["successful_ids"]
    answer = kayse.clients.bulk_upsert([client_record(1, id=first, city="Reno"), client_record(3)])
    assert answer["successful_ids"][0] == first
    assert {c["external_source_id"] for c in sandbox.state()["clients"]} == {"ext-1", "ext-2", "ext-3"}
    assert kayse.clients.get(first)["city"] == "Reno"


def test_case_bulk_delete_chunks_at_500(kayse: KayseClient, sandbox: Any) -> None:
    real = [kayse.cases.create(case_record(n))["id"] for n in range(3)]
    unknown = list(range(10_000, 10_998))
    result = kayse.cases.bulk_delete(real + unknown, with_clients=True)
    assert result.requests == 3
    assert sorted(result.deleted_ids) == sorted(real)
    assert [e["items"] for e in _calls(sandbox, "POST", "/v1/cases/bulk_delete")] == [500, 500, 1]
    assert all(c["deleted"] for c in sandbox.state()["cases"])


def test_client_bulk_delete_respects_force(kayse: KayseClient) -> None:
    linked = kayse.clients.create(client_record(1))["id"]
    free = kayse.clients.create(client_record(2))["id"]
    kayse.cases.create(case_record(1, client_ids=[linked]))

    result = kayse.clients.bulk_delete([linked, free])
    assert result.deleted_ids == [free]
    assert [f["id"] for f in result.failed] == [linked]

    assert kayse.clients.bulk_delete([linked], force=True).deleted_ids == [linked]


def test_case_lists_membership_and_pages(kayse: KayseClient) -> None:
    client_id = kayse.clients.create(client_record(1))["id"]
    case_ids = [kayse.cases.create(case_record(n, client_ids=[client_id]))["id"] for n in range(3)]

    case_list = kayse.case_lists.create("Leads PI", description="from import", include_ids=case_ids[:1])
    list_id = case_list["id"]
    assert case_list["case_count"] == 1

    kayse.case_lists.attach(list_id, case_ids)
    kayse.case_lists.attach(list_id, case_ids)  # set semantics: attaching twice changes nothing
    assert kayse.case_lists.list(key="Leads PI")["data"][0]["case_count"] == 3
    kayse.case_lists.detach(list_id, case_ids[:2])
    assert kayse.case_lists.list(key="Leads PI")["data"][0]["case_count"] == 1

    removed = kayse.case_lists.remove_clients(list_id, [client_id])
    assert removed["list_id"] == list_id
    appended = kayse.case_lists.append_clients(list_id, [client_id])
    assert appended["matched_case_count"] == 3

    for n in range(6):
        kayse.case_lists.create(f"Other {n}")
    page = kayse.case_lists.list(page=2, page_size=3)
    assert page["page"] == 2 and page["total"] == 7 and len(page["data"]) == 3
    names = [item["name"] for item in kayse.case_lists.iter_all(page_size=3)]
    assert sorted(names) == sorted(["Leads PI", *(f"Other {n}" for n in range(6))])
    assert [item["name"] for item in kayse.case_lists.iter_all(key="Other 5")] == ["Other 5"]
    assert [item["name"] for item in kayse.case_lists.iter_all(hide_empty=True)] == ["Leads PI"]


def test_case_list_bulk(kayse: KayseClient) -> None:
    answer = kayse.case_lists.bulk([{"name": "A"}, {"name": "B"}])
    ids = answer["successful_ids"]
    assert len(ids) == 2
    kayse.case_lists.bulk([{"id": ids[0], "name": "A2"}])
    assert [item["name"] for item in kayse.case_lists.iter_all(key="A2")] == ["A2"]


def test_campaign_on_a_single_type_list(kayse: KayseClient, sandbox: Any) -> None:
    types = {t["name"]: t["id"] for t in kayse.metadata.case_types()}
    case_id = kayse.cases.create(case_record(1))["id"]
    list_id = kayse.case_lists.create(
        "PI", filter={"case_type_ids": [types["personal_injury"]]}, include_ids=[case_id]
    )["id"]
    runs = [{"start_date": "2026-12-01", "end_date": "2026-12-14", "messaging_only": True}]
    campaign = kayse.campaigns.create("Welcome", list_id, runs, never_ending=False)
    assert isinstance(campaign["id"], int)
    assert sandbox.state()["campaigns"][0]["name"] == "Welcome"


def test_metadata(kayse: KayseClient) -> None:
    types = kayse.metadata.case_types()
    assert "personal_injury" in {t["name"] for t in types}
    assert all("statuses" in t for t in types)
    objects = {o["name"] for o in kayse.metadata.objects()}
    assert {"clients", "cases", "case_lists"} <= objects


def test_metadata_path_is_configurable(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(metadata_path="/metadata/case_types_elsewhere")
    with pytest.raises(NotFound):
        kayse.metadata.case_types()
    assert sandbox.request_log()[-1]["path"] == "/v1/metadata/case_types_elsewhere"


def test_crm_endpoints(kayse: KayseClient) -> None:
    assert isinstance(kayse.crm.integrations(), list)
    answer = kayse.crm.upsert_field_mappings([{"kayse_field": "case_status", "crm_field": "statusid"}])
    assert answer["updated"] == 1
    mappings = kayse.crm.field_mappings()
    assert {"kayse_field": "case_status", "crm_field": "statusid", "direction": "bidirectional"} in mappings
    assert kayse.crm.outcome_types() is not None


def test_sms_and_email(kayse: KayseClient, sandbox: Any) -> None:
    client_id = kayse.clients.create(client_record(1))["id"]
    case_id = kayse.cases.create(case_record(1, client_ids=[client_id]))["id"]
    assert (
        kayse.communication.send_sms(case_id, client_id, "Hello {{first_name}}")["message"] == "sms scheduled"
    )
    assert kayse.communication.send_email(case_id, client_id, "Hi", "Body")["message"] == "email scheduled"
    assert [c["channel"] for c in sandbox.state()["communications"]] == ["sms", "email"]
    with pytest.raises(BadRequest):
        kayse.communication.send_sms(case_id, client_id, "")


def test_agents(kayse: KayseClient) -> None:
    agent = kayse.agents.create(
        "Intake", "voice-1", "Hello", "Ask about the accident", is_transfer_enabled=False
    )
    assert isinstance(agent["id"], str)
    updated = kayse.agents.update(agent["id"], greeting="Good morning")
    assert updated["greeting"] == "Good morning"
    assert updated["task"] == "Ask about the accident"
    with pytest.raises(NotFound):
        kayse.agents.update("agent_missing", greeting="x")


def test_requests_sent_counts_every_attempt(kayse: KayseClient, sandbox: Any) -> None:
    kayse.metadata.case_types()
    kayse.clients.create(client_record(1))
    with pytest.raises(BadRequest):
        kayse.clients.create({})
    assert kayse.requests_sent == len(sandbox.request_log()) == 3
    assert kayse.rate_limit is not None and kayse.rate_limit.remaining == 497
