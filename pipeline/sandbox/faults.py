"""Fault injection for the sandbox: which request gets a 500, an extra 429, a delay, a lost answer, or
an answer that lies, leaks the key, drips, bombs or carries an absurd rate-limit reset.

Why it exists: the loader's hardest code is what it does when the network misbehaves — above all
a create that was committed but whose answer never arrived. Rehearsals (`--faults`) and tests
(`inject`) need those failures on demand, reproducibly (a seed) or exactly (one-shot rules).

Must never: apply a fault to the sandbox-only inspection routes, or decide anything about the
data itself (the gate applies the fault; the store does not know faults exist).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from dataclasses import dataclass, field
from typing import Literal, cast

FaultKind = Literal["error", "ratelimit", "latency", "lost", "lie", "leak-key", "drip", "reset", "bomb"]
RANDOM_KINDS: tuple[FaultKind, ...] = ("error", "ratelimit", "latency", "lost")
"""What `--faults` can spread at random; the others are one-shot rules only (`inject`)."""
FAULT_KINDS: tuple[FaultKind, ...] = (*RANDOM_KINDS, "lie", "leak-key", "drip", "reset", "bomb")
FAULT_VARIANTS: dict[str, tuple[str, ...]] = {
    # commit the change, then answer with ids that lie (bulk upserts)
    "lie": ("duplicate-ids", "shuffled", "bad-ids", "foreign-id"),
    # quote the request's key: in every failed[] message of a 200 (one item refused to have one),
    # or in a long 409 text body, straddling the 200th and 500th characters
    "leak-key": ("failed", "long-error"),
    # X-RateLimit-Remaining 0 and a reset ten years ahead, infinite, NaN or garbage
    # ("inf-remaining": the remaining count itself is "inf")
    "reset": ("far", "inf", "nan", "garbage", "inf-remaining"),
}
"""The `how` a kind needs (the first is the default)."""
DEFAULT_DRIP_SECONDS = 0.5
MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_ONE_SHOT_LATENCY = 1.0


class FaultSpecError(ValueError):
    """A `--faults` spec that cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class FaultSpec:
    """Random faults on mutating requests: shares (0–1) of error/ratelimit/lost, latency in seconds."""

    error: float = 0.0
    ratelimit: float = 0.0
    lost: float = 0.0
    latency: float = 0.0
    seed: int | None = None

    def __str__(self) -> str:
        parts = [
            f"{name}={getattr(self, name):g}"
            for name in ("error", "ratelimit", "latency", "lost")
            if getattr(self, name)
        ]
        if self.seed is not None:
            parts.append(f"seed={self.seed}")
        return ",".join(parts) or "none"


def parse_fault_spec(spec: str | None) -> FaultSpec:
    """Read "error=0.05,ratelimit=0.02,latency=0.2,lost=0.01,seed=7" (any subset, any order)."""
    if spec is None or not spec.strip() or spec.strip() == "none":
        return FaultSpec()
    values: dict[str, float] = {}
    seed: int | None = None
    for part in spec.split(","):
        name, sep, raw = part.strip().partition("=")
        name = name.strip()
        if not sep or not raw.strip():
            raise FaultSpecError(f"fault spec part {part.strip()!r} is not NAME=VALUE")
        if name == "seed":
            try:
                seed = int(raw)
            except ValueError:
                raise FaultSpecError(f"seed must be an integer, got {raw.strip()!r}") from None
            continue
        if name not in RANDOM_KINDS:
            raise FaultSpecError(f"unknown fault {name!r} (known: {', '.join(RANDOM_KINDS)}, seed)")
        try:
            number = float(raw)
        except ValueError:
            raise FaultSpecError(f"{name} must be a number, got {raw.strip()!r}") from None
        if number < 0 or (name != "latency" and number > 1):
            raise FaultSpecError(
                f"{name} must be {'≥ 0' if name == 'latency' else 'a share between 0 and 1'}"
            )
        values[name] = number
    if sum(values.get(k, 0.0) for k in ("error", "ratelimit", "lost")) > 1:
        raise FaultSpecError("error + ratelimit + lost must not exceed 1")
    return FaultSpec(seed=seed, **values)


@dataclass
class OneShot:
    """The next `remaining` requests matching method and path get `kind`."""

    kind: FaultKind
    method: str | None
    path: str | None  # under /v1, e.g. "/clients/bulk"; shell-style wildcards allowed ("/cases/*")
    remaining: int
    seconds: float | None = None
    how: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or fnmatch.fnmatchcase(path, self.path)


@dataclass(frozen=True)
class Decision:
    kind: FaultKind | None  # any kind but latency; None = answer normally
    delay: float = 0.0  # seconds to wait first (latency)
    how: str | None = None  # the variant of lie, leak-key and reset
    seconds: float | None = None  # drip: seconds between bytes

    @property
    def label(self) -> str | None:
        kind = f"{self.kind}:{self.how}" if self.kind and self.how else self.kind
        labels = [k for k in (kind, "latency" if self.delay else None) if k]
        return "+".join(labels) or None


@dataclass
class FaultPlan:
    """Decides, per request, which fault (if any) it gets. Thread-safe."""

    spec: FaultSpec = field(default_factory=FaultSpec)
    one_shots: list[OneShot] = field(default_factory=list)
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.set_spec(self.spec)

    def set_spec(self, spec: FaultSpec) -> None:
        with self._lock:
            self.spec = spec
            self._rng = random.Random(spec.seed)

    def clear(self) -> None:
        with self._lock:
            self.one_shots.clear()

    def add(
        self,
        kind: str,
        method: str | None,
        path: str | None,
        count: int,
        seconds: float | None,
        how: str | None = None,
    ) -> None:
        if kind not in FAULT_KINDS:
            raise FaultSpecError(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
        if count < 1:
            raise FaultSpecError("count must be at least 1")
        variants = FAULT_VARIANTS.get(kind)
        if variants is None and how is not None:
            raise FaultSpecError(f"fault {kind!r} takes no 'how'")
        if variants is not None:
            how = how or variants[0]
            if how not in variants:
                raise FaultSpecError(f"fault {kind!r}: how must be one of {', '.join(variants)}, not {how!r}")
        if path is not None and path.startswith("/v1/"):
            path = path[3:]
        with self._lock:
            self.one_shots.append(OneShot(cast(FaultKind, kind), method, path, count, seconds, how))

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [vars(shot).copy() for shot in self.one_shots]

    def decide(self, method: str, path: str) -> Decision:
        """One-shot rules first (any method they name), then the random spec (mutating requests only)."""
        with self._lock:
            for shot in self.one_shots:
                if shot.matches(method, path):
                    shot.remaining -= 1
                    if shot.remaining <= 0:
                        self.one_shots.remove(shot)
                    if shot.kind == "latency":
                        delay = (
                            shot.seconds
                            if shot.seconds is not None
                            else (self.spec.latency or DEFAULT_ONE_SHOT_LATENCY)
                        )
                        return Decision(None, delay)
                    if shot.kind == "drip":
                        return Decision("drip", seconds=shot.seconds or DEFAULT_DRIP_SECONDS)
                    return Decision(shot.kind, how=shot.how)
            if method.upper() not in MUTATING_METHODS:
                return Decision(None)
            draw = self._rng.random()
            kind: FaultKind | None = None
            threshold = 0.0
            for name in ("error", "ratelimit", "lost"):
                threshold += getattr(self.spec, name)
                if draw < threshold:
                    kind = cast(FaultKind, name)
                    break
            return Decision(kind, self.spec.latency)
