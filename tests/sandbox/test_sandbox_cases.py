"""Cases: create/get/put/delete, metadata-backed type and status, bulk upsert, bulk delete, messages."""

from __future__ import annotations

from pipeline.sandbox.server import RunningSandbox
from tests.sandbox.conftest import Api, case_body


def test_create_links_clients_and_reports_opt_outs(api: Api) -> None:
    client = api.new_client()
    body = case_body(
        client_ids=[client["id"]], court_date="2026-03-01", external_source_data={"court_id": "NYC1"}
    )
    response = api.post("/cases", body)
    assert response.status_code == 201
    case = response.json()
    assert {k: case[k] for k in body} == body
    assert case["origin"] == "public_api" and case["update_origin"] is None
    assert case["description"] is None and case["end_date"] is None
    assert (case["call_opted_out"], case["sms_opted_out"], case["email_opted_out"]) == (False, False, False)
    assert api.ok("GET", f"/cases/{case['id']}") == case


def test_opt_out_voice_calls_marks_linked_clients(api: Api) -> None:
    client = api.new_client()
    case = api.new_case(client_ids=[client["id"]], opt_out_voice_calls=True)
    assert case["call_opted_out"] is True
    assert api.ok("GET", f"/clients/{client['id']}")["voice_calls_opted_out"] is True


def test_unknown_type_is_400_and_unknown_status_is_created(api: Api) -> None:
    response = api.post("/cases", case_body(type="family"))
    assert response.status_code == 400 and response.json()["message"].startswith("type")
    case = api.new_case(type="civil", status="Intake Review")
    (civil,) = [t for t in api.ok("GET", "/metadata")["case_types"] if t["name"] == "civil"]
    assert "Intake Review" in [s["name"] for s in civil["statuses"]]
    assert [s["name"] for s in civil["statuses"]][:4] == ["active", "open", "pending", "closed"]
    again = api.new_case(type="CIVIL", status="intake review")  # matched without regard to case
    assert (again["type"], again["status"]) == ("civil", case["status"])


def test_metadata_lists_the_default_case_types(api: Api) -> None:
    types = api.ok("GET", "/metadata")["case_types"]
    assert [t["name"] for t in types] == ["personal_injury", "civil", "mass_tort", "workers_comp", "criminal"]
    assert all(isinstance(s["id"], int) for t in types for s in t["statuses"])


def test_put_replaces_the_whole_case_and_clears_absent_links(api: Api) -> None:
    client = api.new_client()
    case = api.new_case(client_ids=[client["id"]], description="old", court_name="Court A")
    replacement = case_body(case_number="CN-NEW", status="closed")
    updated = api.ok("PUT", f"/cases/{case['id']}", replacement)
    assert updated["case_number"] == "CN-NEW" and updated["status"] == "closed"
    assert updated["description"] is None and updated["court_name"] is None
    assert updated["client_ids"] == []
    assert updated["update_origin"] == "public_api"
    assert api.ok("GET", f"/clients/{client['id']}")["case_ids"] == []
    missing = api.put(f"/cases/{case['id']}", {"description": "only this"})
    assert missing.status_code == 400
    assert api.put("/cases/555555", replacement).status_code == 404


def test_invalid_case_fields_are_400(api: Api) -> None:
    for field, body in {
        "court_date": case_body(court_date="2026-13-01"),
        "case_number": case_body(case_number=...),
        "client_ids": case_body(client_ids=[313131]),
        "external_source_data": case_body(external_source_data="x"),
        "status": case_body(status=""),
    }.items():
        response = api.post("/cases", body)
        assert response.status_code == 400, field
        assert response.json()["message"].startswith(field)


def test_case_number_uniqueness_only_in_strict_mode(sandbox: RunningSandbox, api: Api) -> None:
    api.new_case(case_number="DUP")
    api.new_case(case_number="DUP")
    sandbox.configure(strict=True)
    response = api.post("/cases", case_body(case_number="DUP"))
    assert response.status_code == 400 and "DUP" in response.json()["message"]


def test_delete_is_soft_and_hides_the_case_from_clients(sandbox: RunningSandbox, api: Api) -> None:
    client = api.new_client()
    case = api.new_case(client_ids=[client["id"]])
    assert api.ok("DELETE", f"/cases/{case['id']}") == {"message": "case deleted successfully"}
    assert api.get(f"/cases/{case['id']}").status_code == 404
    assert api.ok("GET", f"/clients/{client['id']}")["case_ids"] == []
    assert [c["deleted"] for c in sandbox.state()["cases"]] == [True]


