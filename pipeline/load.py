"""The load stage: carry out a plan against Kayse in the five steps, checkpointing every batch.

clients → cases (linked to their clients) → case lists (new ones take their first members in
the create call) → membership (attach) → campaigns. The plan decided *what* to send; this
module only sends it, in order, and writes each answer to the ledger before the next request,
so a crash at any moment loses at most the one request in flight. A create whose answer is
lost is recorded as uncertain and never resent by itself; a create refused or stopped before it
was sent (a wait ended by Ctrl-C, a spent quota) is forgotten, so the next run sends it.

Batches are as large as the account takes: when it refuses one for its size, the cap it names
is remembered in the ledger for this target, and the rest of the step is sent in batches that
fit (and planned that way next time).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from pipeline.kayse import BatchTooLarge, KayseError, OutcomeUnknown, RequestRejected, as_batch_too_large
from pipeline.ledger import Ledger, Target
from pipeline.model import (
    CampaignOp,
    EntityKind,
    FailedRecord,
    LedgerEntry,
    ListOp,
    LoadedRow,
    Plan,
    RecordOp,
    RecordRef,
    RunResult,
    payload_hash,
)

log = logging.getLogger("pipeline.load")


class LoadObserver(Protocol):
    """What a progress display needs to know. The CLI shows a bar on a terminal, lines in cron."""

    def step(self, name: str, total: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def note(self, message: str) -> None: ...


BULK_KINDS = ("client", "case", "members")
"""What a learned bulk cap is for: client and case upserts, and the case ids of a list's create
and of attach/detach (`members`)."""


class QuietObserver:
    def step(self, name: str, total: int) -> None:
        log.info("step %s: %d to send", name, total)

    def advance(self, count: int) -> None:
        pass

    def note(self, message: str) -> None:
        log.info("%s", message)


@dataclass
class _Loader:
    plan: Plan
    client: Any  # a pipeline.kayse.KayseClient, or any stand-in with the methods used below
    ledger: Ledger
    target: Target
    run_id: int
    observer: LoadObserver
    result: RunResult
    check_stop: Callable[[], None]

    def __post_init__(self) -> None:
        """Start from the Kayse ids the ledger holds; each answer adds to them as the run goes."""
        snapshot = self.ledger.snapshot(self.target)

        def known(entries: dict[str, LedgerEntry]) -> dict[str, int]:
            return {k: e.kayse_id for k, e in entries.items() if e.kayse_id and e.state == "done"}

        self.client_ids = known(snapshot.clients)
        self.case_ids = known(snapshot.cases)
        self.list_ids = known(snapshot.case_lists)
        # The same sizes the plan used: the batch size, lowered to what the account accepts.
        caps = self.ledger.bulk_caps(self.target)
        self.sizes = {k: min(self.plan.batch_size, caps.get(k, self.plan.batch_size)) for k in BULK_KINDS}

    def _learn_cap(self, kind: str, refusal: BatchTooLarge, pending: int) -> None:
        """Remember the account's cap and re-plan the `pending` items of this kind with it: the
        refused request plus the batches at the new size replace the batches still planned."""
        size = self.sizes[kind]
        cap = refusal.cap if refusal.cap is not None else max(1, min(size, refusal.items) // 2)
        cap = min(cap, size)
        if cap == size and size > 1:
            cap = size // 2  # refused at or below the named cap: never resend the same size
        self.ledger.record_bulk_cap(self.target, kind, cap)
        self.sizes[kind] = cap
        before = math.ceil(pending / size)
        self.result.planned_requests += 1 + math.ceil(pending / cap) - before
        self.observer.note(
            f"Kayse refused {refusal.items} {kind} items in one request; sending at most {cap} per "
            "request from now on (remembered for this account)"
        )

    @contextmanager
    def _counting(self, step: str) -> Iterator[None]:
        """Count the requests sent inside the block against `step`, even when it raises."""
        before = self.client.requests_sent
        try:
            yield
        finally:
            self.result.steps[step].requests += self.client.requests_sent - before

    # ---- steps 1 and 2: clients and cases ------------------------------------------------

    def records(self, step: str, ops: Sequence[RecordOp]) -> None:
        stats = self.result.steps[step]
        self.observer.step(step, len(ops))
        sendable: list[tuple[RecordOp, dict[str, Any]]] = []
        for op in ops:
            body = self._body(op)
            if body is None:
                stats.blocked += 1
                self.result.blocked.append(
                    RecordRef(op.kind, op.key, op.source_file, op.source_row, "its contact was not loaded")
                )
            else:
                sendable.append((op, body))
        if len(sendable) < len(ops):
            self.observer.advance(len(ops) - len(sendable))
        kind = "client" if step == "clients" else "case"
        start = 0
        while start < len(sendable):
            self.check_stop()
            chunk = sendable[start : start + self.sizes[kind]]
            with self._counting(step):
                refusal = self._send_records(step, chunk)
            if refusal is not None:  # nothing of it was applied: send it again in smaller batches
                self._learn_cap(kind, refusal, len(sendable) - start)
                continue
            start += len(chunk)
            self.observer.advance(len(chunk))

    def _body(self, op: RecordOp) -> dict[str, Any] | None:
        """The exact JSON for one record; cases get their contact's Kayse id (None: not loaded)."""
        body = dict(op.payload)
        if op.kind == "case":
            client_id = op.client_id or self.client_ids.get(op.client_key or "")
            if client_id is None:
                return None
            body["client_ids"] = [client_id]
        return body

    def _send_records(self, step: str, items: list[tuple[RecordOp, dict[str, Any]]]) -> BatchTooLarge | None:
        """One bulk request (split by the client only if Kayse refuses it whole), with its
        create intents written ahead and every answer recorded before the next request.
        Returns the refusal when the account refused the batch for its size (nothing applied)."""
        kind = items[0][0].kind
        creates = [op.key for op, _ in items if op.is_create]
        bodies = [({**body, "id": op.kayse_id} if op.kayse_id else body) for op, body in items]
        if creates:
            self.client.wait_for_window()  # any wait first: the intent opens right before the send
        batch_id = self.ledger.open_batch(self.target, self.run_id, kind, creates) if creates else None
        upsert = self.client.upsert_clients if kind == "client" else self.client.upsert_cases
        try:
            results = upsert(
                bodies,
                chunk_size=len(bodies),
                known_ids=set((self.client_ids if kind == "client" else self.case_ids).values()),
            )
        except KayseError as error:
            # Part of a split batch may have landed before the error: record what is known.
            # Anything raised before the bytes left (a stop asked for during the rate-limit
            # wait, a refusal, a spent quota) has no answer and is not in flight: its intent
            # is dropped, so those records are sent again, never reported uncertain.
            settled = list(getattr(error, "settled", ()) or ())
            in_flight: set[int] = set()
            if isinstance(error, OutcomeUnknown):
                in_flight = set(error.in_flight) or {
                    i for i in range(len(items)) if i not in {r.index for r in settled}
                }
            if isinstance(error, BatchTooLarge) and not settled:
                self._record(step, items, [], batch_id, set())
                return error
            self.result.steps[step].sent += len(settled) + len(in_flight)
            self._record(step, items, settled, batch_id, in_flight)
            if isinstance(error, OutcomeUnknown):
                return None  # the next batch may well get through; this one is reported uncertain
            raise
        self.result.steps[step].sent += len(items)
        self._record(step, items, results, batch_id, set())
        return None

    def _record(
        self,
        step: str,
        items: list[tuple[RecordOp, dict[str, Any]]],
        results: Sequence[Any],
        batch_id: int | None,
        in_flight: set[int],
    ) -> None:
        """Write one batch's answers to the ledger and the run result. Items with no answer and
        not in flight were never processed: their intent is dropped, so a rerun sends them."""
        stats = self.result.steps[step]
        kind = items[0][0].kind
        by_index = {r.index: r for r in results}
        created: dict[str, tuple[int, str]] = {}
        updated: dict[str, str] = {}
        dropped: list[str] = []
        lost: list[str] = []
        ids = self.client_ids if kind == "client" else self.case_ids
        for index, (op, body) in enumerate(items):
            item = by_index.get(index)
            if item is None or (not item.ok and item.error == "id-unknown"):
                if op.is_create and (index in in_flight or item is not None):
                    lost.append(op.key)
                    stats.uncertain += 1
                    reason = (
                        "the answer to its create was lost" if item is None else "Kayse did not say its id"
                    )
                    self.result.uncertain.append(
                        RecordRef(op.kind, op.key, op.source_file, op.source_row, reason)
                    )
                elif op.is_create:
                    dropped.append(op.key)
                continue
            if not item.ok:
                if op.is_create:
                    dropped.append(op.key)
                stats.failed += 1
                message = item.message or ""
                if not op.is_create and "not found" in f"{item.error} {message}".lower():
                    message += (
                        f" (deleted in Kayse? `kayse-etl resolve {op.kind} {op.key} --recreate` creates it"
                        " again on the next load; --kayse-id ID points it at another record)"
                    )
                self.result.failed.append(
                    FailedRecord(
                        op.kind, op.key, op.source_file, op.source_row, item.error or "refused", message
                    )
                )
                continue
            kayse_id = int(item.id if item.id is not None else op.kayse_id or 0)
            ids[op.key] = kayse_id
            if op.is_create:
                created[op.key] = (kayse_id, payload_hash(body))
                stats.created += 1
            else:
                updated[op.key] = payload_hash(body)
                stats.updated += 1
            if kind == "case":
                client_ids = body.get("client_ids") or [None]
                self.result.loaded.append(
                    LoadedRow(
                        op.source_file,
                        op.source_row,
                        op.client_key or "",
                        client_ids[0],
                        op.key,
                        kayse_id,
                        "created" if op.is_create else "updated",
                    )
                )
        if batch_id is not None:
            self.ledger.close_batch(self.target, batch_id, kind, created, dropped, uncertain=lost)
        if updated:
            self.ledger.record_updates(self.target, self.run_id, kind, updated)

    # ---- steps 3 and 4: case lists and membership ---------------------------------------

    def case_lists(self, ops: Sequence[ListOp]) -> None:
        self.observer.step("case_lists", len(ops))
        for op in ops:
            members = [k for k in op.new_case_keys if k in self.case_ids]
            list_id = op.kayse_id
            if op.recover:
                self.check_stop()
                with self._counting("case_lists"):
                    list_id = self._recover_list(op)
            if list_id is None:
                with self._counting("case_lists"):
                    list_id, members = self._create_list(op, members)
                if list_id is None:
                    self.observer.advance(1)
                    continue
            self.list_ids[op.key] = list_id
            with self._counting("membership"):
                self._detach_moved(op, list_id)
                self._change_members(op, list_id, members, attach=True)
            self.observer.advance(1)

    def _detach_moved(self, op: ListOp, list_id: int) -> None:
        """Take out cases whose type changed; detach is idempotent, so a retry is harmless."""
        moved = [k for k in op.moved_case_keys if k in self.case_ids]
        self._change_members(op, list_id, moved, attach=False)

    def _change_members(self, op: ListOp, list_id: int, keys: list[str], *, attach: bool) -> None:
        """Attach (or detach) `keys` in batches the account accepts; both are idempotent."""
        membership = self.result.steps["membership"]
        change = self.client.case_lists.attach if attach else self.client.case_lists.detach
        start = 0
        while start < len(keys):
            self.check_stop()
            chunk = keys[start : start + self.sizes["members"]]
            try:
                change(list_id, [self.case_ids[k] for k in chunk])
            except RequestRejected as error:
                too_large = as_batch_too_large(error, len(chunk))
                if too_large is not None and len(chunk) > 1:
                    self._learn_cap("members", too_large, len(keys) - start)
                    continue
                membership.failed += len(chunk)
                code = "attach-refused" if attach else "detach-refused"
                self.result.failed.extend(
                    FailedRecord("case", key, None, None, code, str(error)) for key in chunk
                )
                start += len(chunk)
                continue
            start += len(chunk)
            membership.sent += len(chunk)
            if attach:
                self.ledger.record_members(self.target, self.run_id, op.key, chunk)
                membership.created += len(chunk)
            else:
                self.ledger.remove_members(self.target, op.key, chunk)
                membership.removed += len(chunk)

    def _recover_list(self, op: ListOp) -> int | None:
        """A list create whose answer was lost: lists can be searched by name, so look first."""
        found = [x for x in self.client.case_lists.iter_all(key=op.key) if x.get("name") == op.key]
        if not found:
            self.observer.note(f"list {op.key!r}: an earlier create did not land; creating it")
            return None
        list_id = int(min(x["id"] for x in found))
        self.ledger.record_found(self.target, self.run_id, "case_list", op.key, list_id)
        self.observer.note(f"list {op.key!r}: recovered id {list_id} by name after a lost answer")
        return list_id

    def _create_list(self, op: ListOp, members: list[str]) -> tuple[int | None, list[str]]:
        """Create the list with as many of its members as one request takes; returns its id
        (None: not created) and the members still to attach."""
        while True:
            size = self.sizes["members"]
            first, rest = members[:size], members[size:]
            body = dict(op.payload)
            if first:
                body["include_ids"] = [self.case_ids[k] for k in first]
            # A lost answer is uncertain only until the next run, which finds the list by name.
            created = self._create_one(
                "case_lists",
                "case_list",
                op.key,
                op.payload,
                partial(self.client.case_lists.create, **body),
                members=len(first),
            )
            if isinstance(created, BatchTooLarge):
                self._learn_cap("members", created, len(members))
                continue
            if created is not None:
                self.ledger.record_members(self.target, self.run_id, op.key, first)
                membership = self.result.steps["membership"]
                membership.sent += len(first)
                membership.created += len(first)
            return created, rest

    def _create_one(
        self,
        step: str,
        kind: EntityKind,
        key: str,
        payload: dict[str, Any],
        send: Callable[[], Any],
        members: int = 0,
    ) -> int | BatchTooLarge | None:
        """One create (a list or a campaign), its intent written ahead. None when it did not
        land: refused (reported), or its answer lost (uncertain). The refusal itself when the
        account refused its `members` case ids as too many (nothing created: resend smaller)."""
        stats = self.result.steps[step]
        self.check_stop()
        self.client.wait_for_window()  # any wait first: the intent opens right before the send
        batch_id = self.ledger.open_batch(self.target, self.run_id, kind, [key])
        try:
            response = send()
        except OutcomeUnknown:
            self.ledger.close_batch(self.target, batch_id, kind, {}, [], uncertain=[key])
            stats.sent += 1
            stats.uncertain += 1
            self.result.uncertain.append(RecordRef(kind, key, reason="the answer to its create was lost"))
            return None
        except RequestRejected as error:
            self.ledger.close_batch(self.target, batch_id, kind, {}, [key])
            too_large = as_batch_too_large(error, members) if members > 1 else None
            if too_large is not None:
                return too_large
            stats.sent += 1
            stats.failed += 1
            self.result.failed.append(
                FailedRecord(kind, key, None, None, error.error or "refused", str(error))
            )
            return None
        except KayseError:  # never processed: forget the intent, stop (see `execute`), rerun later
            self.ledger.close_batch(self.target, batch_id, kind, {}, [key])
            raise
        kayse_id = int(response["id"])
        self.ledger.close_batch(self.target, batch_id, kind, {key: (kayse_id, payload_hash(payload))}, [])
        stats.sent += 1
        stats.created += 1
        return kayse_id

    # ---- step 5: campaigns ------------------------------------------------------------------

    def campaigns(self, ops: Sequence[CampaignOp]) -> None:
        self.observer.step("campaigns", len(ops))
        for op in ops:
            list_id = self.list_ids.get(op.list_key)
            if list_id is None:
                self.result.steps["campaigns"].blocked += 1
                self.result.blocked.append(
                    RecordRef("campaign", op.key, reason=f"its list {op.list_key!r} is missing")
                )
                continue
            body = {**op.payload, "case_list_id": list_id}
            with self._counting("campaigns"):
                self._create_one(
                    "campaigns", "campaign", op.key, op.payload, partial(self.client.campaigns.create, **body)
                )
            self.observer.advance(1)


