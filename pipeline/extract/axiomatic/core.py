"""`extract(...)`: one Axiomatic entity's CRM read into a folder of CSVs plus extract.json.

Why it exists: moving a firm off Axiomatic starts with a faithful, complete copy of what it
serves, taken with a read-only key and within its read quota. The order of the steps: preflight
(the key, the entity and its name), the big lists (their paging teaches the server's page cap),
the stages, the memberships (the cheaper of the two ways to ask), the timelines if asked, then
the tables, the cross-checks and one atomic write of the folder.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit, urlunsplit

from pipeline.extract.axiomatic.http import (
    AxiomaticError,
    Forbidden,
    HttpRefused,
    KeyRefused,
    NotJson,
    ReadOnlyClient,
    Unreachable,
    WaitTooLong,
)
from pipeline.extract.axiomatic.pages import ListRead, PagingMemory, has_id, read_list
from pipeline.extract.axiomatic.reconcile import reconcile
from pipeline.extract.axiomatic.tables import (
    SUMMARY_FILE,
    StagingFolder,
    build_table,
    check_target,
    type_findings,
    write_csv,
    write_json,
)
from pipeline.model import AxiomaticExtract, CrmFinding, EndpointRead, ExitCode, UserError, problem

DEFAULT_PAGE_SIZE = 1000
KEY_HINT = "set AXIOMATIC_API_KEY or pass --api-key-file; create a key with the read:crm scope under Settings → API keys"

# resource → (file, path). Read in this order: the big lists first, so the stages' short list
# is known to be whole from the page cap they taught.
TOP_LEVEL: tuple[tuple[str, str], ...] = (
    ("contacts", "/api/crm/contacts"),
    ("companies", "/api/crm/companies"),
    ("leads", "/api/crm/leads"),
    ("activities", "/api/crm/activities"),
    ("tasks", "/api/crm/tasks"),
    ("pipeline_stages", "/api/crm/pipeline-stages"),
)
FILE_ORDER = (
    "contacts",
    "companies",
    "memberships",
    "pipeline_stages",
    "leads",
    "activities",
    "tasks",
    "timelines",
)


class ExtractObserver(Protocol):
    """What a progress display is told. All calls come from the extracting thread."""

    def begin(self, entity_name: str) -> None: ...
    def resource(self, name: str, total: int | None) -> None: ...
    def progress(self, name: str, done: int, requests: int) -> None: ...
    def wait(self, seconds: float, reason: str) -> None: ...
    def note(self, message: str) -> None: ...


@dataclass(frozen=True)
class _Entity:
    id: str
    name: str


def normalize_base_url(base_url: str) -> str:
    """The part before /api (a trailing /api is forgiven); no credentials, query or fragment."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(
            f"the Axiomatic base URL {base_url!r} is not an http(s) URL",
            hint="e.g. https://app.axiomatic.example (the part before /api)",
        )
    if parts.username or parts.password or parts.query or parts.fragment:
        raise UserError(
            "the Axiomatic base URL must not carry credentials, a query or a fragment",
            hint="give only https://host[/path], the part before /api",
        )
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def check_entity_id(entity_id: str) -> str:
    try:
        return str(uuid.UUID(entity_id.strip()))
    except ValueError:
        raise UserError(
            f"--entity {entity_id!r} is not a UUID",
            hint="the entity's id, as GET /api/entities lists it (a UUID)",
        ) from None


def check_key(api_key: str | None) -> str:
    key = (api_key or "").strip()
    if not key:
        raise UserError("no Axiomatic API key given", hint=KEY_HINT)
    if not all(33 <= ord(char) <= 126 for char in key):
        raise UserError(
            "the Axiomatic API key contains spaces, line breaks or other characters a key cannot have",
            hint="a key file should hold only the key (ak_…)",
        )
    return key


# ---- errors → one line and an exit code ---------------------------------------------------


