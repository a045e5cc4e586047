"""Keys, scopes and entities: who may read what, and the error each refusal gets."""

from __future__ import annotations

import requests

from pipeline.axiomatic_sandbox import DEMO_ENTITY, DEMO_KEY, OTHER_ENTITY, RunningAxiomatic
from tests.axiomatic_sandbox.conftest import get


def test_the_demo_key_is_the_read_key_of_the_demo_entity(axiomatic: RunningAxiomatic) -> None:
    assert axiomatic.api_key == DEMO_KEY == axiomatic.keys["read"]
    assert axiomatic.entity_id == DEMO_ENTITY
    assert set(axiomatic.keys) == {"read", "write", "noscope", "other_entity"}
    assert all(key.startswith("ak_") for key in axiomatic.keys.values())
    assert axiomatic.base_url.startswith("http://127.0.0.1:") and "/api" not in axiomatic.base_url


def test_entities_lists_what_the_key_reaches(axiomatic: RunningAxiomatic) -> None:
    response = get(axiomatic, "/entities", entity=None)
    assert response.status_code == 200
    assert response.json() == {
        "entities": [{"id": DEMO_ENTITY, "name": "Demo Injury Law LLP", "type": "company"}]
    }
    other = get(axiomatic, "/entities", key="other_entity", entity=None).json()
    assert [entity["id"] for entity in other["entities"]] == [OTHER_ENTITY]


def test_a_bad_or_missing_key_is_401_with_an_error_body(axiomatic: RunningAxiomatic) -> None:
    url = f"{axiomatic.base_url}/api/crm/contacts"
    params = {"entityId": DEMO_ENTITY}
    for headers in (
        {},
        {"Authorization": "Bearer ak_not_a_key"},
        {"Authorization": DEMO_KEY},  # no "Bearer"
        {"X-API-KEY": DEMO_KEY},
    ):
        response = requests.get(url, params=params, headers=headers, timeout=10)
        assert response.status_code == 401
        assert set(response.json()) == {"error"}
        assert "X-RateLimit-Limit" in response.headers


def test_a_key_without_the_crm_scope_is_403(axiomatic: RunningAxiomatic) -> None:
    response = get(axiomatic, "/contacts", key="noscope")
    assert response.status_code == 403
    assert "read:crm" in response.json()["error"]


def test_write_scope_implies_read(axiomatic: RunningAxiomatic) -> None:
    assert get(axiomatic, "/contacts", key="write").status_code == 200


def test_an_entity_the_key_does_not_reach_is_403(axiomatic: RunningAxiomatic) -> None:
    assert get(axiomatic, "/contacts", entity=OTHER_ENTITY).status_code == 403
    response = get(axiomatic, "/leads", key="other_entity")
    assert response.status_code == 403
    assert DEMO_ENTITY in response.json()["error"]


def test_the_other_entity_has_an_empty_crm(axiomatic: RunningAxiomatic) -> None:
    response = get(axiomatic, "/contacts", key="other_entity", entity=OTHER_ENTITY)
    assert response.json() == {"contacts": [], "total": 0}


def test_entity_id_is_required_and_must_be_a_uuid(axiomatic: RunningAxiomatic) -> None:
    missing = get(axiomatic, "/contacts", entity=None)
    assert missing.status_code == 400
    assert "entityId" in missing.json()["error"]
    # a browser session's header does not replace the parameter for an API key
    headers = {"Authorization": f"Bearer {DEMO_KEY}", "x-entity-id": DEMO_ENTITY}
    assert (
        requests.get(f"{axiomatic.base_url}/api/crm/contacts", headers=headers, timeout=10).status_code == 400
    )
    assert get(axiomatic, "/contacts", entity="not-a-uuid").status_code == 400


def test_unknown_routes_and_records_are_404_with_an_error_body(axiomatic: RunningAxiomatic) -> None:
    for path in ("/no-such-thing", "/contacts/00000000-0000-4000-8000-000000000000", "/leads/x/timeline"):
        response = get(axiomatic, path)
        assert response.status_code == 404, path
        assert set(response.json()) == {"error"}
    outside = requests.get(f"{axiomatic.base_url}/v1/clients", timeout=10)
    assert outside.status_code == 404


def test_bad_paging_and_filter_values_are_400(axiomatic: RunningAxiomatic) -> None:
    for params in ({"page": "0"}, {"page": "x"}, {"pageSize": "-3"}):
        assert get(axiomatic, "/contacts", **params).status_code == 400, params
    assert get(axiomatic, "/companies", role="friend").status_code == 400
    assert get(axiomatic, "/tasks", status="later").status_code == 400
