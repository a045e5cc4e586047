"""The local Axiomatic's HTTP surface: `/api/entities` and `/api/crm/...`, as a raw ASGI app.

Why it exists: to answer like the documented API — Bearer `ak_` keys with scopes, `entityId` on
every request, per-key fixed-window rate limits with `X-RateLimit-*` on every answer, envelopes
that differ between endpoints, a page-size cap and the legacy companies cap — and to misbehave on
demand (500s, extra 429s, latency, a 200 whose body is not JSON). One function decides every
answer, so the order of checks is readable in one place: key, quota, fault, scope, entity, route.

Must never: change the data on a write (writes are acknowledged and logged, never applied), or
answer an error in any shape but `{"error": "<message>"}`.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import math
import random
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pipeline.axiomatic_sandbox.config import (
    DATA_KNOBS,
    DEMO_ENTITY,
    ENTITIES,
    FAULT_KINDS,
    KEYS_BY_VALUE,
    UNPAGINATED,
    ApiKey,
    AxiomaticConfig,
    ConfigError,
    FaultSpec,
    parse_faults,
)
from pipeline.axiomatic_sandbox.data import Dataset, Record, generate

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
INJECTED_RETRY_AFTER = 1
REQUEST_LOG_MAX = 20_000
_ID = "(?P<id>[^/]+)"

READ_ROUTES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern + "$"), name)
    for pattern, name in (
        ("/api/entities", "entities"),
        ("/api/crm/pipeline-stages", "pipeline-stages"),
        ("/api/crm/companies", "companies"),
        (f"/api/crm/companies/{_ID}", "company"),
        (f"/api/crm/companies/{_ID}/contacts", "company-contacts"),
        ("/api/crm/contacts", "contacts"),
        (f"/api/crm/contacts/{_ID}", "contact"),
        (f"/api/crm/contacts/{_ID}/company-memberships", "company-memberships"),
        ("/api/crm/leads", "leads"),
        (f"/api/crm/leads/{_ID}", "lead"),
        (f"/api/crm/leads/{_ID}/timeline", "timeline"),
        ("/api/crm/activities", "activities"),
        ("/api/crm/tasks", "tasks"),
        ("/api/crm/dashboard", "dashboard"),
    )
)
_COLLECTION = "/api/crm/(contacts|companies|leads|activities|tasks|pipeline-stages)"
WRITE_ROUTES: tuple[tuple[re.Pattern[str], frozenset[str]], ...] = tuple(
    (re.compile(pattern + "$"), frozenset(methods))
    for pattern, methods in (
        (_COLLECTION, {"POST"}),
        (f"{_COLLECTION}/{_ID}", {"PUT", "PATCH", "DELETE"}),
        (f"/api/crm/leads/{_ID}/stage", {"POST", "PUT", "PATCH"}),
        ("/api/crm/prospecting/add-to-marketing-list", {"POST"}),
        ("/api/crm/outbound-email", {"POST"}),
    )
)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Reply:
    status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    delay: float = 0.0


def _json_reply(status: int, payload: Any) -> Reply:
    return Reply(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"))


@dataclass
class RateLimiter:
    """Fixed window per key and kind (reads, writes); a window opens at the first request it counts."""

    windows: dict[tuple[str, str], tuple[float, int]] = field(default_factory=dict)

    def state(self, bucket: tuple[str, str], limit: int, window: float, now: float) -> tuple[int, int, float]:
        start, used = self.windows.get(bucket, (now, 0))
        if now >= start + window:
            start, used = now, 0
        return used, max(limit - used, 0), start + window

    def take(self, bucket: tuple[str, str], limit: int, window: float, now: float) -> None:
        used, _remaining, reset = self.state(bucket, limit, window, now)
        self.windows[bucket] = (reset - window, used + 1)


@dataclass
class OneShot:
    kind: str
    path: str | None  # a full path ("/api/crm/leads") or one under /api/crm ("/leads"); wildcards allowed
    remaining: int
    seconds: float | None

    def matches(self, path: str) -> bool:
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


class Runtime:
    """One running local Axiomatic: its data, settings, rate windows, faults and request log. Thread-safe."""

    def __init__(self, config: AxiomaticConfig):
        self.initial = config.checked()
        self._lock = threading.RLock()
        self.on_entry: Callable[[dict[str, Any]], None] | None = None
        self._initial_data = generate(self.initial)  # never changed in place, so reset can reuse it
        self.reset()

    # ---- control (called from the test's thread) ----------------------------------------

    def reset(self) -> None:
        with self._lock:
            self.config = self.initial
            self.data = self._initial_data
            self.limiter = RateLimiter()
            self.one_shots: list[OneShot] = []
            self._set_faults(parse_faults(self.config.faults))
            self.log: list[dict[str, Any]] = []

    def configure(self, changes: dict[str, Any]) -> AxiomaticConfig:
        with self._lock:
            before = self.config
            self.config = before.with_changes(changes)
            if any(
                getattr(before, name) != getattr(self.config, name)
                for name in DATA_KNOBS | {"lead_count_skew"}
            ):
                self.data = generate(self.config)
            if {"rate_limit", "write_rate_limit", "rate_window"} & set(changes):
                self.limiter = RateLimiter()
            if "faults" in changes:
                self._set_faults(parse_faults(self.config.faults))
            return self.config

    def inject(self, kind: str, path: str | None, count: int, seconds: float | None) -> None:
        if kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        if count < 1:
            raise ConfigError("count must be at least 1")
        if path is not None and not path.startswith("/api/"):
            path = "/api/crm" + (path if path.startswith("/") else "/" + path)
        with self._lock:
            self.one_shots.append(OneShot(kind, path, count, seconds))

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry, query=dict(entry["query"])) for entry in self.log]

    def dataset(self) -> dict[str, Any]:
        with self._lock:
            return self.data.as_dict()

    def _set_faults(self, spec: FaultSpec) -> None:
        self.fault_spec = spec
        self.fault_rng = random.Random(spec.seed)

    # ---- answering ------------------------------------------------------------------

    def respond(
        self, method: str, path: str, query_string: bytes, headers: dict[str, str], body: bytes
    ) -> Reply:
        query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
        entry: dict[str, Any] = {"time": time.time(), "method": method, "path": path, "query": query}
        entry.update(status=None, key=None, fault=None)
        with self._lock:
            try:
                reply = self._answer(method, path, query, headers, body, entry)
            except ApiError as error:
                reply = _json_reply(error.status, {"error": error.message})
            reply.headers.extend(entry.pop("_quota_headers", []))
            entry["status"] = reply.status
            self.log.append(entry)
            del self.log[:-REQUEST_LOG_MAX]
        if self.on_entry is not None:
            self.on_entry(entry)
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        entry: dict[str, Any],
    ) -> Reply:
        config = self.config
        writing = method in WRITE_METHODS
        limit = config.write_rate_limit if writing else config.rate_limit
        api_key = _api_key(headers.get("authorization"))
        now = time.time()
        bucket = (api_key.key if api_key else "", "write" if writing else "read")
        _used, remaining, reset = self.limiter.state(bucket, limit, config.rate_window, now)
        entry["_quota_headers"] = _quota_headers(limit, remaining, reset)
        if not path.startswith("/api/"):
            raise ApiError(404, f"no route {path}")
        if api_key is None:
            raise ApiError(401, "missing or invalid API key (send Authorization: Bearer ak_...)")
        entry["key"] = api_key.name
        if remaining <= 0:
            return self._too_many(
                entry, limit, reset, max(1, math.ceil(reset - now)) if config.retry_after else None
            )
        kind, delay = self._fault(path)
        entry["fault"] = kind or ("latency" if delay else None)
        if kind == "ratelimit":
            return self._too_many(entry, limit, reset, INJECTED_RETRY_AFTER if config.retry_after else None)
        self.limiter.take(bucket, limit, config.rate_window, now)
        entry["_quota_headers"] = _quota_headers(limit, remaining - 1, reset)
        if kind == "error":
            reply = _json_reply(500, {"error": "internal server error (injected fault)"})
        elif writing:
            reply = self._write(method, path, query, api_key, body)
        else:
            reply = self._read(path, query, api_key)
        if kind == "badjson" and reply.status == 200:
            reply.body = reply.body[: max(1, len(reply.body) // 2)]  # an answer cut off mid-way
        reply.delay = delay
        return reply

    def _too_many(self, entry: dict[str, Any], limit: int, reset: float, retry_after: int | None) -> Reply:
        reply = _json_reply(429, {"error": f"rate limit of {limit} requests per window exceeded"})
        entry["_quota_headers"] = _quota_headers(limit, 0, reset)
        if retry_after is not None:
            reply.headers.append((b"retry-after", str(retry_after).encode()))
        return reply

    def _fault(self, path: str) -> tuple[str | None, float]:
        for shot in self.one_shots:
            if shot.matches(path):
                shot.remaining -= 1
                if shot.remaining <= 0:
                    self.one_shots.remove(shot)
                if shot.kind == "latency":
                    return None, shot.seconds if shot.seconds is not None else self.fault_spec.delay or 1.0
                return shot.kind, 0.0
        spec, rng = self.fault_spec, self.fault_rng
        if spec == FaultSpec(seed=spec.seed):
            return None, 0.0
        draw, threshold, kind = rng.random(), 0.0, None
        for name in ("error", "ratelimit", "badjson"):
            threshold += getattr(spec, name)
            if draw < threshold:
                kind = name
                break
        delay = spec.delay if spec.latency and rng.random() < spec.latency else 0.0
        return kind, delay

    def _check_access(self, query: dict[str, str], api_key: ApiKey, scope: str) -> str:
        if scope not in api_key.scopes and "write:crm" not in api_key.scopes:
            raise ApiError(403, f"this API key lacks the {scope} scope")
        entity_id = query.get("entityId")
        if not entity_id:
            raise ApiError(400, "entityId is required")
        try:
            uuid.UUID(entity_id)
        except ValueError:
            raise ApiError(400, f"entityId must be a UUID, got {entity_id!r}") from None
        if entity_id not in api_key.entities:
            raise ApiError(403, f"this API key cannot reach entity {entity_id}")
        return entity_id

    def _write(self, method: str, path: str, query: dict[str, str], api_key: ApiKey, body: bytes) -> Reply:
        for pattern, methods in WRITE_ROUTES:
            match = pattern.match(path)
            if match and method in methods:
                self._check_access(query, api_key, "write:crm")
                try:
                    payload = json.loads(body) if body.strip() else {}
                except ValueError:
                    raise ApiError(400, "the body is not valid JSON") from None
                fields_ = payload if isinstance(payload, dict) else {}
                existing = match.groupdict().get("id")
                record_id = existing or str(uuid.uuid4())
                if method == "DELETE":
                    return _json_reply(200, {"id": record_id, "deleted": True})
                created = method == "POST" and existing is None
                return _json_reply(201 if created else 200, {**fields_, "id": record_id})
        if any(pattern.match(path) for pattern, _name in READ_ROUTES):
            raise ApiError(405, f"{method} is not allowed on {path}")
        raise ApiError(404, f"no route {path}")

    def _read(self, path: str, query: dict[str, str], api_key: ApiKey) -> Reply:
        route = _read_route(path)
        if route is None:
            if any(pattern.match(path) for pattern, _methods in WRITE_ROUTES):
                raise ApiError(405, f"GET is not allowed on {path}")
            raise ApiError(404, f"no route {path}")
        name, match = route
        if name == "entities":
            return _json_reply(200, {"entities": [ENTITIES[entity] for entity in api_key.entities]})
        entity_id = self._check_access(query, api_key, "read:crm")
        data = self.data if entity_id == DEMO_ENTITY else EMPTY
        record_id = match.groupdict().get("id")
        if name in ("company", "contact", "lead"):
            return _json_reply(200, _one(data, name, record_id))
        if name == "dashboard":
            return _json_reply(200, _dashboard(data))
        return _json_reply(200, self._list(name, _records(data, name, record_id, query, api_key), query))

    def _list(self, endpoint: str, records: list[Record], query: dict[str, str]) -> Any:
        config = self.config
        envelope = config.envelope(endpoint)
        if endpoint in UNPAGINATED:
            items, page, size, has_more = records, 1, len(records), False
        else:
            page = _whole_param(query, "page", 1)
            size = min(_whole_param(query, "pageSize", config.default_page_size), config.page_cap)
            if endpoint == "companies" and "page" not in query:
                size = min(size, config.companies_legacy_cap)
            items, has_more = self._page(endpoint, records, page, size)
        if envelope.bare:
            return items
        payload: dict[str, Any] = {envelope.list_key: items} if envelope.list_key else {}
        extras = {"total": len(records), "hasMore": has_more, "page": page, "pageSize": size}
        payload.update((extra, extras[extra]) for extra in envelope.extras)
        return payload

    def _page(self, endpoint: str, records: list[Record], page: int, size: int) -> tuple[list[Record], bool]:
        config = self.config
        quirky = endpoint in config.quirks_on
        if quirky and config.repeat_page and page == config.repeat_page + 1:
            page = config.repeat_page
        start = (page - 1) * size
        if quirky and config.duplicate_across_pages and page >= 2:
            start -= 1  # the previous page's last record again: as if one record moved during paging
        items = records[start : start + size]
        return items, start + len(items) < len(records)


EMPTY = Dataset()
"""What the other entity's CRM holds."""


