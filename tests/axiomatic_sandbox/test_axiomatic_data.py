"""The messy data a real CRM holds, present and deterministic from the seed."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pipeline.axiomatic_sandbox import AxiomaticConfig, RunningAxiomatic
from pipeline.axiomatic_sandbox.data import generate
from tests.axiomatic_sandbox.conftest import get, walk

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SHAPES = {
    "contacts": "id firstName lastName email phone mobilePhone title addressLine1 addressLine2 city state "
    "postalCode country ownerId createdAt updatedAt",
    "companies": "id name role status industry ownerUserId website phone email addressLine1 city state "
    "postalCode createdAt updatedAt",
    "memberships": "id contactId companyId companyName title isPrimary createdAt",
    "pipeline_stages": "id name kind sortOrder defaultProbabilityPct colorKey systemKey leadCount",
    "leads": "id title contactId companyId stageId stageName value currency probabilityPct source "
    "ownerUserId notes customFields createdAt updatedAt closedAt",
    "activities": "id type subject body direction durationMinutes leadId contactId ownerUserId occurredAt createdAt",
    "tasks": "id title status priority dueDate leadId contactId assigneeUserId createdAt completedAt",
}


def test_every_record_has_the_documented_fields_uuids_and_utc_timestamps(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    for resource, names in SHAPES.items():
        assert data[resource], resource
        for record in data[resource]:
            assert list(record) == names.split(), resource
            assert UUID.match(record["id"])
            for name, value in record.items():
                if name.endswith("At") and value is not None:
                    assert ISO_UTC.match(value), (resource, name, value)
    for events in data["timelines"].values():
        for event in events:
            assert list(event) == ["id", "leadId", "type", "occurredAt", "actorUserId", "details"]


def test_what_is_served_is_the_dataset(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    assert walk(axiomatic, "leads") == data["leads"]
    assert get(axiomatic, "/pipeline-stages").json()["stages"] == data["pipeline_stages"]


def test_people_entered_twice_in_different_casing(axiomatic: RunningAxiomatic) -> None:
    contacts = axiomatic.dataset()["contacts"]
    names = Counter(
        (c["firstName"].lower(), c["lastName"].lower(), (c["email"] or "").lower()) for c in contacts
    )
    twins = [key for key, count in names.items() if count > 1]
    assert twins
    spellings = {
        (c["firstName"], c["lastName"])
        for c in contacts
        if (c["firstName"].lower(), c["lastName"].lower(), (c["email"] or "").lower()) in twins
    }
    assert len(spellings) > len(twins)


def test_accents_and_text_that_needs_care(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    names = {c["firstName"] + " " + c["lastName"] for c in data["contacts"]}
    assert any(not name.isascii() for name in names)
    raw = get(axiomatic, "/contacts", page=1, pageSize=100).content.decode("utf-8")
    assert any(ch in raw for ch in "éöñøłüçễ")  # UTF-8 on the wire, not \u escapes
    assert any(lead["notes"] and "\n" in lead["notes"] for lead in data["leads"])


def test_missing_and_malformed_emails(axiomatic: RunningAxiomatic) -> None:
    emails = [c["email"] for c in axiomatic.dataset()["contacts"]]
    assert None in emails
    well_formed = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$", re.IGNORECASE)
    assert any(email is not None and not well_formed.match(email) for email in emails)


def test_phones_with_extensions_local_formats_and_phone_only_contacts(axiomatic: RunningAxiomatic) -> None:
    contacts = axiomatic.dataset()["contacts"]
    phones = [p for c in contacts for p in (c["phone"], c["mobilePhone"]) if p]
    assert any(re.search(r"(x|ext\.)\s?\d+$", phone) for phone in phones)
    assert any(re.fullmatch(r"555-\d{4}", phone) for phone in phones)  # no area code
    assert any(c["phone"] and c["mobilePhone"] is None for c in contacts)


def test_zip_codes_that_lost_their_leading_zero_are_numbers(axiomatic: RunningAxiomatic) -> None:
    codes = [c["postalCode"] for c in axiomatic.dataset()["contacts"]]
    numbers = [code for code in codes if isinstance(code, int)]
    assert numbers and all(code < 10000 for code in numbers)
    assert any(isinstance(code, str) and code.startswith("0") for code in codes)
    assert None in codes
    served = get(axiomatic, "/contacts", page=1, pageSize=100).json()["contacts"]
    assert {type(c["postalCode"]) for c in served} >= {int, str}  # the field changes type between records


def test_leads_with_a_deleted_contact_or_none(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    live = {c["id"] for c in data["contacts"]}
    contact_ids = [lead["contactId"] for lead in data["leads"]]
    dangling = [cid for cid in contact_ids if cid is not None and cid not in live]
    assert None in contact_ids and dangling
    assert get(axiomatic, f"/contacts/{dangling[0]}").status_code == 404


def test_stages_renamed_after_leads_passed_through_them(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    current = {s["id"]: s["name"] for s in data["pipeline_stages"]}
    stale = [lead for lead in data["leads"] if lead["stageName"] != current[lead["stageId"]]]
    assert {lead["stageName"] for lead in stale} == {"Intake", "Retainer Sent"}
    old_names = {
        event["details"].get("toStageName") or event["details"].get("stageName")
        for events in data["timelines"].values()
        for event in events
        if event["type"] in ("created", "stage_changed")
    }
    assert {"Intake", "Retainer Sent", "New Inquiry", "Agreement Sent"} <= old_names
    assert "Intake" not in current.values()
    assert {s["systemKey"] for s in data["pipeline_stages"]} >= {"new", "won", "lost", None}


def test_custom_fields_are_free_form_and_messy(axiomatic: RunningAxiomatic) -> None:
    fields = [lead["customFields"] for lead in axiomatic.dataset()["leads"]]
    case_types = {f.get("caseType") for f in fields}
    assert {
        "Auto Accident",
        "auto",
        "Slip and Fall",
        "Dog Bite",
        "Medical Malpractice",
        "Workers Comp",
    } <= case_types
    dates = [f["incidentDate"] for f in fields if "incidentDate" in f]
    assert dates and all(re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}", date) for date in dates)
    assert any(re.fullmatch(r"\d{2}/\d{2}/\d{4}", date) for date in dates)
    assert {f.get("policeReport") for f in fields} >= {True, False, None}
    nested = [f["insurance"] for f in fields if "insurance" in f]
    assert nested and all(isinstance(item["adjuster"], dict) for item in nested)
    assert len({tuple(sorted(f)) for f in fields}) > 3  # keys differ between leads


def test_numbers_are_json_numbers(axiomatic: RunningAxiomatic) -> None:
    leads = get(axiomatic, "/leads", page=1, pageSize=100).json()["data"]
    values = {type(lead["value"]) for lead in leads}
    assert values <= {int, float, type(None)} and {int, float} <= values
    assert all(isinstance(lead["probabilityPct"], int | float) for lead in leads)


def test_many_records_share_one_created_at(axiomatic: RunningAxiomatic) -> None:
    data = axiomatic.dataset()
    for resource, at_least in (("contacts", 20), ("leads", 20), ("companies", 3)):
        busiest = Counter(record["createdAt"] for record in data[resource]).most_common(1)[0][1]
        assert busiest >= at_least, resource
        assert [r["createdAt"] for r in data[resource]] == sorted(r["createdAt"] for r in data[resource])


def test_stage_lead_counts_match_unless_skewed(axiomatic: RunningAxiomatic) -> None:
    def counts() -> tuple[dict[str, int], Counter[str]]:
        data = axiomatic.dataset()
        return {s["id"]: s["leadCount"] for s in data["pipeline_stages"]}, Counter(
            lead["stageId"] for lead in data["leads"]
        )

    stated, served = counts()
    assert stated == dict(served) | {k: 0 for k in stated if k not in served}
    axiomatic.configure(lead_count_skew=3)
    stated, served = counts()
    first = get(axiomatic, "/pipeline-stages").json()["stages"][0]
    assert first["leadCount"] == served[first["id"]] + 3


def test_dashboard_counts_what_is_served(axiomatic: RunningAxiomatic) -> None:
    counts = get(axiomatic, "/dashboard").json()["counts"]
    assert (counts["contacts"], counts["companies"], counts["leads"]) == (300, 40, 400)
    assert counts["openLeads"] + counts["wonLeads"] + counts["lostLeads"] == 400


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    def truth(seed: int) -> dict[str, Any]:
        return generate(AxiomaticConfig(seed=seed, contacts=60, companies=8, leads=70)).as_dict()

    assert truth(7) == truth(7)
    assert truth(7)["contacts"] != truth(8)["contacts"]


def test_reset_restores_the_data_after_a_reconfigure(axiomatic: RunningAxiomatic) -> None:
    before = axiomatic.dataset()
    axiomatic.configure(seed=99, leads=10)
    assert len(axiomatic.dataset()["leads"]) == 10
    axiomatic.reset()
    assert axiomatic.dataset() == before
