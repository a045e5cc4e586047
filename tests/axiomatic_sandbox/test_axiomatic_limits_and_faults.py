"""Per-key fixed-window rate limits with their headers, and the faults a reader must survive."""

from __future__ import annotations

import time

import pytest
import requests

from pipeline.axiomatic_sandbox import AxiomaticConfig, ConfigError, RunningAxiomatic
from tests.axiomatic_sandbox.conftest import get


def test_the_documented_defaults() -> None:
    config = AxiomaticConfig()
    assert (config.rate_limit, config.write_rate_limit, config.rate_window) == (100, 30, 60.0)
    assert config.page_cap == 100 and config.companies_legacy_cap == 20


def test_every_answer_carries_the_rate_limit_headers(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(rate_limit=5, rate_window=30)
    before = time.time()
    answers = [get(axiomatic, "/contacts") for _ in range(3)] + [get(axiomatic, "/nowhere")]
    assert [int(answer.headers["X-RateLimit-Remaining"]) for answer in answers] == [4, 3, 2, 1]
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "5"
        assert before + 29 <= int(answer.headers["X-RateLimit-Reset"]) <= time.time() + 31  # epoch seconds


def test_over_the_limit_is_429_with_retry_after_and_nothing_served(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(rate_limit=2, rate_window=30)
    assert [get(axiomatic, "/leads").status_code for _ in range(2)] == [200, 200]
    refused = get(axiomatic, "/leads")
    assert refused.status_code == 429
    assert set(refused.json()) == {"error"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    # per key: the write key has its own window
    assert get(axiomatic, "/leads", key="write").status_code == 200
    assert axiomatic.request_log()[-2]["status"] == 429


def test_the_window_reopens(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(rate_limit=1, rate_window=0.3)
    assert get(axiomatic, "/tasks").status_code == 200
    refused = get(axiomatic, "/tasks")
    assert refused.status_code == 429
    time.sleep(float(refused.headers["Retry-After"]))
    assert get(axiomatic, "/tasks").status_code == 200


def test_a_429_without_retry_after_when_configured(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(rate_limit=1, rate_window=30, retry_after=False)
    get(axiomatic, "/tasks")
    refused = get(axiomatic, "/tasks")
    assert refused.status_code == 429 and "Retry-After" not in refused.headers
    assert "X-RateLimit-Reset" in refused.headers


def test_writes_have_their_own_smaller_limit(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(write_rate_limit=1, rate_window=30)
    url = f"{axiomatic.base_url}/api/crm/tasks"
    headers = {"Authorization": f"Bearer {axiomatic.keys['write']}"}
    params = {"entityId": axiomatic.entity_id}
    first = requests.post(url, params=params, json={}, headers=headers, timeout=10)
    second = requests.post(url, params=params, json={}, headers=headers, timeout=10)
    assert (first.status_code, second.status_code) == (201, 429)
    assert first.headers["X-RateLimit-Limit"] == "1"
    assert get(axiomatic, "/tasks", key="write").status_code == 200


def test_one_shot_error_hits_only_the_matching_path_and_count(axiomatic: RunningAxiomatic) -> None:
    axiomatic.inject("error", path="/leads", count=2)
    assert get(axiomatic, "/contacts").status_code == 200
    statuses = [get(axiomatic, "/leads").status_code for _ in range(3)]
    assert statuses == [500, 500, 200]
    assert [entry["fault"] for entry in axiomatic.request_log()] == [None, "error", "error", None]


def test_one_shot_ratelimit_is_a_429_with_retry_after(axiomatic: RunningAxiomatic) -> None:
    axiomatic.inject("ratelimit", path="/api/crm/contacts")
    refused = get(axiomatic, "/contacts")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert get(axiomatic, "/contacts").status_code == 200


def test_one_shot_badjson_is_a_200_whose_body_is_not_json(axiomatic: RunningAxiomatic) -> None:
    axiomatic.inject("badjson", path="/leads")
    broken = get(axiomatic, "/leads", page=1, pageSize=10)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    assert get(axiomatic, "/leads", page=1, pageSize=10).json()["data"]


def test_one_shot_latency_delays_and_wildcards_match(axiomatic: RunningAxiomatic) -> None:
    axiomatic.inject("latency", path="/leads/*", seconds=0.2)
    lead_id = axiomatic.dataset()["leads"][0]["id"]
    assert get(axiomatic, "/leads").status_code == 200  # not matched
    assert get(axiomatic, f"/leads/{lead_id}/timeline").status_code == 200
    assert [entry["fault"] for entry in axiomatic.request_log()] == [None, "latency"]


def test_random_faults_are_repeatable_by_seed(axiomatic: RunningAxiomatic) -> None:
    def statuses() -> list[int]:
        axiomatic.configure(faults="error=0.2,ratelimit=0.1,badjson=0.1,seed=3")
        return [get(axiomatic, "/tasks", page=1, pageSize=2).status_code for _ in range(40)]

    first = statuses()
    assert first == statuses()
    assert {500, 429, 200} <= set(first)
    assert 0 < first.count(200) < 40


def test_a_bad_fault_spec_or_kind_is_refused(axiomatic: RunningAxiomatic) -> None:
    for spec in ("error=2", "boom=0.1", "error=0.6,ratelimit=0.6", "error"):
        with pytest.raises(ConfigError):
            axiomatic.configure(faults=spec)
    with pytest.raises(ConfigError):
        axiomatic.inject("lost")


def test_reset_clears_faults_windows_log_and_settings(axiomatic: RunningAxiomatic) -> None:
    axiomatic.configure(rate_limit=1, rate_window=30, page_cap=5)
    axiomatic.inject("error", count=5)
    get(axiomatic, "/tasks")
    axiomatic.reset()
    assert axiomatic.request_log() == []
    answer = get(axiomatic, "/tasks", page=1, pageSize=50)
    assert answer.status_code == 200 and len(answer.json()["results"]) == 50
