"""Pins the client's public API: a rename or a changed default is a decision, not an accident."""

from __future__ import annotations

import inspect

import pipeline.kayse as kayse_package
from pipeline.kayse import KayseClient


def test_exports() -> None:
    assert sorted(kayse_package.__all__) == [
        "AuthError",
        "BadRequest",
        "BatchTooLarge",  # an account's size cap, learned by the loader (issue 9)
        "BulkDeleteResult",
        "BulkItemResult",
        "ConfigurationError",
        "KayseClient",
        "KayseError",
        "NotFound",
        "OutcomeUnknown",
        "RateLimitState",
        "RateLimited",
        "RequestRejected",
        "ServerError",
        "TransportError",
        "WaitTooLong",
        "as_batch_too_large",
        "key_fingerprint",
        "map_bulk_response",
    ]


def test_constructor_signature() -> None:
    parameters = inspect.signature(KayseClient.__init__).parameters
    assert list(parameters)[:3] == ["self", "base_url", "api_key"]
    assert parameters["timeout"].default == (5, 60)
    assert parameters["max_wait"].default is None
    assert parameters["max_retries"].default == 5
    assert all(
        p.kind is p.KEYWORD_ONLY
        for name, p in parameters.items()
        if name not in ("self", "base_url", "api_key")
    )


def test_bulk_helper_signatures() -> None:
    for name in ("upsert_clients", "upsert_cases"):
        parameters = inspect.signature(getattr(KayseClient, name)).parameters
        assert list(parameters) == [
            "self",
            "items",
            "chunk_size",
            "on_chunk",
            "max_split_requests",
            "known_ids",
        ]
        assert parameters["chunk_size"].default == 100


def test_error_hierarchy() -> None:
    from pipeline import kayse

    for name in kayse.__all__:
        value = getattr(kayse, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, kayse.KayseError), name
    # The client's errors are its own: no exit codes, no pipeline vocabulary in their ancestry.
    assert all(base.__module__ in ("builtins", "pipeline.kayse.errors") for base in kayse.KayseError.__mro__)
    assert not hasattr(kayse.KayseError("x", method="GET", path="/v1/x"), "exit_code")
    assert issubclass(kayse.OutcomeUnknown, kayse.TransportError)
    assert issubclass(kayse.WaitTooLong, kayse.RateLimited)
    assert issubclass(kayse.BadRequest, kayse.RequestRejected)
    assert issubclass(kayse.NotFound, kayse.RequestRejected)
    assert issubclass(kayse.ConfigurationError, ValueError)


def test_every_error_says_whether_a_retry_is_safe() -> None:
    from pipeline import kayse

    retryable = {
        name: getattr(kayse, name).retryable
        for name in kayse.__all__
        if isinstance(getattr(kayse, name), type) and issubclass(getattr(kayse, name), kayse.KayseError)
    }
    assert retryable == {
        "AuthError": False,
        "BadRequest": False,
        "BatchTooLarge": False,  # the same batch is refused again: send smaller ones
        "ConfigurationError": False,
        "KayseError": False,
        "NotFound": False,
        "OutcomeUnknown": False,  # a create may have landed: a resend could duplicate it
        "RateLimited": True,
        "RequestRejected": False,
        "ServerError": True,
        "TransportError": True,
        "WaitTooLong": True,
    }
    lost = kayse.OutcomeUnknown("answer lost", method="POST", path="/v1/clients/bulk")
    assert lost.retryable is False and lost.maybe_processed is True
