"""The plan stage: decide, before anything is sent, exactly what a load will send.

Requests are the scarce resource (500 per hour per key), so the plan sends only what is new or
changed (by payload hash against the ledger), packs records into bulk requests as large as the
account accepts (the batch size, lowered to the caps the ledger learned from the account's
refusals), gives new lists their first members in the create call, and attaches only cases not
yet in their list. It counts the requests that takes, and `load` then sends exactly that many
(barring retries, bisection of refused batches, and the one refusal that teaches a new cap).
It never sends anything and never reads the network.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

from pipeline.model import (
    CASE_CLIENT_KEY,
    EXTRA_DATA_PREFIX,
    SOURCE_FILE,
    SOURCE_ROW,
    CampaignOp,
    LedgerSnapshot,
    ListOp,
    MappingSpec,
    Plan,
    RecordOp,
    RecordRef,
    ValidationResult,
    payload_hash,
)

DEFAULT_BATCH_SIZE = 500
"""Items per bulk request (and case ids per list create or attach). The API documents no maximum;
accounts accept 500, and an account that accepts fewer says so once and is remembered."""
BULK_KINDS = ("client", "case", "members")
LIST_SEARCH_PAGE_SIZE = 100

_NOT_PAYLOAD = {SOURCE_FILE, SOURCE_ROW, CASE_CLIENT_KEY}


def record_key(external_source: str, external_source_id: str) -> str:
    """The ledger's key for a client or case: ids are unique only within their source system."""
    return f"{external_source}:{external_source_id}"


def list_name(spec: MappingSpec, case_type: str | None) -> str:
    assert spec.case_list is not None
    return spec.case_list.name.format(case_type=case_type or "all")


def campaign_name(spec: MappingSpec, case_type: str | None) -> str:
    assert spec.campaign is not None
    return spec.campaign.name.format(case_type=case_type or "all")


