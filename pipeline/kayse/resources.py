"""One small class per group of Kayse endpoints, each method one documented call.

This is where each call declares whether it may create records (`creates=True`: never resent
once sent) or is safe to repeat (GET, PUT, DELETE, set-like attach/detach, updates with ids).
The methods return the API's JSON as plain dicts and lists; they do no pacing, retrying or
error mapping of their own (the client does), and they never chunk except where the API
documents a maximum (bulk deletes: 500 ids).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

log = logging.getLogger("pipeline.kayse")

BULK_DELETE_MAX = 500
"""Documented for cases/bulk_delete; assumed for clients/bulk_delete (the API gives no maximum there)."""


class Requester(Protocol):
    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        creates: bool = False,
        items: int | None = None,
    ) -> Any: ...


@dataclass
class BulkDeleteResult:
    """The merged answers of a chunked bulk delete: ids the API said it deleted, and its failures."""

    deleted_ids: list[int] = field(default_factory=list)
    failed: list[Any] = field(default_factory=list)
    requests: int = 0


def _without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _any_create(items: Sequence[Mapping[str, Any]]) -> bool:
    return any(item.get("id") is None for item in items)


def _unwrap(body: Any, key: str) -> Any:
    return body[key] if isinstance(body, dict) and key in body else body


class _Records:
    """Clients and cases share the same call shapes; only names differ."""

    path: str
    bulk_key: str

    def __init__(self, api: Requester) -> None:
        self._api = api

    def create(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """POST one record; returns it with its new `id`. Never resent once sent."""
        result: dict[str, Any] = self._api.request(
            "POST", self.path, json=dict(fields), creates=True, items=1
        )
        return result

    def get(self, record_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._api.request("GET", f"{self.path}/{int(record_id)}")
        return result

    def update(self, record_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the complete record (required fields and link lists included, so a partial and a full-replace PUT give the same result)."""
        result: dict[str, Any] = self._api.request(
            "PUT", f"{self.path}/{int(record_id)}", json=dict(fields), items=1
        )
        return result

    def delete(self, record_id: int) -> dict[str, Any]:
        result: dict[str, Any] = self._api.request("DELETE", f"{self.path}/{int(record_id)}")
        return result

    def bulk_upsert(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """One bulk request: items without `id` are created, items with `id` updated.

        Returns the raw answer; `KayseClient.upsert_clients/upsert_cases` map it per item.
        """
        body = [dict(item) for item in items]
        result: dict[str, Any] = self._api.request(
            "POST",
            f"{self.path}/bulk",
            json={self.bulk_key: body},
            creates=_any_create(body),
            items=len(body),
        )
        return result

    def _bulk_delete(self, ids: Sequence[int], ids_key: str, flag: str, flag_value: bool) -> BulkDeleteResult:
        merged = BulkDeleteResult()
        id_list = [int(i) for i in ids]
        for start in range(0, len(id_list), BULK_DELETE_MAX):
            chunk = id_list[start : start + BULK_DELETE_MAX]
            body = self._api.request(
                "POST",
                f"{self.path}/bulk_delete",
                json={ids_key: chunk, flag: flag_value},
                items=len(chunk),
            )
            merged.requests += 1
            if isinstance(body, dict):
                merged.deleted_ids.extend(int(i) for i in body.get("deleted_ids") or [])
                merged.failed.extend(body.get("failed") or [])
        return merged


class Clients(_Records):
    """`/clients`: contacts ("clients" in the API)."""

    path = "/clients"
    bulk_key = "clients"

    def bulk_delete(self, ids: Sequence[int], force: bool = False) -> BulkDeleteResult:
        """Delete clients in chunks of 500. Without `force` the API may refuse clients linked to cases (what `force` does is undocumented)."""
        return self._bulk_delete(ids, "client_ids", "force", force)


class Cases(_Records):
    """`/cases`. PUT replaces the whole case (optional fields left out become null)."""

    path = "/cases"
    bulk_key = "cases"

    def bulk_delete(self, ids: Sequence[int], with_clients: bool = False) -> BulkDeleteResult:
        """Delete cases in chunks of 500 (the documented maximum); `with_clients` also deletes
        clients linked only to deleted cases."""
        return self._bulk_delete(ids, "ids", "with_clients", with_clients)


class CaseLists:
    """`/case_lists`: saved case filters and explicit case sets that campaigns run on."""

    def __init__(self, api: Requester) -> None:
        self._api = api

    def list(
        self, key: str | None = None, page: int = 1, page_size: int = 25, hide_empty: bool = False
    ) -> dict[str, Any]:
        """One page: `{"data": [...], "page": int, "total": int}`. `key` searches list names."""
        params: dict[str, Any] = {"page": page, "page_size": page_size}
        if key is not None:
            params["key"] = key
        if hide_empty:
            params["hide_empty"] = "true"
        result: dict[str, Any] = self._api.request("GET", "/case_lists", params=params)
        return result

    def iter_all(
        self, key: str | None = None, page_size: int = 100, hide_empty: bool = False, max_pages: int = 1000
    ) -> Iterator[dict[str, Any]]:
        """Every case list over all pages. Stops at an empty or short page, at `total`, or when
        a page repeats the previous one (a server ignoring `page` would otherwise loop forever)."""
        seen = 0
        previous_ids: list[Any] | None = None
        for page in range(1, max_pages + 1):
            body = self.list(key=key, page=page, page_size=page_size, hide_empty=hide_empty)
            data = (body.get("data") or []) if isinstance(body, dict) else []
            ids = [item.get("id") for item in data if isinstance(item, dict)]
            if not data:
                return
            if ids == previous_ids:
                log.warning("case lists: page %d repeats page %d; stopping", page, page - 1)
                return
            previous_ids = ids
            yield from data
            seen += len(data)
            total = body.get("total") if isinstance(body, dict) else None
            if (isinstance(total, int) and seen >= total) or len(data) < page_size:
                return
        log.warning("case lists: stopped after %d pages", max_pages)

    def create(
        self,
        name: str,
        *,
        description: str | None = None,
        filter: Mapping[str, Any] | None = None,
        include_ids: Sequence[int] | None = None,
        exclude_ids: Sequence[int] | None = None,
        external_source: str | None = None,
        external_source_id: str | None = None,
        is_obo: bool | None = None,
    ) -> dict[str, Any]:
        """Create a list (it may start empty). Never resent once sent."""
        body = _without_none(
            {
                "name": name,
                "description": description,
                "filter": dict(filter) if filter is not None else None,
                "include_ids": list(include_ids) if include_ids is not None else None,
                "exclude_ids": list(exclude_ids) if exclude_ids is not None else None,
                "external_source": external_source,
                "external_source_id": external_source_id,
                "is_obo": is_obo,
            }
        )
        result: dict[str, Any] = self._api.request("POST", "/case_lists", json=body, creates=True)
        return result

    def bulk(self, lists: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Create (no `id`) or update (with `id`: members replaced by the new filter result) lists."""
        body = [dict(item) for item in lists]
        result: dict[str, Any] = self._api.request(
            "POST", "/case_lists/bulk", json={"lists": body}, creates=_any_create(body), items=len(body)
        )
        return result

    def attach(self, list_id: int, case_ids: Sequence[int]) -> dict[str, Any]:
        """Add cases to a list (set semantics, so safe to repeat)."""
        ids = [int(i) for i in case_ids]
        result: dict[str, Any] = self._api.request(
            "PATCH", f"/case_lists/{int(list_id)}/attach", json={"include_ids": ids}, items=len(ids)
        )
        return result

    def detach(self, list_id: int, case_ids: Sequence[int]) -> dict[str, Any]:
        """Remove cases from a list (body key `include_ids`, as the newer docs suggest; unconfirmed)."""
        ids = [int(i) for i in case_ids]
        result: dict[str, Any] = self._api.request(
            "PATCH", f"/case_lists/{int(list_id)}/detach", json={"include_ids": ids}, items=len(ids)
        )
        return result

    def append_clients(self, list_id: int, client_ids: Sequence[int]) -> dict[str, Any]:
        """Add the cases of these clients: `{"action", "list_id", "client_count", "matched_case_count"}`."""
        ids = [int(i) for i in client_ids]
        result: dict[str, Any] = self._api.request(
            "POST", f"/case_lists/{int(list_id)}/clients/append", json={"client_ids": ids}, items=len(ids)
        )
        return result

    def remove_clients(self, list_id: int, client_ids: Sequence[int]) -> dict[str, Any]:
        """Remove the cases of these clients from the list."""
        ids = [int(i) for i in client_ids]
        result: dict[str, Any] = self._api.request(
            "POST", f"/case_lists/{int(list_id)}/clients/remove", json={"client_ids": ids}, items=len(ids)
        )
        return result


class Campaigns:
    """`/campaigns`: only create is documented (no list, get, update or delete)."""

    def __init__(self, api: Requester) -> None:
        self._api = api

    def create(
        self,
        name: str,
        case_list_id: int,
        runs: Sequence[Mapping[str, Any]],
        *,
        agent_id: str | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Create a campaign (answer: `{"id": int}`). Never resent once sent: it reaches real people."""
        body = _without_none(
            {
                "name": name,
                "case_list_id": int(case_list_id),
                "runs": [dict(r) for r in runs],
                "agent_id": agent_id,
            }
        )
        body.update(_without_none(options))
        result: dict[str, Any] = self._api.request("POST", "/campaigns", json=body, creates=True)
        return result


class Metadata:
    """Case types and statuses (path configurable: the API does not document it) and `/metadata/objects`."""

    def __init__(self, api: Requester, case_types_path: str = "/metadata") -> None:
        self._api = api
        self.case_types_path = case_types_path

    def case_types(self) -> list[dict[str, Any]]:
        """`[{"id", "name", "statuses": [{"id", "name"}]}]` as the sandbox assumes (the real shape is undocumented)."""
        body = self._api.request("GET", self.case_types_path)
        result = _unwrap(body, "case_types")
        return list(result) if isinstance(result, list) else []

    def objects(self) -> list[dict[str, Any]]:
        """The public fields of cases, clients and case lists: `[{"name", "fields": [...]}]`."""
        body = self._api.request("GET", "/metadata/objects")
        result = _unwrap(body, "objects")
        return list(result) if isinstance(result, list) else []


class Crm:
    """CRM integrations, field mappings and outcome types."""

    def __init__(self, api: Requester) -> None:
        self._api = api

    def integrations(self) -> list[dict[str, Any]]:
        body = self._api.request("GET", "/crm_integrations")
        result = _unwrap(body, "integrations")
        return list(result) if isinstance(result, list) else []

    def field_mappings(self) -> list[dict[str, Any]]:
        body = self._api.request("GET", "/crm_mappings/fields")
        result = _unwrap(body, "mappings")
        return list(result) if isinstance(result, list) else []

    def upsert_field_mappings(self, mappings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Create or update mappings keyed by `kayse_field` (an upsert: safe to repeat)."""
        body = [dict(m) for m in mappings]
        result: dict[str, Any] = self._api.request(
            "POST", "/crm_mappings/fields", json={"mappings": body}, items=len(body)
        )
        return result

    def outcome_types(self) -> Any:
        """The shape is undocumented; returned as the API sends it."""
        return self._api.request("GET", "/crm_mappings/outcome_types")


class Communication:
    """SMS and email to a case's client. Both reach a person: never resent once sent."""

    def __init__(self, api: Requester) -> None:
        self._api = api

    def send_sms(self, case_id: int, client_id: int, message: str) -> dict[str, Any]:
        body = {"case_id": int(case_id), "client_id": int(client_id), "message": message}
        result: dict[str, Any] = self._api.request(
            "POST", "/cases/communication/sms", json=body, creates=True
        )
        return result

    def send_email(self, case_id: int, client_id: int, subject: str, message: str) -> dict[str, Any]:
        body = {"case_id": int(case_id), "client_id": int(client_id), "subject": subject, "message": message}
        result: dict[str, Any] = self._api.request(
            "POST", "/cases/communication/email", json=body, creates=True
        )
        return result


class Agents:
    """Campaign voice agents (`/agent_builder/campaign_agents`); ids are strings."""

    def __init__(self, api: Requester) -> None:
        self._api = api

    def create(self, name: str, voice_id: str, greeting: str, task: str, **options: Any) -> dict[str, Any]:
        body = {
            "name": name,
            "voice_id": voice_id,
            "greeting": greeting,
            "task": task,
            **_without_none(options),
        }
        result: dict[str, Any] = self._api.request(
            "POST", "/agent_builder/campaign_agents", json=body, creates=True
        )
        return result

    def update(self, agent_id: str, **changes: Any) -> dict[str, Any]:
        """PATCH any subset of the fields (a partial update: safe to repeat)."""
        result: dict[str, Any] = self._api.request(
            "PATCH", f"/agent_builder/campaign_agents/{quote(agent_id, safe='')}", json=_without_none(changes)
        )
        return result
