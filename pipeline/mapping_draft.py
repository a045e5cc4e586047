"""Drafting a mapping from a file's headers: `kayse-etl mappings init SOURCE`.

Writing a mapping by hand means knowing every Kayse field name and typing every case type the
export uses. A draft gets a person most of the way: headers are matched to Kayse fields by name
and likeness ("Given name" → first_name, "Cell" → mobile), the type and status columns' distinct
values become value maps onto the allowed values, and every guess carries a comment saying what
to check. The draft is valid as written, so `validate` runs on it at once.

This is not a stage of the flow: it imports only the vocabulary, and returns YAML text (written
by hand, since a YAML library would drop the comments that make the draft editable).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.model import CASE_FIELDS, CLIENT_FIELDS, EXTRA_DATA_PREFIX

MAX_VALUES = 60
"""More distinct values than this in a type or status column: probably not a type column."""

KNOWN_NAME_STEP = 0.001
"""A known name scores 1 less this per place down its field's list of names."""

LIKENESS_CUTOFF = 0.82
"""How alike a header and a known name must be (difflib ratio) to count as a match."""

# Names people give each Kayse field's column, normalised (lower case, words split on anything
# that is not a letter or digit). The first is the Kayse field itself.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "client_key": (
        "contact id",
        "client id",
        "lead id",
        "person id",
        "contact number",
        "client number",
        "customer id",
        "client no",
        "contact no",
        "client ref",
        "id",
    ),
    "case_key": ("case id", "matter id", "file id", "claim id", "intake id", "matter ref", "case ref"),
    "first_name": ("first name", "first", "fname", "given name", "forename", "firstname", "name first"),
    "last_name": ("last name", "last", "lname", "surname", "family name", "lastname", "name last"),
    "email": ("email", "e mail", "email address", "mail"),
    "mobile": (
        "mobile",
        "mobile phone",
        "cell",
        "cell phone",
        "cellphone",
        "phone",
        "phone number",
        "mobile number",
        "telephone",
        "tel",
    ),
    "date_of_birth": ("date of birth", "dob", "birth date", "birthdate", "birthday", "born"),
    "address_line1": ("address line1", "address 1", "address1", "address", "street", "street address"),
    "address_line2": ("address line2", "address 2", "address2", "suite", "apt", "unit"),
    "city": ("city", "town"),
    "state": ("state", "province", "state province", "region", "st"),
    "postal_code": ("postal code", "zip", "zip code", "zipcode", "postcode", "post code"),
    "voice_calls_opted_out": ("voice calls opted out", "do not call", "dnc", "opted out"),
    "case_number": (
        "case number",
        "matter number",
        "case no",
        "matter no",
        "file number",
        "file no",
        "docket number",
        "case num",
        "reference",
        "ref",
    ),
    "name": ("name", "case name", "matter name", "case title", "matter title", "matter", "title"),
    "type": ("type", "case type", "matter type", "practice area", "claim type", "lead type"),
    "status": ("status", "case status", "matter status", "stage", "lead status"),
    "description": ("description", "notes", "summary", "details", "case description"),
    "court_name": ("court name", "court"),
    "jurisdiction": ("jurisdiction", "venue", "county"),
    "is_obo": ("is obo", "obo", "on behalf of"),
    "created_date": (
        "created date",
        "created",
        "date created",
        "intake date",
        "opened",
        "open date",
        "date opened",
    ),
    "court_date": ("court date", "hearing date", "trial date"),
    "end_date": ("end date", "closed date", "date closed", "closed"),
    "opt_out_voice_calls": ("opt out voice calls",),
}

REQUIRED = ("first_name", "last_name", "type", "status", "case_number")