def _read_route(path: str) -> tuple[str, re.Match[str]] | None:
    for pattern, name in READ_ROUTES:
        match = pattern.match(path)
        if match:
            return name, match
    return None


def _api_key(header: str | None) -> ApiKey | None:
    scheme, _, token = (header or "").strip().partition(" ")
    return KEYS_BY_VALUE.get(token.strip()) if scheme.lower() == "bearer" else None


def _quota_headers(limit: int, remaining: int, reset: float) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(limit).encode()),
        (b"x-ratelimit-remaining", str(max(remaining, 0)).encode()),
        (b"x-ratelimit-reset", str(math.ceil(reset)).encode()),
    ]


def _whole_param(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ApiError(400, f"{name} must be a whole number ≥ 1, got {raw!r}")
    return int(raw)


def _one(data: Dataset, name: str, record_id: str | None) -> Record:
    records = {"company": data.companies, "contact": data.contacts, "lead": data.leads}[name]
    for record in records:
        if record.get("id") == record_id:
            return record
    raise ApiError(404, f"{name} {record_id} not found")


def _choice(query: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = query.get(name) or None
    if value is not None and value not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _contains(needle: str | None, *haystack: Any) -> bool:
    return needle is None or any(needle.lower() in str(text).lower() for text in haystack if text is not None)


def _records(
    data: Dataset, name: str, parent_id: str | None, query: dict[str, str], api_key: ApiKey
) -> list[Record]:
    """The list one endpoint serves, filtered, in served order (before paging)."""
    q = query.get("q") or None
    if name == "pipeline-stages":
        return data.pipeline_stages
    if name == "companies":
        role = _choice(query, "role", ("prospect", "customer", "vendor", "both"))
        status = _choice(query, "status", ("active", "inactive"))
        owner = query.get("ownerUserId") or None
        if owner == "me":
            owner = api_key.user_id
        return [
            company
            for company in data.companies
            if (role is None or company["role"] == role)
            and (status is None or company["status"] == status)
            and (owner is None or company["ownerUserId"] == (None if owner == "unassigned" else owner))
            and _contains(q, company["name"])
        ]
    if name == "company-contacts":
        _one(data, "company", parent_id)
        members = {m["contactId"] for m in data.memberships if m["companyId"] == parent_id}
        return [contact for contact in data.contacts if contact.get("id") in members]
    if name == "contacts":
        return [c for c in data.contacts if _contains(q, c["firstName"], c["lastName"], c["email"])]
    if name == "company-memberships":
        _one(data, "contact", parent_id)
        return [membership for membership in data.memberships if membership["contactId"] == parent_id]
    if name == "leads":
        return _leads(data, query, q)
    if name == "timeline":
        _one(data, "lead", parent_id)
        return data.timelines.get(parent_id or "", [])
    if name == "activities":
        kind = _choice(query, "type", ("call", "email", "meeting", "note", "sms"))
        return [
            activity
            for activity in data.activities
            if (kind is None or activity["type"] == kind)
            and all(not query.get(key) or activity[key] == query[key] for key in ("leadId", "contactId"))
        ]
    status = _choice(query, "status", ("open", "in_progress", "done", "cancelled"))
    return [task for task in data.tasks if status is None or task["status"] == status]


def _leads(data: Dataset, query: dict[str, str], q: str | None) -> list[Record]:
    stage = query.get("stage") or None
    stage_ids = {
        s["id"]
        for s in data.pipeline_stages
        if stage is None or stage.lower() in (s["name"].lower(), s["systemKey"])
    }
    return [
        lead
        for lead in data.leads
        if lead["stageId"] in stage_ids
        and all(
            not query.get(key) or lead[key] == query[key] for key in ("stageId", "contactId", "companyId")
        )
        and _contains(q, lead["title"])
    ]


def _dashboard(data: Dataset) -> dict[str, Any]:
    kinds = {stage["id"]: stage["kind"] for stage in data.pipeline_stages}
    by_kind = {
        kind: [lead for lead in data.leads if kinds.get(lead["stageId"]) == kind]
        for kind in ("open", "won", "lost")
    }
    open_value = sum(
        lead["value"]
        for lead in by_kind["open"]
        if isinstance(lead["value"], int | float) and not isinstance(lead["value"], bool)
    )
    return {
        "counts": {
            "contacts": len(data.contacts),
            "companies": len(data.companies),
            "leads": len(data.leads),
            "openLeads": len(by_kind["open"]),
            "wonLeads": len(by_kind["won"]),
            "lostLeads": len(by_kind["lost"]),
            "activities": len(data.activities),
            "tasks": len(data.tasks),
            "openTasks": sum(1 for task in data.tasks if task["status"] in ("open", "in_progress")),
        },
        "pipelineValue": open_value,
        "currency": "USD",
        "leadsByStage": [
            {
                "stageId": s["id"],
                "stageName": s["name"],
                "count": sum(1 for lead in data.leads if lead["stageId"] == s["id"]),
            }
            for s in data.pipeline_stages
        ],
    }


def build_app(runtime: Runtime) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app: read the whole request, let the runtime decide, wait out any latency, answer."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers", [])
        }
        reply = runtime.respond(scope["method"], scope["path"], scope.get("query_string", b""), headers, body)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(reply.body)).encode()),
                    *reply.headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": reply.body})

    return app
