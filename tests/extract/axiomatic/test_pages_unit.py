"""Finding the list in an envelope: bare array, the one list, the one named like the resource."""

from __future__ import annotations

from pipeline.extract.axiomatic.pages import find_list_key, resource_names


def test_bare_array_and_single_list_key() -> None:
    assert find_list_key([{"id": "1"}], "companies", "/api/crm/companies") == (None, None)
    assert find_list_key({"data": [], "hasMore": False}, "leads", "/api/crm/leads") == ("data", None)


def test_several_lists_prefer_the_one_named_like_the_resource() -> None:
    body = {"stages": [], "warnings": [], "total": 3}
    assert find_list_key(body, "pipeline_stages", "/api/crm/pipeline-stages") == ("stages", None)
    body = {"pipelineStages": [], "tags": []}
    assert find_list_key(body, "pipeline_stages", "/api/crm/pipeline-stages") == ("pipelineStages", None)
    assert find_list_key({"items": [], "links": []}, "tasks", "/api/crm/tasks") == ("items", None)


def test_no_list_or_an_ambiguous_one_is_named() -> None:
    assert find_list_key({"total": 3}, "tasks", "/api/crm/tasks") == (None, "envelope-without-list")
    assert find_list_key("oops", "tasks", "/api/crm/tasks") == (None, "envelope-without-list")
    assert find_list_key({"a": [], "b": []}, "tasks", "/api/crm/tasks") == (None, "envelope-ambiguous")


def test_resource_names() -> None:
    names = resource_names("timelines", "/api/crm/leads/{id}/timeline")
    assert "timeline" in names and "timelines" in names
    assert resource_names("memberships", "/api/crm/contacts/x/company-memberships")[:2] == [
        "companyMemberships",
        "company_memberships",
    ]