def normalise(header: str) -> str:
    """Lower case, words split on anything not a letter or digit and between camelCase words."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", header)
    return " ".join(re.findall(r"[a-z0-9]+", spaced.lower()))


def slug(value: str) -> str:
    return "_".join(re.findall(r"[a-z0-9]+", value.lower()))


def likeness(header: str, kayse_field: str) -> float:
    """About 1 for a known name (the more usual a name, the nearer: "Mobile" beats "Phone" for
    mobile); else the best difflib ratio against the known names, spaces dropped."""
    words = normalise(header)
    names = (normalise(kayse_field), *dict.fromkeys(SYNONYMS.get(kayse_field, ())))
    if words in names:
        return 1.0 - KNOWN_NAME_STEP * names.index(words)
    squashed = words.replace(" ", "")
    return max(difflib.SequenceMatcher(None, squashed, n.replace(" ", "")).ratio() for n in names)


@dataclass
class Draft:
    """What the drafter decided: the YAML text, and which header went where."""

    text: str
    client_key: str
    case_key: str
    fields: dict[str, str] = field(default_factory=dict)  # Kayse field → header
    unmatched: list[str] = field(default_factory=list)  # headers no field took
    allowed_from: str = "file"  # "account" when the allowed lists came from Kayse


def match_headers(headers: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Kayse field (or client_key/case_key) → header, best likeness first, each used once."""
    targets = ["client_key", "case_key", *CLIENT_FIELDS, *CASE_FIELDS]
    scored = sorted(
        (
            (likeness(h, t), -i, -j, t, h)
            for i, h in enumerate(headers)
            for j, t in enumerate(targets)
            if h.strip()
        ),
        reverse=True,
    )
    chosen: dict[str, str] = {}
    used: set[str] = set()
    for score, _, _, target, header in scored:
        if score < LIKENESS_CUTOFF:
            break
        if target in chosen or header in used:
            continue
        chosen[target] = header
        used.add(header)
    return chosen, [h for h in headers if h not in used and h.strip()]


