"""A read-only HTTP client for the Axiomatic CRM API: GET is the only way out.

Why it exists: an extract must never change the CRM it migrates away from. So the only public
request method is `get`, and underneath, the session and the transport adapter it is built on
refuse any other method before a byte is sent (`WriteRefused`), even if someone reaches past the
class. It sends the key as `Authorization: Bearer`, the entity as `?entityId=` on every request,
a timeout on every call, and never follows a redirect (that could carry the key elsewhere).

Every call is a read, so every transient failure is retried (5xx, transport errors, a 2xx body
that is not JSON) with exponential backoff and jitter; a 429 is waited out (Retry-After, else
the rate-limit reset) and never counts as a failure; the client paces itself on `X-RateLimit-*`.
A wait longer than `max_wait` stops it with `WaitTooLong`. The key never appears in an error,
a repr or a log: server messages are scrubbed of it (`key_fingerprint` identifies it).
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from pipeline.extract.axiomatic.jsontext import parse_json

ALLOWED_METHOD = "GET"
RESET_MARGIN_SECONDS = 0.25
EPOCH_THRESHOLD = 1_000_000_000  # a Reset above this is an epoch time, below it a delay in seconds


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible label for a key: "sha256:" + 12 hex characters."""
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


# ---- errors ----------------------------------------------------------------------------


class AxiomaticError(Exception):
    """Base of this client's errors. `retryable`: would the same call later likely succeed."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.path = path


class WriteRefused(AxiomaticError):
    """Something tried to send a method other than GET: refused before anything left."""


class KeyRefused(AxiomaticError):
    """401: the key is wrong, revoked or expired."""


class Forbidden(AxiomaticError):
    """403: the key cannot reach this entity, or lacks the `read:crm` scope."""

    @property
    def missing_scope(self) -> bool:
        return "scope" in self.message.lower() or "read:crm" in self.message.lower()


class HttpRefused(AxiomaticError):
    """Another 4xx (400, 404, …): this request will not succeed as it is."""


class Unreachable(AxiomaticError):
    """Transport errors or 5xx answers, retries exhausted."""

    retryable = True


class NotJson(AxiomaticError):
    """A 2xx answer whose body is not JSON, retries exhausted. `body_start` shows what came."""

    def __init__(self, message: str, *, status: int | None, path: str, body_start: str) -> None:
        super().__init__(message, status=status, path=path)
        self.body_start = body_start


class WaitTooLong(AxiomaticError):
    """The rate-limit wait would be longer than `max_wait`: stopped early (a rerun starts over)."""

    retryable = True

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


# ---- the GET-only plumbing -------------------------------------------------------------


class GetOnlyAdapter(HTTPAdapter):
    """The last step before bytes leave: anything but GET raises WriteRefused here."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if (request.method or "").upper() != ALLOWED_METHOD:
            raise WriteRefused(f"{request.method} refused: the Axiomatic extract only reads (GET)")
        return super().send(request, *args, **kwargs)


