"""The local Axiomatic's settings, its demo keys and entities, and the fault spec.

Why it exists: the Python handle, `python -m pipeline.axiomatic_sandbox` and `configure()` must
agree on one set of knobs with one set of checks. The keys are documented demo keys (not
secrets), so printing them is fine; never give this server a real Axiomatic key.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

DEMO_ENTITY = "3f2b8c1e-7d4a-4e5b-9a61-2c8d0f4b7a13"
"""The entity the demo keys reach: the books of "Demo Injury Law LLP", holding the generated CRM."""
OTHER_ENTITY = "9c4e1d2a-5b6f-4a8e-8d3c-7e1f0a2b4c6d"
"""A second entity with an empty CRM: only the `other_entity` key reaches it."""

ENTITIES: dict[str, dict[str, str]] = {
    DEMO_ENTITY: {"id": DEMO_ENTITY, "name": "Demo Injury Law LLP", "type": "company"},
    OTHER_ENTITY: {"id": OTHER_ENTITY, "name": "Other Books Inc", "type": "company"},
}


@dataclass(frozen=True)
class ApiKey:
    name: str
    key: str
    entities: tuple[str, ...]
    scopes: tuple[str, ...]
    user_id: str  # who `ownerUserId=me` means


DEMO_KEY = "ak_demo_read_7f3a9c2e51d84b60"
"""A read:crm key of DEMO_ENTITY; documented, so it is fine to print."""
DEMO_USER = "5a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d"

API_KEYS: tuple[ApiKey, ...] = (
    ApiKey("read", DEMO_KEY, (DEMO_ENTITY,), ("read:crm",), DEMO_USER),
    ApiKey("write", "ak_demo_write_0b6e4d1f93a2c785", (DEMO_ENTITY,), ("write:crm",), DEMO_USER),
    ApiKey("noscope", "ak_demo_noscope_6c2f8a1e47b9d035", (DEMO_ENTITY,), ("read:invoices",), DEMO_USER),
    ApiKey("other_entity", "ak_demo_other_e81b5c7a2d9f4063", (OTHER_ENTITY,), ("read:crm",), DEMO_USER),
)
KEYS_BY_VALUE = {api_key.key: api_key for api_key in API_KEYS}

ENDPOINTS = (
    "pipeline-stages",
    "companies",
    "company-contacts",
    "contacts",
    "company-memberships",
    "leads",
    "timeline",
    "activities",
    "tasks",
)
UNPAGINATED = frozenset({"pipeline-stages", "company-memberships", "timeline"})
"""Short lists served whole: `page` and `pageSize` are ignored there."""
QUIRK_DEFAULT = ("companies", "contacts", "leads", "activities", "tasks")
"""The top-level lists the paging and record quirks apply to unless `quirks_on` says otherwise."""

DEFAULT_ENVELOPES: dict[str, str] = {
    "pipeline-stages": "stages",
    "companies": "array",
    "company-contacts": "contacts+total",
    "contacts": "contacts+total",
    "company-memberships": "memberships",
    "leads": "data+hasMore+page+pageSize",
    "timeline": "events",
    "activities": "items+page",
    "tasks": "results+total",
}
ENVELOPE_EXTRAS = ("total", "hasMore", "page", "pageSize")

DATA_KNOBS = frozenset(
    {"seed", "contacts", "companies", "leads", "activities", "tasks", "missing_id_every", "type_flip"}
)
"""Settings that change the records themselves: changing one regenerates the dataset."""
FIXED = frozenset({"host", "port"})

FAULT_KINDS = ("error", "ratelimit", "latency", "badjson")


class AxiomaticSandboxError(Exception):
    """A problem starting or configuring the local Axiomatic; `hint` says what to do."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


class ConfigError(AxiomaticSandboxError, ValueError):
    """A setting out of range; the message names the setting."""


@dataclass(frozen=True)
class Envelope:
    """How one endpoint wraps its list: a bare array, an object with the list under `list_key`, or no list."""

    list_key: str | None  # None with bare=False: an object with no list at all (a broken server)
    bare: bool
    extras: tuple[str, ...]


