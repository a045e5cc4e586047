"""Bulk upserts that return one result per input item, whichever way the API reports failures.

The docs disagree on bulk failures: the current docs answer 200 with `failed[]` (partial
success), the older ones refuse the whole batch with 400 on the first bad item (atomic).
This module handles both: it maps `failed[]` back to input items, and when a batch is
refused as a whole it splits it in halves, recursively, to isolate the bad items and still
send the good ones. Splitting costs requests (every one shows in `requests_sent`), so it is
capped per chunk by `max_split_requests`; items not isolated within the cap are reported as
`not-isolated` and were not sent.

It checks what an answer claims before mapping an item to an id (see `map_bulk_response`):
a server that lies about ids must cost an uncertain record, never one Kayse record holding
two people's data. It never resends a batch that may have created records: an `OutcomeUnknown` is re-raised
with the input indices that were in flight, the results already settled in that chunk and
the indices never sent.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
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
    answer did not say which id it got, or said it in a way that cannot be trusted (an id
    given twice, another record's id, an impossible id, records in another order): treat it
    like an uncertain create.
    """

    index: int
    ok: bool
    id: int | None
    error: str | None = None
    message: str | None = None
    action: Literal["created", "updated"] | None = None


ID_UNKNOWN_MESSAGE = "the API accepted the item but its answer did not say which id it got"

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


LARGEST_ID = 2**53
"""Ids above this do not survive a JSON round trip through many parsers: not a real id."""

IDENTITY_FIELDS = ("external_source_id", "external_source", "first_name", "last_name", "case_number")
"""Fields an echoed record must share with the item it answers (compared trimmed, caseless)."""