def build_plan(
    result: ValidationResult,
    snapshot: LedgerSnapshot,
    *,
    campaign: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    bulk_caps: dict[str, int] | None = None,
    today: date | None = None,
) -> Plan:
    """Compare validated records with what the ledger says Kayse holds, and list what to send.

    `bulk_caps` (kind → largest batch, from `Ledger.bulk_caps`) lowers `batch_size` per kind:
    `client` and `case` upserts, `members` (case ids in a list's create and in attach/detach)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    caps = bulk_caps or {}
    sizes = {kind: min(batch_size, caps.get(kind, batch_size)) for kind in BULK_KINDS}
    spec = result.mapping
    today = today or date.today()
    unchanged = {"client": 0, "case": 0}
    uncertain: list[RecordRef] = []
    blocked: list[RecordRef] = []

    client_ops: list[RecordOp] = []
    client_ids: dict[str, int | None] = {}  # key → Kayse id (None: created by this load)
    for row in result.clients.iter_rows(named=True):
        key = record_key(spec.external_source, row["external_source_id"])
        payload = _payload(row, spec.external_source)
        entry = snapshot.clients.get(key)
        if entry is not None and entry.state == "uncertain":
            uncertain.append(_ref("client", key, row, "an earlier create's answer was lost"))
            continue
        if entry is not None and entry.payload_hash == payload_hash(payload):
            unchanged["client"] += 1
            client_ids[key] = entry.kayse_id
            continue
        kayse_id = entry.kayse_id if entry else None
        client_ids[key] = kayse_id
        client_ops.append(RecordOp("client", key, payload, kayse_id, row[SOURCE_FILE], row[SOURCE_ROW]))

    case_ops: list[RecordOp] = []
    case_types: dict[str, str | None] = {}  # case key → type, for lists
    for row in result.cases.iter_rows(named=True):
        key = record_key(spec.external_source, row["external_source_id"])
        client_key = record_key(spec.external_source, row[CASE_CLIENT_KEY])
        payload = _payload(row, spec.external_source)
        entry = snapshot.cases.get(key)
        if entry is not None and entry.state == "uncertain":
            uncertain.append(_ref("case", key, row, "an earlier create's answer was lost"))
            continue
        if client_key not in client_ids:
            blocked.append(_ref("case", key, row, f"its contact {row[CASE_CLIENT_KEY]} is uncertain"))
            continue
        case_types[key] = row.get("type")
        client_id = client_ids[client_key]
        if (
            entry is not None
            and client_id is not None
            and entry.payload_hash == payload_hash({**payload, "client_ids": [client_id]})
        ):
            unchanged["case"] += 1
            continue
        case_ops.append(
            RecordOp(
                "case",
                key,
                payload,
                entry.kayse_id if entry else None,
                row[SOURCE_FILE],
                row[SOURCE_ROW],
                client_key=client_key,
                client_id=client_id,
            )
        )

    list_ops, campaign_ops = _lists_and_campaigns(spec, snapshot, case_types, campaign, today, uncertain)
    requests = _count_requests(client_ops, case_ops, list_ops, campaign_ops, sizes)
    return Plan(
        target=snapshot.target,
        batch_size=batch_size,
        clients=tuple(client_ops),
        cases=tuple(case_ops),
        case_lists=tuple(list_ops),
        campaigns=tuple(campaign_ops),
        unchanged=unchanged,
        uncertain=tuple(uncertain),
        blocked=tuple(blocked),
        requests=requests,
    )


def _payload(row: dict[str, Any], external_source: str) -> dict[str, Any]:
    """The JSON body for one record: typed values, empty optional fields left out (never "")."""
    payload: dict[str, Any] = {"external_source": external_source}
    extra: dict[str, Any] = {}
    for name, value in row.items():
        if name in _NOT_PAYLOAD or value is None or value == "":
            continue
        if name.startswith(EXTRA_DATA_PREFIX):
            extra[name.removeprefix(EXTRA_DATA_PREFIX)] = value
        else:
            payload[name] = value
    if extra:
        payload["external_source_data"] = extra
    return payload


def _ref(kind: Any, key: str, row: dict[str, Any], reason: str) -> RecordRef:
    return RecordRef(kind, key, row.get(SOURCE_FILE), row.get(SOURCE_ROW), reason)


def _lists_and_campaigns(
    spec: MappingSpec,
    snapshot: LedgerSnapshot,
    case_types: dict[str, str | None],
    campaign: bool,
    today: date,
    uncertain: list[RecordRef],
) -> tuple[list[ListOp], list[CampaignOp]]:
    if spec.case_list is None:
        return [], []
    with_campaign = campaign and spec.campaign is not None
    # A Kayse campaign needs a list whose cases share one case type.
    per_type = spec.case_list.per_case_type or with_campaign
    by_list: dict[str, list[str]] = defaultdict(list)
    list_type: dict[str, str | None] = {}
    for case_key, case_type in case_types.items():
        name = list_name(spec, case_type if per_type else None)
        by_list[name].append(case_key)
        list_type[name] = case_type if per_type else None

    # A case whose type changed belongs in another list now: take it out of the old one, so a
    # campaign there keeps reaching only cases of its type. Cases absent from this input stay put.
    list_of = {case_key: name for name, keys in by_list.items() for case_key in keys}
    moved: dict[str, tuple[str, ...]] = {}
    for name, members in snapshot.members.items():
        entry = snapshot.case_lists.get(name)
        if entry is not None and entry.state == "done":
            moved[name] = tuple(sorted(k for k in members if k in list_of and list_of[k] != name))

    list_ops: list[ListOp] = []
    campaign_ops: list[CampaignOp] = []
    for name in sorted(set(by_list) | {n for n, keys in moved.items() if keys}):
        entry = snapshot.case_lists.get(name)
        known = snapshot.members.get(name, frozenset())
        new_members = tuple(k for k in by_list.get(name, ()) if k not in known)
        recover = entry is not None and entry.state == "uncertain"
        if new_members or moved.get(name) or entry is None or recover:
            payload: dict[str, Any] = {"name": name, "external_source": spec.external_source}
            if spec.case_list.description:
                payload["description"] = spec.case_list.description
            kayse_id = entry.kayse_id if entry and entry.state == "done" else None
            list_ops.append(
                ListOp(
                    name, payload, list_type.get(name), kayse_id, recover, new_members, moved.get(name, ())
                )
            )
        if with_campaign and name in by_list:
            assert spec.campaign is not None
            cname = campaign_name(spec, list_type[name])
            centry = snapshot.campaigns.get(cname)
            if centry is not None and centry.state == "uncertain":
                uncertain.append(RecordRef("campaign", cname, reason="an earlier create's answer was lost"))
            elif centry is None:
                campaign_ops.append(CampaignOp(cname, name, _campaign_payload(spec, cname, today)))
    return list_ops, campaign_ops


def _campaign_payload(spec: MappingSpec, name: str, today: date) -> dict[str, Any]:
    assert spec.campaign is not None
    run: dict[str, Any] = {
        "start_date": today.isoformat(),
        "end_date": (today + timedelta(days=spec.campaign.days)).isoformat(),
    }
    payload: dict[str, Any] = {"name": name, "runs": [run]}
    if spec.campaign.messaging_only:
        run["messaging_only"] = True
    else:
        run["start_time"] = spec.campaign.start_time
        run["end_time"] = spec.campaign.end_time
    if spec.campaign.agent_id:
        payload["agent_id"] = spec.campaign.agent_id
    return payload


def _count_requests(
    clients: list[RecordOp],
    cases: list[RecordOp],
    lists: list[ListOp],
    campaigns: list[CampaignOp],
    sizes: dict[str, int],
) -> dict[str, int]:
    def batches(n: int, kind: str) -> int:
        return math.ceil(n / sizes[kind])

    list_requests = 0
    membership = 0
    for op in lists:
        if op.recover:
            list_requests += 1  # a name search; if the list is not found it is created (+1)
        if op.kayse_id is None and not op.recover:
            list_requests += 1  # the create carries the first batch of members
            membership += batches(max(0, len(op.new_case_keys) - sizes["members"]), "members")
        else:
            membership += batches(len(op.new_case_keys), "members")
        membership += batches(len(op.moved_case_keys), "members")
    return {
        "clients": batches(len(clients), "client"),
        "cases": batches(len(cases), "case"),
        "case_lists": list_requests,
        "membership": membership,
        "campaigns": len(campaigns),
    }
