"""Pins the client's public API: a rename or a changed default is a decision, not an accident."""

from __future__ import annotations

import inspect

import pipeline.kayse as kayse_package
from pipeline.kayse import KayseClient


def test_exports() -> None:
    assert sorted(kayse_package.__all__) == [
        "AuthError",
        "BadRequest",
        "BulkDeleteResult",
        "BulkItemResult",
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
        assert list(parameters) == ["self", "items", "chunk_size", "on_chunk", "max_split_requests"]
        assert parameters["chunk_size"].default == 100


def test_error_hierarchy() -> None:
    from pipeline.kayse import errors
    from pipeline.model import UserError

    assert issubclass(errors.KayseError, UserError)
    assert issubclass(errors.OutcomeUnknown, errors.TransportError)
    assert issubclass(errors.WaitTooLong, errors.RateLimited)
    assert issubclass(errors.BadRequest, errors.RequestRejected)
    assert issubclass(errors.NotFound, errors.RequestRejected)
