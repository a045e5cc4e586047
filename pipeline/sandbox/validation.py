"""Request-body rules of the sandbox, written from /work/shared/kayse-api.md alone.

Why it exists: the sandbox must reject what Kayse rejects (and say so in Kayse's error shape), so
that a client bug shows up in a rehearsal instead of in production. Every function here is pure:
it takes a decoded JSON body and returns a cleaned value or raises `ApiError`.

Must never: touch the database, the network, or import anything from `pipeline.kayse` (the
client); a misreading of the API must not be able to hide in both.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CALL_WINDOW = ("08:00", "21:00")  # TCPA calling window, 8 AM to 9 PM


class ApiError(Exception):
    """A Kayse-shaped error answer: HTTP status plus `{"error": ..., "message": ...}`, the only error body documented."""

    def __init__(self, status: int, error: str, message: str):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message

    def body(self) -> dict[str, str]:
        return {"error": self.error, "message": self.message}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad request", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not found", message)


# --------------------------------------------------------------------------------------
# Field checkers
# --------------------------------------------------------------------------------------


def require_object(body: Any, what: str = "body") -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request(f"{what}: must be a JSON object")
    return body


def text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A string field; required ones must be present and not blank."""
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name}: is required")
        return None
    if not isinstance(value, str):
        raise bad_request(f"{name}: must be a string")
    if required and not value.strip():
        raise bad_request(f"{name}: must not be empty")
    return value


