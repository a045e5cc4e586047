"""A plain-HTTP helper for the local Axiomatic (the `axiomatic` fixture is in tests/conftest.py).

Deliberately plain `requests`, not the extractor's client: the server is tested on its own so
neither can hide the other's misreading of the API.
"""

from __future__ import annotations

from typing import Any

import requests

from pipeline.axiomatic_sandbox import RunningAxiomatic


def get(
    running: RunningAxiomatic,
    path: str,
    key: str | None = "read",
    entity: str | None = "default",
    **params: Any,
) -> requests.Response:
    """GET /api/crm<path> (or /api<path> for /entities) with a named key and the entity by default."""
    url = running.base_url + ("/api" if path == "/entities" else "/api/crm") + path
    if entity == "default":
        entity = running.entity_id
    if entity is not None:
        params["entityId"] = entity
    headers = {"Authorization": f"Bearer {running.keys[key]}"} if key else {}
    return requests.get(url, params=params, headers=headers, timeout=10)


def items_of(body: Any, endpoint: str) -> list[dict[str, Any]]:
    """The list inside a default envelope."""
    if isinstance(body, list):
        return body
    key = {"contacts": "contacts", "leads": "data", "activities": "items", "tasks": "results"}[endpoint]
    items: list[dict[str, Any]] = body[key]
    return items


def walk(
    running: RunningAxiomatic, endpoint: str, page_size: int = 100, **params: Any
) -> list[dict[str, Any]]:
    """Every record of a paginated endpoint, page by page until a short page (what a careful reader does)."""
    records: list[dict[str, Any]] = []
    for page in range(1, 10_000):
        response = get(running, f"/{endpoint}", page=page, pageSize=page_size, **params)
        assert response.status_code == 200, response.text
        items = items_of(response.json(), endpoint)
        records.extend(items)
        if len(items) < page_size:
            return records
    raise AssertionError("no end")
