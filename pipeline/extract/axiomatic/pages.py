"""Reading one list endpoint to its end, whatever its envelope, without ever looping forever.

Why it exists: Axiomatic documents `page`/`pageSize` but not the envelope, the order, the largest
page size or how the end is signalled. So: ask for a large page and take the size served; find
the list on the first page (a bare array, or the one list-valued key, or the one named like the
resource) and pin that key; stop on the first of an empty page, a page shorter than the size
served, `total` reached, `hasMore` false; treat a page that repeats the previous one as an error
(and cap the number of pages); keep each id once, counting the duplicates dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.extract.axiomatic.http import HttpRefused, NotJson, Page, ReadOnlyClient
from pipeline.extract.axiomatic.jsontext import JsonNumber, to_json_text
from pipeline.model import CrmFinding, EndpointRead, problem

MAX_PAGES = 10_000
BARE_ARRAY = "(bare array)"
TOTAL_KEYS = ("total", "totalCount", "total_count", "totalRecords", "totalItems")
HAS_MORE_KEYS = ("hasMore", "has_more", "hasNext", "hasNextPage", "more")
PAGE_SIZE_KEYS = ("pageSize", "page_size", "perPage", "per_page", "limit")
TOTAL_PAGES_KEYS = ("totalPages", "total_pages", "pageCount", "pages")
COMMON_LIST_KEYS = ("data", "items", "results", "records", "rows")

OnPage = Callable[[str, int], None]  # resource, records kept so far


@dataclass
class PagingMemory:
    """What one server taught about its paging, shared by all its endpoints.

    `cap`: the most records it serves per page whatever is asked (seen as an envelope's
    pageSize, or as a first page shorter than asked that was followed by more). Knowing it, a
    first page shorter than the cap is the end: no extra request to find out.
    """

    cap: int | None = None


@dataclass
class ListRead:
    """Everything one endpoint served, deduplicated, with what it cost and what was odd."""

    records: list[Any]
    stats: EndpointRead
    findings: list[CrmFinding] = field(default_factory=list)


def resource_names(resource: str, path: str) -> list[str]:
    """Names a list key could carry for this resource: `pipeline_stages` → pipelineStages, stages, …"""
    last = path.rstrip("/").rsplit("/", 1)[-1]
    words = [w for w in re.split(r"[-_]", last) if w] or [resource]
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    names = [camel, "_".join(words), "-".join(words), words[-1], resource]
    return [n for i, n in enumerate(names) if n and n not in names[:i]]


def find_list_key(body: Any, resource: str, path: str) -> tuple[str | None, str | None]:
    """(list key, problem code): None key for a bare array; a code when no single list is found."""
    if isinstance(body, list):
        return None, None
    if not isinstance(body, dict):
        return None, problem("envelope-without-list").code
    lists = [key for key, value in body.items() if isinstance(value, list)]
    if len(lists) == 1:
        return lists[0], None
    if not lists:
        return None, problem("envelope-without-list").code
    lowered = {key.lower(): key for key in lists}
    for name in resource_names(resource, path):
        if name.lower() in lowered:
            return lowered[name.lower()], None
    for name in COMMON_LIST_KEYS:
        if name in lowered:
            return lowered[name], None
    return None, problem("envelope-ambiguous").code


def _meta_value(body: Any, keys: tuple[str, ...], kind: type) -> Any:
    """A paging field at the top of the envelope or under `meta` / `pagination`."""
    if not isinstance(body, dict):
        return None
    places = [body] + [body[k] for k in ("meta", "pagination") if isinstance(body.get(k), dict)]
    for place in places:
        for key in keys:
            if isinstance(place.get(key), kind):
                return place[key]
    return None


def _meta_int(body: Any, keys: tuple[str, ...]) -> int | None:
    value = _meta_value(body, keys, JsonNumber)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _meta_bool(body: Any, keys: tuple[str, ...]) -> bool | None:
    value = _meta_value(body, keys, bool)
    return None if value is None else bool(value)


def record_identity(record: Any) -> str:
    """The id as text, or (no id) the record's canonical JSON: what the repeated-page guard compares."""
    if isinstance(record, dict) and record.get("id") not in (None, ""):
        return "id:" + str(record["id"])
    return "json:" + to_json_text(record)


def has_id(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("id") not in (None, "")
        and not isinstance(record.get("id"), dict | list | bool)
    )


