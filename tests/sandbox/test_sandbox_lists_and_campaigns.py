"""Case lists (search, create, bulk, attach/detach, clients append/remove) and campaign rules."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.sandbox.server import RunningSandbox
from tests.sandbox.conftest import Api


def members(sandbox: RunningSandbox, list_id: int) -> list[int]:
    (found,) = [item for item in sandbox.state()["case_lists"] if item["id"] == list_id]
    return list(found["case_ids"])


def test_create_static_list_with_include_ids_and_no_filter(sandbox: RunningSandbox, api: Api) -> None:
    a, b = api.new_case(), api.new_case()
    response = api.post("/case_lists", {"name": "Static", "include_ids": [a["id"], b["id"]]})
    assert response.status_code == 201
    created = response.json()
    assert (
        created["case_count"] == 2 and created["origin"] == "public_api" and created["update_origin"] is None
    )
    assert set(created) >= {"id", "name", "description", "case_count", "origin", "update_origin"}
    assert members(sandbox, created["id"]) == [a["id"], b["id"]]


def test_list_create_errors(api: Api) -> None:
    assert api.post("/case_lists", {"description": "no name"}).status_code == 400
    unknown = api.post("/case_lists", {"name": "x", "include_ids": [123456]})
    assert unknown.status_code == 400 and "123456" in unknown.json()["message"]
    assert api.post("/case_lists", {"name": "x", "filter": {"case_type_ids": [999]}}).status_code == 400


def test_filter_membership_is_dynamic(sandbox: RunningSandbox, api: Api) -> None:
    types = api.type_ids()
    pi = api.new_case(type="personal_injury")
    api.new_case(type="civil")
    created = api.ok(
        "POST",
        "/case_lists",
        {"name": "PI", "filter": {"case_type_ids": [types["personal_injury"]]}},
        status=201,
    )
    later = api.new_case(type="personal_injury")
    assert members(sandbox, created["id"]) == [pi["id"], later["id"]]
    api.ok("DELETE", f"/cases/{pi['id']}")
    assert members(sandbox, created["id"]) == [later["id"]]


def test_search_by_key_paging_and_hide_empty(api: Api) -> None:
    case = api.new_case()
    for n in range(5):
        api.ok("POST", "/case_lists", {"name": f"Spring Intake {n}"}, status=201)
    api.ok("POST", "/case_lists", {"name": "Other", "include_ids": [case["id"]]}, status=201)
    page = api.ok("GET", "/case_lists?key=spring%20INTAKE&page=2&page_size=2")
    assert page["page"] == 2 and page["total"] == 5
    assert [item["name"] for item in page["data"]] == ["Spring Intake 2", "Spring Intake 3"]
    non_empty = api.ok("GET", "/case_lists?hide_empty=true")
    assert [item["name"] for item in non_empty["data"]] == ["Other"]
    default = api.ok("GET", "/case_lists")
    assert default["page"] == 1 and default["total"] == 6 and len(default["data"]) == 6
    assert api.get("/case_lists?page_size=101").status_code == 400
    assert api.get("/case_lists?page=0").status_code == 400


def test_bulk_lists_create_and_update_as_a_set(sandbox: RunningSandbox, api: Api) -> None:
    a, b = api.new_case(), api.new_case()
    existing = api.ok("POST", "/case_lists", {"name": "Old", "include_ids": [a["id"]]}, status=201)
    result = api.ok(
        "POST",
        "/case_lists/bulk",
        {
            "lists": [
                {"name": "New", "include_ids": [b["id"]]},
                {"id": existing["id"], "name": "Renamed", "include_ids": [b["id"]]},
                {"name": "Broken", "include_ids": [4040404]},
            ]
        },
    )
    assert [(item["action"]) for item in result["lists"]] == ["created", "updated"]
    assert result["lists"][1]["id"] == existing["id"]
    assert [f["index"] for f in result["failed"]] == [2]
    assert members(sandbox, existing["id"]) == [b["id"]]  # replaced, not merged
    assert api.ok("GET", "/case_lists?key=renamed")["total"] == 1


def test_attach_and_detach_are_idempotent_sets(sandbox: RunningSandbox, api: Api) -> None:
    a, b = api.new_case(), api.new_case()
    case_list = api.ok("POST", "/case_lists", {"name": "L"}, status=201)
    path = f"/case_lists/{case_list['id']}"
    assert api.ok("PATCH", path + "/attach", {"include_ids": [a["id"], b["id"]]})["case_count"] == 2
    assert api.ok("PATCH", path + "/attach", {"include_ids": [a["id"]]})["case_count"] == 2
    assert api.ok("PATCH", path + "/detach", {"include_ids": [a["id"]]})["case_count"] == 1
    assert api.ok("PATCH", path + "/detach", {"include_ids": [a["id"]]})["case_count"] == 1
    assert members(sandbox, case_list["id"]) == [b["id"]]
    assert api.patch(path + "/attach", {"include_ids": [5050505]}).status_code == 400
    assert api.patch("/case_lists/6060606/attach", {"include_ids": [a["id"]]}).status_code == 404
    assert api.patch(path + "/attach", {}).status_code == 400


def test_detach_removes_a_filter_match(sandbox: RunningSandbox, api: Api) -> None:
    types = api.type_ids()
    case = api.new_case(type="civil")
    case_list = api.ok(
        "POST", "/case_lists", {"name": "C", "filter": {"case_type_ids": [types["civil"]]}}, status=201
    )
    api.ok("PATCH", f"/case_lists/{case_list['id']}/detach", {"include_ids": [case["id"]]})
    assert members(sandbox, case_list["id"]) == []
    api.ok("PATCH", f"/case_lists/{case_list['id']}/attach", {"include_ids": [case["id"]]})
    assert members(sandbox, case_list["id"]) == [case["id"]]


def test_clients_append_adds_cases_of_the_list_type_and_remove_takes_them_out(
    sandbox: RunningSandbox, api: Api
) -> None:
    types = api.type_ids()
    client = api.new_client()
    pi = api.new_case(type="personal_injury", client_ids=[client["id"]])
    api.new_case(type="civil", client_ids=[client["id"]])
    (pi_type,) = [t for t in api.ok("GET", "/metadata")["case_types"] if t["name"] == "personal_injury"]
    closed = next(s["id"] for s in pi_type["statuses"] if s["name"] == "closed")  # matches no case yet
    list_filter = {"case_type_ids": [types["personal_injury"]], "status_ids": [closed]}
    typed = api.ok("POST", "/case_lists", {"name": "PI only", "filter": list_filter}, status=201)
    assert members(sandbox, typed["id"]) == []
    result = api.ok("POST", f"/case_lists/{typed['id']}/clients/append", {"client_ids": [client["id"]]})
    assert result == {"action": "append", "list_id": typed["id"], "client_count": 1, "matched_case_count": 1}
    assert members(sandbox, typed["id"]) == [pi["id"]]
    untyped = api.ok("POST", "/case_lists", {"name": "Any"}, status=201)
    assert (
        api.ok("POST", f"/case_lists/{untyped['id']}/clients/append", {"client_ids": [client["id"]]})[
            "matched_case_count"
        ]
        == 2
    )
    removed = api.ok("POST", f"/case_lists/{untyped['id']}/clients/remove", {"client_ids": [client["id"]]})
    assert removed["action"] == "remove" and members(sandbox, untyped["id"]) == []
    assert (
        api.post(f"/case_lists/{untyped['id']}/clients/append", {"client_ids": [7070707]}).status_code == 400
    )


# ---- campaigns -----------------------------------------------------------------------------


def typed_list(api: Api, type_name: str = "personal_injury") -> dict[str, Any]:
    case = api.new_case(type=type_name)
    return api.ok(  # type: ignore[no-any-return]
        "POST",
        "/case_lists",
        {
            "name": "Campaign list",
            "filter": {"case_type_ids": [api.type_ids()[type_name]]},
            "include_ids": [case["id"]],
        },
        status=201,
    )


def campaign(list_id: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Spring outreach",
        "case_list_id": list_id,
        "runs": [{"start_date": "2026-04-01", "end_date": "2026-04-14", "messaging_only": True}],
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not ...}


CALL_RUN = {"start_date": "2026-04-01", "end_date": "2026-04-14", "start_time": "09:00", "end_time": "17:00"}


def test_valid_campaigns_return_201_with_an_id(sandbox: RunningSandbox, api: Api) -> None:
    case_list = typed_list(api)
    messaging = api.post("/campaigns", campaign(case_list["id"]))
    assert messaging.status_code == 201 and set(messaging.json()) == {"id"}
    calling = api.post("/campaigns", campaign(case_list["id"], agent_id="agent_abc", runs=[CALL_RUN]))
    assert calling.status_code == 201
    company_hours = campaign(
        case_list["id"],
        agent_id="agent_abc",
        use_company_hours=True,
        runs=[{"start_date": "2026-04-01", "end_date": "2026-04-01"}],
        business_hours=[
            {"start_time": "08:00", "end_time": "12:00"},
            {"start_time": "12:00", "end_time": "21:00"},
        ],
    )
    assert api.post("/campaigns", company_hours).status_code == 201
    stored = sandbox.state()["campaigns"]
    assert len(stored) == 3 and stored[0]["case_ids"] == members(sandbox, case_list["id"])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ...}, "name"),
        ({"case_list_id": ...}, "case_list_id"),
        ({"runs": []}, "runs"),
        ({"runs": [CALL_RUN]}, "agent_id"),
        ({"runs": [{"start_date": "2026-04-01", "messaging_only": True}]}, "runs[0].end_date"),
        (
            {"runs": [{"start_date": "2026-04-10", "end_date": "2026-04-01", "messaging_only": True}]},
            "runs[0].end_date",
        ),
        (
            {"runs": [{"start_date": "04/01/2026", "end_date": "2026-04-01", "messaging_only": True}]},
            "runs[0].start_date",
        ),
        ({"agent_id": "a", "runs": [{**CALL_RUN, "start_time": ...}]}, "runs[0].start_time"),
        ({"agent_id": "a", "runs": [{**CALL_RUN, "start_time": "07:30"}]}, "runs[0].start_time"),
        ({"agent_id": "a", "runs": [{**CALL_RUN, "end_time": "21:30"}]}, "runs[0].end_time"),
        ({"agent_id": "a", "runs": [{**CALL_RUN, "end_time": "09:00"}]}, "runs[0].end_time"),
        ({"agent_id": "a", "runs": [{**CALL_RUN, "start_time": "9am"}]}, "runs[0].start_time"),
        ({"runs": [{**CALL_RUN, "messaging_only": True}]}, "runs[0].start_time"),
        ({"agent_id": "", "runs": [CALL_RUN]}, "agent_id"),
        ({"agent_id": "a", "use_company_hours": True}, "business_hours"),
        (
            {
                "agent_id": "a",
                "use_company_hours": True,
                "business_hours": [
                    {"start_time": "08:00", "end_time": "12:00"},
                    {"start_time": "11:00", "end_time": "13:00"},
                ],
            },
            "business_hours",
        ),
        (
            {
                "agent_id": "a",
                "use_company_hours": True,
                "business_hours": [{"start_time": "07:00", "end_time": "12:00"}],
            },
            "business_hours[0].start_time",
        ),
        ({"concurrency_limit": -1}, "concurrency_limit"),
    ],
)
def test_campaign_rules_reject_with_the_field_named(api: Api, changes: dict[str, Any], field: str) -> None:
    case_list = typed_list(api)
    body = campaign(case_list["id"], **changes)
    if isinstance(body.get("runs"), list):  # `...` inside a run removes that key
        body["runs"] = [{k: v for k, v in run.items() if v is not ...} for run in body["runs"]]
    response = api.post("/campaigns", body)
    assert response.status_code == 400, response.text
    assert response.json()["message"].startswith(field), response.json()["message"]


def test_campaign_list_must_exist_have_a_type_and_one_type_only(api: Api) -> None:
    assert api.post("/campaigns", campaign(8080808)).status_code == 400
    untyped = api.ok("POST", "/case_lists", {"name": "Empty, no filter"}, status=201)
    no_type = api.post("/campaigns", campaign(untyped["id"]))
    assert no_type.status_code == 400 and "case type" in no_type.json()["message"]
    mixed_cases = [api.new_case(type="civil")["id"], api.new_case(type="criminal")["id"]]
    mixed = api.ok("POST", "/case_lists", {"name": "Mixed", "include_ids": mixed_cases}, status=201)
    assert api.post("/campaigns", campaign(mixed["id"])).status_code == 400
    stray = api.ok(
        "POST",
        "/case_lists",
        {
            "name": "Typed + stray",
            "filter": {"case_type_ids": [api.type_ids()["civil"]]},
            "include_ids": [mixed_cases[1]],
        },
        status=201,
    )
    response = api.post("/campaigns", campaign(stray["id"]))
    assert response.status_code == 400 and str(mixed_cases[1]) in response.json()["message"]
    same_type = api.ok(
        "POST", "/case_lists", {"name": "Static civil", "include_ids": mixed_cases[:1]}, status=201
    )
    assert api.post("/campaigns", campaign(same_type["id"])).status_code == 201


def test_strict_mode_checks_agent_ids_against_created_agents(sandbox: RunningSandbox, api: Api) -> None:
    case_list = typed_list(api)
    sandbox.configure(strict=True)
    body = campaign(case_list["id"], agent_id="agent_unknown", runs=[CALL_RUN])
    assert api.post("/campaigns", body).status_code == 400
    agent = api.ok(
        "POST",
        "/agent_builder/campaign_agents",
        {"name": "Intake", "voice_id": "v1", "greeting": "Hello", "task": "Qualify"},
        status=201,
    )
    assert api.post("/campaigns", {**body, "agent_id": agent["id"]}).status_code == 201


def test_detach_with_another_body_key_works_and_is_noted_in_the_log(
    sandbox: RunningSandbox, api: Api
) -> None:
    case = api.new_case()
    case_list = api.ok("POST", "/case_lists", {"name": "L", "include_ids": [case["id"]]}, status=201)
    assert api.ok("PATCH", f"/case_lists/{case_list['id']}/detach", {"ids": [case["id"]]})["case_count"] == 0
    entry = sandbox.request_log()[-1]
    assert entry["items"] == 1 and "ids" in entry["note"]