def execute(
    plan: Plan,
    client: Any,
    ledger: Ledger,
    target: Target,
    run_id: int,
    observer: LoadObserver | None = None,
    check_stop: Callable[[], None] | None = None,
) -> RunResult:
    """Send `plan` to Kayse, step by step. Never raises for the API's refusals: they are in the
    result. Stops early (outcome "stopped") when going on cannot help: key refused, API
    unreachable, rate-limit wait longer than allowed — or when `check_stop`, called before
    every request, raises a `KayseError` (the operator pressed Ctrl-C)."""
    result = RunResult(run_id=run_id, target=str(target), planned_requests=plan.total_requests)
    result.uncertain.extend(plan.uncertain)
    result.blocked.extend(plan.blocked)
    result.steps["clients"].unchanged = plan.unchanged.get("client", 0)
    result.steps["cases"].unchanged = plan.unchanged.get("case", 0)
    loader = _Loader(
        plan, client, ledger, target, run_id, observer or QuietObserver(), result, check_stop or _go_on
    )
    sent_before = client.requests_sent
    try:
        loader.records("clients", plan.clients)
        loader.records("cases", plan.cases)
        loader.case_lists(plan.case_lists)  # lists, then membership
        loader.campaigns(plan.campaigns)
    except KayseError as error:
        # Any Kayse error a step did not settle itself (a refusal of one record is in the
        # result) means going on cannot help: stop cleanly, every answer so far is recorded.
        result.outcome = "stopped"
        result.stopped_reason = str(error)
    result.requests_sent = client.requests_sent - sent_before
    if result.outcome != "stopped" and (result.failed or result.uncertain or result.blocked):
        result.outcome = "rejected"
    return result


def _go_on() -> None:
    """The default `check_stop`: nobody asks to stop."""