def read_list(
    client: ReadOnlyClient,
    resource: str,
    path: str,
    *,
    page_size: int,
    params: dict[str, Any] | None = None,
    memory: PagingMemory | None = None,
    probe_short_first_page: bool = True,
    on_page: OnPage | None = None,
    max_pages: int = MAX_PAGES,
) -> ListRead:
    """Every record of one list endpoint, in served order, each id once.

    A first page shorter than asked, with no envelope field saying more, is either the whole
    list or the server's page cap. When the cap is not known yet (`memory`), the next page is
    asked for to tell, if `probe_short_first_page`; otherwise (the many small per-record lists:
    a lead's timeline, a contact's memberships) the short page is taken as the end.
    """
    memory = memory if memory is not None else PagingMemory()
    requests_before, retries_before = client.requests, client.retries
    findings: list[CrmFinding] = []
    records: list[Any] = []
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    without_id = 0
    not_objects = 0
    list_key: str | None = None
    key_pinned = False
    served: int | None = None
    received = 0
    previous: tuple[str, ...] | None = None
    pages = 0
    page_number = 1
    asked = page_size
    stopped_by = ""
    probing = False

    def stop(code: str, **values: Any) -> None:
        nonlocal stopped_by
        stopped_by = code
        findings.append(CrmFinding(code, resource, **values))

    while True:
        if pages >= max_pages:
            stop(problem("page-ceiling").code, count=pages)
            break
        try:
            page: Page = client.get(path, {**(params or {}), "page": page_number, "pageSize": asked})
        except NotJson as error:
            stop(problem("page-not-json").code, detail=f"page {page_number}: {error.body_start!r}")
            break
        except HttpRefused as error:
            smaller = _smaller_page_size(error, asked) if page_number == 1 and pages == 0 else None
            if smaller is not None:
                asked = smaller
                continue
            if page_number > 1 and error.status == 404:
                stopped_by = "404 past the end"  # some servers refuse a page past the end
                break
            stop(problem("page-refused").code, detail=f"page {page_number}: {error.message}")
            break
        pages += 1
        body = page.body
        if not key_pinned:
            list_key, missing = find_list_key(body, resource, path)
            if missing is not None:
                keys = ", ".join(sorted(body)) if isinstance(body, dict) else type(body).__name__
                stop(missing, detail=f"page {page_number}: keys {keys}")
                break
            key_pinned = True
        items = body if list_key is None else (body.get(list_key) if isinstance(body, dict) else None)
        if not isinstance(items, list):
            stop(
                problem("envelope-without-list").code,
                detail=f"page {page_number}: no list under {list_key or BARE_ARRAY!r}",
            )
            break
        identities = tuple(record_identity(item) for item in items)
        if items and previous is not None and identities == previous:
            if page_number == 2 and probing:
                stop(problem("not-paginated").code, count=len(items))
            else:
                stop(problem("repeated-page").code, detail=f"pages {page_number - 1} and {page_number}")
            break
        previous = identities
        received += len(items)
        for item, identity in zip(items, identities, strict=True):
            if not isinstance(item, dict):
                not_objects += 1
                continue
            if not has_id(item):
                without_id += 1
                records.append(item)
                continue
            if identity in seen:
                duplicates.append(str(item["id"]))
                continue
            seen[identity] = len(records)
            records.append(item)
        if on_page is not None:
            on_page(resource, len(records))
        if page_number == 2 and probing and items:
            memory.cap = served  # page 1 was short of the ask, and more came: that was the cap
            findings.append(CrmFinding(problem("page-size-capped").code, resource, count=served or 0))
        if served is None:
            stated = _meta_int(body, PAGE_SIZE_KEYS)
            if stated is not None and stated > 0:
                served = stated
                if stated < asked:
                    memory.cap = stated
                    findings.append(CrmFinding(problem("page-size-capped").code, resource, count=served))
            elif len(items) >= asked:
                served = asked
            elif memory.cap is not None:
                served = memory.cap
            elif probe_short_first_page:
                served = len(items)
                probing = True  # the end, or the server's cap: the next page says
            else:
                served = asked
        if not items:
            stopped_by = "empty page"
            break
        if _meta_bool(body, HAS_MORE_KEYS) is False:
            stopped_by = "hasMore false"
            break
        total = _meta_int(body, TOTAL_KEYS)
        if total is not None and received >= total:
            stopped_by = "total reached"
            break
        total_pages = _meta_int(body, TOTAL_PAGES_KEYS)
        if total_pages is not None and page_number >= total_pages:
            stopped_by = "last page reached"
            break
        if len(items) < served:
            stopped_by = "short page"
            break
        page_number += 1

    if without_id:
        findings.append(CrmFinding(problem("record-without-id").code, resource, count=without_id))
    if duplicates:
        findings.append(
            CrmFinding(
                problem("duplicates-dropped").code,
                resource,
                count=len(duplicates),
                examples=tuple(duplicates[:5]),
            )
        )
    if not_objects:
        findings.append(CrmFinding(problem("record-not-object").code, resource, count=not_objects))
    complete = not any(f.severity == "error" for f in findings)
    stats = EndpointRead(
        resource=resource,
        path=path,
        list_key=list_key if key_pinned else None,
        pages=pages,
        records=len(records),
        requests=client.requests - requests_before,
        retries=client.retries - retries_before,
        page_size_asked=asked,
        page_size_served=served,
        stopped_by=stopped_by,
        complete=complete,
    )
    return ListRead(records, stats, findings)


def _smaller_page_size(error: HttpRefused, asked: int) -> int | None:
    """A 400 on the first page that names the page size: retry with the largest size it allows."""
    if error.status != 400 or "page" not in error.message.lower() or asked <= 1:
        return None
    allowed = [int(n) for n in re.findall(r"\d+", error.message) if 0 < int(n) < asked]
    return max(allowed) if allowed else max(1, math.floor(asked / 10))