def boolean(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise bad_request(f"{name}: must be true or false")
    return value


def integer(
    body: dict[str, Any], name: str, *, required: bool = False, minimum: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        if required:
            raise bad_request(f"{name}: is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_request(f"{name}: must be an integer")
    if minimum is not None and value < minimum:
        raise bad_request(f"{name}: must be at least {minimum}")
    return value


def id_list(body: dict[str, Any], name: str) -> list[int] | None:
    """An optional array of integer ids, duplicates removed, order kept."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
        raise bad_request(f"{name}: must be an array of integer ids")
    return list(dict.fromkeys(value))


def iso_date(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """A `YYYY-MM-DD` calendar date: anything else is a 400."""
    value = text(body, name, required=required)
    if value is None:
        return None
    if not is_iso_date(value):
        raise bad_request(f"{name}: must be a date as YYYY-MM-DD, got {value!r}")
    return value


def is_iso_date(value: str) -> bool:
    if not ISO_DATE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_e164(value: str) -> bool:
    return bool(E164.match(value))


def is_hh_mm(value: str) -> bool:
    return bool(HH_MM.match(value))


def unknown_keys(body: dict[str, Any], known: frozenset[str], what: str) -> None:
    """Strict mode only: name the first key the API does not document."""
    extra = sorted(set(body) - known)
    if extra:
        raise bad_request(f"{what}: unknown field {extra[0]!r} (strict mode)")


# --------------------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------------------

CLIENT_TEXT_FIELDS = ("email", "mobile", "city", "state", "postal_code", "address_line1", "address_line2")
CLIENT_REQUIRED = ("first_name", "last_name", "external_source", "external_source_id")
CLIENT_FIELDS = frozenset(
    {*CLIENT_REQUIRED, *CLIENT_TEXT_FIELDS, "date_of_birth", "voice_calls_opted_out", "case_ids"}
)


@dataclass(frozen=True)
class ClientInput:
    """A checked client body. `case_ids` None means the key was absent (links left alone)."""

    fields: dict[str, Any]
    case_ids: list[int] | None


def client_input(body: Any, *, strict: bool, allow_id: bool = False) -> ClientInput:
    body = require_object(body, "client")
    if strict:
        unknown_keys(body, CLIENT_FIELDS | ({"id"} if allow_id else set()), "client")
    fields: dict[str, Any] = {name: text(body, name, required=True) for name in CLIENT_REQUIRED}
    for name in CLIENT_TEXT_FIELDS:
        fields[name] = text(body, name)
    if fields["mobile"] is not None and not is_e164(fields["mobile"]):
        raise bad_request(
            f"mobile: must be an E.164 phone number like +15551234567, got {fields['mobile']!r}"
        )
    if fields["email"] is not None and not EMAIL.match(fields["email"]):
        raise bad_request(f"email: not a valid email address: {fields['email']!r}")
    fields["date_of_birth"] = iso_date(body, "date_of_birth")
    fields["voice_calls_opted_out"] = bool(boolean(body, "voice_calls_opted_out"))
    return ClientInput(fields=fields, case_ids=id_list(body, "case_ids"))


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------

CASE_REQUIRED = ("case_number", "external_source", "external_source_id", "status", "type")
CASE_TEXT_FIELDS = ("name", "court_name", "jurisdiction", "description")
CASE_DATE_FIELDS = ("created_date", "court_date", "end_date")
CASE_FIELDS = frozenset(
    {
        *CASE_REQUIRED,
        *CASE_TEXT_FIELDS,
        *CASE_DATE_FIELDS,
        "external_source_data",
        "is_obo",
        "client_ids",
        "opt_out_voice_calls",
    }
)


@dataclass(frozen=True)
class CaseInput:
    """A checked case body. On PUT an absent `client_ids` clears the links."""

    fields: dict[str, Any]
    client_ids: list[int] | None


def case_input(body: Any, *, strict: bool, allow_id: bool = False) -> CaseInput:
    body = require_object(body, "case")
    if strict:
        unknown_keys(body, CASE_FIELDS | ({"id"} if allow_id else set()), "case")
    fields: dict[str, Any] = {name: text(body, name, required=True) for name in CASE_REQUIRED}
    for name in CASE_TEXT_FIELDS:
        fields[name] = text(body, name)
    for name in CASE_DATE_FIELDS:
        fields[name] = iso_date(body, name)
    extra = body.get("external_source_data")
    if extra is not None and not isinstance(extra, dict):
        raise bad_request("external_source_data: must be an object")
    fields["external_source_data"] = extra
    fields["is_obo"] = boolean(body, "is_obo")
    fields["opt_out_voice_calls"] = boolean(body, "opt_out_voice_calls")
    return CaseInput(fields=fields, client_ids=id_list(body, "client_ids"))


# --------------------------------------------------------------------------------------
# Case lists
# --------------------------------------------------------------------------------------

LIST_FIELDS = frozenset(
    {
        "name",
        "description",
        "external_source",
        "external_source_id",
        "filter",
        "include_ids",
        "exclude_ids",
        "is_obo",
    }
)
FILTER_KEYS = frozenset({"case_type_ids", "status_ids"})


@dataclass(frozen=True)
class CaseListInput:
    fields: dict[str, Any]
    filter: dict[str, list[int]] | None
    include_ids: list[int]
    exclude_ids: list[int]


def case_list_input(body: Any, *, strict: bool, allow_id: bool = False) -> CaseListInput:
    body = require_object(body, "case list")
    if strict:
        unknown_keys(body, LIST_FIELDS | ({"id"} if allow_id else set()), "case list")
    fields: dict[str, Any] = {"name": text(body, "name", required=True)}
    for name in ("description", "external_source", "external_source_id"):
        fields[name] = text(body, name)
    fields["is_obo"] = boolean(body, "is_obo")
    raw_filter = body.get("filter")
    case_filter: dict[str, list[int]] | None = None
    if raw_filter is not None:
        raw_filter = require_object(raw_filter, "filter")
        if strict:
            unknown_keys(raw_filter, FILTER_KEYS, "filter")
        case_filter = {}
        for key in sorted(FILTER_KEYS):
            ids = id_list(raw_filter, key)
            if ids:
                case_filter[key] = ids
    return CaseListInput(
        fields=fields,
        filter=case_filter,
        include_ids=id_list(body, "include_ids") or [],
        exclude_ids=id_list(body, "exclude_ids") or [],
    )


# --------------------------------------------------------------------------------------
# Campaigns
# --------------------------------------------------------------------------------------

CAMPAIGN_FIELDS = frozenset(
    {
        "name",
        "agent_id",
        "case_list_id",
        "runs",
        "is_obo",
        "calls_scheduled_externally",
        "never_ending",
        "concurrency_limit",
        "self_healing_disabled",
        "form_id",
        "use_company_hours",
        "business_hours",
        "report_schedule",
    }
)
RUN_CALL_FIELDS = ("start_time", "end_time")


def _time_slot(slot: dict[str, Any], where: str, *, required: bool) -> tuple[str, str] | None:
    start, end = slot.get("start_time"), slot.get("end_time")
    if start is None and end is None and not required:
        return None
    for name, value in (("start_time", start), ("end_time", end)):
        if value is None:
            raise bad_request(f"{where}.{name}: is required")
        if not isinstance(value, str) or not is_hh_mm(value):
            raise bad_request(f"{where}.{name}: must be a time as HH:mm (24-hour), got {value!r}")
        if not CALL_WINDOW[0] <= value <= CALL_WINDOW[1]:
            raise bad_request(
                f"{where}.{name}: must lie within {CALL_WINDOW[0]}–{CALL_WINDOW[1]}, got {value}"
            )
    assert isinstance(start, str) and isinstance(end, str)
    if end <= start:
        raise bad_request(f"{where}.end_time: must be after start_time ({start})")
    return start, end


@dataclass(frozen=True)
class CampaignInput:
    fields: dict[str, Any]
    case_list_id: int
    agent_id: str | None
    form_id: int | None


def campaign_input(body: Any, *, strict: bool) -> CampaignInput:
    """The rules a body alone can break (required fields, agent, dates and times, business hours);
    those that need the database (the list's case type, the form, known agents) live in the store."""
    body = require_object(body, "campaign")
    if strict:
        unknown_keys(body, CAMPAIGN_FIELDS, "campaign")
    name = text(body, "name", required=True)
    case_list_id = integer(body, "case_list_id", required=True)
    assert case_list_id is not None
    runs = body.get("runs")
    if not isinstance(runs, list) or not runs:
        raise bad_request("runs: at least one run is required")
    use_company_hours = bool(boolean(body, "use_company_hours"))
    for index, run in enumerate(runs):
        where = f"runs[{index}]"
        run = require_object(run, where)
        try:
            start = iso_date(run, "start_date", required=True)
            end = iso_date(run, "end_date", required=True)
        except ApiError as error:
            raise bad_request(f"{where}.{error.message}") from None
        assert start is not None and end is not None
        if end < start:
            raise bad_request(f"{where}.end_date: must not be before start_date ({start})")
        if boolean(run, "messaging_only"):
            present = [f for f in RUN_CALL_FIELDS if run.get(f) is not None]
            if present:
                raise bad_request(f"{where}.{present[0]}: not allowed on a messaging_only run")
        else:
            _time_slot(run, where, required=not use_company_hours)
    all_messaging = all(isinstance(r, dict) and r.get("messaging_only") is True for r in runs)
    agent_id = body.get("agent_id")
    if agent_id is not None and (not isinstance(agent_id, str) or not agent_id.strip()):
        raise bad_request("agent_id: must be a non-empty string")
    if agent_id is None and not all_messaging:
        raise bad_request("agent_id: is required unless every run is messaging_only")
    hours = body.get("business_hours")
    if use_company_hours and (not isinstance(hours, list) or not hours):
        raise bad_request("business_hours: required (non-empty) when use_company_hours is true")
    if hours is not None:
        if not isinstance(hours, list):
            raise bad_request("business_hours: must be an array of time slots")
        slots: list[tuple[str, str]] = []
        for index, slot in enumerate(hours):
            where = f"business_hours[{index}]"
            checked = _time_slot(require_object(slot, where), where, required=True)
            assert checked is not None
            slots.append(checked)
        slots.sort()
        for (_, first_end), (second_start, _) in itertools.pairwise(slots):
            if second_start < first_end:
                raise bad_request("business_hours: time slots must not overlap")
    for flag in ("is_obo", "calls_scheduled_externally", "never_ending", "self_healing_disabled"):
        boolean(body, flag)
    integer(body, "concurrency_limit", minimum=0)
    form_id = integer(body, "form_id")
    report = body.get("report_schedule")
    if report is not None and not isinstance(report, dict):
        raise bad_request("report_schedule: must be an object")
    fields = {key: body.get(key) for key in sorted(CAMPAIGN_FIELDS)}
    fields["name"] = name
    return CampaignInput(fields=fields, case_list_id=case_list_id, agent_id=agent_id, form_id=form_id)


# --------------------------------------------------------------------------------------
# Voice agents and CRM mappings
# --------------------------------------------------------------------------------------

AGENT_REQUIRED = ("name", "voice_id", "greeting", "task")
AGENT_OPTIONAL = (
    "post_call_fields",
    "transfer_number",
    "is_transfer_enabled",
    "is_appointment_booking_enabled",
    "phone_number",
    "phone_assignments",
)


def agent_input(body: Any, *, partial: bool) -> dict[str, Any]:
    body = require_object(body, "agent")
    fields: dict[str, Any] = {}
    for name in AGENT_REQUIRED:
        if partial and name not in body:
            continue
        fields[name] = text(body, name, required=True)
    for name in ("transfer_number", "phone_number"):
        if name in body:
            fields[name] = text(body, name)
    for name in ("is_transfer_enabled", "is_appointment_booking_enabled"):
        if name in body:
            fields[name] = boolean(body, name)
    for name in ("post_call_fields", "phone_assignments"):
        if name in body:
            if body[name] is not None and not isinstance(body[name], list):
                raise bad_request(f"{name}: must be an array")
            fields[name] = body[name]
    return fields


MAPPING_DIRECTIONS = ("inbound", "outbound", "bidirectional")


def crm_mappings_input(body: Any) -> list[dict[str, str]]:
    body = require_object(body)
    items = body.get("mappings")
    if not isinstance(items, list) or not items:
        raise bad_request("mappings: a non-empty array is required")
    cleaned: list[dict[str, str]] = []
    for index, item in enumerate(items):
        item = require_object(item, f"mappings[{index}]")
        try:
            kayse_field = text(item, "kayse_field", required=True)
            crm_field = text(item, "crm_field", required=True)
            direction = text(item, "direction") or "bidirectional"
        except ApiError as error:
            raise bad_request(f"mappings[{index}].{error.message}") from None
        if direction not in MAPPING_DIRECTIONS:
            raise bad_request(f"mappings[{index}].direction: must be one of {', '.join(MAPPING_DIRECTIONS)}")
        assert kayse_field is not None and crm_field is not None
        cleaned.append({"kayse_field": kayse_field, "crm_field": crm_field, "direction": direction})
    return cleaned
