"""Bulk upserts against the sandbox: per-item results, failed[] mapping, bisection of refused batches."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.kayse import BatchTooLarge, BulkItemResult, KayseClient, OutcomeUnknown, WaitTooLong
from pipeline.kayse.bulk import iter_bulk_upsert
from tests.kayse.helpers import MakeClient, case_record, client_record


def _items(size: int, bad: set[int]) -> list[dict[str, Any]]:
    return [client_record(n, mobile="12") if n in bad else client_record(n) for n in range(size)]


def _bulk_calls(sandbox: Any) -> int:
    return sum(1 for e in sandbox.request_log() if e["path"] == "/v1/clients/bulk")


def _check_isolated(results: list[BulkItemResult], size: int, bad: set[int], sandbox: Any) -> None:
    assert [r.index for r in results] == list(range(size))
    assert {r.index for r in results if not r.ok} == bad
    for result in results:
        if result.index in bad:
            assert result.message is not None and result.message.startswith("mobile:")
            assert result.id is None
        else:
            assert result.ok and result.action == "created" and isinstance(result.id, int)
    created = Counter(c["external_source_id"] for c in sandbox.state()["clients"])
    assert created == Counter(f"ext-{n}" for n in range(size) if n not in bad)  # each good item once
    ids = {c["external_source_id"]: c["id"] for c in sandbox.state()["clients"]}
    assert all(ids[f"ext-{r.index}"] == r.id for r in results if r.ok)


def test_partial_success_maps_failed_items(kayse: KayseClient, sandbox: Any) -> None:
    results = kayse.upsert_clients(_items(6, {1, 4}))
    _check_isolated(results, 6, {1, 4}, sandbox)
    assert kayse.requests_sent == _bulk_calls(sandbox) == 1


def test_atomic_refusal_is_bisected_to_the_bad_items(kayse: KayseClient, sandbox: Any) -> None:
    sandbox.configure(bulk_mode="atomic")
    results = kayse.upsert_clients(_items(10, {2, 7}), chunk_size=10)
    _check_isolated(results, 10, {2, 7}, sandbox)
    assert kayse.requests_sent == _bulk_calls(sandbox)
    assert kayse.requests_sent <= 1 + 2 * 2 * math.ceil(math.log2(10))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), size=st.integers(min_value=1, max_value=16))
def test_bisection_isolates_any_bad_set(
    data: st.DataObject, size: int, make_client: MakeClient, sandbox: Any
) -> None:
    sandbox.reset()
    sandbox.configure(bulk_mode="atomic")
    bad = data.draw(st.sets(st.integers(min_value=0, max_value=size - 1)))
    kayse = make_client()
    results = kayse.upsert_clients(_items(size, bad), chunk_size=size, max_split_requests=2 * size)
    _check_isolated(results, size, bad, sandbox)
    assert kayse.requests_sent == _bulk_calls(sandbox) <= 2 * size - 1


def test_a_size_cap_is_raised_with_the_cap_not_bisected(kayse: KayseClient, sandbox: Any) -> None:
    """No item is bad, so splitting would waste requests: the caller learns the account's cap
    (the loader records it per target and re-plans at it)."""
    sandbox.configure(bulk_max=4)
    with pytest.raises(BatchTooLarge) as refused:
        kayse.upsert_clients(_items(10, set()), chunk_size=10)
    assert (refused.value.cap, refused.value.items) == (4, 10)
    assert kayse.requests_sent == 1
    assert sandbox.state()["clients"] == []


def test_split_budget_bounds_the_cost(kayse: KayseClient, sandbox: Any) -> None:
    sandbox.configure(bulk_mode="atomic")
    results = kayse.upsert_clients(_items(8, set(range(8))), chunk_size=8, max_split_requests=3)
    assert kayse.requests_sent == 4
    assert not any(r.ok for r in results)
    assert {r.error for r in results} >= {"not-isolated"}
    assert sandbox.state()["clients"] == []


def test_chunks_are_reported_as_they_complete(kayse: KayseClient, sandbox: Any) -> None:
    chunks: list[list[int]] = []
    results = kayse.upsert_clients(
        _items(7, {5}), chunk_size=3, on_chunk=lambda c: chunks.append([r.index for r in c])
    )
    assert chunks == [[0, 1, 2], [3, 4, 5], [6]]
    assert [e["items"] for e in sandbox.request_log()] == [3, 3, 1]
    assert [r.ok for r in results] == [True] * 5 + [False, True]


def test_updates_and_cases(kayse: KayseClient, sandbox: Any) -> None:
    first = kayse.upsert_clients([client_record(1)])[0]
    assert first.id is not None
    again = kayse.upsert_clients([client_record(1, id=first.id, city="Austin"), client_record(2)])
    assert [(r.ok, r.action) for r in again] == [(True, "updated"), (True, "created")]
    assert again[0].id == first.id
    assert len(sandbox.state()["clients"]) == 2

    cases = kayse.upsert_cases(
        [case_record(1, client_ids=[first.id]), case_record(2, type="no_such_type"), case_record(3)]
    )
    assert [r.ok for r in cases] == [True, False, True]
    assert cases[1].message and "type" in cases[1].message
    assert kayse.cases.get(cases[0].id or 0)["client_ids"] == [first.id]


def test_a_split_stopped_midway_still_reports_what_was_created(make_client: MakeClient, sandbox: Any) -> None:
    sandbox.configure(bulk_mode="atomic", rate_limit=2, rate_window=3600)
    kayse = make_client(max_wait=1)
    reported: list[BulkItemResult] = []
    # Request 1: the whole batch, refused. Request 2: the good left half, created. Then the
    # window is spent and waiting would exceed max_wait: the client stops.
    with pytest.raises(WaitTooLong):
        kayse.upsert_clients(_items(4, {3}), chunk_size=4, on_chunk=reported.extend)
    assert [(r.index, r.ok) for r in reported] == [(0, True), (1, True)]
    ids = {c["external_source_id"]: c["id"] for c in sandbox.state()["clients"]}
    assert ids == {"ext-0": reported[0].id, "ext-1": reported[1].id}


def test_the_error_carries_what_was_settled_when_no_callback_is_given(
    make_client: MakeClient, sandbox: Any
) -> None:
    sandbox.configure(bulk_mode="atomic", rate_limit=4, rate_window=3600)
    kayse = make_client(max_wait=1)
    # Requests: chunk [0,1] created, chunk [2,3] created, chunk [4,5] refused, [4] created;
    # then the window is spent before [5] can be sent.
    with pytest.raises(WaitTooLong) as caught:
        kayse.upsert_clients(_items(6, {5}), chunk_size=2)
    kayse_error = caught.value
    assert [(r.index, r.ok) for r in kayse_error.settled] == [(i, True) for i in range(5)]
    created = {c["external_source_id"]: c["id"] for c in sandbox.state()["clients"]}
    assert created == {f"ext-{r.index}": r.id for r in kayse_error.settled}


def test_an_answer_lost_mid_split_names_settled_in_flight_and_unsent(
    kayse: KayseClient, sandbox: Any
) -> None:
    sandbox.configure(bulk_mode="atomic")
    sent: list[int] = []

    def send_losing_the_third(batch: Any) -> Any:
        sent.append(len(batch))
        if len(sent) == 3:
            sandbox.inject("lost", "POST", "/clients/bulk")
        return kayse.clients.bulk_upsert(batch)

    yielded: list[list[BulkItemResult]] = []
    # Requests: [0..3] refused; [0,1] accepted; [2] lost (its half [2,3] is known to hold the bad item).
    with pytest.raises(OutcomeUnknown) as caught:
        for chunk in iter_bulk_upsert(send_losing_the_third, "clients", _items(6, {3}), chunk_size=4):
            yielded.append(chunk)
    lost = caught.value
    assert sent == [4, 2, 1]
    assert lost.in_flight == (2,)
    assert [r.index for r in lost.settled] == [0, 1]
    assert lost.not_sent == (3, 4, 5)
    assert [[r.index for r in chunk] for chunk in yielded] == [[0, 1]]  # settled part handed over first
    assert {c["external_source_id"] for c in sandbox.state()["clients"]} == {"ext-0", "ext-1", "ext-2"}