def _user_error(
    error: AxiomaticError, client: ReadOnlyClient, entity_id: str, *, preflight: bool
) -> UserError:
    host = urlsplit(client.base_url).netloc
    done = "" if preflight else " Nothing was written; run the same command again to start over."
    if isinstance(error, KeyRefused):
        return UserError(
            f"Axiomatic refused the key {client.key_fingerprint} (401): {error.message}.{done}",
            hint=KEY_HINT,
            exit_code=ExitCode.STOPPED,
        )
    if isinstance(error, Forbidden):
        if error.missing_scope:
            return UserError(
                f"the key {client.key_fingerprint} lacks the read:crm scope (403 on {error.path}): {error.message}",
                hint="create a key with the read:crm scope (read-only is enough) under Settings → API keys",
                exit_code=ExitCode.USAGE,
            )
        return UserError(
            f"the key {client.key_fingerprint} cannot reach entity {entity_id} (403 on {error.path}): {error.message}",
            hint="check --entity: GET /api/entities lists the entities this key reaches",
            exit_code=ExitCode.USAGE,
        )
    if isinstance(error, WaitTooLong):
        return UserError(
            f"stopped early: {error.message}.{done}",
            hint="rerun later, or raise --max-wait",
            exit_code=ExitCode.STOPPED,
        )
    if isinstance(error, Unreachable):
        return UserError(
            f"stopped early: {error.message}.{done}",
            hint=f"check the network and that {host} is up, then rerun",
            exit_code=ExitCode.STOPPED,
        )
    if preflight and isinstance(error, NotJson | HttpRefused):
        what = (
            f"answered {error.status}"
            if isinstance(error, HttpRefused)
            else f"answered with something that is not JSON ({error.body_start!r})"
        )
        return UserError(
            f"{client.base_url} does not look like an Axiomatic API: GET /api/entities {what}",
            hint="give --base-url as the part before /api, e.g. https://<host>",
            exit_code=ExitCode.USAGE,
        )
    return UserError(
        f"Axiomatic refused GET {error.path}: {error.message}",
        hint="see the message; rerun once it is fixed",
        exit_code=ExitCode.USAGE,
    )


def preflight(client: ReadOnlyClient, entity_id: str) -> _Entity:
    """GET /api/entities: the key works and reaches the entity; its name for the report."""
    try:
        page = client.get("/api/entities", max_retries=2)
    except AxiomaticError as error:
        raise _user_error(error, client, entity_id, preflight=True) from None
    entities = page.body.get("entities") if isinstance(page.body, dict) else None
    if not isinstance(entities, list):
        raise UserError(
            f"{client.base_url} does not look like an Axiomatic API: GET /api/entities holds no `entities` list",
            hint="give --base-url as the part before /api, e.g. https://<host>",
        )
    for entity in entities:
        if isinstance(entity, dict) and str(entity.get("id", "")).lower() == entity_id.lower():
            return _Entity(entity_id, str(entity.get("name") or ""))
    reachable = ", ".join(f"{e.get('id')} ({e.get('name')})" for e in entities if isinstance(e, dict))[:400]
    raise UserError(
        f"the key {client.key_fingerprint} does not reach entity {entity_id}",
        hint=f"it reaches: {reachable or 'no entity'}",
        exit_code=ExitCode.USAGE,
    )


# ---- per-record lists ---------------------------------------------------------------------


def _read_per_record(
    client: ReadOnlyClient,
    resource: str,
    parents: list[dict[str, Any]],
    path_of: Callable[[str], str],
    *,
    page_size: int,
    memory: PagingMemory,
    observer: ExtractObserver | None,
    complete_record: Callable[[dict[str, Any], str], dict[str, Any]] = lambda record, _parent: record,
) -> ListRead:
    """One small list per parent record (a lead's timeline, a company's contacts), merged, each id once."""
    requests_before, retries_before = client.requests, client.retries
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    findings: dict[tuple[str, str, str], CrmFinding] = {}
    pages = 0
    first: EndpointRead | None = None
    duplicates: list[str] = []
    with_id = [parent for parent in parents if has_id(parent)]
    if observer is not None:
        observer.resource(resource, len(with_id))
    for done, parent in enumerate(with_id, start=1):
        parent_id = str(parent["id"])
        read = read_list(
            client,
            resource,
            path_of(quote(parent_id, safe="")),
            page_size=page_size,
            memory=memory,
            probe_short_first_page=False,
        )
        first = first or read.stats
        pages += read.stats.pages
        for finding in read.findings:
            key = (finding.code, finding.field, finding.detail if finding.severity == "error" else "")
            merged = findings.get(key)
            examples = (*merged.examples, parent_id)[:5] if merged else (parent_id,)
            count = (merged.count if merged else 0) + finding.count
            findings[key] = CrmFinding(
                finding.code,
                resource,
                count=count,
                field=finding.field,
                detail=finding.detail,
                examples=examples,
            )
        for record in read.records:
            record = complete_record(record, parent_id)
            if has_id(record):
                if str(record["id"]) in seen:
                    duplicates.append(str(record["id"]))
                    continue
                seen.add(str(record["id"]))
            records.append(record)
        if observer is not None:
            observer.progress(resource, done, client.requests)
    found = list(findings.values())
    if duplicates:
        found.append(
            CrmFinding(
                problem("duplicates-dropped").code,
                resource,
                count=len(duplicates),
                examples=tuple(duplicates[:5]),
            )
        )
    stats = EndpointRead(
        resource=resource,
        path=path_of("{id}"),
        list_key=first.list_key if first else None,
        pages=pages,
        records=len(records),
        requests=client.requests - requests_before,
        retries=client.retries - retries_before,
        page_size_asked=page_size,
        page_size_served=first.page_size_served if first else None,
        stopped_by=f"one list per parent record ({len(with_id)})",
        complete=not any(f.severity == "error" for f in found),
    )
    return ListRead(records, stats, found)


