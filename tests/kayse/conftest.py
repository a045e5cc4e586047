"""Fixtures for the Kayse client tests: clients bound to the session's sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.kayse import KayseClient
from tests.kayse.helpers import MakeClient


@pytest.fixture
def make_client(sandbox: Any) -> Iterator[MakeClient]:
    """Build clients against the sandbox; fast backoff so retries do not slow the suite."""
    made: list[KayseClient] = []

    def make(**options: Any) -> KayseClient:
        options.setdefault("backoff_base", 0.01)
        options.setdefault("backoff_cap", 0.05)
        options.setdefault("timeout", (2, 5))
        api_key = options.pop("api_key", sandbox.api_key)
        client = KayseClient(sandbox.base_url, api_key, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def kayse(make_client: MakeClient) -> KayseClient:
    return make_client()