class GetOnlySession(requests.Session):
    """A session that refuses non-GET requests and any adapter that is not GET-only."""

    def __init__(self) -> None:
        self._sealed = False
        super().__init__()  # mounts requests' default adapters: replaced right below
        self.adapters.clear()
        super().mount("https://", GetOnlyAdapter(max_retries=0))
        super().mount("http://", GetOnlyAdapter(max_retries=0))
        self.max_redirects = 0
        self._sealed = True

    def mount(self, prefix: str | bytes, adapter: Any) -> None:
        if self._sealed and not isinstance(adapter, GetOnlyAdapter):
            raise WriteRefused("only a GET-only transport can be mounted on the Axiomatic session")
        super().mount(prefix, adapter)

    def get_adapter(self, url: str) -> Any:
        adapter = super().get_adapter(url)
        if not isinstance(adapter, GetOnlyAdapter):  # someone edited .adapters directly
            raise WriteRefused("the Axiomatic session's transport is not GET-only")
        return adapter

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = method.decode() if isinstance(method, bytes) else method
        if text.upper() != ALLOWED_METHOD:
            raise WriteRefused(f"{text} refused: the Axiomatic extract only reads (GET)")
        return super().request(method, url, *args, **kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if (request.method or "").upper() != ALLOWED_METHOD:
            raise WriteRefused(f"{request.method} refused: the Axiomatic extract only reads (GET)")
        return super().send(request, **kwargs)


# ---- the client -------------------------------------------------------------------------


class WaitObserver(Protocol):
    def wait(self, seconds: float, reason: str) -> None: ...


@dataclass(frozen=True)
class Page:
    """One answered GET: the parsed JSON body (numbers as served text) and its headers."""

    body: Any
    status: int
    headers: Mapping[str, str]


class _Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


TOKEN_PATTERN = re.compile(r"(ak_|Bearer\s+)[A-Za-z0-9._~+/=-]+")


class ReadOnlyClient:
    """GET-only client for one Axiomatic host, one key, one entity. Not safe for concurrent use.

    Counters for the report: `requests` (attempts sent), `retries`, `waited_seconds`.
    `clock`, `sleep` and `rng` are injectable so pacing can be tested without waiting.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        entity_id: str,
        *,
        timeout: tuple[float, float] = (10, 60),
        max_retries: int = 5,
        max_wait: float | None = None,
        max_rate_limit_waits: int = 100,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        observer: WaitObserver | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("the base URL must be an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._key = _Secret(api_key.strip())
        self.key_fingerprint = key_fingerprint(self._key.reveal())
        self.entity_id = entity_id
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.max_rate_limit_waits = max_rate_limit_waits
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.observer = observer
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session = GetOnlySession()
        self._session.headers.update(
            {"Authorization": f"Bearer {self._key.reveal()}", "Accept": "application/json"}
        )
        self.requests = 0
        self.retries = 0
        self.waited_seconds = 0.0
        self._remaining: int | None = None
        self._reset_at: float | None = None
        self._limit: int | None = None

    def __repr__(self) -> str:
        return f"ReadOnlyClient({self.base_url!r}, key={self.key_fingerprint}, entity={self.entity_id})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> ReadOnlyClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- the one way out ----------------------------------------------------------------

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, max_retries: int | None = None
    ) -> Page:
        """GET base_url + path with `entityId` added; the parsed JSON, after retries and waits."""
        url = self.base_url + path
        query = {**(params or {}), "entityId": self.entity_id}
        budget = self.max_retries if max_retries is None else max_retries
        failures = 0
        rate_limited = 0
        while True:
            self._wait_for_window()
            self.requests += 1
            try:
                response = self._session.get(url, params=query, timeout=self.timeout, allow_redirects=False)
            except WriteRefused:
                raise
            except requests.RequestException as error:
                failures += 1
                reason = f"{type(error).__name__} on GET {path}"
                if failures > budget:
                    raise Unreachable(
                        f"cannot reach {self._host()}: {self.scrub(str(error))}", path=path
                    ) from None
                self._backoff(failures, reason)
                continue
            self._observe(response)
            status = response.status_code
            if status == 429:
                rate_limited += 1
                if rate_limited > self.max_rate_limit_waits:
                    raise WaitTooLong(
                        f"Axiomatic answered 429 (rate limited) {rate_limited} times in a row on GET {path}",
                        seconds=0.0,
                    )
                self._wait_after_429(response, rate_limited)
                continue
            if status >= 500:
                failures += 1
                if failures > budget:
                    raise Unreachable(
                        f"Axiomatic answered {status} on GET {path} {failures} times: {self._error_text(response)}",
                        status=status,
                        path=path,
                    )
                self._backoff(failures, f"{status} on GET {path}")
                continue
            if 300 <= status < 400:
                raise HttpRefused(
                    f"GET {path} was redirected ({status}); redirects are not followed (they could carry the key elsewhere)",
                    status=status,
                    path=path,
                )
            if status == 401:
                raise KeyRefused(self._error_text(response), status=status, path=path)
            if status == 403:
                raise Forbidden(self._error_text(response), status=status, path=path)
            if status >= 400:
                raise HttpRefused(self._error_text(response), status=status, path=path)
            try:
                body = parse_json(response.content)
            except ValueError:
                failures += 1
                if failures > budget:
                    start = self.scrub(response.content[:80].decode("utf-8", "replace"))
                    raise NotJson(
                        f"GET {path} answered {status} with a body that is not JSON",
                        status=status,
                        path=path,
                        body_start=start,
                    ) from None
                self._backoff(failures, f"a body that is not JSON on GET {path}")
                continue
            return Page(body, status, response.headers)

    # ---- helpers ------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """The text with the key (and anything shaped like a key) replaced by its fingerprint."""
        key = self._key.reveal()
        if key:
            text = text.replace(key, self.key_fingerprint)
        return TOKEN_PATTERN.sub(lambda m: m.group(1) + "…", text)

    def _host(self) -> str:
        return urlsplit(self.base_url).netloc

    def _error_text(self, response: requests.Response) -> str:
        """The server's `{"error": "..."}` message (scrubbed), else the status and a short body."""
        try:
            body = parse_json(response.content)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return self.scrub(str(body["error"]))[:300]
        return f"HTTP {response.status_code}"

    def _observe(self, response: requests.Response) -> None:
        headers = response.headers
        limit = _as_int(headers.get("X-RateLimit-Limit"))
        remaining = _as_int(headers.get("X-RateLimit-Remaining"))
        reset = _as_float(headers.get("X-RateLimit-Reset"))
        if limit is not None:
            self._limit = limit
        if remaining is not None:
            self._remaining = remaining
            self._reset_at = self._reset_time(reset)

    def _reset_time(self, reset: float | None) -> float | None:
        if reset is None:
            return None
        return reset if reset >= EPOCH_THRESHOLD else self._clock() + reset

    def _wait_for_window(self) -> None:
        if self._remaining is None or self._remaining > 0:
            return
        reset_at = self._reset_at
        self._remaining = None  # whatever happens next, the old count no longer applies
        if reset_at is None:
            return
        seconds = reset_at - self._clock() + RESET_MARGIN_SECONDS
        if seconds > 0:
            self._wait(seconds, f"read quota spent ({self._limit or '?'} per window): waiting for its reset")

    def _wait_after_429(self, response: requests.Response, attempt: int) -> None:
        seconds = _retry_after(response.headers.get("Retry-After"), self._clock())
        if seconds is not None:
            reason = "rate limited (429): waiting as Retry-After asks"
        elif self._remaining == 0 and self._reset_at is not None:
            seconds = max(self._reset_at - self._clock(), 0.0) + RESET_MARGIN_SECONDS
            reason = "rate limited (429): waiting for the quota's reset"
        else:
            seconds = _backoff_delay(attempt, self.backoff_base * 2, self.backoff_cap * 4, self._rng)
            reason = "rate limited (429) with no wait given: backing off"
        self._remaining = None
        self._wait(seconds, reason)

    def _backoff(self, retry_number: int, reason: str) -> None:
        self.retries += 1
        seconds = _backoff_delay(retry_number, self.backoff_base, self.backoff_cap, self._rng)
        self._wait(seconds, f"retry {retry_number}/{self.max_retries} after {reason}", quota=False)

    def _wait(self, seconds: float, reason: str, *, quota: bool = True) -> None:
        if quota and self.max_wait is not None and seconds > self.max_wait:
            raise WaitTooLong(
                f"the read quota resets in {seconds:.0f}s, more than --max-wait {self.max_wait:g}s",
                seconds=seconds,
            )
        if self.observer is not None and (quota or seconds >= 1):
            self.observer.wait(seconds, reason)
        if seconds > 0:
            self.waited_seconds += seconds
            self._sleep(seconds)


def _as_int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _as_float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _retry_after(value: str | None, now: float) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None when absent or unreadable."""
    if value is None:
        return None
    seconds = _as_float(value.strip())
    if seconds is not None:
        return max(seconds, 0.0)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now, 0.0)
    except (TypeError, ValueError):
        return None


def _backoff_delay(retry_number: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(n-1))], at least base/4."""
    ceiling = min(cap, base * 2 ** max(retry_number - 1, 0))
    return max(base / 4, rng.uniform(0, ceiling))
