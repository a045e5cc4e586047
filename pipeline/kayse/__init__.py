"""The Kayse API client: `KayseClient` plus its typed errors and result types.

Import from here, not from the submodules. This package imports nothing else of the pipeline
(it knows nothing of frames, mappings, the ledger or exit codes) and shares no code with
`pipeline.sandbox`, so a misreading of the API cannot hide in both.
"""

from pipeline.kayse.bulk import BulkItemResult, as_batch_too_large, map_bulk_response
from pipeline.kayse.client import KayseClient, key_fingerprint
from pipeline.kayse.errors import (
    AuthError,
    BadRequest,
    BatchTooLarge,
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
from pipeline.kayse.pacing import RateLimitState
from pipeline.kayse.resources import BulkDeleteResult

__all__ = [
    "AuthError",
    "BadRequest",
    "BatchTooLarge",
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