def parse_envelope(spec: str) -> Envelope:
    """Read "array", "nolist+total" or "<listKey>[+total][+hasMore][+page][+pageSize]"."""
    head, *extras = [part.strip() for part in spec.split("+")]
    if not head:
        raise ConfigError(f"envelope {spec!r}: name a list key, 'array' or 'nolist' first")
    unknown = [extra for extra in extras if extra not in ENVELOPE_EXTRAS]
    if unknown:
        raise ConfigError(
            f"envelope {spec!r}: unknown part {unknown[0]!r} (known: {', '.join(ENVELOPE_EXTRAS)})"
        )
    if head == "array":
        if extras:
            raise ConfigError(f"envelope {spec!r}: a bare array cannot carry {extras[0]!r}")
        return Envelope(None, True, ())
    return Envelope(None if head == "nolist" else head, False, tuple(extras))


@dataclass(frozen=True)
class FaultSpec:
    """Random faults on every /api request: shares (0–1) of each kind; `delay` is the latency in seconds."""

    error: float = 0.0
    ratelimit: float = 0.0
    latency: float = 0.0
    badjson: float = 0.0
    delay: float = 0.5
    seed: int | None = None

    def __str__(self) -> str:
        parts = [f"{name}={getattr(self, name):g}" for name in FAULT_KINDS if getattr(self, name)]
        if self.latency:
            parts.append(f"delay={self.delay:g}")
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return ",".join(parts) or "none"


def parse_faults(spec: str | None) -> FaultSpec:
    """Read "error=0.05,ratelimit=0.02,latency=0.1,badjson=0.01,delay=0.5,seed=3" (any subset)."""
    if spec is None or not spec.strip() or spec.strip() == "none":
        return FaultSpec()
    values: dict[str, Any] = {}
    for part in spec.split(","):
        name, sep, raw = (text.strip() for text in part.partition("="))
        if not sep or not raw:
            raise ConfigError(f"faults: part {part.strip()!r} is not NAME=VALUE")
        try:
            values[name] = int(raw) if name == "seed" else float(raw)
        except ValueError:
            raise ConfigError(f"faults: {name} must be a number, got {raw!r}") from None
        if name not in (*FAULT_KINDS, "delay", "seed"):
            raise ConfigError(f"faults: unknown part {name!r} (known: {', '.join(FAULT_KINDS)}, delay, seed)")
        if name in FAULT_KINDS and not 0 <= values[name] <= 1:
            raise ConfigError(f"faults: {name} must be a share between 0 and 1")
        if name == "delay" and values[name] < 0:
            raise ConfigError("faults: delay must be ≥ 0 seconds")
    if sum(values.get(kind, 0.0) for kind in ("error", "ratelimit", "badjson")) > 1:
        raise ConfigError("faults: error + ratelimit + badjson must not exceed 1")
    return FaultSpec(**values)


