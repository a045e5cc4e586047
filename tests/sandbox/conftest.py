"""Helpers for the sandbox tests: a thin `requests` wrapper and record builders.

Deliberately not the project's Kayse client (pipeline.kayse): the sandbox is tested with plain
HTTP so that neither can hide the other's misreading of the API.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import requests

from pipeline.sandbox.server import RunningSandbox

_counter = itertools.count(1)


class Api:
    """Plain HTTP against the sandbox with one key; returns `requests.Response` objects."""

    def __init__(self, sandbox: RunningSandbox, key: str | None = None):
        self.base_url = sandbox.base_url
        self.key = key if key is not None else sandbox.api_key

    def call(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        headers = {"X-API-KEY": self.key, **kwargs.pop("headers", {})}
        return requests.request(
            method, self.base_url + path, json=body, headers=headers, timeout=10, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, body: Any = None) -> requests.Response:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any = None) -> requests.Response:
        return self.call("PUT", path, body)

    def patch(self, path: str, body: Any = None) -> requests.Response:
        return self.call("PATCH", path, body)

    def delete(self, path: str) -> requests.Response:
        return self.call("DELETE", path)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    def new_client(self, **fields: Any) -> dict[str, Any]:
        return self.ok("POST", "/clients", client_body(**fields), status=201)  # type: ignore[no-any-return]

    def new_case(self, **fields: Any) -> dict[str, Any]:
        return self.ok("POST", "/cases", case_body(**fields), status=201)  # type: ignore[no-any-return]

    def type_ids(self) -> dict[str, int]:
        return {t["name"]: t["id"] for t in self.ok("GET", "/metadata")["case_types"]}


def client_body(**fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": f"Lovelace{n}",
        "external_source": "import",
        "external_source_id": f"cl-{n}",
        "mobile": "+15555550100",
        "email": f"ada{n}@example.com",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


def case_body(**fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body: dict[str, Any] = {
        "case_number": f"CN-{n}",
        "external_source": "other",
        "external_source_id": f"cs-{n}",
        "status": "open",
        "type": "personal_injury",
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
def api(sandbox: RunningSandbox) -> Api:
    return Api(sandbox)
