"""The Kayse API client: `KayseClient` plus its typed errors and result types.

Import from here, not from the submodules. This package knows nothing of frames, mappings
or the ledger, and shares no code with `pipeline.sandbox`.
"""

from pipeline.kayse.bulk import BulkItemResult, map_bulk_response
from pipeline.kayse.client import KayseClient, key_fingerprint
from pipeline.kayse.errors import (
    AuthError,
    BadRequest,
    KayseError,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    RequestRejected,
    ServerError,
    TransportError,
    WaitTooLong,
)
from pipeline.kayse.pacing import RateLimitState
from pipeline.kayse.resources import BulkDeleteResult

__all__ = [
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
