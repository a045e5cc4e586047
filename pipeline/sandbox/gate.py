"""The door every /v1 request passes: API key, rate limit, faults, request log.

Why it exists: these concerns wrap every endpoint the same way, and one of them ("lost": the
change is committed, then the connection is dropped with no answer) can only be done below the
web framework, on the raw connection. A raw ASGI middleware does all four in one place.

The misbehaviours of a hostile server are done here too, on the bytes: "drip" (the answer one
byte at a time), "bomb" (a small gzip stream that decodes to 80 MiB), "reset" (absurd rate-limit
reset headers) and the "long-error" key leak. "lie" and the "failed" key leak need the data,
so the gate only marks the request (`scope["state"]["fault"]`) and the bulk routes do them.

Must never: write the API key anywhere (the log holds a fingerprint) other than into the answer
of a "leak-key" fault, apply faults or limits to the sandbox-only `/_sandbox/` routes, or answer
a "lost" request at all.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.sandbox.faults import FaultPlan

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/v1"
REQUEST_LOG_MAX = 10_000
BULK_BODY_KEYS = ("clients", "cases", "lists", "ids", "client_ids", "include_ids", "exclude_ids", "mappings")
BULK_ROUTE_ENDS = (
    "/bulk",
    "/bulk_delete",
    "/attach",
    "/detach",
    "/append",
    "/remove",
    "/crm_mappings/fields",
)


def key_fingerprint(key: str | None) -> str | None:
    """A short, stable, non-reversible name for a key: safe to log and print.

    "sha256:" + 12 hex characters, the same text the client prints for the same key (computed
    here, not imported: the sandbox shares no code with the client), so a person can match the
    sandbox's request log with the client's messages.
    """
    if not key:
        return None
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Quota:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # absolute epoch seconds, as the docs' example shows

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", str(self.reset).encode()),
        ]


@dataclass
class RateLimiter:
    """Fixed window per key (the docs do not say fixed or rolling): the window opens at the key's first counted request."""

    limit: int
    window: float
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, limit: int, window: float) -> None:
        with self._lock:
            if (limit, window) != (self.limit, self.window):
                self._windows.clear()
            self.limit, self.window = limit, window

    def clear(self) -> None:
        with self._lock:
            self._windows.clear()

    def peek(self, fingerprint: str | None) -> Quota:
        with self._lock:
            return self._quota(fingerprint, time.time())

    def take(self, fingerprint: str) -> Quota:
        """Count one request if the window has room; `allowed=False` (nothing counted) when spent."""
        with self._lock:
            now = time.time()
            quota = self._quota(fingerprint, now)
            if not quota.allowed:
                return quota
            start, used = self._windows.get(fingerprint, (now, 0))
            if now >= start + self.window:
                start, used = now, 0
            self._windows[fingerprint] = (start, used + 1)
            return self._quota(fingerprint, now)

    def _quota(self, fingerprint: str | None, now: float) -> Quota:
        start, used = self._windows.get(fingerprint or "", (now, 0))
        if now >= start + self.window:
            start, used = now, 0
        remaining = max(self.limit - used, 0)
        return Quota(remaining > 0, self.limit, remaining, math.ceil(start + self.window))


@dataclass
class RequestLog:
    entries: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_MAX))
    _counter: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    on_entry: Callable[[dict[str, Any]], None] | None = None

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._counter += 1
            entry = {"seq": self._counter, **entry}
            self.entries.append(entry)
        if self.on_entry is not None:
            self.on_entry(entry)

    def clear(self) -> None:
        with self._lock:
            self.entries.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.entries)


def bulk_item_count(body: bytes) -> int | None:
    """How many items a bulk-style body carries (for the log), or None when it is not one."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    if isinstance(decoded, dict):
        for key in BULK_BODY_KEYS:
            if isinstance(decoded.get(key), list):
                return len(decoded[key])
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


BOMB_DECODED_BYTES = 80 * 1024 * 1024
"""What the "bomb" answer decodes to: more than the client's default 64 MiB cap."""

TEN_YEARS = 10 * 365 * 24 * 3600


@functools.cache
def gzip_bomb() -> bytes:
    """Valid JSON once decoded (so only a size cap stops a client), about 80 KB compressed."""
    padding = b" " * (BOMB_DECODED_BYTES - 32)
    return gzip.compress(b'{"pad": "' + padding + b'", "clients": []}', compresslevel=9)


def long_error_text(key: str) -> str:
    """A 1000-character error text with the key straddling the 200th and the 500th characters."""
    half = len(key) // 2
    text = "x" * (200 - half) + key
    text += "y" * (500 - half - len(text)) + key
    return text + "z" * (1000 - len(text))


def _reset_headers(how: str | None, quota: Quota) -> list[tuple[bytes, bytes]]:
    reset = {
        "far": str(int(time.time()) + TEN_YEARS),
        "inf": "inf",
        "nan": "nan",
        "garbage": "soon-ish",
        "inf-remaining": str(quota.reset),
    }[how or "far"]
    remaining = "inf" if how == "inf-remaining" else "0"
    return [
        (b"x-ratelimit-limit", str(quota.limit).encode()),
        (b"x-ratelimit-remaining", remaining.encode()),
        (b"x-ratelimit-reset", reset.encode()),
    ]


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def _send_text(send: Send, status: int, text: str, headers: list[tuple[bytes, bytes]]) -> None:
    payload = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _disconnected(send: Send) -> bool:
    return bool(getattr(getattr(send, "__self__", None), "disconnected", False))


