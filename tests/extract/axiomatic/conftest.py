"""One local Axiomatic per test session (pipeline.axiomatic_sandbox), reset before each test.

The extractor's tests talk to it over real HTTP. Most tests shrink the data with
`helpers.small(axiomatic)` so each extract needs a few dozen requests.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def axiomatic_server() -> Iterator[Any]:
    from pipeline.axiomatic_sandbox import AxiomaticConfig, start_in_thread

    running = start_in_thread(
        AxiomaticConfig(port=0, seed=7, contacts=300, companies=40, leads=400, rate_limit=100_000)
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def axiomatic(axiomatic_server: Any) -> Any:
    """The session's local Axiomatic, freshly reset (data, log, rate windows, faults, settings)."""
    axiomatic_server.reset()
    return axiomatic_server
