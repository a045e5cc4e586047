"""Metadata objects, CRM integrations and mappings, outcome types, voice agents, framework errors."""

from __future__ import annotations

from tests.sandbox.conftest import Api


def test_metadata_objects_describe_required_fields(api: Api) -> None:
    objects = {o["name"]: o["fields"] for o in api.ok("GET", "/metadata/objects")}
    assert set(objects) == {"clients", "cases", "case_lists"}
    required = {f["name"] for f in objects["clients"] if f["required"]}
    assert required == {"first_name", "last_name", "external_source", "external_source_id"}
    assert all(set(f) == {"name", "type", "required", "description"} for f in objects["cases"])


def test_crm_endpoints(api: Api) -> None:
    integrations = api.ok("GET", "/crm_integrations")["integrations"]
    assert integrations == [
        {"type": "smartadvocate", "enabled": True, "connected_at": "2026-01-15T08:00:00Z"}
    ]
    assert api.ok("GET", "/crm_mappings/fields") == {"mappings": []}
    first = api.ok(
        "POST",
        "/crm_mappings/fields",
        {
            "mappings": [
                {"kayse_field": "case_status", "crm_field": "statusid"},
                {"kayse_field": "mobile", "crm_field": "cell", "direction": "inbound"},
            ]
        },
    )
    assert first["updated"] == 2
    upsert = api.ok(
        "POST",
        "/crm_mappings/fields",
        {"mappings": [{"kayse_field": "case_status", "crm_field": "status_code", "direction": "outbound"}]},
    )
    assert upsert["mappings"] == [
        {"kayse_field": "case_status", "crm_field": "status_code", "direction": "outbound"},
        {"kayse_field": "mobile", "crm_field": "cell", "direction": "inbound"},
    ]
    bad = api.post(
        "/crm_mappings/fields", {"mappings": [{"kayse_field": "x", "crm_field": "y", "direction": "up"}]}
    )
    assert bad.status_code == 400
    assert api.post("/crm_mappings/fields", {"mappings": [{"kayse_field": "x"}]}).status_code == 400
    outcome = api.ok("GET", "/crm_mappings/outcome_types")["outcome_types"]
    assert outcome and all(set(o) == {"id", "label", "description"} for o in outcome)
    assert all(isinstance(o["id"], str) and o["id"] for o in outcome)  # string slugs, as documented


def test_voice_agents_create_and_patch(api: Api) -> None:
    body = {"name": "Intake", "voice_id": "v1", "greeting": "Hello", "task": "Qualify the lead"}
    agent = api.ok("POST", "/agent_builder/campaign_agents", body, status=201)
    assert agent["id"].startswith("agent_") and agent["created_at"].endswith("Z")
    patched = api.ok("PATCH", f"/agent_builder/campaign_agents/{agent['id']}", {"greeting": "Hi there"})
    assert patched["greeting"] == "Hi there" and patched["task"] == "Qualify the lead"
    assert api.post("/agent_builder/campaign_agents", {"name": "x"}).status_code == 400
    assert api.patch("/agent_builder/campaign_agents/agent_nope", {"greeting": "x"}).status_code == 404


def test_framework_errors_use_kayse_error_shape(api: Api) -> None:
    for response, status in (
        (api.get("/no/such/route"), 404),
        (api.get("/clients/not-a-number"), 404),
        (api.call("PATCH", "/clients/1", {}), 405),
    ):
        assert response.status_code == status
        assert set(response.json()) == {"error", "message"}
        assert "X-RateLimit-Remaining" in response.headers