def _whole(value: Any, name: str, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be a whole number ≥ {minimum}, got {value!r}")


@dataclass(frozen=True)
class AxiomaticConfig:
    host: str = "127.0.0.1"
    port: int = 8766  # 0 = any free port
    # the data (deterministic from the seed)
    seed: int = 7
    contacts: int = 300
    companies: int = 40
    leads: int = 400
    activities: int | None = None  # None = 2 per lead
    tasks: int | None = None  # None = 1 per lead
    # limits
    rate_limit: int = 100  # reads per window per key
    write_rate_limit: int = 30
    rate_window: float = 60.0
    retry_after: bool = True  # False: a 429 carries only the X-RateLimit-* headers
    page_cap: int = 100  # the most records one page holds, whatever pageSize asks
    default_page_size: int = 25
    companies_legacy_cap: int = 20  # /companies without `page` holds at most this many
    envelopes: dict[str, str] = field(default_factory=dict)  # endpoint -> spec, over DEFAULT_ENVELOPES
    faults: str | None = None
    # quirks an extractor must survive
    duplicate_across_pages: bool = (
        False  # every page after the first starts with the previous page's last record
    )
    repeat_page: int = 0  # N > 0: page N+1 repeats page N
    missing_id_every: int = 0  # K > 0: every K-th record has no `id`
    type_flip: str | None = None  # "leads.value": that field changes type from the middle of the list on
    lead_count_skew: int = 0  # added to the first stage's leadCount, so it disagrees with the leads served
    quirks_on: tuple[str, ...] = QUIRK_DEFAULT  # endpoints the four quirks above apply to

    def envelope(self, endpoint: str) -> Envelope:
        return parse_envelope(self.envelopes.get(endpoint, DEFAULT_ENVELOPES[endpoint]))

    def checked(self) -> AxiomaticConfig:
        """Self, after checking every value; raises ConfigError naming the bad one."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        _whole(self.seed, "seed", -(2**62))
        for name in ("contacts", "companies", "leads"):
            _whole(getattr(self, name), name, 0)
        for name in ("activities", "tasks"):
            if getattr(self, name) is not None:
                _whole(getattr(self, name), name, 0)
        for name in (
            "rate_limit",
            "write_rate_limit",
            "page_cap",
            "default_page_size",
            "companies_legacy_cap",
        ):
            _whole(getattr(self, name), name, 1)
        for name in ("repeat_page", "missing_id_every", "lead_count_skew"):
            _whole(getattr(self, name), name, 0 if name != "lead_count_skew" else -(2**31))
        if (
            isinstance(self.rate_window, bool)
            or not isinstance(self.rate_window, int | float)
            or self.rate_window <= 0
        ):
            raise ConfigError(f"rate_window must be a number of seconds > 0, got {self.rate_window!r}")
        for name in ("retry_after", "duplicate_across_pages"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false")
        for endpoint, spec in self.envelopes.items():
            if endpoint not in ENDPOINTS:
                raise ConfigError(f"envelopes: unknown endpoint {endpoint!r} (known: {', '.join(ENDPOINTS)})")
            parse_envelope(spec)
        unknown = [name for name in self.quirks_on if name not in ENDPOINTS or name in UNPAGINATED]
        if unknown:
            raise ConfigError(f"quirks_on: {unknown[0]!r} is not a paginated endpoint")
        if self.type_flip is not None:
            resource, dot, field_name = self.type_flip.partition(".")
            if not dot or not field_name or resource not in QUIRK_DEFAULT:
                raise ConfigError(
                    f"type_flip must be RESOURCE.FIELD with RESOURCE one of {', '.join(QUIRK_DEFAULT)}, "
                    f"got {self.type_flip!r}"
                )
        parse_faults(self.faults)
        return self

    def with_changes(self, changes: dict[str, Any]) -> AxiomaticConfig:
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"no setting {unknown[0]!r} (settings: {', '.join(sorted(names - FIXED))})")
        fixed = sorted(set(changes) & FIXED)
        if fixed:
            raise ConfigError(f"cannot change {fixed[0]!r} while the server runs")
        if "quirks_on" in changes:
            changes = {**changes, "quirks_on": tuple(changes["quirks_on"])}
        return replace(self, **changes).checked()

    def describe(self) -> list[str]:
        envelopes = ", ".join(
            f"{name}: {self.envelopes.get(name, DEFAULT_ENVELOPES[name])}" for name in ENDPOINTS
        )
        quirks = [
            f"{name}={getattr(self, name)}"
            for name in (
                "duplicate_across_pages",
                "repeat_page",
                "missing_id_every",
                "type_flip",
                "lead_count_skew",
            )
            if getattr(self, name)
        ]
        return [
            f"data: seed {self.seed}, {self.contacts} contacts, {self.companies} companies, {self.leads} leads",
            f"rate limit {self.rate_limit} reads / {self.write_rate_limit} writes per {self.rate_window:g}s per key; "
            f"page cap {self.page_cap} (companies without `page`: {self.companies_legacy_cap}); "
            f"faults: {parse_faults(self.faults)}",
            f"envelopes: {envelopes}",
            f"quirks: {', '.join(quirks) or 'none'}"
            + (f" (on {', '.join(self.quirks_on)})" if quirks else ""),
        ]
