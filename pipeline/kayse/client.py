"""The HTTP client for the Kayse public API: one session, timeouts, pacing, retries, typed errors.

Requests are the scarce resource (500 per hour per key), and a create whose answer was lost
cannot be checked afterwards (no lookup by external id). So this module:
- paces itself on `X-RateLimit-*` instead of running into 429s, and waits out a spent window
  (or stops with `WaitTooLong` when the wait would exceed `max_wait`);
- retries only what is safe to retry: a request that creates records is never resent once it
  may have reached the server;
- counts every attempt it sends (`requests_sent`) so the loader can compare with its plan;
- bounds every attempt: an overall deadline (a server dripping one byte every few seconds
  never trips a per-read timeout), a cap on the decoded size of an answer (a small gzip
  stream can decode to gigabytes), and a cap on rate-limit waits (a reset header years ahead).

It knows nothing of frames, mappings or the ledger, shares no code with the sandbox, and
must never reveal the API key: not in logs, exception texts, reprs or reports (only
`key_fingerprint`). It does not follow redirects, since that could carry the key elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import time
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from pipeline.kayse.bulk import BulkItemResult, OnChunk, iter_bulk_upsert
from pipeline.kayse.errors import (
    AuthError,
    BadRequest,
    ConfigurationError,
    KayseError,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    RequestRejected,
    ServerError,
    TransportError,
    WaitTooLong,
)
from pipeline.kayse.pacing import LONGEST_WINDOW_WAIT, RateLimitState, backoff_delay, parse_rate_limit
from pipeline.kayse.resources import (
    Agents,
    Campaigns,
    CaseLists,
    Cases,
    Clients,
    Communication,
    Crm,
    Metadata,
)

log = logging.getLogger("pipeline.kayse")

OnWait = Callable[[float, str], None]
"""Called before every wait with (seconds, reason), e.g. to show a countdown."""

IDLE_BEFORE_FRESH_CONNECTION: Final = 2.0
"""A create after this many idle seconds goes on a new connection: a pooled one the server is
closing at that moment would look like a lost answer, and a create cannot be retried."""

RESET_MARGIN_SECONDS: Final = 0.25
"""Added to a rate-limit wait so the first request after it lands in the new window."""

REDACTED: Final = "[redacted]"

SHORTEST_KEY_FRAGMENT: Final = 8
"""A piece of the key this long at the edge of a text the server cut is redacted too."""

ERROR_BODY_MAX_CHARS: Final = 500
"""How much of a non-JSON error body is kept (after redaction)."""

DEFAULT_REQUEST_DEADLINE: Final = 120.0
"""Seconds one attempt may take from sending to the last byte of its answer."""

DEFAULT_MAX_ANSWER_BYTES: Final = 64 * 1024 * 1024
"""The largest answer (after decompression) the client reads; a bulk answer of 500 records is
a few hundred kilobytes."""

_READ_CHUNK: Final = 64 * 1024


def key_fingerprint(api_key: str) -> str:
    """A stable, non-reversible label for a key: "sha256:" + 12 hex characters."""
    return "sha256:" + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]


class _Secret:
    """Holds the key so that no repr, str or vars() dump of the client shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__


