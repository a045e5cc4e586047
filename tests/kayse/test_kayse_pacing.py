"""Rate-limit header arithmetic (epoch or seconds remaining) and backoff bounds: pure functions, no clock, no network."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.kayse.pacing import (
    EPOCH_THRESHOLD,
    RateLimitState,
    backoff_delay,
    parse_rate_limit,
    parse_reset,
)

NOW = 1_800_000_000.0


@given(st.integers(min_value=EPOCH_THRESHOLD + 1, max_value=4_000_000_000))
def test_large_reset_is_an_absolute_epoch(value: int) -> None:
    assert parse_reset(str(value), NOW) == value


@given(st.integers(min_value=0, max_value=EPOCH_THRESHOLD))
def test_small_reset_is_seconds_remaining(value: int) -> None:
    assert parse_reset(str(value), NOW) == NOW + value


def test_reset_rejects_garbage() -> None:
    assert parse_reset("soon", NOW) is None
    assert parse_reset("-5", NOW) is None
    assert parse_reset("nan", NOW) is None
    assert parse_reset(None, NOW) is None


def test_headers_parse_case_insensitively() -> None:
    import requests.structures

    headers = requests.structures.CaseInsensitiveDict(
        {"x-ratelimit-limit": "500", "X-RATELIMIT-REMAINING": "487", "X-RateLimit-Reset": "30"}
    )
    state = parse_rate_limit(headers, NOW)
    assert state == RateLimitState(limit=500, remaining=487, reset_at=NOW + 30, observed_at=NOW)


def test_no_rate_limit_headers_means_no_state() -> None:
    assert parse_rate_limit({"Content-Type": "application/json"}, NOW) is None


@given(
    remaining=st.integers(min_value=-1, max_value=5),
    reset_offset_ms=st.integers(min_value=-100_000, max_value=100_000),
)
def test_window_spent_only_when_nothing_left_and_reset_ahead(remaining: int, reset_offset_ms: int) -> None:
    reset_offset = reset_offset_ms / 1000
    state = RateLimitState(limit=5, remaining=remaining, reset_at=NOW + reset_offset, observed_at=NOW)
    assert state.window_spent(NOW) == (remaining <= 0 and reset_offset > 0)
    assert state.seconds_until_reset(NOW) == pytest.approx(max(0.0, reset_offset), abs=1e-6)


@given(
    retry=st.integers(min_value=1, max_value=40),
    base=st.floats(min_value=0.001, max_value=5),
    cap=st.floats(min_value=0.01, max_value=120),
    seed=st.integers(),
)
def test_backoff_grows_within_bounds(retry: int, base: float, cap: float, seed: int) -> None:
    delay = backoff_delay(retry, base, cap, random.Random(seed))
    ceiling = min(cap, base * 2 ** (retry - 1))
    assert ceiling / 2 <= delay <= ceiling
