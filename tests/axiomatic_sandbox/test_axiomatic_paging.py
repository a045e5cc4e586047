"""Envelopes that differ between endpoints, the page-size caps, pages past the end, and the paging quirks."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.axiomatic_sandbox import DEFAULT_ENVELOPES, AxiomaticConfig, ConfigError, RunningAxiomatic
from tests.axiomatic_sandbox.conftest import get, items_of, walk


def test_each_endpoint_has_its_own_default_envelope(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    contacts = get(axiomatic, "/contacts", page=1, pageSize=5).json()
    assert contacts == {"contacts": data["contacts"][:5], "total": 300}
    leads = get(axiomatic, "/leads", page=2, pageSize=5).json()
    assert leads == {"data": data["leads"][5:10], "hasMore": True, "page": 2, "pageSize": 5}
    companies = get(axiomatic, "/companies", page=1, pageSize=5).json()
    assert companies == data["companies"][:5]
    activities = get(axiomatic, "/activities", page=3, pageSize=5).json()
    assert activities == {"items": data["activities"][10:15], "page": 3}
    tasks = get(axiomatic, "/tasks", page=1, pageSize=5).json()
    assert tasks == {"results": data["tasks"][:5], "total": 400}
    stages = get(axiomatic, "/pipeline-stages", page=1, pageSize=2).json()
    assert stages == {"stages": data["pipeline_stages"]}  # unpaginated: page and pageSize are ignored


def test_sub_resources_and_single_records(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    membership = data["memberships"][0]
    company_contacts = get(axiomatic, f"/companies/{membership['companyId']}/contacts", pageSize=100).json()
    assert membership["contactId"] in [contact["id"] for contact in company_contacts["contacts"]]
    assert company_contacts["total"] == len(company_contacts["contacts"])
    of_contact = get(axiomatic, f"/contacts/{membership['contactId']}/company-memberships").json()
    assert membership in of_contact["memberships"]
    lead = data["leads"][0]
    assert get(axiomatic, f"/leads/{lead['id']}").json() == lead
    assert get(axiomatic, f"/leads/{lead['id']}/timeline").json() == {"events": data["timelines"][lead["id"]]}
    assert get(axiomatic, f"/companies/{membership['companyId']}").json()["id"] == membership["companyId"]
    assert get(axiomatic, f"/contacts/{membership['contactId']}").json()["id"] == membership["contactId"]


def test_the_last_page_says_so_and_a_page_past_the_end_is_empty(axiomatic: RunningAxiomatic) -> None:
    last = get(axiomatic, "/leads", page=4, pageSize=100).json()
    assert len(last["data"]) == 100 and last["hasMore"] is False
    past = get(axiomatic, "/leads", page=5, pageSize=100)
    assert past.status_code == 200
    assert past.json() == {"data": [], "hasMore": False, "page": 5, "pageSize": 100}
    assert get(axiomatic, "/contacts", page=99).json() == {"contacts": [], "total": 300}
    assert get(axiomatic, "/companies", page=99).json() == []


def test_page_size_is_capped_and_the_answer_shows_the_size_used(axiomatic: RunningAxiomatic) -> None:
    leads = get(axiomatic, "/leads", page=1, pageSize=1000).json()
    assert len(leads["data"]) == 100 and leads["pageSize"] == 100
    axiomatic.configure(page_cap=30)
    assert len(get(axiomatic, "/contacts", page=1, pageSize=500).json()["contacts"]) == 30
    assert len(get(axiomatic, "/tasks").json()["results"]) == 25  # the default page size


def test_companies_without_page_hold_at_most_the_legacy_cap(axiomatic: RunningAxiomatic) -> None:
    assert len(get(axiomatic, "/companies", pageSize=100).json()) == 20
    assert len(get(axiomatic, "/companies", page=1, pageSize=100).json()) == 40
    axiomatic.configure(companies_legacy_cap=7)
    assert len(get(axiomatic, "/companies", pageSize=100).json()) == 7


def test_envelopes_are_configurable_per_endpoint(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(
        envelopes={"contacts": "array", "leads": "records+total+page", "tasks": "nolist+total"}
    )
    assert isinstance(get(axiomatic, "/contacts").json(), list)
    assert set(get(axiomatic, "/leads").json()) == {"records", "total", "page"}
    assert get(axiomatic, "/tasks").json() == {"total": 400}  # an envelope with no list in it
    assert set(get(axiomatic, "/activities").json()) == {"items", "page"}  # the others unchanged
    with pytest.raises(ConfigError):
        axiomatic.configure(envelopes={"contacts": "array+total"})
    with pytest.raises(ConfigError):
        axiomatic.configure(envelopes={"deals": "array"})
    assert set(DEFAULT_ENVELOPES) >= {
        "contacts",
        "leads",
        "companies",
        "activities",
        "tasks",
        "pipeline-stages",
    }


@pytest.mark.parametrize("endpoint", ["contacts", "companies", "leads", "activities", "tasks"])
def test_walking_every_page_gives_every_record_once_in_order(
    axiomatic: RunningAxiomatic, endpoint: str
) -> None:
    assert walk(axiomatic, endpoint) == axiomatic.dataset()[endpoint]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(page_size=st.integers(min_value=6, max_value=150))
def test_any_page_size_walks_to_the_same_records(axiomatic: RunningAxiomatic, page_size: int) -> None:
    served = walk(axiomatic, "contacts", page_size=min(page_size, 100))
    assert [contact["id"] for contact in served] == [
        contact["id"] for contact in axiomatic.dataset()["contacts"]
    ]


def test_filters(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    stage = data["pipeline_stages"][0]
    by_name = walk(axiomatic, "leads", stage=stage["name"])
    by_key = walk(axiomatic, "leads", stage=stage["systemKey"])
    by_id = walk(axiomatic, "leads", stageId=stage["id"])
    assert by_name == by_key == by_id == [lead for lead in data["leads"] if lead["stageId"] == stage["id"]]
    contact_id = next(lead["contactId"] for lead in data["leads"] if lead["contactId"])
    assert all(lead["contactId"] == contact_id for lead in walk(axiomatic, "leads", contactId=contact_id))
    calls = walk(axiomatic, "activities", type="call")
    assert calls and all(activity["type"] == "call" for activity in calls)
    done = walk(axiomatic, "tasks", status="done")
    assert done and all(task["status"] == "done" for task in done)
    vendors = get(axiomatic, "/companies", page=1, pageSize=100, role="vendor").json()
    assert vendors == [company for company in data["companies"] if company["role"] == "vendor"]
    unassigned = get(axiomatic, "/companies", page=1, pageSize=100, ownerUserId="unassigned").json()
    assert all(company["ownerUserId"] is None for company in unassigned)


def test_duplicate_across_pages_serves_one_record_twice_and_loses_none(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(duplicate_across_pages=True)
    served = walk(axiomatic, "leads", page_size=100)
    ids = [lead["id"] for lead in served]
    truth = [lead["id"] for lead in axiomatic.dataset()["leads"]]
    # page 2 begins with page 1's last record; every later page is shifted back by one, so the
    # walk takes one page more and a reader that counts records (not ids) against 400 stops short
    assert len(ids) == len(truth) + 1
    assert ids[99] == ids[100] == truth[99]
    assert list(dict.fromkeys(ids)) == truth
    last = get(axiomatic, "/leads", page=4, pageSize=100).json()
    assert last["hasMore"] is True and len(last["data"]) == 100


def test_repeat_page_makes_the_next_page_repeat_it(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(repeat_page=2)
    pages = [get(axiomatic, "/contacts", page=page, pageSize=50).json()["contacts"] for page in (1, 2, 3, 4)]
    assert pages[2] == pages[1] != pages[0]
    assert pages[3] == axiomatic.dataset()["contacts"][150:200]


def test_missing_id_every_serves_some_records_without_an_id(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(missing_id_every=50)
    leads = walk(axiomatic, "leads")
    assert [position for position, lead in enumerate(leads, start=1) if "id" not in lead] == [
        50,
        100,
        150,
        200,
        250,
        300,
        350,
        400,
    ]
    assert all("id" in stage for stage in get(axiomatic, "/pipeline-stages").json()["stages"])


def test_type_flip_changes_a_fields_type_from_the_middle_on(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(type_flip="leads.value")
    leads = walk(axiomatic, "leads")
    early = {type(lead["value"]) for lead in leads[:200] if lead["value"] is not None}
    late = {type(lead["value"]) for lead in leads[200:] if lead["value"] is not None}
    assert early <= {int, float} and late == {str}


def test_quirks_apply_only_where_quirks_on_says(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(repeat_page=1, quirks_on=("tasks",))
    assert (
        get(axiomatic, "/tasks", page=2, pageSize=10).json()
        == get(axiomatic, "/tasks", page=1, pageSize=10).json()
    )
    leads_two = get(axiomatic, "/leads", page=2, pageSize=10).json()["data"]
    assert leads_two == axiomatic.dataset()["leads"][10:20]


def test_bad_settings_are_refused_with_the_setting_named() -> None:
    with pytest.raises(ConfigError, match="page_cap"):
        AxiomaticConfig(page_cap=0).checked()
    with pytest.raises(ConfigError, match="type_flip"):
        AxiomaticConfig(type_flip="value").checked()
    with pytest.raises(ConfigError, match="quirks_on"):
        AxiomaticConfig(quirks_on=("pipeline-stages",)).checked()


def test_items_of_matches_the_defaults(axiomatic: RunningAxiomatic) -> None:
    assert len(items_of(get(axiomatic, "/activities", pageSize=3).json(), "activities")) == 3
