"""The generated CRM: contacts, companies, memberships, stages, leads, activities, tasks, timelines.

Why it exists: an extractor is only tested if the data is as messy as a real account's, and a test
can only assert "exactly what was served" if that data is known. Everything here comes from one
`random.Random(seed)`: the same seed gives the same records, byte for byte.

The mess, on purpose: people entered twice in different casing; accented names; missing and
malformed emails; phones with extensions or in local formats, and contacts with only `phone`;
ZIP codes that lost their leading zero (served as JSON numbers, so the field changes type between
records); leads whose contact was deleted or that have none; stages renamed after leads passed
through them (the lead's `stageName` and its timeline keep the old name); free-form
`customFields` with messy case types, MM/DD/YYYY dates and nested objects; many records sharing one
`createdAt`.

Must never: depend on anything but the config (no clock, no global random state).
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.axiomatic_sandbox.config import DEMO_USER, AxiomaticConfig

Record = dict[str, Any]

FIRST_NAMES = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
    "David", "Barbara", "Maria", "Carlos", "Luis", "Ana", "Wei", "Mei", "Ahmed", "Fatima", "Olga", "Kwame",
    "Aisha", "Daniel", "Grace", "Tyrone", "Keisha", "Priya", "Sean", "Megan",
)  # fmt: skip
ACCENTED_FIRST_NAMES = (
    "José", "Zoë", "Renée", "François", "Søren", "Łukasz", "Björn", "Inés", "Chloé", "André", "Noémie", "Ngọc",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
    "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Lee", "Perez",
    "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "O'Brien", "McDonald", "Walker", "Young",
)  # fmt: skip
ACCENTED_LAST_NAMES = (
    "Muñoz", "Peña", "Nguyễn", "Đặng", "Müller", "Šimić", "Gómez", "Løvaas", "Ibáñez", "Côté", "Çelik", "Yılmaz",
)  # fmt: skip
PLACES = (  # city, state, ZIP, area code
    ("Boston", "MA", "02134", "617"),
    ("Cambridge", "MA", "02139", "617"),
    ("Worcester", "MA", "01608", "508"),
    ("Newark", "NJ", "07102", "973"),
    ("Hartford", "CT", "06103", "860"),
    ("Providence", "RI", "02903", "401"),
    ("Portland", "ME", "04101", "207"),
    ("San Juan", "PR", "00901", "787"),
    ("New York", "NY", "10001", "212"),
    ("Chicago", "IL", "60601", "312"),
    ("Houston", "TX", "77002", "713"),
    ("Miami", "FL", "33101", "305"),
    ("Los Angeles", "CA", "90012", "213"),
    ("Atlanta", "GA", "30303", "404"),
)
STREETS = (
    "Main St",
    "Elm Street",
    "Washington Ave",
    "Calle del Sol",
    "Oak Rd",
    "Côte-des-Neiges Blvd",
    "Park Pl",
)
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
MALFORMED_EMAILS = (
    "{f}.{l}@",
    "{f} {l}@example.com",
    "{f}@@example.com",
    "n/a",
    "{F}{L} AT EXAMPLE.COM",
    "{f}.{l}@example",
)
TITLES = ("Patient", "Driver", "Employee", "Owner", "Passenger", None)

COMPANY_STEMS = (
    "Bay State",
    "Liberty",
    "Ortiz",
    "Greater Boston",
    "Acme",
    "Nguyễn & Sons",
    "Harbor",
    "Summit",
    "Pioneer",
)
COMPANY_KINDS = (
    ("Chiropractic", "Medical"), ("Towing & Recovery", "Towing"), ("Auto Body", "Automotive"),
    ("Physical Therapy", "Medical"), ("Insurance Adjusters", "Insurance"), ("Medical Group", "Medical"),
    ("Staffing", "Employment"), ("Logistics", "Transport"),
)  # fmt: skip
COMPANY_ROLES = ("prospect", "customer", "vendor", "both")

# name now, name before the rename (None = never renamed), kind, default probability, colour, system key
STAGES = (
    ("New Inquiry", "Intake", "open", 10, "blue", "new"),
    ("Contacted", None, "open", 25.0, "teal", "contacted"),
    ("Consultation Scheduled", None, "open", 40, "amber", "qualified"),
    ("Agreement Sent", "Retainer Sent", "open", 70, "purple", "proposal"),
    ("Signed", None, "won", 100, "green", "won"),
    ("Declined", None, "lost", 0, "red", "lost"),
    ("Referred Out", None, "lost", 0, "gray", None),  # a stage the firm added: no system key
)
RENAMED_AT = datetime(2022, 6, 1, tzinfo=UTC)
"""Before this instant "New Inquiry" was "Intake" and "Agreement Sent" was "Retainer Sent"."""

CASE_TYPES = (
    "Auto Accident", "Auto Accident", "auto", "AUTO ACCIDENT", "Car Accident", "Motor Vehicle Accident",
    "Slip and Fall", "slip & fall", "Dog Bite", "Medical Malpractice", "Med Mal", "Workers Comp",
    "Workers' Compensation", "Premises Liability", "Truck Accident", "Wrongful Death", "",
)  # fmt: skip
SOURCES = ("Google Ads", "Referral", "Billboard", "TV", "Website", "Facebook", None)
CARRIERS = ("Liberty Mutual", "GEICO", "State Farm", "Progressive", "Allstate", "Arbella")
NOTES = (
    'Client says "rear-ended at a red light", wants a callback',
    "Cliente habla español; prefers text.\nCall after 5pm",
    "Left voicemail, no answer, try again Monday",
    "Referred by Dr. Côté — bring medical records",
    "Hit by a delivery truck, 2 passengers, police came",
    "",
    None,
)
ACTIVITY_TYPES = ("call", "email", "meeting", "note", "sms")
SUBJECTS = {
    "call": "Intake call",
    "email": "Re: your accident",
    "meeting": "Consultation",
    "note": "Note",
    "sms": "Text",
}
TASK_STATUSES = ("open", "in_progress", "done", "cancelled")
IMPORT_BATCHES = (
    datetime(2019, 3, 1, 9, 0, 0, tzinfo=UTC),
    datetime(2020, 11, 16, 14, 30, 0, tzinfo=UTC),
    datetime(2022, 1, 4, 8, 15, 0, tzinfo=UTC),
)
"""Bulk imports: records created in one import share one `createdAt` to the second."""
EPOCH = datetime(2018, 1, 1, tzinfo=UTC)
SPAN_SECONDS = int((datetime(2024, 6, 30, tzinfo=UTC) - EPOCH).total_seconds())


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Dataset:
    """The records as served, in their served order (by `createdAt`, then `id`)."""

    contacts: list[Record] = field(default_factory=list)
    companies: list[Record] = field(default_factory=list)
    memberships: list[Record] = field(default_factory=list)
    pipeline_stages: list[Record] = field(default_factory=list)
    leads: list[Record] = field(default_factory=list)
    activities: list[Record] = field(default_factory=list)
    tasks: list[Record] = field(default_factory=list)
    timelines: dict[str, list[Record]] = field(default_factory=dict)
    deleted_contact_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(
            {
                "contacts": self.contacts,
                "companies": self.companies,
                "memberships": self.memberships,
                "pipeline_stages": self.pipeline_stages,
                "leads": self.leads,
                "activities": self.activities,
                "tasks": self.tasks,
                "timelines": self.timelines,
            }
        )


class _Maker:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, share: float) -> bool:
        return self.rng.random() < share

    def moment(self, after: datetime | None = None, within_days: int | None = None) -> datetime:
        if after is None:
            if self.chance(0.35):
                return self.rng.choice(IMPORT_BATCHES)
            return EPOCH + timedelta(seconds=self.rng.randrange(SPAN_SECONDS))
        return after + timedelta(seconds=self.rng.randrange(60, 86400 * (within_days or 30)))

    def phone(self, area: str) -> str | None:
        local = f"555-01{self.rng.randrange(100):02d}"
        shape = self.rng.randrange(10)
        digits = local.replace("-", "")
        return (
            f"({area}) {local}",
            f"{area}-{local}",
            f"{area}.{local.replace('-', '.')}",
            f"+1 {area} {digits[:3]} {digits[3:]}",
            f"{area}{digits}",
            f"{area}-{local} x{self.rng.randrange(2, 999)}",
            f"({area}) {local} ext. {self.rng.randrange(2, 99)}",
            local,  # a local number: no area code
            f"1-{area}-{local}",
            f"({area}) {local}",
        )[shape]

    def postal_code(self, zip_code: str) -> str | int | None:
        if self.chance(0.05):
            return None
        if zip_code.startswith("0") and self.chance(0.35):
            return int(zip_code)  # a spreadsheet ate the leading zero, and the CRM kept a number
        if self.chance(0.08):
            return f"{zip_code}-{self.rng.randrange(10000):04d}"
        return zip_code

    def email(self, first: str, last: str) -> str | None:
        simple_first = first.lower().replace("'", "")
        simple_last = last.lower().replace("'", "").replace(" ", "")
        if self.chance(0.08):
            return None
        if self.chance(0.06):
            shape = self.rng.choice(MALFORMED_EMAILS)
            return shape.format(f=simple_first, l=simple_last, F=first.upper(), L=last.upper())
        number = self.rng.choice(("", "", str(self.rng.randrange(1, 99))))
        return f"{simple_first}.{simple_last}{number}@{self.rng.choice(EMAIL_DOMAINS)}"


def _users(maker: _Maker) -> list[str]:
    return [DEMO_USER, *(maker.uuid() for _ in range(4))]


def _contact(maker: _Maker, users: list[str]) -> Record:
    first = maker.rng.choice(ACCENTED_FIRST_NAMES if maker.chance(0.15) else FIRST_NAMES)
    last = maker.rng.choice(ACCENTED_LAST_NAMES if maker.chance(0.15) else LAST_NAMES)
    city, state, zip_code, area = maker.rng.choice(PLACES)
    created = maker.moment()
    has_mobile = maker.chance(0.6)
    phone = maker.phone(area) if (not has_mobile or maker.chance(0.5)) and maker.chance(0.9) else None
    return {
        "id": maker.uuid(),
        "firstName": first,
        "lastName": last,
        "email": maker.email(first, last),
        "phone": phone,
        "mobilePhone": maker.phone(area) if has_mobile else None,
        "title": maker.rng.choice(("Mr.", "Ms.", "Mrs.", "Dr.", None, None, None)),
        "addressLine1": f"{maker.rng.randrange(1, 9999)} {maker.rng.choice(STREETS)}"
        if maker.chance(0.85)
        else None,
        "addressLine2": maker.rng.choice(("Apt 2", "Unit 5B", "#3", "Piso 2")) if maker.chance(0.2) else None,
        "city": city if maker.chance(0.95) else None,
        "state": state if maker.chance(0.95) else None,
        "postalCode": maker.postal_code(zip_code),
        "country": maker.rng.choice(("US", "US", "US", "USA", "United States", None)),
        "ownerId": maker.rng.choice(users) if maker.chance(0.8) else None,
        "createdAt": iso(created),
        "updatedAt": iso(maker.moment(after=created, within_days=400)),
    }


def _recased(maker: _Maker, text: str) -> str:
    return maker.rng.choice((text.upper(), text.lower(), text.swapcase()))


def _duplicate_of(maker: _Maker, original: Record) -> Record:
    """The same person entered again later: other casing, same email (maybe shouted), same phone digits."""
    created = maker.moment(
        after=datetime.strptime(original["createdAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    )
    twin = dict(original)
    twin.update(
        id=maker.uuid(),
        firstName=_recased(maker, original["firstName"]),
        lastName=_recased(maker, original["lastName"]) if maker.chance(0.6) else original["lastName"],
        email=original["email"].upper() if original["email"] and maker.chance(0.5) else original["email"],
        createdAt=iso(created),
        updatedAt=iso(created),
    )
    return twin


def _contacts(maker: _Maker, count: int, users: list[str]) -> list[Record]:
    contacts: list[Record] = []
    for _ in range(count):
        if len(contacts) > 10 and maker.chance(0.05):
            contacts.append(_duplicate_of(maker, maker.rng.choice(contacts)))
        else:
            contacts.append(_contact(maker, users))
    return contacts


def _companies(maker: _Maker, count: int, users: list[str]) -> list[Record]:
    companies = []
    for number in range(count):
        stem = COMPANY_STEMS[number % len(COMPANY_STEMS)]
        kind, industry = COMPANY_KINDS[(number // len(COMPANY_STEMS) + number) % len(COMPANY_KINDS)]
        name = f"{stem} {kind}" + (
            f" {number // (len(COMPANY_STEMS) * len(COMPANY_KINDS)) + 1}" if number >= 72 else ""
        )
        city, state, zip_code, area = maker.rng.choice(PLACES)
        created = maker.moment()
        slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())
        companies.append(
            {
                "id": maker.uuid(),
                "name": name,
                "role": maker.rng.choice(COMPANY_ROLES),
                "status": "active" if maker.chance(0.85) else "inactive",
                "industry": industry if maker.chance(0.9) else None,
                "ownerUserId": maker.rng.choice(users) if maker.chance(0.8) else None,
                "website": f"https://www.{slug}.example" if maker.chance(0.7) else None,
                "phone": maker.phone(area) if maker.chance(0.85) else None,
                "email": f"office@{slug}.example" if maker.chance(0.6) else None,
                "addressLine1": f"{maker.rng.randrange(1, 999)} {maker.rng.choice(STREETS)}",
                "city": city,
                "state": state,
                "postalCode": maker.postal_code(zip_code),
                "createdAt": iso(created),
                "updatedAt": iso(maker.moment(after=created, within_days=700)),
            }
        )
    return companies


def _memberships(maker: _Maker, contacts: list[Record], companies: list[Record]) -> list[Record]:
    memberships: list[Record] = []
    if not companies:
        return memberships
    for contact in contacts:
        chosen = maker.rng.sample(companies, k=min(len(companies), maker.rng.choice((0, 0, 1, 1, 1, 2))))
        for position, company in enumerate(chosen):
            memberships.append(
                {
                    "id": maker.uuid(),
                    "contactId": contact["id"],
                    "companyId": company["id"],
                    "companyName": company["name"],
                    "title": maker.rng.choice(TITLES),
                    "isPrimary": position == 0,
                    "createdAt": max(contact["createdAt"], company["createdAt"]),
                }
            )
    return memberships


def _stage_name(index: int, when: datetime) -> str:
    name, old_name = STAGES[index][0], STAGES[index][1]
    return old_name if old_name is not None and when < RENAMED_AT else name


def _stages(maker: _Maker) -> list[Record]:
    return [
        {
            "id": maker.uuid(),
            "name": name,
            "kind": kind,
            "sortOrder": order,
            "defaultProbabilityPct": probability,
            "colorKey": colour,
            "systemKey": system_key,
            "leadCount": 0,
        }
        for order, (name, _old, kind, probability, colour, system_key) in enumerate(STAGES, start=1)
    ]


def _stage_path(maker: _Maker) -> list[int]:
    """Stage indexes a lead went through: forward through the open stages, maybe to won or lost."""
    path = [0]
    while path[-1] < 3 and maker.chance(0.55):
        path.append(path[-1] + 1)
    if maker.chance(0.45):
        path.append(maker.rng.choice((4, 4, 5, 6)))
    return path


def _custom_fields(maker: _Maker, created: datetime) -> dict[str, Any]:
    fields_: dict[str, Any] = {"caseType": maker.rng.choice(CASE_TYPES) if maker.chance(0.93) else None}
    if maker.chance(0.9):
        day = created - timedelta(days=maker.rng.randrange(1, 400))
        padded = maker.chance(0.85)
        fields_["incidentDate"] = day.strftime("%m/%d/%Y") if padded else f"{day.month}/{day.day}/{day.year}"
    if maker.chance(0.85):
        fields_["policeReport"] = maker.chance(0.5)
    if maker.chance(0.5):
        fields_["insurance"] = {
            "carrier": maker.rng.choice(CARRIERS),
            "policyNumber": f"P-{maker.rng.randrange(10**7):07d}" if maker.chance(0.8) else None,
            "adjuster": {
                "name": maker.rng.choice(FIRST_NAMES) + " " + maker.rng.choice(LAST_NAMES),
                "ext": maker.rng.randrange(100, 999),
            },
        }
    if maker.chance(0.2):
        fields_["languagePreference"] = maker.rng.choice(("Spanish", "Portuguese", "Vietnamese", "English"))
    return fields_


def _value(maker: _Maker) -> int | float | None:
    if maker.chance(0.1):
        return None
    amount = maker.rng.randrange(50, 5000) * 50
    return amount + 0.5 if maker.chance(0.2) else amount


def _leads(
    maker: _Maker, count: int, contacts: list[Record], deleted: list[str], companies: list[Record],
    stages: list[Record], users: list[str],
) -> tuple[list[Record], dict[str, list[Record]]]:  # fmt: skip
    leads: list[Record] = []
    timelines: dict[str, list[Record]] = {}
    by_id = {contact["id"]: contact for contact in contacts}
    for _ in range(count):
        draw = maker.rng.random()
        if draw < 0.06 or not (contacts or deleted):
            contact_id = None
        elif (draw < 0.12 and deleted) or not contacts:
            contact_id = maker.rng.choice(deleted)
        else:
            contact_id = maker.rng.choice(contacts)["id"]
        created = maker.moment()
        custom = _custom_fields(maker, created)
        path, moments = _stage_path(maker), [created]
        for _step in range(len(path) - 1):
            moments.append(maker.moment(after=moments[-1], within_days=60))
        current = path[-1]
        owner = maker.rng.choice(users) if maker.chance(0.85) else None
        person = by_id.get(contact_id or "")
        who = f"{person['lastName']}, {person['firstName']}" if person else "Unknown caller"
        lead_id = maker.uuid()
        lead = {
            "id": lead_id,
            "title": f"{who} – {custom.get('caseType') or 'Injury'}",
            "contactId": contact_id,
            "companyId": maker.rng.choice(companies)["id"] if companies and maker.chance(0.35) else None,
            "stageId": stages[current]["id"],
            "stageName": _stage_name(current, moments[-1]),
            "value": _value(maker),
            "currency": "USD" if maker.chance(0.95) else None,
            "probabilityPct": (
                stages[current]["defaultProbabilityPct"]
                if maker.chance(0.7)
                else maker.rng.choice((15, 33.3, 50, 80))
            ),
            "source": maker.rng.choice(SOURCES),
            "ownerUserId": owner,
            "notes": maker.rng.choice(NOTES),
            "customFields": custom,
            "createdAt": iso(created),
            "updatedAt": iso(moments[-1]),
            "closedAt": iso(moments[-1]) if STAGES[current][2] != "open" else None,
        }
        leads.append(lead)
        events = [
            {
                "id": maker.uuid(),
                "leadId": lead_id,
                "type": "created",
                "occurredAt": iso(created),
                "actorUserId": owner,
                "details": {"stageId": stages[path[0]]["id"], "stageName": _stage_name(path[0], created)},
            }
        ]
        for before, after, moment in zip(path, path[1:], moments[1:], strict=False):
            events.append(
                {
                    "id": maker.uuid(),
                    "leadId": lead_id,
                    "type": "stage_changed",
                    "occurredAt": iso(moment),
                    "actorUserId": maker.rng.choice(users),
                    "details": {
                        "fromStageId": stages[before]["id"],
                        "fromStageName": _stage_name(before, moment),
                        "toStageId": stages[after]["id"],
                        "toStageName": _stage_name(after, moment),
                    },
                }
            )
        timelines[lead_id] = events
    return leads, timelines


def _activities(
    maker: _Maker, count: int, leads: list[Record], contacts: list[Record], users: list[str],
    timelines: dict[str, list[Record]],
) -> list[Record]:  # fmt: skip
    activities = []
    for _ in range(count if leads or contacts else 0):
        lead = maker.rng.choice(leads) if leads and maker.chance(0.9) else None
        kind = maker.rng.choice(ACTIVITY_TYPES)
        start = datetime.strptime(lead["createdAt"] if lead else "2019-01-01T00:00:00Z", "%Y-%m-%dT%H:%M:%SZ")
        occurred = maker.moment(after=start.replace(tzinfo=UTC), within_days=90)
        contact_id = lead["contactId"] if lead else (maker.rng.choice(contacts)["id"] if contacts else None)
        activity = {
            "id": maker.uuid(),
            "type": kind,
            "subject": SUBJECTS[kind] if maker.chance(0.9) else None,
            "body": maker.rng.choice(NOTES),
            "direction": maker.rng.choice(("inbound", "outbound"))
            if kind in ("call", "email", "sms")
            else None,
            "durationMinutes": maker.rng.choice((2, 5, 12, 30, 7.5)) if kind in ("call", "meeting") else None,
            "leadId": lead["id"] if lead else None,
            "contactId": contact_id,
            "ownerUserId": maker.rng.choice(users) if maker.chance(0.9) else None,
            "occurredAt": iso(occurred),
            "createdAt": iso(occurred if maker.chance(0.7) else maker.moment(after=occurred, within_days=2)),
        }
        activities.append(activity)
        if lead is not None:
            timelines[lead["id"]].append(
                {
                    "id": maker.uuid(),
                    "leadId": lead["id"],
                    "type": "activity",
                    "occurredAt": activity["occurredAt"],
                    "actorUserId": activity["ownerUserId"],
                    "details": {
                        "activityId": activity["id"],
                        "activityType": kind,
                        "subject": activity["subject"],
                    },
                }
            )
    return activities


def _tasks(maker: _Maker, count: int, leads: list[Record], users: list[str]) -> list[Record]:
    tasks = []
    for _ in range(count if leads else 0):
        lead = maker.rng.choice(leads)
        status = maker.rng.choice(TASK_STATUSES)
        created = maker.moment(
            after=datetime.strptime(lead["createdAt"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        )
        tasks.append(
            {
                "id": maker.uuid(),
                "title": maker.rng.choice(
                    ("Request police report", "Send retainer", "Call back", "Collect medical records")
                ),
                "status": status,
                "priority": maker.rng.choice(("low", "normal", "high", None)),
                "dueDate": (created + timedelta(days=maker.rng.randrange(1, 30))).strftime("%Y-%m-%d")
                if maker.chance(0.8)
                else None,
                "leadId": lead["id"],
                "contactId": lead["contactId"],
                "assigneeUserId": maker.rng.choice(users) if maker.chance(0.85) else None,
                "createdAt": iso(created),
                "completedAt": iso(maker.moment(after=created, within_days=20)) if status == "done" else None,
            }
        )
    return tasks


def _served_order(records: list[Record]) -> list[Record]:
    return sorted(records, key=lambda record: (record["createdAt"], record["id"]))


def _flipped(value: Any) -> Any:
    """The same value as another JSON type: number ↔ text, text → object, bool → text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return int(value) if value.isdigit() else {"value": value}
    return value