def _with_lead_id(event: dict[str, Any], lead_id: str) -> dict[str, Any]:
    """A timeline event names its lead; if the server left it out, the lead asked for is added."""
    return event if "leadId" in event else {"leadId": lead_id, **event}


# ---- the extract --------------------------------------------------------------------------


def extract(
    base_url: str,
    api_key: str,
    entity_id: str,
    out_dir: Path | str,
    *,
    timelines: bool = False,
    page_size: int = DEFAULT_PAGE_SIZE,
    max_wait: float | None = None,
    observer: ExtractObserver | None = None,
    memberships_via: str = "auto",
    client_options: dict[str, Any] | None = None,
) -> AxiomaticExtract:
    """Read one entity's CRM into `out_dir` (replaced whole, or left as it was on any failure).

    Raises UserError (one line, hint, exit code) for a refused key, a wrong entity or scope, an
    unreachable host, a base URL that is not Axiomatic, a quota wait beyond `max_wait`. Odd data
    never raises: it becomes findings in extract.json (errors among them make `complete` false).
    `memberships_via`: "contacts" (one list per contact), "companies" (each company's contacts
    first, then only the member contacts' lists) or "auto" (companies when there are at most a
    quarter as many companies as contacts).
    """
    base_url = normalize_base_url(base_url)
    entity_id = check_entity_id(entity_id)
    api_key = check_key(api_key)
    out = Path(out_dir)
    check_target(out)
    if memberships_via not in ("auto", "companies", "contacts"):
        raise UserError(f"memberships_via must be auto, companies or contacts, not {memberships_via!r}")
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    client = ReadOnlyClient(
        base_url, api_key, entity_id, max_wait=max_wait, observer=observer, **(client_options or {})
    )
    try:
        entity = preflight(client, entity_id)
        if observer is not None:
            observer.begin(entity.name)
        try:
            reads, via, why = _read_everything(client, page_size, timelines, memberships_via, observer)
        except AxiomaticError as error:
            raise _user_error(error, client, entity_id, preflight=False) from None
    finally:
        client.close()
    return _write_folder(out, base_url, entity, started, client, reads, via, why, timelines)


