"""A tight read limit, injected 5xx, 429s and cut-off bodies: the extract is still exact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeline.extract.axiomatic import extract
from pipeline.model import ExitCode, UserError
from tests.extract.axiomatic.helpers import assert_table_is_exactly, read_table, small, summary

RESOURCES = ("contacts", "companies", "memberships", "pipeline_stages", "leads", "activities", "tasks")


class Waits:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def begin(self, entity_name: str) -> None: ...
    def resource(self, name: str, total: int | None) -> None: ...
    def progress(self, name: str, done: int, requests: int) -> None: ...
    def note(self, message: str) -> None: ...

    def wait(self, seconds: float, reason: str) -> None:
        self.reasons.append(reason)


def test_tight_limit_with_5xx_429_and_bad_bodies_still_exact(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, rate_limit=20, rate_window=2)
    axiomatic.inject("error", path="/api/crm/leads", count=2)
    axiomatic.inject("error", path="/api/crm/companies/*/contacts", count=3)
    axiomatic.inject("ratelimit", path="/api/crm/contacts", count=2)
    axiomatic.inject("badjson", path="/api/crm/activities", count=1)
    waits = Waits()
    out = tmp_path / "crm"
    result = extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out, observer=waits)
    truth = axiomatic.dataset()
    for resource in RESOURCES:
        assert_table_is_exactly(read_table(out / f"{resource}.csv"), truth[resource], resource)
    log = axiomatic.request_log()
    statuses = [entry["status"] for entry in log]
    assert statuses.count(500) == 5 and statuses.count(429) >= 2
    assert result.complete and result.retries >= 6  # 5 errors + 1 cut-off body
    assert any("quota" in reason for reason in waits.reasons)  # paced on X-RateLimit-*, not only 429s
    assert summary(out)["endpoints"]["leads"]["retries"] == 2


def test_a_quota_wait_beyond_max_wait_stops_early_and_writes_nothing(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic, rate_limit=5, rate_window=600)
    out = tmp_path / "crm"
    with pytest.raises(UserError) as raised:
        extract(axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, out, max_wait=1)
    assert raised.value.exit_code == ExitCode.STOPPED
    assert "--max-wait" in raised.value.message
    assert list(tmp_path.iterdir()) == []


def test_persistent_5xx_stops_early_with_one_line(axiomatic: Any, tmp_path: Path) -> None:
    small(axiomatic)
    axiomatic.inject("error", path="/api/crm/tasks", count=50)
    with pytest.raises(UserError) as raised:
        extract(
            axiomatic.base_url, axiomatic.api_key, axiomatic.entity_id, tmp_path / "crm",
            client_options={"backoff_base": 0.01, "max_retries": 3},
        )  # fmt: skip
    assert raised.value.exit_code == ExitCode.STOPPED
    assert "500" in raised.value.message and "\n" not in raised.value.message
    assert list(tmp_path.iterdir()) == []
