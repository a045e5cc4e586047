"""Rate-limit bookkeeping and backoff arithmetic for the Kayse client, free of I/O.

Kayse allows 500 requests per hour per key and reports the budget in `X-RateLimit-*`
headers. This module turns those headers into a `RateLimitState` with an absolute reset time
(the docs call the reset "time remaining" but show an epoch, so a value above 10^9 is read as an epoch, anything smaller as seconds remaining) and
computes how long to wait. It never sleeps and never reads the clock itself: the caller
passes `now`, so the arithmetic is testable without waiting.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

EPOCH_THRESHOLD = 1_000_000_000
"""A reset header above this is an absolute UTC epoch; at or below it, seconds remaining."""

LONGEST_WINDOW_WAIT = 3600.0 + 60.0
"""The longest wait an hourly window can need (plus a minute for clock skew). A reset header
further ahead is a lie or a bug: believing it would park a cron run (and its ledger lock) for
years, so waits are capped here."""


@dataclass(frozen=True)
class RateLimitState:
    """The latest quota the API reported. `reset_at` is an absolute epoch (seconds)."""

    limit: int | None
    remaining: int | None
    reset_at: float | None
    observed_at: float

    def seconds_until_reset(self, now: float) -> float | None:
        """Seconds until the window resets, never more than an hourly window can need."""
        if self.reset_at is None:
            return None
        return min(max(0.0, self.reset_at - now), LONGEST_WINDOW_WAIT)

    def reset_is_implausible(self, now: float) -> bool:
        """True when the header put the reset further ahead than an hourly window can be."""
        return self.reset_at is not None and self.reset_at - now > LONGEST_WINDOW_WAIT

    def window_spent(self, now: float) -> bool:
        """True when the API said no requests are left and the window has not reset yet."""
        return (
            self.remaining is not None
            and self.remaining <= 0
            and self.reset_at is not None
            and self.reset_at > now
        )


def _parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value.strip()))
    except (ValueError, OverflowError):  # garbage, NaN, or an infinity
        return None


def parse_reset(value: str | None, now: float) -> float | None:
    """An `X-RateLimit-Reset` value as an absolute epoch: epochs pass through, small values are relative."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number) or number < 0:  # NaN, infinite or negative: meaningless
        return None
    return number if number > EPOCH_THRESHOLD else now + number


def parse_rate_limit(headers: Mapping[str, str], now: float) -> RateLimitState | None:
    """Read `X-RateLimit-Limit/Remaining/Reset`; None when the response carries none of them.

    `headers` should be case-insensitive (requests' are), since the API's casing is not fixed.
    """
    limit = _parse_int(headers.get("X-RateLimit-Limit"))
    remaining = _parse_int(headers.get("X-RateLimit-Remaining"))
    reset_at = parse_reset(headers.get("X-RateLimit-Reset"), now)
    if limit is None and remaining is None and reset_at is None:
        return None
    return RateLimitState(limit=limit, remaining=remaining, reset_at=reset_at, observed_at=now)


def backoff_delay(retry_number: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with jitter: a random delay in [½, 1] × min(cap, base × 2^(n-1)).

    `retry_number` starts at 1. Half of the delay is kept fixed so retries never bunch up at
    zero, the other half spreads concurrent clients apart.
    """
    ceiling = min(cap, base * (2 ** max(0, retry_number - 1)))
    return ceiling * (0.5 + 0.5 * rng.random())
