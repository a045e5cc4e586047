"""The sandbox's HTTP surface: Kayse's /v1 routes plus the sandbox-only /_sandbox/ routes.

Why it exists: to turn HTTP into store calls and store answers (or `ApiError`s) back into
Kayse-shaped JSON, with the status codes chosen in the README's sandbox section (the API does not document them). Routes stay thin.

Must never: hold business rules (validation.py and store.py do), answer with FastAPI's own error
shapes (every error is `{"error", "message"}`), or put anything but Kayse's routes under /v1.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.faults import FaultPlan, FaultSpecError, parse_fault_spec
from pipeline.sandbox.gate import Gate, RateLimiter, RequestLog, key_fingerprint
from pipeline.sandbox.store import CRM_INTEGRATIONS, OUTCOME_TYPES, Store
from pipeline.sandbox.validation import ApiError, bad_request, id_list, require_object

METADATA_OBJECTS: list[dict[str, Any]] = [
    {
        "name": "clients",
        "fields": [
            {"name": name, "type": kind, "required": required, "description": text}
            for name, kind, required, text in (
                ("first_name", "string", True, "Given name"),
                ("last_name", "string", True, "Family name"),
                ("external_source", "string", True, "Name of the source system"),
                ("external_source_id", "string", True, "Identifier in the source system"),
                ("email", "string", False, "Email address"),
                ("mobile", "string", False, "Mobile phone, E.164"),
                ("date_of_birth", "date", False, "YYYY-MM-DD"),
                ("city", "string", False, ""),
                ("state", "string", False, ""),
                ("postal_code", "string", False, ""),
                ("address_line1", "string", False, ""),
                ("address_line2", "string", False, ""),
                ("voice_calls_opted_out", "bool", False, "Opted out of voice calls"),
                ("case_ids", "uint[]", False, "Linked cases; replaces existing links"),
            )
        ],
    },
    {
        "name": "cases",
        "fields": [
            {"name": name, "type": kind, "required": required, "description": text}
            for name, kind, required, text in (
                ("case_number", "string", True, "Case identifier"),
                ("external_source", "string", True, "Source system"),
                ("external_source_id", "string", True, "Identifier in the source system"),
                ("status", "string", True, "Status name, created if missing"),
                ("type", "string", True, "Case type name"),
                ("external_source_data", "object", False, "Free key-value data"),
                ("name", "string", False, "Title"),
                ("court_name", "string", False, ""),
                ("jurisdiction", "string", False, ""),
                ("description", "string", False, ""),
                ("is_obo", "bool", False, "On behalf of another person"),
                ("created_date", "date", False, "YYYY-MM-DD"),
                ("court_date", "date", False, "YYYY-MM-DD"),
                ("end_date", "date", False, "YYYY-MM-DD"),
                ("client_ids", "uint[]", False, "Linked clients; replaces existing links"),
                ("opt_out_voice_calls", "bool", False, "Opt linked clients out of voice calls"),
            )
        ],
    },
    {
        "name": "case_lists",
        "fields": [
            {"name": "name", "type": "string", "required": True, "description": "List name"},
            {"name": "description", "type": "string", "required": False, "description": ""},
            {
                "name": "filter",
                "type": "object",
                "required": False,
                "description": "case_type_ids, status_ids",
            },
            {"name": "include_ids", "type": "uint[]", "required": False, "description": "Cases forced in"},
            {"name": "exclude_ids", "type": "uint[]", "required": False, "description": "Cases forced out"},
        ],
    },
]


class SandboxRuntime:
    """One running sandbox's moving parts: store, settings, rate windows, faults, request log."""

    def __init__(self, config: SandboxConfig):
        self.initial = config.checked()
        self.config = self.initial
        self.store = Store(config.db_path)
        self.limiter = RateLimiter(config.rate_limit, config.rate_window)
        self.faults = FaultPlan(parse_fault_spec(config.faults))
        self.log = RequestLog()
        self._lock = threading.Lock()

    def configure(self, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.config = self.config.with_changes(changes)
            self.limiter.configure(self.config.rate_limit, self.config.rate_window)
            if "faults" in changes:
                self.faults.set_spec(parse_fault_spec(self.config.faults))
            return self.describe()

    def reset(self) -> None:
        with self._lock:
            self.store.reset()
            self.log.clear()
            self.faults.clear()
            self.config = self.initial
            self.limiter.configure(self.config.rate_limit, self.config.rate_window)
            self.limiter.clear()
            self.faults.set_spec(parse_fault_spec(self.config.faults))

    def describe(self) -> dict[str, Any]:
        return {
            **self.config.tunables(),
            "faults": str(parse_fault_spec(self.config.faults)),
            "keys": sorted(key_fingerprint(k) or "" for k in self.config.accepted_keys),
            "db_path": self.config.db_path,
        }


def _error(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("a JSON body is required")
    try:
        return json.loads(raw)
    except ValueError:
        raise bad_request("the body is not valid JSON") from None


def build_app(runtime: SandboxRuntime) -> Gate:
    """The ASGI app to serve: the gate in front of the FastAPI routes."""
    api = FastAPI(title="Kayse sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    store = runtime.store

    def strict() -> bool:
        return runtime.config.strict

    @api.exception_handler(ApiError)
    async def on_api_error(request: Request, error: ApiError) -> JSONResponse:
        return _error(error)

    @api.exception_handler(RequestValidationError)
    async def on_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        # Only path parameters and query strings reach FastAPI's validation: a non-integer id
        # names no resource (404); a bad query value is a bad request.
        locations = {str(item.get("loc", ("",))[0]) for item in error.errors()}
        if "path" in locations:
            return _error(ApiError(404, "not found", "The requested resource could not be found"))
        return _error(bad_request("; ".join(f"{item['loc'][-1]}: {item['msg']}" for item in error.errors())))

    @api.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        phrases = {404: "not found", 405: "method not allowed"}
        message = (
            "The requested resource could not be found" if error.status_code == 404 else str(error.detail)
        )
        return JSONResponse(
            {"error": phrases.get(error.status_code, "error"), "message": message},
            status_code=error.status_code,
            headers=getattr(error, "headers", None),
        )

    # ---- clients ---------------------------------------------------------------------

    @api.post("/v1/clients", status_code=201)
    async def create_client(request: Request) -> Any:
        return store.create_client(await _json_body(request), strict=strict())

    @api.get("/v1/clients/{client_id}")
    async def get_client(client_id: int) -> Any:
        return store.get_client(client_id)

    @api.put("/v1/clients/{client_id}")
    async def replace_client(client_id: int, request: Request) -> Any:
        return store.replace_client(client_id, await _json_body(request), strict=strict())

    @api.delete("/v1/clients/{client_id}")
    async def delete_client(client_id: int) -> Any:
        return store.delete_client(client_id)

    async def bulk_upsert(kind: Literal["clients", "cases"], request: Request) -> Any:
        config = runtime.config
        fault = request.scope.get("state", {}).get("fault")
        body = await _json_body(request)
        if fault == ("leak-key", "failed"):
            body = _with_first_item_refused(body, kind)
        answer = store.bulk_upsert(
            kind,
            body,
            strict=config.strict,
            bulk_max=config.bulk_max,
            mode="atomic" if config.bulk_mode == "atomic" else "partial",
        )
        if fault is not None and fault[0] == "lie":
            return _lie(answer, kind, fault[1], store)
        if fault == ("leak-key", "failed"):
            return _quote_key(answer, request.headers.get("x-api-key") or "")
        return answer

    @api.post("/v1/clients/bulk")
    async def bulk_clients(request: Request) -> Any:
        return await bulk_upsert("clients", request)

    @api.post("/v1/clients/bulk_delete")
    async def bulk_delete_clients(request: Request) -> Any:
        return store.bulk_delete_clients(await _json_body(request))

    # ---- cases -----------------------------------------------------------------------

    @api.post("/v1/cases", status_code=201)
    async def create_case(request: Request) -> Any:
        return store.create_case(await _json_body(request), strict=strict())

    @api.post("/v1/cases/bulk")
    async def bulk_cases(request: Request) -> Any:
        return await bulk_upsert("cases", request)

    @api.post("/v1/cases/bulk_delete")
    async def bulk_delete_cases(request: Request) -> Any:
        return store.bulk_delete_cases(await _json_body(request))

    @api.post("/v1/cases/communication/sms")
    async def send_sms(request: Request) -> Any:
        return store.schedule_message("sms", await _json_body(request))

    @api.post("/v1/cases/communication/email")
    async def send_email(request: Request) -> Any:
        return store.schedule_message("email", await _json_body(request))

    @api.get("/v1/cases/{case_id}")
    async def get_case(case_id: int) -> Any:
        return store.get_case(case_id)

    @api.put("/v1/cases/{case_id}")
    async def replace_case(case_id: int, request: Request) -> Any:
        return store.replace_case(case_id, await _json_body(request), strict=strict())

    @api.delete("/v1/cases/{case_id}")
    async def delete_case(case_id: int) -> Any:
        return store.delete_case(case_id)

    # ---- case lists ------------------------------------------------------------------

    @api.get("/v1/case_lists")
    async def search_case_lists(request: Request) -> Any:
        query = request.query_params
        page = _positive_int(query.get("page"), "page", default=1)
        page_size = _positive_int(query.get("page_size"), "page_size", default=25)
        if page_size > 100:
            raise bad_request("page_size: at most 100")
        hide_empty = _query_bool(query.get("hide_empty"), "hide_empty")
        return store.search_case_lists(query.get("key"), page, page_size, hide_empty)

    @api.post("/v1/case_lists", status_code=201)
    async def create_case_list(request: Request) -> Any:
        return store.create_case_list(await _json_body(request), strict=strict())

    @api.post("/v1/case_lists/bulk")
    async def bulk_case_lists(request: Request) -> Any:
        config = runtime.config
        return store.bulk_case_lists(
            await _json_body(request),
            strict=config.strict,
            bulk_max=config.bulk_max,
            mode="atomic" if config.bulk_mode == "atomic" else "partial",
        )

    async def _membership_ids(request: Request) -> list[int]:
        body = require_object(await _json_body(request))
        for key in (
            "include_ids",
            "exclude_ids",
            "ids",
            "case_ids",
        ):  # detach's body key is unconfirmed: include_ids, others tolerated
            ids = id_list(body, key)
            if ids is not None:
                if key != "include_ids":
                    request.scope.setdefault("state", {})["note"] = (
                        f"body key {key!r} used instead of include_ids"
                    )
                return ids
        raise bad_request("include_ids: an array of case ids is required")

    @api.patch("/v1/case_lists/{list_id}/attach")
    async def attach(list_id: int, request: Request) -> Any:
        return store.change_membership(list_id, await _membership_ids(request), attach=True)

    @api.patch("/v1/case_lists/{list_id}/detach")
    async def detach(list_id: int, request: Request) -> Any:
        return store.change_membership(list_id, await _membership_ids(request), attach=False)

    async def _client_ids(request: Request) -> list[int]:
        ids = id_list(require_object(await _json_body(request)), "client_ids")
        if ids is None:
            raise bad_request("client_ids: an array of client ids is required")
        return ids

    @api.post("/v1/case_lists/{list_id}/clients/append")
    async def append_clients(list_id: int, request: Request) -> Any:
        return store.change_client_membership(list_id, await _client_ids(request), append=True)

    @api.post("/v1/case_lists/{list_id}/clients/remove")
    async def remove_clients(list_id: int, request: Request) -> Any:
        return store.change_client_membership(list_id, await _client_ids(request), append=False)

    # ---- campaigns, agents, metadata, CRM --------------------------------------------

    @api.post("/v1/campaigns", status_code=201)
    async def create_campaign(request: Request) -> Any:
        return store.create_campaign(await _json_body(request), strict=strict())

    @api.post("/v1/agent_builder/campaign_agents", status_code=201)
    async def create_agent(request: Request) -> Any:
        return store.create_agent(await _json_body(request))

    @api.patch("/v1/agent_builder/campaign_agents/{agent_id}")
    async def update_agent(agent_id: str, request: Request) -> Any:
        return store.update_agent(agent_id, await _json_body(request))

    @api.get("/v1/metadata/objects")
    async def metadata_objects() -> Any:
        return METADATA_OBJECTS

    @api.get("/v1/metadata")
    async def metadata() -> Any:
        return store.metadata()

    @api.get("/v1/crm_integrations")
    async def crm_integrations() -> Any:
        return {"integrations": [dict(item) for item in CRM_INTEGRATIONS]}

    @api.get("/v1/crm_mappings/fields")
    async def crm_mappings() -> Any:
        return store.crm_mappings()

    @api.post("/v1/crm_mappings/fields")
    async def upsert_crm_mappings(request: Request) -> Any:
        return store.upsert_crm_mappings(await _json_body(request))

    @api.get("/v1/crm_mappings/outcome_types")
    async def outcome_types() -> Any:
        return {"outcome_types": [dict(item) for item in OUTCOME_TYPES]}

    # ---- sandbox-only inspection (no auth, no rate limit, no faults) ------------------

    @api.get("/_sandbox/health")
    async def health() -> Any:
        return {"status": "ok", "sandbox": True}

    @api.get("/_sandbox/state")
    async def state() -> Any:
        return store.dump()

    @api.get("/_sandbox/requests")
    async def requests_log() -> Any:
        return {"requests": runtime.log.snapshot()}

    @api.get("/_sandbox/messages")
    async def messages() -> Any:
        return store.messages()

    @api.post("/_sandbox/opt_outs")
    async def opt_out(request: Request) -> Any:
        return store.set_opt_out(await _json_body(request))

    @api.post("/_sandbox/reset")
    async def reset() -> Any:
        runtime.reset()
        return {"message": "sandbox reset", "config": runtime.describe()}

    @api.get("/_sandbox/config")
    async def get_config() -> Any:
        return runtime.describe()

    @api.post("/_sandbox/config")
    async def set_config(request: Request) -> Any:
        changes = require_object(await _json_body(request))
        try:
            return runtime.configure(changes)
        except ValueError as error:
            raise bad_request(str(error)) from None

    @api.post("/_sandbox/faults")
    async def inject(request: Request) -> Any:
        body = require_object(await _json_body(request))
        try:
            runtime.faults.add(
                str(body.get("kind")),
                body.get("method"),
                body.get("path"),
                int(body.get("count", 1)),
                float(body["seconds"]) if body.get("seconds") is not None else None,
                str(body["how"]) if body.get("how") is not None else None,
            )
        except (FaultSpecError, TypeError, ValueError) as error:
            raise bad_request(str(error)) from None
        return {"pending": runtime.faults.pending()}

    return Gate(api, runtime.config.accepted_keys, runtime.limiter, runtime.faults, runtime.log)


# ---- misbehaviours of a lying or leaking server (see faults.FAULT_VARIANTS) -----------------

BAD_IDS: tuple[Any, ...] = (0, -7, 2**53 + 1, "12", True, 1.5)


def _lie(answer: dict[str, Any], kind: Literal["clients", "cases"], how: str, store: Store) -> dict[str, Any]:
    """The committed answer, rewritten to lie about ids. The records themselves are as saved."""
    records: list[dict[str, Any]] = [dict(r) for r in answer.get(kind, [])]
    if how == "duplicate-ids" and len(records) >= 2:
        records[1]["id"] = records[0]["id"]  # two created records reported under one id
    elif how == "shuffled":
        records.reverse()  # another order, and nothing to match them by
        for record in records:
            record.pop("external_source_id", None)
    elif how == "bad-ids":
        for position, record in enumerate(records):
            record["id"] = BAD_IDS[position % len(BAD_IDS)]
    elif how == "foreign-id" and records:
        other = store.other_live_id(kind, {r["id"] for r in records})
        records[0]["id"] = other if other is not None else records[0]["id"]
    return {**answer, kind: records, "successful_ids": [r.get("id") for r in records]}


def _with_first_item_refused(body: Any, kind: str) -> Any:
    """The request with its first item made invalid, so the store refuses it (and commits the rest)."""
    if isinstance(body, dict) and isinstance(body.get(kind), list) and body[kind]:
        items = list(body[kind])
        items[0] = {**items[0], "external_source": 12345} if isinstance(items[0], dict) else items[0]
        return {**body, kind: items}
    return body


def _quote_key(answer: dict[str, Any], key: str) -> dict[str, Any]:
    """A 200 answer quoting the request's key in every failed[] message and in its own message."""
    failed = [
        {**entry, "message": f"{entry.get('message')} (request made with API key {key})"}
        for entry in answer.get("failed", [])
    ]
    return {**answer, "failed": failed, "message": f"processed for API key {key}"}


def _positive_int(raw: str | None, name: str, *, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad_request(f"{name}: must be a whole number, got {raw!r}") from None
    if value < 1:
        raise bad_request(f"{name}: must be at least 1")
    return value


def _query_bool(raw: str | None, name: str) -> bool:
    if raw is None or raw == "":
        return False
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad_request(f"{name}: must be true or false, got {raw!r}")