def generate(config: AxiomaticConfig) -> Dataset:
    """The whole CRM for `config`, with the record-level quirks (missing ids, a type flip) applied."""
    maker = _Maker(config.seed)
    users = _users(maker)
    stages = _stages(maker)
    companies = _served_order(_companies(maker, config.companies, users))
    contacts = _contacts(maker, config.contacts, users)
    deleted = [maker.uuid() for _ in range(max(1, config.contacts // 30))] if config.leads else []
    contacts = _served_order(contacts)
    memberships = _served_order(_memberships(maker, contacts, companies))
    leads, timelines = _leads(maker, config.leads, contacts, deleted, companies, stages, users)
    leads = _served_order(leads)
    activity_count = config.activities if config.activities is not None else 2 * config.leads
    activities = _served_order(_activities(maker, activity_count, leads, contacts, users, timelines))
    tasks = _served_order(
        _tasks(maker, config.tasks if config.tasks is not None else config.leads, leads, users)
    )
    for events in timelines.values():
        events.sort(key=lambda event: (event["occurredAt"], event["type"] != "created", event["id"]))
    for stage in stages:
        stage["leadCount"] = sum(1 for lead in leads if lead["stageId"] == stage["id"])
    if stages:
        stages[0]["leadCount"] += config.lead_count_skew
    data = Dataset(contacts, companies, memberships, stages, leads, activities, tasks, timelines, deleted)
    _apply_record_quirks(data, config)
    return data


def _apply_record_quirks(data: Dataset, config: AxiomaticConfig) -> None:
    if config.type_flip:
        resource, _, name = config.type_flip.partition(".")
        records = getattr(data, resource)
        for record in records[len(records) // 2 :]:
            if name in record and record[name] is not None:
                record[name] = _flipped(record[name])
    if config.missing_id_every:
        for resource in config.quirks_on:
            records = getattr(data, resource.replace("-", "_"), None)
            if isinstance(records, list):
                for position, record in enumerate(records, start=1):
                    if position % config.missing_id_every == 0:
                        record.pop("id", None)
