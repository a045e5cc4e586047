"""Kayse's server side, as the load stage sees it through its client seam: a few dicts.

`pipeline.load.execute` takes any object with the handful of methods it calls (the two bulk
upserts, case_lists create/attach/detach/search, campaigns create, `requests_sent`). This fake
implements exactly those, answering with the same result types `pipeline.kayse` returns, so the
load stage's branches can be reached one by one. Faults are scripted per operation:

    kayse.fail_next("upsert_cases", AuthError(...))   # refused before anything is applied
    kayse.fail_next("case_lists.create", Lost())      # applied, then the answer is lost
    kayse.refuse["C1"] = ("bad request", "mobile: …") # one bulk item in failed[]
    kayse.caps["upsert_clients"] = 150                # refuses bigger batches, naming the cap
    kayse.caps_named = False                          # … or with a bare 413 that names none

It is not a second sandbox: the end-to-end tests still talk real HTTP to `pipeline/sandbox`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.interrupts import StopRequested
from pipeline.kayse import BulkItemResult, NotFound, OutcomeUnknown, RequestRejected, as_batch_too_large


@dataclass(frozen=True)
class Lost:
    """The request is applied and committed, then its answer never arrives. The first
    `answered` items of a bulk request were confirmed before the loss (the client's `settled`)."""

    answered: int = 0


@dataclass
class FakeList:
    name: str
    case_ids: set[int] = field(default_factory=set)


class FakeKayse:
    """The load stage's view of Kayse: records by id, lists with members, campaigns."""

    def __init__(self) -> None:
        self.clients: dict[int, dict[str, Any]] = {}
        self.cases: dict[int, dict[str, Any]] = {}
        self.lists: dict[int, FakeList] = {}
        self.campaign_bodies: dict[int, dict[str, Any]] = {}
        self.refuse: dict[str, tuple[str, str]] = {}  # external_source_id → (error, message)
        self.caps: dict[str, int] = {}  # operation → the most items (or case ids) it accepts
        self.caps_named = True  # a 400 that says the cap, as the sandbox does; False: a bare 413
        self.requests_sent = 0
        self.calls: list[str] = []
        self._faults: dict[str, list[Exception | Lost | None]] = {}
        self._next_id = 1000
        self.case_lists = _CaseLists(self)
        self.campaigns = _Campaigns(self)

    # ---- scripting -------------------------------------------------------------------------

    def fail_next(self, operation: str, fault: Exception | Lost | None) -> None:
        """Script the next request of `operation` not yet scripted (None: it goes through)."""
        self._faults.setdefault(operation, []).append(fault)

    def request(self, operation: str) -> Lost | None:
        """Count one request; raise its scripted refusal, or say it will be lost after applying."""
        queued = self._faults.get(operation)
        fault = queued.pop(0) if queued else None
        if isinstance(fault, StopRequested):
            raise fault  # ended the wait before the request: not sent, not counted
        self.requests_sent += 1
        self.calls.append(operation)
        if isinstance(fault, Exception):
            raise fault
        return fault

    def wait_for_window(self) -> bool:
        """The client's pacing wait, done before a create's intent is opened: none here, unless
        a test scripts one (`fail_next("wait_for_window", FakeKayse.never_sent())`)."""
        queued = self._faults.get("wait_for_window")
        fault = queued.pop(0) if queued else None
        if isinstance(fault, Exception):
            raise fault
        return False

    @staticmethod
    def never_sent() -> Exception:
        """What the client raises when a stop ends its rate-limit wait: nothing was sent."""
        return StopRequested("stopped by SIGINT while waiting; the rest is sent by the next run")

    def check_size(self, operation: str, items: int) -> None:
        """Refuse a request over the operation's cap, as the account (and then the client) would:
        a 400 naming the cap, or a 413 naming none; the bulk upserts see the client's
        `BatchTooLarge`, list create and attach the plain refusal."""
        cap = self.caps.get(operation)
        if cap is None or items <= cap:
            return
        self.requests_sent += 1
        self.calls.append(f"{operation} refused")
        if self.caps_named:
            refusal = RequestRejected(
                "the API refused the request as invalid",
                status=400,
                error="bad request",
                api_message=f"at most {cap} items per request, got {items}",
            )
        else:
            refusal = RequestRejected("the API refused the request", status=413, error="too large")
        if operation.startswith("upsert_"):
            too_large = as_batch_too_large(refusal, items)
            assert too_large is not None
            raise too_large
        raise refusal

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    # ---- the bulk upserts (pipeline.kayse.KayseClient.upsert_clients / upsert_cases) --------

    def upsert_clients(
        self, items: Sequence[dict[str, Any]], *, chunk_size: int = 100, known_ids: Any = ()
    ) -> list[BulkItemResult]:
        return self._upsert("upsert_clients", self.clients, items)

    def upsert_cases(
        self, items: Sequence[dict[str, Any]], *, chunk_size: int = 100, known_ids: Any = ()
    ) -> list[BulkItemResult]:
        return self._upsert("upsert_cases", self.cases, items)

    def _upsert(
        self, operation: str, store: dict[int, dict[str, Any]], items: Sequence[dict[str, Any]]
    ) -> list[BulkItemResult]:
        self.check_size(operation, len(items))
        lost = self.request(operation)
        results = []
        for index, item in enumerate(items):
            refused = self.refuse.get(str(item.get("external_source_id")))
            record_id = item.get("id")
            if refused is not None:
                results.append(BulkItemResult(index, False, record_id, refused[0], refused[1]))
            elif record_id is not None and record_id not in store:
                results.append(BulkItemResult(index, False, record_id, "not found", "no such record"))
            elif record_id is not None:
                store[record_id] = dict(item)
                results.append(BulkItemResult(index, True, record_id, action="updated"))
            else:
                new_id = self.new_id()
                store[new_id] = {**item, "id": new_id}
                results.append(BulkItemResult(index, True, new_id, action="created"))
        if lost is not None:
            raise OutcomeUnknown(
                "the connection dropped after sending",
                method="POST",
                path=f"/v1/{operation.removeprefix('upsert_')}/bulk",
                in_flight=tuple(range(lost.answered, len(items))),
                settled=tuple(results[: lost.answered]),
            )
        return results

    # ---- what a test asserts on --------------------------------------------------------------

    def list_named(self, name: str) -> FakeList:
        (found,) = [lst for lst in self.lists.values() if lst.name == name]
        return found

    def case_ids_by_external_id(self) -> dict[str, int]:
        return {str(case["external_source_id"]): case_id for case_id, case in self.cases.items()}


class _CaseLists:
    def __init__(self, kayse: FakeKayse) -> None:
        self.kayse = kayse

    def create(self, name: str, *, include_ids: Sequence[int] = (), **fields: Any) -> dict[str, Any]:
        self.kayse.check_size("case_lists.create", len(include_ids))
        lost = self.kayse.request("case_lists.create")
        list_id = self.kayse.new_id()
        self.kayse.lists[list_id] = FakeList(name, set(include_ids))
        if lost is not None:
            raise OutcomeUnknown("the connection dropped after sending", method="POST", path="/v1/case_lists")
        return {"id": list_id, "name": name}

    def iter_all(self, key: str | None = None, **_: Any) -> Iterator[dict[str, Any]]:
        self.kayse.request("case_lists.search")
        for list_id, lst in sorted(self.kayse.lists.items()):
            if key is None or key.lower() in lst.name.lower():
                yield {"id": list_id, "name": lst.name}

    def attach(self, list_id: int, case_ids: Sequence[int]) -> dict[str, Any]:
        self.kayse.check_size("case_lists.attach", len(case_ids))
        self.kayse.request("case_lists.attach")
        self._list(list_id, "attach").case_ids.update(case_ids)
        return {"id": list_id}

    def detach(self, list_id: int, case_ids: Sequence[int]) -> dict[str, Any]:
        self.kayse.request("case_lists.detach")
        self._list(list_id, "detach").case_ids.difference_update(case_ids)
        return {"id": list_id}

    def _list(self, list_id: int, verb: str) -> FakeList:
        if list_id not in self.kayse.lists:
            raise NotFound("no such case list", method="PATCH", path=f"/v1/case_lists/{list_id}/{verb}")
        return self.kayse.lists[list_id]


class _Campaigns:
    def __init__(self, kayse: FakeKayse) -> None:
        self.kayse = kayse

    def create(self, name: str, case_list_id: int, runs: Any, **options: Any) -> dict[str, Any]:
        lost = self.kayse.request("campaigns.create")
        if case_list_id not in self.kayse.lists:
            raise NotFound("no such case list", method="POST", path="/v1/campaigns")
        campaign_id = self.kayse.new_id()
        self.kayse.campaign_bodies[campaign_id] = {"name": name, "case_list_id": case_list_id, "runs": runs}
        if lost is not None:
            raise OutcomeUnknown("the connection dropped after sending", method="POST", path="/v1/campaigns")
        return {"id": campaign_id}
