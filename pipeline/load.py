"""The load stage: carry out a plan against Kayse in the five steps, checkpointing every batch.

clients → cases (linked to their clients) → case lists (new ones take their first members in
the create call) → membership (attach) → campaigns. The plan decided *what* to send; this
module only sends it, in order, and writes each answer to the ledger before the next request,
so a crash at any moment loses at most the one request in flight. A create whose answer is
lost is recorded as uncertain and never resent by itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from pipeline.kayse import KayseError, OutcomeUnknown, RequestRejected
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

    def __post_init__(self) -> None:
        """Start from the Kayse ids the ledger holds; each answer adds to them as the run goes."""
        snapshot = self.ledger.snapshot(self.target)

        def known(entries: dict[str, LedgerEntry]) -> dict[str, int]:
            return {k: e.kayse_id for k, e in entries.items() if e.kayse_id and e.state == "done"}

        self.client_ids = known(snapshot.clients)
        self.case_ids = known(snapshot.cases)
        self.list_ids = known(snapshot.case_lists)

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
        for chunk in _chunks(list(ops), self.plan.batch_size):
            sendable: list[tuple[RecordOp, dict[str, Any]]] = []
            for op in chunk:
                body = self._body(op)
                if body is None:
                    stats.blocked += 1
                    self.result.blocked.append(
                        RecordRef(
                            op.kind, op.key, op.source_file, op.source_row, "its contact was not loaded"
                        )
                    )
                else:
                    sendable.append((op, body))
            if sendable:
                with self._counting(step):
                    self._send_records(step, sendable)
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

    def _send_records(self, step: str, items: list[tuple[RecordOp, dict[str, Any]]]) -> None:
        """One bulk request (split by the client only if Kayse refuses it whole), with its
        create intents written ahead and every answer recorded before the next request."""
        kind = items[0][0].kind
        creates = [op.key for op, _ in items if op.is_create]
        bodies = [({**body, "id": op.kayse_id} if op.kayse_id else body) for op, body in items]
        batch_id = self.ledger.open_batch(self.target, self.run_id, kind, creates) if creates else None
        self.result.steps[step].sent += len(items)
        upsert = self.client.upsert_clients if kind == "client" else self.client.upsert_cases
        try:
            results = upsert(bodies, chunk_size=len(bodies))
        except KayseError as error:
            # Part of a split batch may have landed before the error: record what is known.
            settled = list(getattr(error, "settled", ()) or ())
            in_flight: set[int] = set()
            if isinstance(error, OutcomeUnknown):
                in_flight = set(error.in_flight) or {
                    i for i in range(len(items)) if i not in {r.index for r in settled}
                }
            self._record(step, items, settled, batch_id, in_flight)
            if isinstance(error, OutcomeUnknown):
                return  # the next batch may well get through; this one is reported uncertain
            raise
        self._record(step, items, results, batch_id, set())

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
        membership = self.result.steps["membership"]
        self.observer.step("case_lists", len(ops))
        for op in ops:
            members = [k for k in op.new_case_keys if k in self.case_ids]
            list_id = op.kayse_id
            if op.recover:
                with self._counting("case_lists"):
                    list_id = self._recover_list(op)
            if list_id is None:
                first, members = members[: self.plan.batch_size], members[self.plan.batch_size :]
                with self._counting("case_lists"):
                    list_id = self._create_list(op, first)
                if list_id is None:
                    self.observer.advance(1)
                    continue
            self.list_ids[op.key] = list_id
            with self._counting("membership"):
                self._detach_moved(op, list_id)
            for chunk in _chunks(members, self.plan.batch_size):
                try:
                    with self._counting("membership"):
                        self.client.case_lists.attach(list_id, [self.case_ids[k] for k in chunk])
                except RequestRejected as error:
                    membership.failed += len(chunk)
                    for key in chunk:
                        self.result.failed.append(
                            FailedRecord("case", key, None, None, "attach-refused", str(error))
                        )
                    continue
                self.ledger.record_members(self.target, self.run_id, op.key, chunk)
                membership.sent += len(chunk)
                membership.created += len(chunk)
            self.observer.advance(1)

    def _detach_moved(self, op: ListOp, list_id: int) -> None:
        """Take out cases whose type changed; detach is idempotent, so a retry is harmless."""
        membership = self.result.steps["membership"]
        moved = [k for k in op.moved_case_keys if k in self.case_ids]
        for chunk in _chunks(moved, self.plan.batch_size):
            try:
                self.client.case_lists.detach(list_id, [self.case_ids[k] for k in chunk])
            except RequestRejected as error:
                membership.failed += len(chunk)
                self.result.failed.extend(
                    FailedRecord("case", key, None, None, "detach-refused", str(error)) for key in chunk
                )
                continue
            self.ledger.remove_members(self.target, op.key, chunk)
            membership.sent += len(chunk)
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

    def _create_list(self, op: ListOp, first_members: list[str]) -> int | None:
        body = dict(op.payload)
        if first_members:
            body["include_ids"] = [self.case_ids[k] for k in first_members]
        # A lost answer is uncertain only until the next run, which finds the list by name.
        list_id = self._create_one(
            "case_lists", "case_list", op.key, op.payload, partial(self.client.case_lists.create, **body)
        )
        if list_id is not None:
            self.ledger.record_members(self.target, self.run_id, op.key, first_members)
            membership = self.result.steps["membership"]
            membership.sent += len(first_members)
            membership.created += len(first_members)
        return list_id

    def _create_one(
        self, step: str, kind: EntityKind, key: str, payload: dict[str, Any], send: Callable[[], Any]
    ) -> int | None:
        """One create (a list or a campaign), its intent written ahead. None when it did not
        land: refused (reported), or its answer lost (uncertain)."""
        stats = self.result.steps[step]
        batch_id = self.ledger.open_batch(self.target, self.run_id, kind, [key])
        stats.sent += 1
        try:
            response = send()
        except OutcomeUnknown:
            self.ledger.close_batch(self.target, batch_id, kind, {}, [], uncertain=[key])
            stats.uncertain += 1
            self.result.uncertain.append(RecordRef(kind, key, reason="the answer to its create was lost"))
            return None
        except RequestRejected as error:
            self.ledger.close_batch(self.target, batch_id, kind, {}, [key])
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
) -> RunResult:
    """Send `plan` to Kayse, step by step. Never raises for the API's refusals: they are in the
    result. Stops early (outcome "stopped") when going on cannot help: key refused, API
    unreachable, rate-limit wait longer than allowed."""
    result = RunResult(run_id=run_id, target=str(target), planned_requests=plan.total_requests)
    result.uncertain.extend(plan.uncertain)
    result.blocked.extend(plan.blocked)
    result.steps["clients"].unchanged = plan.unchanged.get("client", 0)
    result.steps["cases"].unchanged = plan.unchanged.get("case", 0)
    loader = _Loader(plan, client, ledger, target, run_id, observer or QuietObserver(), result)
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


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
