"""A server that lies, leaks, drips, bombs or points its reset years ahead: the client keeps its
promises. An answer that cannot be trusted maps nothing (the item is uncertain), the key never
comes back out, no attempt outlives its deadline or reads past its size cap, and no wait is
longer than an hourly window can need."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.kayse import (
    KayseClient,
    OutcomeUnknown,
    RequestRejected,
    TransportError,
    WaitTooLong,
    map_bulk_response,
)
from pipeline.kayse.pacing import LONGEST_WINDOW_WAIT
from tests.kayse.helpers import MakeClient, client_record


def live_clients(sandbox: Any) -> list[dict[str, Any]]:
    return [c for c in sandbox.state()["clients"] if not c["deleted"]]


def assert_every_mapping_true(sandbox: Any, items: list[dict[str, Any]], results: list[Any]) -> None:
    """Each id the client reports holds the item it was reported for, and no id twice."""
    by_id = {c["id"]: c for c in live_clients(sandbox)}
    ok = [r for r in results if r.ok]
    assert len({r.id for r in ok}) == len(ok)
    for result in ok:
        assert by_id[result.id]["external_source_id"] == items[result.index]["external_source_id"]


# ---- lies about ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "uncertain"),
    [
        ("duplicate-ids", {0, 1}),
        ("shuffled", {0, 1, 2, 3, 4, 5}),
        ("bad-ids", {0, 1, 2, 3, 4, 5}),
        ("foreign-id", {0}),
    ],
)
def test_a_lying_bulk_answer_maps_nothing_it_cannot_back(
    make_client: MakeClient, sandbox: Any, how: str, uncertain: set[int]
) -> None:
    kayse = make_client()
    (earlier,) = kayse.upsert_clients([client_record(0)])
    items = [client_record(n) for n in range(1, 7)]
    sandbox.inject("lie", "POST", "/clients/bulk", how=how)
    results = kayse.upsert_clients(items, known_ids={earlier.id})
    assert {r.index for r in results if not r.ok} == uncertain
    assert all(r.error == "id-unknown" for r in results if not r.ok)
    assert_every_mapping_true(sandbox, items, results)
    assert len(live_clients(sandbox)) == 7  # the lie came after the commit: all were created


def test_an_id_the_caller_already_holds_is_another_records(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client()
    (first,) = kayse.upsert_clients([client_record(0)])
    batch = [client_record(1)]
    # what a server claiming the first record's id for a new one would answer
    answer = {"clients": [{"id": first.id, "external_source_id": "ext-1"}], "failed": []}
    (result,) = map_bulk_response([0], batch, answer, "clients", known_ids={first.id})
    assert not result.ok and result.error == "id-unknown" and str(first.id) in (result.message or "")
    (trusted,) = map_bulk_response([0], batch, answer, "clients", known_ids=set())
    assert trusted.ok and trusted.id == first.id


def test_an_id_settled_earlier_in_the_same_call_is_not_given_again(
    make_client: MakeClient, sandbox: Any
) -> None:
    kayse = make_client()
    items = [client_record(n) for n in range(4)]
    sandbox.inject("lie", "POST", "/clients/bulk", how="foreign-id")
    sandbox.inject("lie", "POST", "/clients/bulk", how="foreign-id")
    results = kayse.upsert_clients(items, chunk_size=2)
    assert [r.ok for r in results] == [True, True, False, True]  # the first lie had no other record to name
    assert_every_mapping_true(sandbox, items, results)


claimed_ids = st.one_of(
    st.integers(min_value=-3, max_value=12),
    st.sampled_from([0, 2**53, 2**53 + 1, True, False, "7", 3.0, None]),
)


@given(data=st.data(), size=st.integers(min_value=1, max_value=8), echo=st.booleans())
def test_whatever_the_answer_claims_no_two_items_share_an_id(
    data: st.DataObject, size: int, echo: bool
) -> None:
    batch = [{"external_source_id": f"e{p}", "first_name": f"n{p}"} for p in range(size)]
    known = data.draw(st.sets(st.integers(min_value=1, max_value=12), max_size=3))
    records = []
    for position in data.draw(st.permutations(range(size))):
        record: dict[str, Any] = {"id": data.draw(claimed_ids)}
        if echo:
            record["external_source_id"] = f"e{position}"
        if data.draw(st.booleans()):
            record["first_name"] = f"n{position}"
        records.append(record)
    results = map_bulk_response(list(range(size)), batch, {"clients": records}, "clients", known)
    ok = [r for r in results if r.ok]
    assert len({r.id for r in ok}) == len(ok)
    for result in ok:
        assert isinstance(result.id, int) and not isinstance(result.id, bool)
        assert 0 < result.id <= 2**53 and result.id not in known
        if echo:  # matched by external id, never by position
            (record,) = [r for r in records if r["external_source_id"] == f"e{result.index}"]
            assert record["id"] == result.id


# ---- the key, quoted back by the server ---------------------------------------------------


def key_pieces(key: str) -> list[str]:
    return [key[start : start + 8] for start in range(len(key) - 7)]


def assert_no_piece_of(key: str, text: str) -> None:
    leaked = [piece for piece in key_pieces(key) if piece in text]
    assert not leaked, f"pieces of the key in {text!r}"


def test_a_key_quoted_in_a_200_answer_is_redacted(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client()
    sandbox.inject("leak-key", "POST", "/clients/bulk", how="failed")
    results = kayse.upsert_clients([client_record(n) for n in range(3)])
    assert [r.ok for r in results] == [False, True, True]
    assert "redacted" in (results[0].message or "")
    assert_no_piece_of(sandbox.api_key, repr(results))
    sandbox.inject("leak-key", "GET", "/metadata/objects", how="failed")
    assert_no_piece_of(sandbox.api_key, repr(kayse.metadata.objects()))


def test_a_key_at_the_cut_of_a_long_error_body_is_not_written_half(
    make_client: MakeClient, sandbox: Any
) -> None:
    kayse = make_client()
    sandbox.inject("leak-key", "POST", "/clients/bulk", how="long-error")
    with pytest.raises(RequestRejected) as caught:
        kayse.upsert_clients([client_record(1)])
    error = caught.value
    assert error.status == 409
    for text in (str(error), repr(error), str(error.body), str(error.api_message)):
        assert_no_piece_of(sandbox.api_key, text)


# ---- deadlines and sizes ---------------------------------------------------------------------


def test_a_dripping_answer_ends_at_the_deadline(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(request_deadline=1.0, max_retries=0)
    sandbox.inject("drip", "GET", "/metadata", seconds=0.2)
    with pytest.raises(TransportError) as caught:
        kayse.metadata.case_types()
    assert "longer than 1s" in str(caught.value)
    assert kayse.metadata.case_types()  # the next request gets a clean connection


def test_a_dripping_answer_to_a_create_is_uncertain_and_never_resent(
    make_client: MakeClient, sandbox: Any
) -> None:
    kayse = make_client(request_deadline=1.0)
    sandbox.inject("drip", "POST", "/clients/bulk", seconds=0.2)
    with pytest.raises(OutcomeUnknown) as caught:
        kayse.upsert_clients([client_record(n) for n in range(2)])
    assert caught.value.in_flight == (0, 1)
    assert len(live_clients(sandbox)) == 2
    assert kayse.requests_sent == 1  # sent once, never again (the sandbox logs it once the drip ends)


def test_a_gzip_bomb_is_not_read_past_the_size_cap(make_client: MakeClient, sandbox: Any) -> None:
    kayse = make_client(max_answer_bytes=1 << 20, max_retries=0)
    sandbox.inject("bomb", "GET", "/metadata")
    with pytest.raises(TransportError) as caught:
        kayse.metadata.case_types()
    assert "larger than 1048576 bytes" in str(caught.value)
    sandbox.inject("bomb", "POST", "/clients/bulk")
    with pytest.raises(OutcomeUnknown):
        kayse.upsert_clients([client_record(1)])
    assert len(live_clients(sandbox)) == 1


def test_answers_below_the_cap_still_arrive_whole(make_client: MakeClient) -> None:
    kayse = make_client(max_answer_bytes=1 << 20)
    results = kayse.upsert_clients([client_record(n) for n in range(200)])
    assert all(r.ok for r in results) and len({r.id for r in results}) == 200


# ---- rate-limit resets that lie ----------------------------------------------------------------


def client_recording_waits(sandbox: Any, waits: list[float], **options: Any) -> KayseClient:
    options.setdefault("backoff_base", 0.01)
    options.setdefault("backoff_cap", 0.05)
    return KayseClient(sandbox.base_url, sandbox.api_key, sleep=waits.append, **options)


def test_a_reset_ten_years_ahead_waits_at_most_an_hourly_window(sandbox: Any) -> None:
    waits: list[float] = []
    with client_recording_waits(sandbox, waits) as kayse:
        sandbox.inject("reset", "GET", "/metadata", how="far")
        kayse.metadata.case_types()
        kayse.metadata.objects()  # the window looks spent: the client waits first
    assert waits and max(waits) <= LONGEST_WINDOW_WAIT + 1


def test_a_wait_past_max_wait_names_a_capped_reset(sandbox: Any) -> None:
    waits: list[float] = []
    with client_recording_waits(sandbox, waits, max_wait=10) as kayse:
        sandbox.inject("reset", "GET", "/metadata", how="far")
        kayse.metadata.case_types()
        with pytest.raises(WaitTooLong) as caught:
            kayse.metadata.objects()
    assert caught.value.wait_seconds <= LONGEST_WINDOW_WAIT + 1
    assert caught.value.reset_at is not None and math.isfinite(caught.value.reset_at)


@pytest.mark.parametrize("how", ["inf", "nan", "garbage", "inf-remaining"])
def test_a_meaningless_reset_header_never_crashes_or_waits_for_ever(sandbox: Any, how: str) -> None:
    waits: list[float] = []
    with client_recording_waits(sandbox, waits) as kayse:
        sandbox.inject("reset", "GET", "/metadata", how=how)
        kayse.metadata.case_types()
        assert kayse.metadata.objects()
    assert all(math.isfinite(w) and w <= LONGEST_WINDOW_WAIT + 1 for w in waits)