async def _drip(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, seconds: float
) -> None:
    """Send the answer one byte every `seconds`: no single read ever times out. Stops when the
    client has gone (so a test's aborted request leaves no task behind for long)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    for position in range(len(body)):
        if _disconnected(send):
            return
        await send({"type": "http.response.body", "body": body[position : position + 1], "more_body": True})
        await asyncio.sleep(seconds)
    await send({"type": "http.response.body", "body": b""})


async def _send_bomb(send: Send, headers: list[tuple[bytes, bytes]]) -> None:
    payload = gzip_bomb()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-encoding", b"gzip"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def drop_connection(send: Send) -> None:
    """Close the client's connection with no response (uvicorn: abort the cycle's transport).

    uvicorn's `send` is a bound method of its per-request cycle object; marking the cycle
    disconnected stops uvicorn from writing its own 500 afterwards.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        raise RuntimeError("the 'lost' fault needs uvicorn's h11 server (no transport found)")
    cycle.disconnected = True  # type: ignore[union-attr]
    transport.abort()


@dataclass
class Gate:
    """Raw ASGI middleware in front of the FastAPI app."""

    app: ASGIApp
    api_keys: frozenset[str]
    limiter: RateLimiter
    faults: FaultPlan
    log: RequestLog

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        api_path = path[len(API_PREFIX) :] or "/"
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        key = _header(scope, b"x-api-key")
        fingerprint = key_fingerprint(key)
        entry: dict[str, Any] = {
            "time": time.time(),
            "method": method,
            "path": path,
            "status": None,
            "items": bulk_item_count(body) if body and api_path.endswith(BULK_ROUTE_ENDS) else None,
            "fault": None,
            "key": fingerprint,
        }
        try:
            if key is None or key not in self.api_keys:
                entry["status"] = 401
                reason = "missing X-API-KEY header" if key is None else "the API key is not valid"
                await _send_json(
                    send,
                    401,
                    {"error": "unauthorized", "message": reason},
                    self.limiter.peek(None).headers(),
                )
                return
            assert fingerprint is not None
            quota = self.limiter.peek(fingerprint)
            if not quota.allowed:
                entry["status"] = 429
                await _send_json(send, 429, _too_many(quota), quota.headers())
                return
            decision = self.faults.decide(method, api_path)
            entry["fault"] = decision.label
            if decision.kind == "ratelimit":
                entry["status"] = 429
                await _send_json(send, 429, _too_many(quota), quota.headers())
                return
            quota = self.limiter.take(fingerprint)
            if decision.delay:
                await asyncio.sleep(decision.delay)
            if decision.kind == "error":
                entry["status"] = 500
                await _send_json(
                    send,
                    500,
                    {
                        "error": "internal server error",
                        "message": "injected fault: the request was not applied",
                    },
                    quota.headers(),
                )
                return
            if decision.kind == "lost":
                await self._run_and_drop(scope, replay, send, entry)
                return
            if decision.kind == "leak-key" and decision.how == "long-error":
                entry["status"] = 409
                await _send_text(send, 409, long_error_text(key), quota.headers())
                return
            if decision.kind in ("drip", "bomb"):
                status, headers, answer = await self._run_buffered(scope, replay, entry)
                if decision.kind == "drip":
                    await _drip(send, status, [*headers, *quota.headers()], answer, decision.seconds or 0.5)
                else:
                    await _send_bomb(send, quota.headers())
                return
            if decision.kind in ("lie", "leak-key"):
                scope.setdefault("state", {})["fault"] = (decision.kind, decision.how)
            if decision.kind == "reset":
                quota_headers = _reset_headers(decision.how, quota)
                await self._run(scope, replay, send, entry, quota, quota_headers)
                return
            await self._run(scope, replay, send, entry, quota)
        finally:
            self.log.add(entry)

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        entry: dict[str, Any],
        quota: Quota,
        quota_headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *(quota_headers or quota.headers())]
            await send(message)

        await self.app(scope, receive, send_with_headers)
        note = scope.get("state", {}).get("note")
        if note:
            entry["note"] = note

    async def _run_buffered(
        self, scope: Scope, receive: Receive, entry: dict[str, Any]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Run the request (the change is committed) and keep its answer instead of sending it."""
        status = 500
        headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                entry["status"] = status
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, keep)
        return status, headers, b"".join(chunks)

    async def _run_and_drop(self, scope: Scope, receive: Receive, send: Send, entry: dict[str, Any]) -> None:
        async def swallow(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]

        await self.app(scope, receive, swallow)  # the change is committed here…
        drop_connection(send)  # …and the client never hears of it


def _too_many(quota: Quota) -> dict[str, str]:
    return {
        "error": "too many requests",
        "message": f"rate limit of {quota.limit} requests per window exceeded; resets at epoch {quota.reset}",
    }