def _q(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string escapes are YAML's too)."""
    return json.dumps(text, ensure_ascii=False)


def _distinct(values: Sequence[str]) -> list[str]:
    """Trimmed, non-empty, first spelling of each case-insensitive value, in first-seen order."""
    seen: dict[str, str] = {}
    for value in values:
        text = value.strip()
        if text and text.lower() not in seen:
            seen[text.lower()] = text
    return list(seen.values())


def _closest(value: str, allowed: Sequence[str]) -> str | None:
    """The allowed value itself (case-insensitively), else the one most alike."""
    same = [a for a in allowed if a.lower() == value.lower()]
    if same:
        return same[0]
    by_slug = {slug(a): a for a in allowed}
    if slug(value) in by_slug:
        return by_slug[slug(value)]
    close = difflib.get_close_matches(slug(value), list(by_slug), n=1, cutoff=0.6)
    return by_slug[close[0]] if close else None


def _value_map_lines(values: Sequence[str], allowed: Sequence[str], indent: str) -> list[str]:
    lines = [f"{indent}value_map:                 # each value found in the file → an allowed value"]
    for value in values:
        target = _closest(value, allowed)
        if target is None:
            lines.append(
                f"{indent}  # {_q(value)}: ?            # no allowed value is close: pick one and uncomment"
            )
        elif target == value:
            lines.append(f"{indent}  {_q(value)}: {_q(target)}")
        else:
            lines.append(f"{indent}  {_q(value)}: {_q(target)}   # closest allowed value: check it")
    return lines


def draft_mapping(
    headers: Sequence[str],
    distinct_values: Mapping[str, Sequence[str]],
    *,
    source_name: str,
    account_types: Mapping[str, Sequence[str]] | None = None,
) -> Draft:
    """Draft a commented mapping for a file with these headers.

    `distinct_values` holds the distinct cells of (at least) the columns that look like the case
    type and status. `account_types` (case type → its statuses, from `GET /metadata`) gives the
    allowed lists; without it they are the file's own values, marked for a person to replace.
    """
    chosen, unmatched = match_headers(headers)
    first = next((h for h in headers if h.strip()), "ID")
    client_key = chosen.pop("client_key", None)
    case_key = chosen.pop("case_key", None)
    notes: list[str] = []
    if client_key is None:
        client_key = first
        if client_key in unmatched:
            unmatched.remove(client_key)
        notes.append(f"no column looked like a contact id: {client_key!r} is a guess, check it")
    if case_key is None:
        case_key = chosen.get("case_number", client_key)
        notes.append(f"no column looked like a case id: {case_key!r} (one case per contact) is a guess")

    types = _distinct(distinct_values.get(chosen["type"], ())) if "type" in chosen else []
    statuses = _distinct(distinct_values.get(chosen["status"], ())) if "status" in chosen else []
    for kayse_field, values in (("type", types), ("status", statuses)):
        if kayse_field in chosen and (not values or len(values) > MAX_VALUES):
            header = chosen.pop(kayse_field)
            unmatched.append(header)
            why = "is empty" if not values else f"has {len(values)} different values"
            notes.append(f"{header!r} looked like the case {kayse_field} but {why}: left out")
    account_statuses = sorted({s for ss in (account_types or {}).values() for s in ss}, key=str.lower)
    from_account = account_types is not None and bool(account_types)
    allowed_types = list(account_types) if from_account and account_types else types
    allowed_statuses = account_statuses if from_account and account_statuses else statuses

    out: list[str] = [
        f"# Drafted by `kayse-etl mappings init` from {source_name}.",
        "# Every line is a guess to check: headers were matched to Kayse fields by name and likeness.",
        "# Then run: kayse-etl validate SOURCE --mapping THIS_FILE",
        f"name: {_q(slug(source_name.rsplit('.', 1)[0]) or 'draft')}",
        'external_source: "import"        # sent with every record; the ledger keys on it: keep it stable',
        "phone_region: US                 # region for phone numbers written without +country code",
        "date_order: MDY                  # how to read 03/04/2021: MDY, DMY or YMD",
    ]
    out += [f"# NOTE: {note}" for note in notes]

    def field_lines(names: Sequence[str]) -> list[str]:
        lines: list[str] = []
        for name in names:
            header = chosen.get(name)
            if header is None:
                need = "  (required by default: rows without it are rejected)" if name in REQUIRED else ""
                lines.append(f"    # {name}: COLUMN{need}")
                continue
            exact = likeness(header, name) > 1.0 - KNOWN_NAME_STEP * 50
            why = "" if exact else "   # matched by likeness: check it"
            if name == "type" or name == "status":
                values = types if name == "type" else statuses
                allowed = allowed_types if name == "type" else allowed_statuses
                lines.append(f"    {name}:{why}")
                lines.append(f"      column: {_q(header)}")
                lines += _value_map_lines(values, allowed, "      ")
            else:
                lines.append(f"    {name}: {_q(header)}{why}")
        return lines

    def fields_key(names: Sequence[str]) -> str:
        if any(name in chosen for name in names):
            return "  fields:"
        return "  fields: {}                     # no header matched: fill in below and remove the {}"

    out += [
        "client:",
        f"  key: {_q(client_key)}   # the contact's id in the source",
        fields_key(CLIENT_FIELDS),
    ]
    out += field_lines(CLIENT_FIELDS)
    out += ["case:", f"  key: {_q(case_key)}   # the case's id in the source", fields_key(CASE_FIELDS)]
    out += field_lines(CASE_FIELDS)
    leftover = [h for h in unmatched if h not in (client_key, case_key)]
    if leftover:
        out.append("    # Columns no Kayse field took; keep any on the case as free data by uncommenting:")
        out += [f"    # {EXTRA_DATA_PREFIX}{slug(h) or 'column'}: {_q(h)}" for h in leftover]
    if "type" in chosen or "status" in chosen:
        where = (
            "from the Kayse account (GET /metadata)"
            if from_account
            else "from the file's own values: replace them with the account's (`kayse-etl metadata`)"
        )
        out.append(f"allowed:                         # {where}")
        if "type" in chosen:
            out.append(f"  case_types: [{', '.join(_q(t) for t in allowed_types)}]")
        if "status" in chosen:
            out.append(f"  case_statuses: [{', '.join(_q(s) for s in allowed_statuses)}]")
    out += [
        "# case_list:                     # where loaded cases go; {case_type} is filled per list",
        '#   name: "kayse-etl import – {case_type}"',
        "#   per_case_type: true",
    ]
    text = "\n".join(out) + "\n"
    return Draft(
        text=text,
        client_key=client_key,
        case_key=case_key,
        fields=dict(chosen),
        unmatched=leftover,
        allowed_from="account" if from_account else "file",
    )