def _valid_id(value: Any) -> int | None:
    """A claimed record id if it is a plausible one: a JSON integer in 1..2^53, else None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if 0 < value <= LARGEST_ID else None


def _same(sent: Any, echoed: Any) -> bool:
    if not isinstance(sent, str) or not isinstance(echoed, str):
        return True  # nothing comparable: no evidence either way
    return " ".join(sent.split()).casefold() == " ".join(echoed.split()).casefold()


def _matches_item(item: Mapping[str, Any], record: Any) -> bool:
    """True unless the echoed record visibly belongs to another item (another name, external id…)."""
    if not isinstance(record, Mapping):
        return False
    return all(_same(item.get(name), record.get(name)) for name in IDENTITY_FIELDS if name in record)


@dataclass(frozen=True)
class _Claim:
    """What the answer says about one successful position: the id it claims, or why it cannot be trusted."""

    id: Any = None
    untrusted: str | None = None


def _claims_by_external_id(
    batch: Sequence[Mapping[str, Any]], records: Sequence[Any], successful: list[int]
) -> dict[int, _Claim]:
    """The answer echoes external ids: match on them, never on position."""
    by_external: dict[Any, list[Mapping[str, Any]]] = {}
    for record in records:
        if isinstance(record, Mapping) and record.get("external_source_id") is not None:
            by_external.setdefault(record["external_source_id"], []).append(record)
    sent = Counter(item.get("external_source_id") for item in batch)
    claims: dict[int, _Claim] = {}
    for position in successful:
        item = batch[position]
        external = item.get("external_source_id")
        candidates = by_external.get(external, []) if external is not None else []
        if not candidates:
            claims[position] = _Claim()  # the answer does not say: id-unknown
        elif len(candidates) > 1 or sent[external] > 1:
            claims[position] = _Claim(untrusted="the answer lists its external id more than once")
        elif not _matches_item(item, candidates[0]):
            claims[position] = _Claim(untrusted="the record the answer returned for it holds other data")
        else:
            claims[position] = _Claim(candidates[0].get("id"))
    return claims


def _claims_by_position(
    batch: Sequence[Mapping[str, Any]],
    records: Sequence[Any],
    successful: list[int],
    successful_ids: Sequence[Any],
) -> dict[int, _Claim]:
    """No external ids echoed: records line up with the batch or with its successful items.
    One echoed record that does not match its item (another name) means the order cannot be
    trusted, so no create of the answer is."""
    aligned: dict[int, Any] | None = None
    if records and len(records) == len(batch):
        aligned = {p: records[p] for p in successful}
    elif records and len(records) == len(successful):
        aligned = dict(zip(successful, records, strict=True))
    if aligned is not None:
        if all(_matches_item(batch[p], record) for p, record in aligned.items()):
            return {p: _Claim(record.get("id")) for p, record in aligned.items()}
        reason = "the answer's records do not line up with the items sent (another order?)"
        return {p: _Claim(untrusted=reason) for p in successful}
    if records:
        reason = "the answer holds a different number of records than items accepted"
        return {p: _Claim(untrusted=reason) for p in successful}
    if successful_ids and len(successful_ids) == len(successful):
        return {p: _Claim(value) for p, value in zip(successful, successful_ids, strict=True)}
    return {p: _Claim() for p in successful}


def _checked_claims(
    batch: Sequence[Mapping[str, Any]],
    claims: dict[int, _Claim],
    records: Sequence[Any],
    successful_ids: Sequence[Any],
    known_ids: Container[int],
) -> dict[int, _Claim]:
    """Distrust every create whose claimed id is not a real id, is given to two records, or
    already belongs to another record (known to the caller, or sent as an update here)."""
    record_ids = Counter(r.get("id") for r in records if isinstance(r, Mapping) and r.get("id") is not None)
    listed_ids = Counter(value for value in successful_ids if value is not None)
    updates = {_item_id(item) for item in batch} - {None}
    creates = [p for p in claims if _item_id(batch[p]) is None and claims[p].untrusted is None]
    claimed = Counter(claims[p].id for p in creates if claims[p].id is not None)
    claimed.update(updates)
    checked = dict(claims)
    for position in creates:
        raw = claims[position].id
        if raw is None:
            continue
        record_id = _valid_id(raw)
        if record_id is None:
            checked[position] = _Claim(untrusted=f"the answer gave it an impossible id ({raw!r})")
        elif claimed[record_id] > 1 or record_ids[record_id] > 1 or listed_ids[record_id] > 1:
            checked[position] = _Claim(untrusted=f"the answer gave id {record_id} to more than one record")
        elif record_id in updates or record_id in known_ids:
            checked[position] = _Claim(untrusted=f"the answer gave it id {record_id}, another record's id")
    return checked


def map_bulk_response(
    indices: Sequence[int],
    batch: Sequence[Mapping[str, Any]],
    response: Any,
    entity_key: str,
    known_ids: Container[int] = (),
) -> list[BulkItemResult]:
    """Turn a 200 bulk answer into one result per sent item (input indices given by `indices`).

    Reads `failed[]` (its shape is undocumented; assumed `index`, `id`, `external_source_id`,
    `error`, `message`) and the echoed records under `entity_key` (or `successful_ids`). An
    update keeps the id it was sent with. A create gets the id the answer gives it only when
    the answer holds up: matched by external id where echoed (else by position, the echoed
    names agreeing), a real id (1..2^53), given to no other record of the answer and not one
    of `known_ids` (the ids the caller already holds for this kind). Otherwise it is
    `id-unknown`: it may exist in Kayse, but trusting the answer could point one record at
    another person's data.
    """
    body = response if isinstance(response, Mapping) else {}
    failed = body.get("failed") or []
    records = body.get(entity_key) or []
    records = records if isinstance(records, list) else []
    successful_ids = body.get("successful_ids") or []
    successful_ids = successful_ids if isinstance(successful_ids, list) else []
    failures = _failure_positions(batch, failed if isinstance(failed, list) else [])
    successful = [p for p in range(len(batch)) if p not in failures]
    echoed = any(isinstance(r, Mapping) and r.get("external_source_id") is not None for r in records)
    if echoed:
        claims = _claims_by_external_id(batch, records, successful)
    else:
        claims = _claims_by_position(batch, records, successful, successful_ids)
    claims = _checked_claims(batch, claims, records, successful_ids, known_ids)
    results: list[BulkItemResult] = []
    for position, index in enumerate(indices):
        item = batch[position]
        sent_id = _item_id(item)
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
        elif sent_id is not None:
            results.append(BulkItemResult(index=index, ok=True, id=sent_id, action="updated"))
        elif claims[position].untrusted is not None or _valid_id(claims[position].id) is None:
            reason = claims[position].untrusted
            if reason is not None:
                log.warning("bulk answer not trusted for item %d: %s", index, reason)
            results.append(
                BulkItemResult(
                    index=index,
                    ok=False,
                    id=None,
                    error="id-unknown",
                    message=f"Kayse accepted it, but {reason}" if reason else ID_UNKNOWN_MESSAGE,
                )
            )
        else:
            results.append(
                BulkItemResult(index=index, ok=True, id=_valid_id(claims[position].id), action="created")
            )
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
        known_ids: Container[int] = (),
    ) -> None:
        self.send = send
        self.entity_key = entity_key
        self.items = items
        self.chunk = chunk
        self.split_budget = max_split_requests
        self.known_ids = known_ids
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
        for result in map_bulk_response(indices, batch, response, self.entity_key, self.known_ids):
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


@dataclass(frozen=True)
class _Taken:
    """The caller's known ids plus those settled earlier in the same call."""

    known: Container[int]
    settled: set[int]

    def __contains__(self, value: object) -> bool:
        return value in self.settled or value in self.known


def iter_bulk_upsert(
    send: SendBatch,
    entity_key: str,
    items: Sequence[Mapping[str, Any]],
    chunk_size: int = 100,
    max_split_requests: int = 40,
    known_ids: Container[int] = (),
) -> Iterator[list[BulkItemResult]]:
    """Send `items` in chunks of `chunk_size`; yield each chunk's results (input order) as it completes.

    `send(batch)` performs one bulk request (e.g. `KayseClient.clients.bulk_upsert`).
    `known_ids` are the ids the caller already holds for this kind of record: an answer that
    gives one of them (or an id settled earlier in this call) to a new record is not trusted.
    Every yielded result is final. When an error stops a chunk midway (possible while a
    refused batch is being split), the chunk's already-settled results are yielded first,
    as a shorter list, and the error is raised on the next step. So a caller that
    checkpoints after every yielded list never loses a confirmed id.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    total = len(items)
    taken: set[int] = set()
    for start in range(0, total, chunk_size):
        chunk = list(range(start, min(start + chunk_size, total)))
        settler = _ChunkSettler(send, entity_key, items, chunk, max_split_requests, _Taken(known_ids, taken))
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
        taken.update(r.id for r in results if r.ok and r.id is not None)
        yield results
