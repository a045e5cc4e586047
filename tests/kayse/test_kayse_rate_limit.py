"""Pacing on X-RateLimit-*: wait for a spent window instead of sending, wait out 429s, respect max_wait.

One test waits for real against a 1-second sandbox window; the rest use an injected clock
and sleep so an hour-long window costs nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.kayse import RateLimited, WaitTooLong
from tests.kayse.helpers import MakeClient


def _statuses(sandbox: Any) -> list[int | None]:
    return [e["status"] for e in sandbox.request_log()]


def test_spent_window_is_waited_out_for_real(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.configure(rate_limit=3, rate_window=1)
    waits_a: list[tuple[float, str]] = []
    waits_b: list[tuple[float, str]] = []
    pacer = make_client(on_wait=lambda s, r: waits_a.append((s, r)))
    for _ in range(4):
        pacer.metadata.case_types()
    # The client saw remaining=0 and waited for the reset instead of sending into a 429.
    assert _statuses(sandbox) == [200, 200, 200, 200]
    assert len(waits_a) == 1 and 0 < waits_a[0][0] <= 2.5
    assert "no requests left" in waits_a[0][1]

    # A second client on the same key knows nothing of the spent window: it gets a 429,
    # waits for the reset the 429 announced, and retries once.
    pacer.metadata.case_types()
    pacer.metadata.case_types()
    blind = make_client(on_wait=lambda s, r: waits_b.append((s, r)))
    blind.metadata.objects()
    assert _statuses(sandbox)[-2:] == [429, 200]
    assert len(waits_b) == 1 and "window to reset" in waits_b[0][1]
    assert blind.requests_sent == 2


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self, start: float) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_pre_send_wait_uses_the_reset_time(make_client: MakeClient, sandbox: Any) -> None:
    import time

    sandbox.configure(rate_limit=2, rate_window=3600)
    fake = FakeTime(time.time())
    reasons: list[str] = []
    kayse = make_client(
        clock=fake.clock, sleep=fake.sleep, on_wait=lambda s, r: reasons.append(r), max_rate_limit_waits=1
    )
    kayse.metadata.case_types()
    kayse.metadata.case_types()
    assert kayse.rate_limit is not None and kayse.rate_limit.remaining == 0
    reset_in = kayse.rate_limit.reset_at - fake.now  # type: ignore[operator]

    # The sandbox's window is real and an hour long, so after the fake wait it still refuses:
    # the client then backs off once (max_rate_limit_waits=1) and gives up.
    with pytest.raises(RateLimited) as caught:
        kayse.metadata.case_types()
    assert fake.sleeps[0] == pytest.approx(reset_in + 0.25, abs=0.01)
    assert 3500 < fake.sleeps[0] < 3700
    assert "no requests left" in reasons[0]
    assert _statuses(sandbox) == [200, 200, 429, 429]
    assert caught.value.status == 429


def test_wait_beyond_max_wait_stops_without_sending(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.configure(rate_limit=1, rate_window=3600)
    waits: list[float] = []
    kayse = make_client(max_wait=5, on_wait=lambda s, r: waits.append(s))
    kayse.metadata.case_types()
    with pytest.raises(WaitTooLong) as caught:
        kayse.metadata.case_types()
    error = caught.value
    assert 3000 < error.wait_seconds <= 3601
    assert error.reset_at is not None
    assert "--max-wait" in str(error) and "rerun" in str(error)
    assert waits == []  # it never slept
    assert _statuses(sandbox) == [200]  # and never sent the second request

    # A client that learns of the spent window from a 429 stops the same way.
    fresh = make_client(max_wait=5)
    with pytest.raises(WaitTooLong):
        fresh.metadata.objects()
    assert _statuses(sandbox) == [200, 429]


def test_missing_rate_headers_fall_back_to_backoff(make_client: MakeClient, sandbox: Any) -> None:
    # An injected 429 carries headers with quota left: treated like a 429 with no usable reset.
    sandbox.inject("ratelimit", "GET", "/metadata", count=3)
    waits: list[float] = []
    kayse = make_client(max_rate_limit_waits=2, on_wait=lambda s, r: waits.append(s))
    with pytest.raises(RateLimited):
        kayse.metadata.case_types()
    assert _statuses(sandbox) == [429, 429, 429]
    assert len(waits) == 2 and waits[1] >= waits[0] / 2  # bounded exponential backoff with jitter
