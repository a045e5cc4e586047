"""Bulk upserts that return one result per input item, whichever way the API reports failures.

The docs disagree on bulk failures: the current docs answer 200 with `failed[]` (partial
success), the older ones refuse the whole batch with 400 on the first bad item (atomic).
This module handles both: it maps `failed[]` back to input items, and when a batch is
refused as a whole it splits it in halves, recursively, to isolate the bad items and still
send the good ones. Splitting costs requests (every one shows in `requests_sent`), so it is
capped per chunk by `max_split_requests`; items not isolated within the cap are reported as
`not-isolated` and were not sent.

It never resends a batch that may have created records: an `OutcomeUnknown` is re-raised
with the input indices that were in flight, the results already settled in that chunk and
the indices never sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.kayse.errors import BatchTooLarge, KayseError, OutcomeUnknown, RequestRejected

log = logging.getLogger("pipeline.kayse")

SPLITTABLE_STATUSES = frozenset({400, 413, 422})
"""Whole-batch refusals worth splitting: invalid item, payload too large, unprocessable."""


_CAP_NAMED = re.compile(
    r"(?:at most|no more than|up to|maximum(?: of)?|max(?:imum)?\.?|limit(?: of| is)?)\s*:?\s*(\d+)\s*"
    r"(?:items|records|entries|elements|objects|ids)"
    r"|(?:batch|bulk|request) size (?:limit |maximum )?(?:is |of )?(?:at most )?(\d+)",
    re.IGNORECASE,
)
_ITEM_POSITION = re.compile(r"\[\d+\]")


def as_batch_too_large(refusal: RequestRejected, items: int) -> BatchTooLarge | None:
    """The refusal as a `BatchTooLarge` when it is about the size of a batch of `items`, else None.

    A 413 always is; a 400 is when its text names a cap below `items` ("at most 150 items per
    request") and points at no item ("clients[3]: ..." is one bad record, not the size).
    """
    if isinstance(refusal, BatchTooLarge):
        return refusal
    text = " ".join(part for part in (refusal.error, refusal.api_message) if part)
    match = None if _ITEM_POSITION.search(text) else _CAP_NAMED.search(text)
    cap = int(match.group(1) or match.group(2)) if match else None
    if cap is not None and not 1 <= cap < items:
        cap = None
    if refusal.status != 413 and cap is None:
        return None
    summary = f"the account refuses bulk requests of {items} items" + (
        f" (at most {cap})" if cap is not None else ""
    )
    too_large = BatchTooLarge(
        summary,
        cap=cap,
        items=items,
        body=refusal.body,
        method=refusal.method,
        path=refusal.path,
        status=refusal.status,
        error=refusal.error,
        api_message=refusal.api_message,
    )
    too_large.settled = refusal.settled
    return too_large


@dataclass(frozen=True)
class BulkItemResult:
    """What happened to one input item of a bulk upsert.

    `index` is the item's position in the caller's input. `ok` with `id` means the record
    exists in Kayse with that id (`action` tells created or updated). Not ok: `error` is a
    short code (the API's `error`, or `not-isolated` / `id-unknown` from this client) and
    `message` the API's explanation. `id-unknown` means the API accepted the item but its
    answer did not say which id it got: treat it like an uncertain create.
    """

    index: int
    ok: bool
    id: int | None
    error: str | None = None
    message: str | None = None
    action: Literal["created", "updated"] | None = None


OnChunk = Callable[[list[BulkItemResult]], None]
SendBatch = Callable[[Sequence[Mapping[str, Any]]], Any]


def _item_id(item: Mapping[str, Any]) -> int | None:
    value = item.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _failure_positions(
    batch: Sequence[Mapping[str, Any]], failed: Sequence[Any]
) -> dict[int, Mapping[str, Any]]:
    """Map each `failed[]` entry to a position in the batch: by index, else id, else unique external id."""
    positions: dict[int, Mapping[str, Any]] = {}
    for entry in failed:
        if not isinstance(entry, Mapping):
            continue
        position = _as_int(entry.get("index"))
        if position is None or not 0 <= position < len(batch):
            position = None
            entry_id = _as_int(entry.get("id"))
            if entry_id is not None:
                matches = [p for p, item in enumerate(batch) if _item_id(item) == entry_id]
                position = matches[0] if len(matches) == 1 else None
            external = entry.get("external_source_id")
            if position is None and external is not None:
                matches = [p for p, item in enumerate(batch) if item.get("external_source_id") == external]
                position = matches[0] if len(matches) == 1 else None
        if position is None:
            log.warning("bulk answer: a failed[] entry matches no item of the batch (%s)", entry.get("error"))
            continue
        positions[position] = entry
    return positions


def _records_by_position(
    batch: Sequence[Mapping[str, Any]],
    records: Sequence[Any],
    successful: list[int],
    successful_ids: Sequence[Any],
) -> dict[int, int | None]:
    """The Kayse id of every successful position, read from the echoed records when they align."""

    def consistent(position: int, record: Any) -> bool:
        if not isinstance(record, Mapping):
            return False
        item = batch[position]
        if _item_id(item) is not None and _as_int(record.get("id")) not in (None, _item_id(item)):
            return False
        sent_ext, got_ext = item.get("external_source_id"), record.get("external_source_id")
        return sent_ext is None or got_ext is None or sent_ext == got_ext

    if len(records) == len(batch) and all(consistent(p, records[p]) for p in successful):
        return {p: _as_int(records[p].get("id")) for p in successful}
    if len(records) == len(successful) and all(
        consistent(p, r) for p, r in zip(successful, records, strict=True)
    ):
        return {p: _as_int(r.get("id")) for p, r in zip(successful, records, strict=True)}
    # Fall back to matching on a unique external_source_id.
    by_external: dict[Any, list[Mapping[str, Any]]] = {}
    for record in records:
        if isinstance(record, Mapping) and record.get("external_source_id") is not None:
            by_external.setdefault(record["external_source_id"], []).append(record)
    ids: dict[int, int | None] = {}
    for position in successful:
        external = batch[position].get("external_source_id")
        candidates = by_external.get(external, []) if external is not None else []
        ids[position] = _as_int(candidates[0].get("id")) if len(candidates) == 1 else None
    if any(value is None for value in ids.values()) and len(successful_ids) == len(successful):
        ids = {p: _as_int(value) for p, value in zip(successful, successful_ids, strict=True)}
    return ids


def map_bulk_response(
    indices: Sequence[int], batch: Sequence[Mapping[str, Any]], response: Any, entity_key: str
) -> list[BulkItemResult]:
    """Turn a 200 bulk answer into one result per sent item (input indices given by `indices`).

    Reads `failed[]` (its shape is undocumented; assumed `index`, `id`, `external_source_id`, `error`, `message`) and the
    echoed records under `entity_key` (or `successful_ids`). An update keeps the id it was
    sent with; a create whose id cannot be found in the answer is reported as `id-unknown`.
    """
    body = response if isinstance(response, Mapping) else {}
    failed = body.get("failed") or []
    records = body.get(entity_key) or []
    successful_ids = body.get("successful_ids") or []
    failures = _failure_positions(batch, failed if isinstance(failed, list) else [])
    successful = [p for p in range(len(batch)) if p not in failures]
    ids = _records_by_position(
        batch,
        records if isinstance(records, list) else [],
        successful,
        successful_ids if isinstance(successful_ids, list) else [],
    )
    results: list[BulkItemResult] = []
    for position, index in enumerate(indices):
        item = batch[position]
        sent_id = _item_id(item)
        action: Literal["created", "updated"] = "updated" if sent_id is not None else "created"
        if position in failures:
            entry = failures[position]
            results.append(
                BulkItemResult(
                    index=index,
                    ok=False,
                    id=sent_id,
                    error=str(entry.get("error") or "failed"),
                    message=str(entry["message"]) if entry.get("message") is not None else None,
                )
            )
            continue
        found = ids.get(position)
        record_id = found if found is not None else sent_id
        if record_id is None:
            results.append(
                BulkItemResult(
                    index=index,
                    ok=False,
                    id=None,
                    error="id-unknown",
                    message="the API accepted the item but its answer did not say which id it got",
                )
            )
        else:
            results.append(BulkItemResult(index=index, ok=True, id=record_id, action=action))
    return results


_BATCH_POSITION = re.compile(r"^[a-z_]+\[\d+\]:\s*")


def _without_batch_position(message: str | None) -> str | None:
    """Drop a leading "clients[0]: " from a one-item refusal: that position is the sub-batch's, not the input's."""
    return _BATCH_POSITION.sub("", message) if message else message


class _ChunkSettler:
    """Sends one chunk, splitting it on whole-batch refusals, and collects a result per item."""

    def __init__(
        self,
        send: SendBatch,
        entity_key: str,
        items: Sequence[Mapping[str, Any]],
        chunk: list[int],
        max_split_requests: int,
    ) -> None:
        self.send = send
        self.entity_key = entity_key
        self.items = items
        self.chunk = chunk
        self.split_budget = max_split_requests
        self.requests = 0
        self.settled: dict[int, BulkItemResult] = {}

    def run(self) -> list[BulkItemResult]:
        self._resolve(self.chunk, None, known_refused=False)
        return self.settled_so_far()

    def settled_so_far(self) -> list[BulkItemResult]:
        return [self.settled[index] for index in self.chunk if index in self.settled]

    def _refuse_all(self, indices: list[int], refusal: RequestRejected) -> None:
        for index in indices:
            self.settled[index] = BulkItemResult(
                index=index,
                ok=False,
                id=_item_id(self.items[index]),
                error="not-isolated",
                message=f"batch refused and not split further (split budget spent): "
                f"{refusal.api_message or refusal.error or refusal.status}",
            )

    def _send(self, indices: list[int]) -> RequestRejected | None:
        """Send these items; settle them on success and return None, or return the refusal."""
        batch = [self.items[i] for i in indices]
        self.requests += 1
        try:
            response = self.send(batch)
        except OutcomeUnknown as lost:
            not_sent = tuple(i for i in self.chunk if i not in self.settled and i not in indices)
            raise OutcomeUnknown(
                lost.summary,
                method=lost.method,
                path=lost.path,
                in_flight=tuple(indices),
                settled=tuple(self.settled[i] for i in self.chunk if i in self.settled),
                not_sent=not_sent,
            ) from None
        except RequestRejected as refusal:
            too_large = as_batch_too_large(refusal, len(batch))
            if too_large is not None:
                # No item is bad: the caller resends in batches that fit (see BatchTooLarge).
                too_large.settled = tuple(self.settled[i] for i in self.chunk if i in self.settled)
                raise too_large from None
            if refusal.status not in SPLITTABLE_STATUSES:
                raise
            return refusal
        for result in map_bulk_response(indices, batch, response, self.entity_key):
            self.settled[result.index] = result
        return None

    def _resolve(self, indices: list[int], ancestor: RequestRejected | None, known_refused: bool) -> bool:
        """Settle `indices`; return True when they were accepted in one request.

        `ancestor` is the nearest enclosing batch's refusal (None for the chunk itself).
        `known_refused` is set when this group must contain a bad item (its parent was
        refused and its sibling accepted), so sending it whole would waste a request.
        """
        refusal = ancestor
        if not (known_refused and len(indices) > 1):
            if ancestor is not None:
                if self.split_budget <= 0:
                    self._refuse_all(indices, ancestor)
                    return False
                self.split_budget -= 1
            refusal = self._send(indices)
            if refusal is None:
                return True
            if len(indices) == 1:
                index = indices[0]
                self.settled[index] = BulkItemResult(
                    index=index,
                    ok=False,
                    id=_item_id(self.items[index]),
                    error=refusal.error or f"http-{refusal.status}",
                    message=_without_batch_position(refusal.api_message),
                )
                return False
        assert refusal is not None
        middle = len(indices) // 2
        left, right = indices[:middle], indices[middle:]
        log.info("bulk: batch of %d refused, splitting into %d + %d", len(indices), len(left), len(right))
        left_accepted = self._resolve(left, refusal, known_refused=False)
        self._resolve(right, refusal, known_refused=left_accepted)
        return False


def iter_bulk_upsert(
    send: SendBatch,
    entity_key: str,
    items: Sequence[Mapping[str, Any]],
    chunk_size: int = 100,
    max_split_requests: int = 40,
) -> Iterator[list[BulkItemResult]]:
    """Send `items` in chunks of `chunk_size`; yield each chunk's results (input order) as it completes.

    `send(batch)` performs one bulk request (e.g. `KayseClient.clients.bulk_upsert`).
    Every yielded result is final. When an error stops a chunk midway (possible while a
    refused batch is being split), the chunk's already-settled results are yielded first,
    as a shorter list, and the error is raised on the next step. So a caller that
    checkpoints after every yielded list never loses a confirmed id.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    total = len(items)
    for start in range(0, total, chunk_size):
        chunk = list(range(start, min(start + chunk_size, total)))
        settler = _ChunkSettler(send, entity_key, items, chunk, max_split_requests)
        try:
            results = settler.run()
        except OutcomeUnknown as lost:
            if lost.settled:
                yield list(lost.settled)  # let the caller record what is known before the error
            later = tuple(range(chunk[-1] + 1, total))
            raise OutcomeUnknown(
                lost.summary,
                method=lost.method,
                path=lost.path,
                in_flight=lost.in_flight,
                settled=lost.settled,
                not_sent=lost.not_sent + later,
            ) from None
        except KayseError:
            # Stopped mid-split (rate limit, max_wait, server, key): sub-batches already
            # accepted created records, and their ids must reach the caller's ledger.
            partial = settler.settled_so_far()
            if partial:
                yield partial
            raise
        if settler.requests > 1:
            log.info(
                "bulk: chunk of %d items took %d requests to isolate %d refused items",
                len(chunk),
                settler.requests,
                sum(1 for r in results if not r.ok),
            )
        yield results