def _read_everything(
    client: ReadOnlyClient,
    page_size: int,
    timelines: bool,
    memberships_via: str,
    observer: ExtractObserver | None,
) -> tuple[dict[str, ListRead], str, str]:
    memory = PagingMemory()
    reads: dict[str, ListRead] = {}

    def on_page(resource: str, records: int) -> None:
        if observer is not None:
            observer.progress(resource, records, client.requests)

    for resource, path in TOP_LEVEL:
        if observer is not None:
            observer.resource(resource, None)
        reads[resource] = read_list(
            client, resource, path, page_size=page_size, memory=memory, on_page=on_page
        )
    contacts = [r for r in reads["contacts"].records if has_id(r)]
    companies = [r for r in reads["companies"].records if has_id(r)]
    via = memberships_via
    if via == "auto":
        # worst case (every contact in a company) this costs 1.25 lists per contact; with few
        # contacts in companies, as in a law firm's intake, far fewer than one
        via = "companies" if len(companies) * 4 <= len(contacts) else "contacts"
    members = contacts
    if via == "companies":
        # A company's contact list names who has a membership at all; only those contacts'
        # memberships are then read (the membership records themselves: id, title, isPrimary).
        listed = _read_per_record(
            client, "company_contacts", companies, lambda cid: f"/api/crm/companies/{cid}/contacts",
            page_size=page_size, memory=memory, observer=observer,
        )  # fmt: skip
        # a contact in two companies is listed twice: that is no duplicate in the CRM
        listed.findings[:] = [f for f in listed.findings if f.code != problem("duplicates-dropped").code]
        reads["company_contacts"] = listed
        member_ids = {str(r["id"]) for r in listed.records if has_id(r)}
        members = [c for c in contacts if str(c["id"]) in member_ids]
        why = (
            f"{len(companies)} company contact lists named the {len(members)} contacts (of {len(contacts)}) "
            f"that belong to a company; only theirs were read: {len(companies) + len(members)} lists "
            f"instead of {len(contacts)}. A company's contact list serves contacts, not the memberships' "
            "own fields (id, title, isPrimary), so it cannot replace the per-contact read"
        )
    else:
        why = (
            f"one list per contact ({len(contacts)}): with {len(companies)} companies, first reading each "
            "company's contacts (to skip contacts in no company) could cost more than it saves"
        )
    reads["memberships"] = _read_per_record(
        client, "memberships", members, lambda cid: f"/api/crm/contacts/{cid}/company-memberships",
        page_size=page_size, memory=memory, observer=observer,
    )  # fmt: skip
    if timelines:
        leads = [r for r in reads["leads"].records if has_id(r)]
        reads["timelines"] = _read_per_record(
            client, "timelines", leads, lambda lid: f"/api/crm/leads/{lid}/timeline",
            page_size=page_size, memory=memory, observer=observer, complete_record=_with_lead_id,
        )  # fmt: skip
    return reads, via, why


def _write_folder(
    out: Path,
    base_url: str,
    entity: _Entity,
    started: str,
    client: ReadOnlyClient,
    reads: dict[str, ListRead],
    via: str,
    why: str,
    timelines: bool,
) -> AxiomaticExtract:
    findings: list[CrmFinding] = []
    tables = {}
    for resource in FILE_ORDER:
        if resource not in reads:
            continue
        table = build_table(r for r in reads[resource].records if isinstance(r, dict))
        tables[resource] = table
        findings.extend(reads[resource].findings)
        findings.extend(type_findings(resource, table))
    findings.extend(
        reconcile(reads["pipeline_stages"].records, reads["contacts"].records, reads["leads"].records)
    )
    if "company_contacts" in reads:
        findings.extend(reads["company_contacts"].findings)
    endpoints = tuple(reads[r].stats for r in (*FILE_ORDER, "company_contacts") if r in reads)
    rows = {f"{r}.csv": len(t.rows) for r, t in tables.items()}
    result = AxiomaticExtract(
        out_dir=out,
        entity_id=entity.id,
        entity_name=entity.name,
        extracted_at=started,
        tables=rows,
        endpoints=endpoints,
        findings=tuple(findings),
        requests=client.requests,
        retries=client.retries,
        waited_seconds=round(client.waited_seconds, 3),
        memberships_via=via,
    )
    summary = {
        "source": "axiomatic",
        "base_url": base_url,
        "key": client.key_fingerprint,
        "entity": {"id": entity.id, "name": entity.name},
        "extracted_at": started,
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "complete": result.complete,
        "timelines": timelines,
        "requests": client.requests,
        "retries": client.retries,
        "waited_seconds": result.waited_seconds,
        "memberships": {
            "via": via,
            "paths": (["/api/crm/companies/{id}/contacts"] if via == "companies" else [])
            + ["/api/crm/contacts/{id}/company-memberships"],
            "why": why,
        },
        "files": rows,
        "endpoints": {
            e.resource: {
                "path": e.path,
                "list_key": e.list_key if e.list_key is not None else "(bare array)",
                "pages": e.pages,
                "records": e.records,
                "requests": e.requests,
                "retries": e.retries,
                "page_size_asked": e.page_size_asked,
                "page_size_served": e.page_size_served,
                "stopped_by": e.stopped_by,
                "complete": e.complete,
            }
            for e in endpoints
        },
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "resource": f.resource,
                "count": f.count,
                "field": f.field or None,
                "message": f.message,
                "examples": list(f.examples),
            }
            for f in findings
        ],
    }
    staging = StagingFolder(out)
    try:
        for resource, table in tables.items():
            write_csv(staging.path / f"{resource}.csv", table)
        write_json(staging.path / SUMMARY_FILE, summary)
        staging.publish()
    except BaseException:
        staging.discard()
        raise
    return result
