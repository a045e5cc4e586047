"""Clients: create/get/put/delete, bulk upsert (partial and atomic), bulk delete with and without force."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.sandbox.server import RunningSandbox
from tests.sandbox.conftest import Api, case_body, client_body


def test_create_returns_201_with_the_record_and_origin(api: Api) -> None:
    body = client_body(city="New York", date_of_birth="1990-02-28")
    response = api.post("/clients", body)
    assert response.status_code == 201
    created = response.json()
    assert isinstance(created["id"], int)
    assert {k: created[k] for k in body} == body
    assert created["origin"] == "public_api" and created["update_origin"] is None
    assert created["voice_calls_opted_out"] is False and created["case_ids"] == []
    assert created["address_line1"] is None
    assert api.ok("GET", f"/clients/{created['id']}") == created


def test_duplicate_external_source_id_creates_a_second_client(api: Api) -> None:
    first = api.new_client(external_source_id="same")
    second = api.new_client(external_source_id="same")
    assert first["id"] != second["id"]


def test_put_replaces_the_record_and_keeps_links_when_case_ids_is_absent(api: Api) -> None:
    case = api.new_case()
    client = api.new_client(city="Boston", case_ids=[case["id"]])
    assert client["case_ids"] == [case["id"]]
    replacement = client_body(first_name="Grace", external_source_id="cl-x", city=..., email=..., mobile=...)
    updated = api.ok("PUT", f"/clients/{client['id']}", replacement)
    assert updated["first_name"] == "Grace" and updated["city"] is None and updated["email"] is None
    assert updated["update_origin"] == "public_api"
    assert updated["case_ids"] == [case["id"]]
    cleared = api.ok("PUT", f"/clients/{client['id']}", {**replacement, "case_ids": []})
    assert cleared["case_ids"] == []


def test_put_needs_the_required_fields_and_an_existing_client(api: Api) -> None:
    client = api.new_client()
    partial = api.put(f"/clients/{client['id']}", {"city": "Austin"})
    assert partial.status_code == 400 and "first_name" in partial.json()["message"]
    assert api.put("/clients/987654", client_body()).status_code == 404


def test_delete_is_soft_and_get_after_delete_is_404(sandbox: RunningSandbox, api: Api) -> None:
    client = api.new_client()
    assert api.ok("DELETE", f"/clients/{client['id']}") == {"message": "client deleted successfully"}
    assert api.get(f"/clients/{client['id']}").status_code == 404
    assert api.delete(f"/clients/{client['id']}").status_code == 404
    (row,) = sandbox.state()["clients"]
    assert row["id"] == client["id"] and row["deleted"] is True


def test_invalid_fields_are_400_with_the_field_named(api: Api) -> None:
    cases = {
        "mobile": client_body(mobile="555-0100"),
        "date_of_birth": client_body(date_of_birth="02/28/1990"),
        "email": client_body(email="not-an-email"),
        "last_name": client_body(last_name=...),
        "external_source_id": client_body(external_source_id=""),
        "case_ids": client_body(case_ids=[424242]),
        "voice_calls_opted_out": client_body(voice_calls_opted_out="yes"),
    }
    for field, body in cases.items():
        response = api.post("/clients", body)
        assert response.status_code == 400, field
        assert response.json()["message"].startswith(field), response.json()
    assert api.post("/clients", "not an object").status_code == 400
    bad_json = api.call("POST", "/clients", data=b"{nope", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400


def test_unknown_keys_are_ignored_unless_strict(sandbox: RunningSandbox, api: Api) -> None:
    created = api.new_client(meta={"a": 1})
    assert "meta" not in created
    sandbox.configure(strict=True)
    response = api.post("/clients", client_body(meta={"a": 1}))
    assert response.status_code == 400 and "meta" in response.json()["message"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mobile=st.one_of(st.from_regex(r"\A\+[1-9]\d{6,14}\Z"), st.text(max_size=20)))
def test_mobile_must_be_e164(api: Api, mobile: str) -> None:
    import re

    expected = 201 if re.fullmatch(r"\+[1-9]\d{6,14}", mobile) else 400
    assert api.post("/clients", client_body(mobile=mobile)).status_code == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    value=st.one_of(
        st.dates().map(date.isoformat), st.text(max_size=12), st.from_regex(r"\A\d{4}-\d{2}-\d{2}\Z")
    )
)
def test_date_of_birth_must_be_a_real_iso_date(api: Api, value: str) -> None:
    try:
        valid = date.fromisoformat(value).isoformat() == value and len(value) == 10
    except ValueError:
        valid = False
    assert api.post("/clients", client_body(date_of_birth=value)).status_code == (201 if valid else 400)


# ---- bulk upsert -------------------------------------------------------------------------


def test_bulk_partial_success_reports_failed_items_and_applies_the_rest(
    sandbox: RunningSandbox, api: Api
) -> None:
    existing = api.new_client()
    items = [
        client_body(external_source_id="ok-1"),
        client_body(external_source_id="bad-1", mobile="12"),
        {**client_body(first_name="Renamed"), "id": existing["id"]},
        {**client_body(external_source_id="ghost"), "id": 999999},
        "not an object",
    ]
    result = api.ok("POST", "/clients/bulk", {"clients": items})
    assert [c["external_source_id"] for c in result["clients"]] == ["ok-1", items[2]["external_source_id"]]
    assert result["successful_ids"] == [c["id"] for c in result["clients"]]
    assert result["successful_ids"][1] == existing["id"]
    failed = {f["index"]: f for f in result["failed"]}
    assert set(failed) == {1, 3, 4}
    assert failed[1]["external_source_id"] == "bad-1" and failed[1]["id"] is None
    assert failed[1]["message"].startswith("mobile")
    assert failed[3]["id"] == 999999 and failed[3]["error"] == "not found"
    assert set(failed[1]) == {"index", "id", "external_source_id", "error", "message"}
    assert api.ok("GET", f"/clients/{existing['id']}")["first_name"] == "Renamed"
    assert api.ok("GET", f"/clients/{existing['id']}")["update_origin"] == "public_api"
    live = [c for c in sandbox.state()["clients"] if not c["deleted"]]
    assert len(live) == 2


def test_bulk_atomic_mode_fails_the_whole_batch(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.configure(bulk_mode="atomic")
    response = api.post("/clients/bulk", {"clients": [client_body(), client_body(mobile="bad")]})
    assert response.status_code == 400
    assert response.json()["message"].startswith("clients[1]: mobile")
    assert sandbox.state()["clients"] == []
    ok = api.ok("POST", "/clients/bulk", {"clients": [client_body(), client_body()]})
    assert len(ok["successful_ids"]) == 2 and ok["failed"] == []


def test_bulk_over_the_cap_is_400_for_the_whole_batch(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.configure(bulk_max=3)
    response = api.post("/clients/bulk", {"clients": [client_body() for _ in range(4)]})
    assert response.status_code == 400 and "at most 3" in response.json()["message"]
    assert sandbox.state()["clients"] == []
    assert (
        len(api.ok("POST", "/clients/bulk", {"clients": [client_body() for _ in range(3)]})["clients"]) == 3
    )
    assert api.post("/clients/bulk", {"nope": []}).status_code == 400


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pattern=st.lists(st.booleans(), min_size=0, max_size=12))
def test_bulk_partial_outcome_matches_item_validity(
    sandbox_server: RunningSandbox, pattern: list[bool]
) -> None:
    sandbox_server.reset()
    api = Api(sandbox_server)
    items = [
        client_body(external_source_id=f"p{i}", mobile="+15555550100" if good else "bad")
        for i, good in enumerate(pattern)
    ]
    result = api.ok("POST", "/clients/bulk", {"clients": items})
    assert [f["index"] for f in result["failed"]] == [i for i, good in enumerate(pattern) if not good]
    assert [c["external_source_id"] for c in result["clients"]] == [
        f"p{i}" for i, g in enumerate(pattern) if g
    ]
    assert len(set(result["successful_ids"])) == sum(pattern)


# ---- bulk delete -------------------------------------------------------------------------


def test_bulk_delete_refuses_linked_clients_without_force(api: Api) -> None:
    lone = api.new_client()
    linked = api.new_client()
    case = api.new_case(client_ids=[linked["id"]])
    result = api.ok("POST", "/clients/bulk_delete", {"client_ids": [lone["id"], linked["id"], 777777]})
    assert result["deleted_ids"] == [lone["id"]]
    failed = {f["id"]: f for f in result["failed"]}
    assert failed[linked["id"]]["error"] == "linked" and str(case["id"]) in failed[linked["id"]]["message"]
    assert failed[777777]["error"] == "not found"
    assert api.get(f"/clients/{linked['id']}").status_code == 200
    forced = api.ok("POST", "/clients/bulk_delete", {"client_ids": [linked["id"]], "force": True})
    assert forced["deleted_ids"] == [linked["id"]]
    assert api.ok("GET", f"/cases/{case['id']}")["client_ids"] == []


def test_bulk_delete_over_500_ids_is_400(api: Api) -> None:
    client = api.new_client()
    response = api.post("/clients/bulk_delete", {"client_ids": [client["id"], *range(10**6, 10**6 + 500)]})
    assert response.status_code == 400
    assert api.get(f"/clients/{client['id']}").status_code == 200


def test_client_case_links_show_on_both_sides(api: Api) -> None:
    case = api.new_case()
    client = api.new_client(case_ids=[case["id"]])
    assert api.ok("GET", f"/cases/{case['id']}")["client_ids"] == [client["id"]]
    api.ok("POST", "/cases", case_body(client_ids=[client["id"]]), status=201)
    assert len(api.ok("GET", f"/clients/{client['id']}")["case_ids"]) == 2
