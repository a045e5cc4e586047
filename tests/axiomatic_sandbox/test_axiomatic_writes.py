"""Writes exist, are logged, and never change the data: a test can prove an extractor sent none."""

from __future__ import annotations

import requests

from pipeline.axiomatic_sandbox import RunningAxiomatic
from tests.axiomatic_sandbox.conftest import get


def _send(running: RunningAxiomatic, method: str, path: str, key: str = "write") -> requests.Response:
    return requests.request(
        method,
        f"{running.base_url}/api/crm{path}",
        params={"entityId": running.entity_id},
        json={"firstName": "Changed"},
        headers={"Authorization": f"Bearer {running.keys[key]}"},
        timeout=10,
    )


def test_writes_are_acknowledged_logged_and_not_applied(axiomatic: RunningAxiomatic) -> None:
    before = axiomatic.dataset()
    contact_id = before["contacts"][0]["id"]
    lead_id = before["leads"][0]["id"]
    answers = [
        _send(axiomatic, "POST", "/contacts"),
        _send(axiomatic, "PATCH", f"/contacts/{contact_id}"),
        _send(axiomatic, "DELETE", f"/contacts/{contact_id}"),
        _send(axiomatic, "POST", f"/leads/{lead_id}/stage"),
        _send(axiomatic, "POST", "/outbound-email"),
        _send(axiomatic, "POST", "/prospecting/add-to-marketing-list"),
    ]
    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 201, 201]
    assert answers[1].json()["id"] == contact_id
    assert axiomatic.dataset() == before
    assert get(axiomatic, f"/contacts/{contact_id}").json() == before["contacts"][0]
    writes = [entry for entry in axiomatic.request_log() if entry["method"] != "GET"]
    assert [(entry["method"], entry["status"], entry["key"]) for entry in writes][:3] == [
        ("POST", 201, "write"),
        ("PATCH", 200, "write"),
        ("DELETE", 200, "write"),
    ]
    assert len(writes) == 6


def test_a_write_with_a_read_key_is_refused_and_still_logged(axiomatic: RunningAxiomatic) -> None:
    response = _send(axiomatic, "POST", "/contacts", key="read")
    assert response.status_code == 403
    assert "write:crm" in response.json()["error"]
    assert [(e["method"], e["path"], e["status"]) for e in axiomatic.request_log()] == [
        ("POST", "/api/crm/contacts", 403)
    ]


def test_a_method_a_route_does_not_take_is_405(axiomatic: RunningAxiomatic) -> None:
    assert _send(axiomatic, "POST", "/dashboard").status_code == 405
    assert _send(axiomatic, "PUT", "/contacts").status_code == 405
    assert axiomatic.request_log()[-1]["method"] == "PUT"


def test_the_log_records_method_path_query_and_status(axiomatic: RunningAxiomatic) -> None:
    get(axiomatic, "/leads", page=2, pageSize=10)
    (entry,) = axiomatic.request_log()
    assert entry["method"] == "GET" and entry["path"] == "/api/crm/leads" and entry["status"] == 200
    assert entry["query"] == {"page": "2", "pageSize": "10", "entityId": axiomatic.entity_id}
