"""Typed errors of the Kayse client, split by what a caller may safely do next.

Three kinds, by what failed: "the server said no" (AuthError, BadRequest,
NotFound, RequestRejected: fix the request, never resend as is), "try again later"
(RateLimited, ServerError), and "we do not know what happened" (TransportError with
`maybe_processed`, OutcomeUnknown for creates). Every error says in `retryable` whether
sending the same call again is safe — transient or terminal, as dlt marks its errors — so a
caller decides without knowing the hierarchy. They derive from `Exception` only: what a
failure means for a process (an exit code, a message on a terminal) is the caller's business.

Never put the API key into a message, a repr or an attribute of these exceptions: the
client redacts it from API bodies before building them.
"""

from __future__ import annotations

from typing import Any


class KayseError(Exception):
    """Anything the Kayse API (or the way to it) refused or failed to do.

    `method` and `path` name the request ("POST /v1/clients/bulk"); `status` is the HTTP
    status (None when no response came); `error` and `api_message` are the API's
    `{"error", "message"}` body fields when present. `message` is the whole one-line text and
    `hint` what a person can do about it (None when there is nothing to suggest).
    """

    retryable: bool = False
    """True when sending the same call again later is safe and may succeed."""

    default_hint: str | None = None
    settled: tuple[Any, ...] = ()
    """Set by the bulk helpers when they raise: the `BulkItemResult`s confirmed before the error
    (records already created or updated). Record them before anything else."""

    def __init__(
        self,
        summary: str,
        *,
        method: str = "",
        path: str = "",
        status: int | None = None,
        error: str | None = None,
        api_message: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.error = error
        self.api_message = api_message
        self.summary = summary
        self.message = self._compose()
        self.hint = hint or self.default_hint
        super().__init__(self.message)

    def _compose(self) -> str:
        text = f"{self.method} {self.path}".strip()
        if self.status is not None:
            text += f" → {self.status}"
        text = f"{text}: {self.summary}" if text else self.summary
        detail = "; ".join(part for part in (self.error, self.api_message) if part)
        if detail:
            text += f" ({detail})"
        return text

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(KayseError, ValueError):
    """The client was given a key or base URL it cannot use; no request was sent."""


class AuthError(KayseError):
    """401/403: the key was refused. Retrying cannot help."""

    default_hint = (
        "check the key in KAYSE_API_KEY or --api-key-file (Company Settings → API Keys); "
        "it may be wrong or disabled"
    )


class RequestRejected(KayseError):
    """A 4xx other than 401/403/429: the request itself is wrong and must not be resent as is."""

    def __init__(self, summary: str, *, body: Any = None, **kwargs: Any) -> None:
        self.body = body
        super().__init__(summary, **kwargs)


class BadRequest(RequestRejected):
    """400: the API found the request invalid. `body` is the parsed JSON body (key redacted)."""


class NotFound(RequestRejected):
    """404: no such record (or an endpoint this Kayse does not offer)."""


class BatchTooLarge(RequestRejected):
    """The account refused a bulk request for its size (a 413, or a 400 whose message names a
    cap): nothing of it was applied. `cap` is the largest size the refusal named (None when it
    named none) and `items` the size refused, so a caller can resend in smaller batches and
    plan with `cap` next time. Never split to isolate a bad item: no item is bad."""

    def __init__(self, summary: str, *, cap: int | None, items: int, **kwargs: Any) -> None:
        self.cap = cap
        self.items = items
        super().__init__(summary, **kwargs)


class RateLimited(KayseError):
    """429 persisted after the bounded number of waits, or pacing could not proceed."""

    retryable = True
    default_hint = "the hourly quota (500 requests per key) is spent; rerun later and the load continues"

    def __init__(self, summary: str, *, reset_at: float | None = None, **kwargs: Any) -> None:
        self.reset_at = reset_at
        super().__init__(summary, **kwargs)


class WaitTooLong(RateLimited):
    """Waiting for the rate-limit window would exceed `max_wait`: stop early instead of sleeping."""

    default_hint = "stopped early; rerun later (or with a larger --max-wait) and the load continues"

    def __init__(self, summary: str, *, wait_seconds: float, **kwargs: Any) -> None:
        self.wait_seconds = wait_seconds
        super().__init__(summary, **kwargs)


class ServerError(KayseError):
    """5xx persisted after the bounded retries."""

    retryable = True
    default_hint = "Kayse reported a server problem; try again later"


class TransportError(KayseError):
    """No usable response: refused connection, DNS failure, timeout, dropped connection.

    `maybe_processed` is False when the request certainly never reached the server
    (connection refused, DNS, connect timeout) and True when it was sent and may have been
    applied (read timeout, connection dropped after sending). Either way a retry is safe:
    the client raises this only for calls that create nothing (a create whose answer was lost
    is an `OutcomeUnknown`) or that certainly never reached the server.
    """

    retryable = True
    default_hint = "check KAYSE_BASE_URL and the network; nothing is lost, rerun to continue"

    def __init__(self, summary: str, *, maybe_processed: bool, **kwargs: Any) -> None:
        self.maybe_processed = maybe_processed
        super().__init__(summary, **kwargs)


class OutcomeUnknown(TransportError):
    """A request that creates records was sent and its answer was lost. It is never resent.

    The records may or may not exist now, and the API offers no lookup by external id, so a
    blind resend could create duplicates: not retryable. Bulk helpers fill `in_flight` (input
    indices of the items in the lost request), `settled` (results already known for the same
    chunk) and `not_sent` (input indices never sent).
    """

    retryable = False
    default_hint = (
        "the answer to a create was lost; those records may exist in Kayse. "
        "Check them before sending them again"
    )

    def __init__(
        self,
        summary: str,
        *,
        in_flight: tuple[int, ...] = (),
        settled: tuple[Any, ...] = (),
        not_sent: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> None:
        self.in_flight = in_flight
        self.settled = settled
        self.not_sent = not_sent
        kwargs["maybe_processed"] = True
        super().__init__(summary, **kwargs)
