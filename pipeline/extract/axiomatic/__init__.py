"""The Axiomatic CRM reader: a room of the extract stage with its own small read-only HTTP client.

Why it exists: a firm leaving Axiomatic needs a faithful copy of its CRM (contacts, companies,
memberships, pipeline stages, leads, activities, tasks, optionally lead timelines) as CSV files
the mapping can read, taken with a read:crm key and never writing a byte back. It shares
nothing with the Kayse client; it imports only `pipeline.model` and its own modules.

Public API: `extract(base_url, api_key, entity_id, out_dir, ...) -> AxiomaticExtract`, and
`ReadOnlyClient` (GET is its only way out) for callers that want to read more.
"""

from pipeline.extract.axiomatic.core import DEFAULT_PAGE_SIZE, ExtractObserver, extract
from pipeline.extract.axiomatic.http import ReadOnlyClient, WriteRefused, key_fingerprint

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ExtractObserver",
    "ReadOnlyClient",
    "WriteRefused",
    "extract",
    "key_fingerprint",
]