def test_bulk_upsert_partial_with_unknown_type_as_a_failed_item(api: Api) -> None:
    existing = api.new_case(description="keep?")
    result = api.ok(
        "POST",
        "/cases/bulk",
        {
            "cases": [
                case_body(external_source_id="a"),
                case_body(external_source_id="b", type="nope"),
                {**case_body(external_source_id="c"), "id": existing["id"]},
            ]
        },
    )
    assert [f["index"] for f in result["failed"]] == [1]
    assert result["failed"][0]["external_source_id"] == "b"
    assert result["successful_ids"][1] == existing["id"]
    assert api.ok("GET", f"/cases/{existing['id']}")["description"] is None  # update by PUT rules


def test_bulk_cases_atomic_and_cap(sandbox: RunningSandbox, api: Api) -> None:
    sandbox.configure(bulk_mode="atomic", bulk_max=2)
    assert api.post("/cases/bulk", {"cases": [case_body() for _ in range(3)]}).status_code == 400
    response = api.post("/cases/bulk", {"cases": [case_body(), case_body(type="nope")]})
    assert response.status_code == 400 and response.json()["message"].startswith("cases[1]: type")
    assert sandbox.state()["cases"] == []


def test_bulk_delete_cap_deleted_ids_and_with_clients(api: Api) -> None:
    only_here = api.new_client()
    shared = api.new_client()
    a = api.new_case(client_ids=[only_here["id"], shared["id"]])
    b = api.new_case(client_ids=[only_here["id"]])
    kept = api.new_case(client_ids=[shared["id"]])
    too_many = api.post("/cases/bulk_delete", {"ids": list(range(1, 502))})
    assert too_many.status_code == 400 and "500" in too_many.json()["message"]
    result = api.ok("POST", "/cases/bulk_delete", {"ids": [a["id"], b["id"], 888888], "with_clients": True})
    assert result["deleted_ids"] == [a["id"], b["id"]]
    assert result["deleted_client_ids"] == [only_here["id"]]
    assert [f["id"] for f in result["failed"]] == [888888]
    assert api.get(f"/clients/{only_here['id']}").status_code == 404
    assert api.ok("GET", f"/clients/{shared['id']}")["case_ids"] == [kept["id"]]


def test_bulk_delete_without_with_clients_keeps_clients(api: Api) -> None:
    client = api.new_client()
    case = api.new_case(client_ids=[client["id"]])
    assert api.ok("POST", "/cases/bulk_delete", {"ids": [case["id"]]})["deleted_client_ids"] == []
    assert api.get(f"/clients/{client['id']}").status_code == 200


def test_sms_and_email_are_scheduled_for_linked_pairs_only(sandbox: RunningSandbox, api: Api) -> None:
    client = api.new_client()
    other = api.new_client()
    case = api.new_case(client_ids=[client["id"]])
    sms = {"case_id": case["id"], "client_id": client["id"], "message": "Hi {{first_name}}"}
    assert api.ok("POST", "/cases/communication/sms", sms) == {"message": "sms scheduled"}
    email = {**sms, "subject": "Your case"}
    assert api.ok("POST", "/cases/communication/email", email) == {"message": "email scheduled"}
    assert api.post("/cases/communication/email", sms).status_code == 400  # no subject
    assert api.post("/cases/communication/sms", {**sms, "client_id": other["id"]}).status_code == 400
    assert api.post("/cases/communication/sms", {**sms, "case_id": 909090}).status_code == 400
    assert [m["channel"] for m in sandbox.state()["communications"]] == ["sms", "email"]


def test_opt_outs_show_on_the_case_and_refuse_messages(sandbox: RunningSandbox, api: Api) -> None:
    client = api.new_client()
    no_mobile = api.new_client(mobile=...)
    case = api.new_case(client_ids=[client["id"], no_mobile["id"]])
    sms = {"case_id": case["id"], "client_id": client["id"], "message": "Hi"}
    sandbox.opt_out(client["id"], sms=True)
    seen = api.ok("GET", f"/cases/{case['id']}")
    assert (seen["sms_opted_out"], seen["email_opted_out"]) == (True, False)
    refused = api.post("/cases/communication/sms", sms)
    assert refused.status_code == 400 and "opted out" in refused.json()["message"]
    email = {**sms, "subject": "Your case"}
    assert api.ok("POST", "/cases/communication/email", email) == {"message": "email scheduled"}
    assert api.post("/cases/communication/sms", {**sms, "client_id": no_mobile["id"]}).status_code == 400
    sandbox.opt_out(client["id"], sms=False)
    assert api.ok("GET", f"/cases/{case['id']}")["sms_opted_out"] is False
    assert [(m["channel"], m["status"]) for m in sandbox.messages()] == [("email", "scheduled")]
    assert [m["client_id"] for m in sandbox.refused_messages()] == [client["id"], no_mobile["id"]]