def _never_sent(error: requests.RequestException) -> bool:
    """True when the request certainly did not reach the server (refused, DNS, connect timeout)."""
    if isinstance(
        error, requests.ConnectTimeout | requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        return True  # failed while connecting or in the TLS handshake: no request went out
    if isinstance(error, requests.ConnectionError):
        cause = error.args[0] if error.args else None
        if isinstance(cause, MaxRetryError):
            return isinstance(cause.reason, NewConnectionError | ConnectTimeoutError)
        return isinstance(cause, NewConnectionError | ConnectTimeoutError)
    return False


@dataclass(frozen=True, slots=True)
class _Call:
    """One API call as `request` received it: `shown` is the path as messages name it."""

    method: str
    shown: str
    url: str
    json: Any
    params: Mapping[str, Any] | None
    creates: bool
    items: int | None


class _AnswerAborted(Exception):
    """Reading an answer stopped: past the deadline or over the size cap."""


@dataclass(frozen=True, slots=True)
class _NoAnswer:
    """An attempt that got no response; `sent` is False only when it certainly never left."""

    sent: bool
    reason: str  # the transport error's text, key redacted


@dataclass(slots=True)
class _Attempts:
    """What one call has spent so far of its retry and 429-wait budgets."""

    transient_retries: int = 0
    rate_limit_waits: int = 0


class KayseClient:
    """A client for one Kayse API (base URL) and one key. Not safe for concurrent use.

    `timeout` is (connect, read) seconds for every call. `max_retries` bounds the retries of
    transient failures (5xx, transport) per call; `max_rate_limit_waits` bounds 429 waits.
    `max_wait` (seconds) stops the client with `WaitTooLong` instead of a longer rate-limit
    wait; no wait is ever longer than an hourly window can need (`LONGEST_WINDOW_WAIT`).
    `request_deadline` (seconds) bounds one attempt from sending to the last byte of the answer,
    `max_answer_bytes` the decoded size of an answer: either abort counts as a lost answer (a
    create is then `OutcomeUnknown`, never resent). `clock`, `sleep` and `rng` are injectable
    for tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: tuple[float, float] = (5, 60),
        max_retries: int = 5,
        max_wait: float | None = None,
        on_wait: OnWait | None = None,
        session: requests.Session | None = None,
        metadata_path: str = "/metadata",
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_rate_limit_waits: int = 10,
        request_deadline: float = DEFAULT_REQUEST_DEADLINE,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigurationError(
                "no Kayse API key given", hint="set KAYSE_API_KEY or pass --api-key-file"
            )
        if not all(33 <= ord(char) <= 126 for char in api_key.strip()):
            # requests would reject the header and quote the key in its error message.
            raise ConfigurationError(
                "the Kayse API key contains spaces, line breaks or other characters a key cannot have",
                hint="copy the key again from Company Settings → API Keys (a key file should hold only the key)",
            )
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(
                f"the Kayse base URL {base_url!r} is not an http(s) URL",
                hint="use e.g. https://public-api.kayse.ai/v1 (or the sandbox's URL)",
            )
        if parts.username or parts.password or parts.query:
            raise ConfigurationError("the Kayse base URL must not carry credentials or a query")
        self.base_url = base_url.rstrip("/")
        self._base_path = parts.path.rstrip("/")
        self._key = _Secret(api_key.strip())
        self.key_fingerprint = key_fingerprint(self._key.reveal())
        self.target = f"{self.base_url}#{self.key_fingerprint}"
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.on_wait = on_wait
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_rate_limit_waits = max_rate_limit_waits
        if not request_deadline > 0 or not max_answer_bytes > 0:
            raise ConfigurationError("request_deadline and max_answer_bytes must be positive")
        self.request_deadline = request_deadline
        self.max_answer_bytes = max_answer_bytes
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session = session or requests.Session()
        self.requests_sent = 0
        self.rate_limit: RateLimitState | None = None
        self._last_exchange: float | None = None

        self.clients = Clients(self)
        self.cases = Cases(self)
        self.case_lists = CaseLists(self)
        self.campaigns = Campaigns(self)
        self.metadata = Metadata(self, metadata_path)
        self.crm = Crm(self)
        self.communication = Communication(self)
        self.agents = Agents(self)

    def __repr__(self) -> str:
        return f"KayseClient({self.base_url!r}, key={self.key_fingerprint})"

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> KayseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- bulk helpers ---------------------------------------------------------------

    def iter_upsert_clients(
        self,
        items: Sequence[Mapping[str, Any]],
        chunk_size: int = 100,
        max_split_requests: int = 40,
        known_ids: Container[int] = (),
    ) -> Iterator[list[BulkItemResult]]:
        """Bulk upsert clients chunk by chunk, yielding each chunk's results (see `bulk`)."""
        return iter_bulk_upsert(
            self.clients.bulk_upsert, "clients", items, chunk_size, max_split_requests, known_ids
        )

    def iter_upsert_cases(
        self,
        items: Sequence[Mapping[str, Any]],
        chunk_size: int = 100,
        max_split_requests: int = 40,
        known_ids: Container[int] = (),
    ) -> Iterator[list[BulkItemResult]]:
        """Bulk upsert cases chunk by chunk, yielding each chunk's results (see `bulk`)."""
        return iter_bulk_upsert(
            self.cases.bulk_upsert, "cases", items, chunk_size, max_split_requests, known_ids
        )

    def upsert_clients(
        self,
        items: Sequence[Mapping[str, Any]],
        chunk_size: int = 100,
        on_chunk: OnChunk | None = None,
        max_split_requests: int = 40,
        known_ids: Container[int] = (),
    ) -> list[BulkItemResult]:
        """One result per input client, in input order.

        `known_ids`: the client ids the caller already holds (e.g. from its ledger). An answer
        that gives one of them, or one id twice, to a new record makes that record `id-unknown`
        (uncertain) instead of mapping it: see `map_bulk_response`.
        `on_chunk` sees each chunk's results as soon as they are final (checkpoint there); if
        an error stops a chunk midway, its settled part is passed first, then the error raised.
        Any `KayseError` raised here carries `settled`: every result confirmed before it.
        """
        return _collect(self.iter_upsert_clients(items, chunk_size, max_split_requests, known_ids), on_chunk)

    def upsert_cases(
        self,
        items: Sequence[Mapping[str, Any]],
        chunk_size: int = 100,
        on_chunk: OnChunk | None = None,
        max_split_requests: int = 40,
        known_ids: Container[int] = (),
    ) -> list[BulkItemResult]:
        """One result per input case, in input order; `on_chunk` and `known_ids` as for `upsert_clients`."""
        return _collect(self.iter_upsert_cases(items, chunk_size, max_split_requests, known_ids), on_chunk)

    # ---- the one way out ------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        creates: bool = False,
        items: int | None = None,
    ) -> Any:
        """Send one API call with pacing and retries; return the parsed JSON body (or {}).

        `path` is relative to the base URL ("/clients/bulk"). `creates` marks a call that may
        create records: once sent, it is never resent, and a lost answer raises
        `OutcomeUnknown`. `items` is only logged (how many records the body carries).

        Three layers, as httpx splits `send`: `_send_once` sends and says whether a failed
        attempt may have reached the server, `_send_with_retries` retries what is safe and
        waits out 429s, `_status_error` turns a final refusal into its typed error.
        """
        method = method.upper()
        call = _Call(method, self._base_path + path, self.base_url + path, json, params, creates, items)
        response, attempts = self._send_with_retries(call)
        if 200 <= response.status_code < 300:
            return self._success_body(response, call.method, call.shown, call.creates)
        raise self._status_error(response, call, attempts)

    def _send_once(self, call: _Call) -> requests.Response | _NoAnswer:
        """One attempt, counted in `requests_sent` unless it certainly never left this machine.

        A create after an idle spell goes on a fresh connection (see
        IDLE_BEFORE_FRESH_CONNECTION). A transport failure comes back as `_NoAnswer`, never as
        the exception itself: that holds the request, headers (and so the key) included.
        """
        if call.creates:
            self._drop_idle_connections()
        deadline = time.monotonic() + self.request_deadline
        connect_timeout, read_timeout = self.timeout
        try:
            response = self._session.request(
                call.method,
                call.url,
                json=call.json,
                params=call.params,
                headers={"X-API-KEY": self._key.reveal(), "Accept": "application/json"},
                timeout=(connect_timeout, min(read_timeout, self.request_deadline)),
                allow_redirects=False,
                stream=True,  # the body is read by `_read_answer`, within the deadline and the size cap
            )
        except requests.RequestException as error:
            sent = not _never_sent(error)
            if sent:
                self.requests_sent += 1
            return _NoAnswer(sent=sent, reason=self._redact(f"{type(error).__name__}: {error}"))
        self.requests_sent += 1
        try:
            self._read_answer(response, deadline, read_timeout)
        except (_AnswerAborted, requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
            response.close()  # never reuse a connection left in the middle of an answer
            if not isinstance(error, _AnswerAborted) and time.monotonic() >= deadline - 0.05:
                error = _AnswerAborted(f"the answer took longer than {self.request_deadline:g}s")
            return _NoAnswer(sent=True, reason=self._redact(f"{type(error).__name__}: {error}"))
        self._last_exchange = time.monotonic()
        self._observe(response)
        log.debug(
            "%s %s → %s (items=%s, remaining=%s)",
            call.method,
            call.shown,
            response.status_code,
            call.items if call.items is not None else "-",
            self.rate_limit.remaining if self.rate_limit else "?",
        )
        return response

    def _send_with_retries(self, call: _Call) -> tuple[requests.Response, _Attempts]:
        """Send until the answer is final, pacing on the rate-limit headers before each attempt.

        Transport failures and 5xx are retried with backoff (at most `max_retries` together),
        429s waited out (at most `max_rate_limit_waits`). Returns the last response: a 2xx, a
        refusal, or a 429/5xx whose budget is spent. Raises when no answer came at all.
        """
        attempts = _Attempts()
        while True:
            self._wait_for_window(call.method, call.shown)
            outcome = self._send_once(call)
            if isinstance(outcome, _NoAnswer):
                self._retry_or_raise(call, outcome, attempts)
                continue
            status = outcome.status_code
            if status == 429 and attempts.rate_limit_waits < self.max_rate_limit_waits:
                attempts.rate_limit_waits += 1
                self._wait_after_429(call.method, call.shown, attempts.rate_limit_waits)
                continue
            if 500 <= status < 600 and attempts.transient_retries < self.max_retries:
                attempts.transient_retries += 1
                self._backoff(attempts.transient_retries, f"{call.method} {call.shown} → {status}")
                continue
            return outcome, attempts

    def _retry_or_raise(self, call: _Call, lost: _NoAnswer, attempts: _Attempts) -> None:
        """After an attempt without an answer: back off for another try, or raise.

        A create that may have reached the server is never resent (`OutcomeUnknown`); anything
        else is retried while the budget lasts, then ends in `TransportError`.
        """
        if lost.sent and call.creates:
            log.warning(
                "%s %s: answer lost after sending a create (%s)", call.method, call.shown, lost.reason
            )
            raise OutcomeUnknown(
                "the request was sent but its answer was lost; it is not resent because it creates records",
                method=call.method,
                path=call.shown,
            )
        if attempts.transient_retries < self.max_retries:
            attempts.transient_retries += 1
            self._backoff(attempts.transient_retries, f"{call.method} {call.shown}: {lost.reason}")
            return
        raise TransportError(
            f"no answer after {attempts.transient_retries + 1} attempts ({lost.reason})",
            method=call.method,
            path=call.shown,
            maybe_processed=lost.sent,
        )

    def _status_error(self, response: requests.Response, call: _Call, attempts: _Attempts) -> KayseError:
        """The typed error for a final answer that is not a 2xx (the API's body fields kept)."""
        status = response.status_code
        body = self._error_body(response)
        error_code, api_message = _error_fields(body)
        fields: dict[str, Any] = {
            "method": call.method,
            "path": call.shown,
            "status": status,
            "error": error_code,
            "api_message": api_message,
        }
        if status == 429:
            now = self._clock()
            left = self.rate_limit.seconds_until_reset(now) if self.rate_limit else None
            reset_at = now + left if left is not None else None  # capped like every wait
            return RateLimited(
                f"still rate limited after {attempts.rate_limit_waits} waits", reset_at=reset_at, **fields
            )
        if 500 <= status < 600:
            return ServerError(f"server error after {attempts.transient_retries + 1} attempts", **fields)
        if status in (401, 403):
            return AuthError(
                "the API key was refused" if status == 401 else "the API key may not do this", **fields
            )
        if status == 400:
            return BadRequest("the API refused the request as invalid", body=body, **fields)
        if status == 404:
            return NotFound("not found", body=body, **fields)
        if 400 <= status < 500:
            return RequestRejected("the API refused the request", body=body, **fields)
        hint = "is the base URL right (…/v1, https)?" if 300 <= status < 400 else None
        return KayseError("unexpected answer", hint=hint, **fields)

    def wait_for_window(self) -> bool:
        """Wait now if this hour's quota is spent, so that the next request goes out at once.
        True when it waited.

        For a caller whose decision depends on the clock or on fresh data (quiet hours and
        opt-outs for messages): wait first, then check again, then send — never decide, wait
        an hour, and send on the old decision."""
        state = self.rate_limit
        if state is None or not state.window_spent(self._clock()):
            return False
        self._wait_for_window("", "(next request)")
        return True

    # ---- internals ------------------------------------------------------------------

    def _read_answer(self, response: requests.Response, deadline: float, read_timeout: float) -> None:
        """Read the whole body into `response`, decoded, in chunks: stop past `deadline` or
        beyond `max_answer_bytes`. Each read waits at most until the deadline, so a server that
        drips a byte at a time cannot hold the run (or its ledger lock) for ever."""
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _AnswerAborted(f"the answer took longer than {self.request_deadline:g}s")
            _limit_next_read(raw, min(left, read_timeout))
            chunk = raw.read1(_READ_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > self.max_answer_bytes:
                raise _AnswerAborted(
                    f"the answer is larger than {self.max_answer_bytes} bytes (decoded); not read further"
                )
            chunks.append(chunk)
        response._content = b"".join(chunks)
        response._content_consumed = True  # type: ignore[attr-defined]
        response.close()  # hands the connection back to the pool

    def _redact(self, text: str) -> str:
        """`text` without the key, nor a piece of it at either end (a text the server cut)."""
        return redact_key(text, self._key.reveal())

    def _redact_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._redact(value)
        if isinstance(value, list):
            return [self._redact_value(item) for item in value]
        if isinstance(value, dict):
            return {self._redact(str(k)): self._redact_value(v) for k, v in value.items()}
        return value

    def _drop_idle_connections(self) -> None:
        idle_since = self._last_exchange
        if idle_since is not None and time.monotonic() - idle_since > IDLE_BEFORE_FRESH_CONNECTION:
            for adapter in self._session.adapters.values():
                adapter.close()  # pools are rebuilt on the next request

    def _observe(self, response: requests.Response) -> None:
        state = parse_rate_limit(response.headers, self._clock())
        if state is not None:
            self.rate_limit = state

    def _success_body(self, response: requests.Response, method: str, shown: str, creates: bool) -> Any:
        """The parsed 2xx body with the key redacted from every string in it: a `failed[]`
        message quoting the key would otherwise reach failed.csv and load.json."""
        if not response.content:
            return {}
        try:
            return self._redact_value(response.json())
        except ValueError:
            summary = "the API answered with something that is not JSON"
            if creates:
                raise OutcomeUnknown(summary, method=method, path=shown) from None
            raise KayseError(summary, method=method, path=shown, status=response.status_code) from None

    def _error_body(self, response: requests.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            return self._redact(response.text)[:ERROR_BODY_MAX_CHARS]  # redacted before the cut
        return self._redact_value(body)

    def _wait(
        self, seconds: float, reason: str, *, rate_limit: bool, method: str = "", shown: str = ""
    ) -> None:
        if rate_limit and self.max_wait is not None and seconds > self.max_wait:
            reset_at = self._clock() + seconds  # capped: a lying header is not repeated
            raise WaitTooLong(
                f"the rate-limit window resets in {seconds:.0f}s, more than --max-wait {self.max_wait:g}s",
                method=method,
                path=shown,
                wait_seconds=seconds,
                reset_at=reset_at,
            )
        log.info("waiting %.2fs: %s", seconds, reason)
        if self.on_wait is not None:
            self.on_wait(seconds, reason)
        if seconds > 0:
            self._sleep(seconds)

    def _wait_for_window(self, method: str, shown: str) -> None:
        state = self.rate_limit
        now = self._clock()
        if state is None or not state.window_spent(now):
            return
        seconds = self._window_wait(state, now)
        self._wait(
            seconds,
            f"rate limit: no requests left ({state.limit or '?'} per window), waiting for the reset",
            rate_limit=True,
            method=method,
            shown=shown,
        )
        # The window has reset: the old count no longer applies until the next answer.
        self.rate_limit = RateLimitState(state.limit, None, None, self._clock())

    def _window_wait(self, state: RateLimitState, now: float) -> float:
        """Seconds to wait for the window's reset: capped at what an hourly window can need."""
        if state.reset_is_implausible(now):
            log.warning(
                "the rate-limit reset header points %.0fs ahead, more than an hourly window can need; "
                "waiting at most %.0fs",
                (state.reset_at or now) - now,
                LONGEST_WINDOW_WAIT,
            )
        return (state.seconds_until_reset(now) or 0.0) + RESET_MARGIN_SECONDS

    def _wait_after_429(self, method: str, shown: str, attempt: int) -> None:
        """Wait out a 429: until the reset when the window is spent, else a short backoff.

        A 429 whose headers still show quota left is not the hourly window (a burst limit,
        or a transient refusal): waiting up to an hour for it would stall the load.
        """
        state = self.rate_limit
        now = self._clock()
        if state is not None and state.window_spent(now):
            seconds = self._window_wait(state, now)
            reason = "rate limited (429), waiting for the window to reset"
        else:
            # Quota left, no headers, or a reset already past (clock skew): back off instead.
            seconds = backoff_delay(attempt, self.backoff_base * 2, self.backoff_cap * 4, self._rng)
            reason = "rate limited (429) although quota seems left, backing off"
        self._wait(seconds, reason, rate_limit=True, method=method, shown=shown)
        if state is not None:
            self.rate_limit = RateLimitState(state.limit, None, None, self._clock())

    def _backoff(self, retry_number: int, reason: str) -> None:
        seconds = backoff_delay(retry_number, self.backoff_base, self.backoff_cap, self._rng)
        log.info("retry %d/%d: %s", retry_number, self.max_retries, reason)
        self._wait(seconds, f"retrying after {reason}", rate_limit=False)


def redact_key(text: str, key: str) -> str:
    """`text` with every copy of `key` replaced, and a piece of the key of at least
    SHORTEST_KEY_FRAGMENT characters at the start or end of `text` too: a server that cut its
    message mid-key leaves half of it there."""
    if len(key) <= SHORTEST_KEY_FRAGMENT:
        return text.replace(key, REDACTED) if key and key in text else text
    if key in text:
        text = text.replace(key, REDACTED)
    head, tail = key[:SHORTEST_KEY_FRAGMENT], key[-SHORTEST_KEY_FRAGMENT:]
    start = text.find(head, max(0, len(text) - len(key) + 1))
    while start != -1:  # the text ends in the key's first characters
        if key.startswith(text[start:]):
            text = text[:start] + REDACTED
            break
        start = text.find(head, start + 1)
    end = text.find(tail)
    while end != -1 and end + SHORTEST_KEY_FRAGMENT < len(key):  # it starts with the key's last ones
        if key.endswith(text[: end + SHORTEST_KEY_FRAGMENT]):
            text = REDACTED + text[end + SHORTEST_KEY_FRAGMENT :]
            break
        end = text.find(tail, end + 1)
    return text


def _limit_next_read(raw: Any, seconds: float) -> None:
    """Let the next socket read wait at most `seconds` (best effort: urllib3's connection)."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(max(seconds, 0.001))


def _error_fields(body: Any) -> tuple[str | None, str | None]:
    if isinstance(body, dict):
        error = body.get("error")
        message = body.get("message")
        return (
            str(error) if error is not None else None,
            str(message) if message is not None else None,
        )
    if isinstance(body, str) and body.strip():
        return None, body.strip()[:200]
    return None, None


def _collect(chunks: Iterator[list[BulkItemResult]], on_chunk: OnChunk | None) -> list[BulkItemResult]:
    """Gather every chunk; on an error, attach all results confirmed so far to it as `settled`."""
    results: list[BulkItemResult] = []
    try:
        for chunk in chunks:
            if on_chunk is not None:
                on_chunk(chunk)
            results.extend(chunk)
    except KayseError as error:
        error.settled = tuple(results)
        raise
    return results
