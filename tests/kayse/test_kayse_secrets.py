"""The API key never shows: not in logs (DEBUG), exception texts or reprs, tracebacks, or the client's repr.

One run triggers every error kind the client has, then everything it produced is searched.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.kayse import (
    AuthError,
    BadRequest,
    KayseClient,
    KayseError,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    ServerError,
    TransportError,
    WaitTooLong,
    key_fingerprint,
)
from tests.kayse.helpers import MakeClient, client_record


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_key_never_appears_anywhere(
    make_client: MakeClient, sandbox: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = sandbox.api_key
    wrong_key = "wrong-key-SECRET-777"
    kayse = make_client(max_retries=1, max_rate_limit_waits=1)
    raised: list[BaseException] = []

    def expect(kind: type[KayseError], call: Callable[[], Any]) -> None:
        with pytest.raises(kind) as caught:
            call()
        raised.append(caught.value)

    expect(AuthError, lambda: make_client(api_key=wrong_key).clients.get(1))
    expect(BadRequest, lambda: kayse.clients.create(client_record(1, mobile="12")))
    expect(NotFound, lambda: kayse.clients.get(424242))
    sandbox.inject("error", "GET", "/metadata", count=5)
    expect(ServerError, lambda: kayse.metadata.case_types())
    sandbox.inject("ratelimit", "GET", "/metadata/objects", count=5)
    expect(RateLimited, lambda: kayse.metadata.objects())
    sandbox.inject("lost", "POST", "/clients/bulk")
    expect(OutcomeUnknown, lambda: kayse.upsert_clients([client_record(2)]))
    expect(
        TransportError,
        lambda: KayseClient(
            f"http://127.0.0.1:{_closed_port()}/v1", key, max_retries=1, backoff_base=0.01
        ).metadata.objects(),
    )
    sandbox.configure(rate_limit=1, rate_window=3600)
    patient = make_client(max_wait=1)
    patient.metadata.objects()
    expect(WaitTooLong, lambda: patient.metadata.objects())
    assert len(raised) == 8

    texts: list[str] = [repr(kayse), str(kayse), repr(vars(kayse)), kayse.target]
    for error in raised:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error)), repr(vars(error))]
    for record in caplog.records:
        texts += [record.getMessage(), repr(record.args), record.exc_text or ""]
    assert caplog.records, "the run should have logged something"
    for text in texts:
        assert key not in text
        assert wrong_key not in text
    assert key_fingerprint(key) in repr(kayse)
    assert kayse.target == f"{sandbox.base_url}#{key_fingerprint(key)}"


def test_fingerprint_is_stable_and_short() -> None:
    assert key_fingerprint("abc") == key_fingerprint("abc")
    assert key_fingerprint("abc") != key_fingerprint("abd")
    assert key_fingerprint("abc").startswith("sha256:") and len(key_fingerprint("abc")) == len("sha256:") + 12


def test_missing_key_or_bad_url_is_a_configuration_error() -> None:
    from pipeline.kayse import ConfigurationError

    with pytest.raises(ConfigurationError, match="no Kayse API key") as missing:
        KayseClient("https://public-api.kayse.ai/v1", "  ")
    assert missing.value.hint == "set KAYSE_API_KEY or pass --api-key-file"
    with pytest.raises(ConfigurationError, match="not an http"):
        KayseClient("public-api.kayse.ai/v1", "k")
    with pytest.raises(ConfigurationError, match="line breaks") as caught:
        KayseClient("https://public-api.kayse.ai/v1", "first-half\nsecond-half")
    assert "first-half" not in str(caught.value)
    # Surrounding whitespace (a key file's trailing newline) is fine.
    assert KayseClient("https://public-api.kayse.ai/v1", "key-123\n").key_fingerprint == key_fingerprint(
        "key-123"
    )
