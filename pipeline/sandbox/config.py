"""The sandbox's settings: what `kayse-etl sandbox` flags and `RunningSandbox.configure` change.

Why it exists: the CLI, the test fixture and the `/_sandbox/config` route must agree on one set of
knobs with one set of checks. Must never: show an API key (the repr hides them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipeline.sandbox.faults import FaultSpecError, parse_fault_spec

DEMO_KEY = "sandbox-demo-key"
"""Accepted when no --api-key is given; documented, so it is fine to print."""

TUNABLE = ("rate_limit", "rate_window", "bulk_max", "bulk_mode", "faults", "strict")
"""What may change while the sandbox runs."""


class ConfigError(ValueError):
    """A setting out of range; the message names the setting."""


@dataclass(frozen=True)
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 = an ephemeral port
    db_path: str | None = None  # None = in memory
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    rate_limit: int = 500
    rate_window: float = 3600
    bulk_max: int = 500
    bulk_mode: str = "partial"
    faults: str | None = None
    strict: bool = False

    @property
    def accepted_keys(self) -> frozenset[str]:
        return frozenset(self.api_keys) if self.api_keys else frozenset({DEMO_KEY})

    def checked(self) -> SandboxConfig:
        """Self, after checking every value; raises ConfigError naming the bad one."""
        if not isinstance(self.rate_limit, int) or isinstance(self.rate_limit, bool) or self.rate_limit < 1:
            raise ConfigError(f"rate_limit must be a whole number ≥ 1, got {self.rate_limit!r}")
        if (
            isinstance(self.rate_window, bool)
            or not isinstance(self.rate_window, int | float)
            or self.rate_window <= 0
        ):
            raise ConfigError(f"rate_window must be a number of seconds > 0, got {self.rate_window!r}")
        if not isinstance(self.bulk_max, int) or isinstance(self.bulk_max, bool) or self.bulk_max < 1:
            raise ConfigError(f"bulk_max must be a whole number ≥ 1, got {self.bulk_max!r}")
        if self.bulk_mode not in ("partial", "atomic"):
            raise ConfigError(f"bulk_mode must be 'partial' or 'atomic', got {self.bulk_mode!r}")
        if not isinstance(self.strict, bool):
            raise ConfigError("strict must be true or false")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535, got {self.port}")
        if any(not key or key != key.strip() for key in self.api_keys):
            raise ConfigError("an API key must not be empty or have surrounding spaces")
        try:
            parse_fault_spec(self.faults)
        except FaultSpecError as error:
            raise ConfigError(f"faults: {error}") from None
        return self

    def with_changes(self, changes: dict[str, Any]) -> SandboxConfig:
        unknown = sorted(set(changes) - set(TUNABLE))
        if unknown:
            raise ConfigError(f"cannot change {unknown[0]!r} at run time (can: {', '.join(TUNABLE)})")
        return replace(self, **changes).checked()

    def tunables(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name in TUNABLE}
