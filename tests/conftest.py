"""Shared fixtures. One real Kayse sandbox server per test session, reset before each test, and
likewise one local Axiomatic CRM (`axiomatic`) for the extractor's and its own server's tests.

Contract (implemented in pipeline/sandbox/server.py):
    start_in_thread(SandboxConfig(...)) -> RunningSandbox
    RunningSandbox.base_url      "http://127.0.0.1:<port>/v1"  (what KAYSE_BASE_URL would be)
    RunningSandbox.api_key       a key the sandbox accepts
    RunningSandbox.reset()       clear state, request log, rate windows, faults; restore config
    RunningSandbox.configure(**changes)  change rate_limit, rate_window, bulk_max, faults… at run time
    RunningSandbox.inject(kind, method=None, path=None, count=1)  one-shot faults: "error" | "ratelimit" | "lost" | "latency"
    RunningSandbox.state() / .request_log()   sandbox-only inspection over HTTP
    RunningSandbox.stop()
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pipeline.axiomatic_sandbox import RunningAxiomatic

SANDBOX_TEST_KEY = "test-key-0123456789abcdef"
SECOND_TEST_KEY = "other-key-fedcba9876543210"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[object]:
    from pipeline.sandbox.server import SandboxConfig, start_in_thread

    running = start_in_thread(SandboxConfig(port=0, api_keys=(SANDBOX_TEST_KEY, SECOND_TEST_KEY)))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def sandbox(sandbox_server):  # type: ignore[no-untyped-def]
    """The session's sandbox, freshly reset (state, log, rate windows, faults, config)."""
    sandbox_server.reset()
    return sandbox_server


AXIOMATIC_SESSION_RATE_LIMIT = 1_000_000  # the rate-limit tests set their own; the rest must never meet one


@pytest.fixture(scope="session")
def axiomatic_server() -> Iterator[RunningAxiomatic]:
    from pipeline.axiomatic_sandbox import AxiomaticConfig, start_in_thread

    running = start_in_thread(
        AxiomaticConfig(
            port=0, seed=7, contacts=300, companies=40, leads=400, rate_limit=AXIOMATIC_SESSION_RATE_LIMIT
        )
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def axiomatic(axiomatic_server: RunningAxiomatic) -> RunningAxiomatic:
    """The session's local Axiomatic, freshly reset (data, log, rate windows, faults, settings)."""
    axiomatic_server.reset()
    return axiomatic_server
