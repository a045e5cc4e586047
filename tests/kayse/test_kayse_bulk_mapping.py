"""Mapping a 200 bulk answer back to input items, whichever shape the API uses (partial success or a refused batch)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pipeline.kayse import BulkItemResult, map_bulk_response


def _batch(size: int, with_ids: set[int]) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    for position in range(size):
        item: dict[str, Any] = {"external_source_id": f"e{position}", "first_name": "x"}
        if position in with_ids:
            item["id"] = 1000 + position
        batch.append(item)
    return batch


def _answer(batch: list[dict[str, Any]], failed_positions: set[int], echo_failed: bool) -> dict[str, Any]:
    records: list[Any] = []
    failed: list[dict[str, Any]] = []
    for position, item in enumerate(batch):
        if position in failed_positions:
            failed.append({"index": position, "error": "bad request", "message": f"item {position} is bad"})
            if echo_failed:
                records.append(None)
            continue
        records.append(
            {"id": item.get("id", 5000 + position), "external_source_id": item["external_source_id"]}
        )
    return {"clients": records, "successful_ids": [r["id"] for r in records if r], "failed": failed}


@given(
    data=st.data(),
    size=st.integers(min_value=1, max_value=30),
    offset=st.integers(min_value=0, max_value=1000),
    echo_failed=st.booleans(),
)
def test_each_item_gets_its_own_outcome(
    data: st.DataObject, size: int, offset: int, echo_failed: bool
) -> None:
    failed_positions = data.draw(st.sets(st.integers(min_value=0, max_value=size - 1)))
    with_ids = data.draw(st.sets(st.integers(min_value=0, max_value=size - 1)))
    batch = _batch(size, with_ids)
    answer = _answer(batch, failed_positions, echo_failed)
    answer["failed"] = data.draw(st.permutations(answer["failed"]))  # order of failed[] must not matter
    indices = [offset + p for p in range(size)]

    results = map_bulk_response(indices, batch, answer, "clients")

    assert [r.index for r in results] == indices
    for position, result in enumerate(results):
        if position in failed_positions:
            assert not result.ok
            assert result.message == f"item {position} is bad"
        elif position in with_ids:
            assert result == BulkItemResult(offset + position, True, 1000 + position, action="updated")
        else:
            assert result == BulkItemResult(offset + position, True, 5000 + position, action="created")


def test_failed_without_index_is_matched_by_external_id() -> None:
    batch = _batch(3, set())
    answer = {
        "clients": [{"id": 1, "external_source_id": "e0"}, {"id": 3, "external_source_id": "e2"}],
        "failed": [{"external_source_id": "e1", "error": "bad request", "message": "mobile: invalid"}],
    }
    results = map_bulk_response([0, 1, 2], batch, answer, "clients")
    assert [(r.ok, r.id) for r in results] == [(True, 1), (False, None), (True, 3)]
    assert results[1].message == "mobile: invalid"


def test_records_out_of_order_are_matched_by_external_id() -> None:
    batch = _batch(3, set())
    answer = {
        "clients": [
            {"id": 30, "external_source_id": "e2"},
            {"id": 10, "external_source_id": "e0"},
            {"id": 20, "external_source_id": "e1"},
        ]
    }
    results = map_bulk_response([0, 1, 2], batch, answer, "clients")
    assert [r.id for r in results] == [10, 20, 30]


def test_gh_style_answer_without_failed_list() -> None:
    batch = _batch(2, set())
    answer = {"clients": [{"id": 7}, {"id": 8}]}
    results = map_bulk_response([4, 5], batch, answer, "clients")
    assert [(r.index, r.ok, r.id, r.action) for r in results] == [
        (4, True, 7, "created"),
        (5, True, 8, "created"),
    ]


def test_create_whose_id_is_missing_is_flagged_not_guessed() -> None:
    batch = _batch(2, set())
    results = map_bulk_response([0, 1], batch, {"clients": []}, "clients")
    assert all(not r.ok and r.error == "id-unknown" for r in results)
