"""Keys in order (as exports often are, by id) take shorter roads; each gives the plain answer.

A repeated key in a sorted column is found by its neighbours, a contact's first row by where
its run of rows starts, and a strictly ascending key column is unique without counting. Held
here to the general computation, on sorted and on shuffled rows alike.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import GENERIC, build_frame
from pipeline.mapping import apply_mapping, load_mapping
from pipeline.model import SOURCE_FILE, SOURCE_ROW, Extracted, MappingSpec, SourceInfo, ValidationResult
from pipeline.validate import core, validate
from pipeline.validate.schema import Rule, case_contract, client_contract, contract_problems

TODAY = dt.date(2026, 6, 15)
GENERIC_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "generic.yaml"

keys = st.lists(st.one_of(st.none(), st.sampled_from(["K1", "K2", "K3", "", "k1"]), st.text(max_size=2)))


@settings(max_examples=120, deadline=None)
@given(values=keys, in_order=st.booleans())
def test_may_repeat_marks_every_repeated_value_in_order_or_not(
    values: list[str | None], in_order: bool
) -> None:
    if in_order:  # sorted, the nulls left where they fall among them
        present = iter(sorted(v for v in values if v is not None))
        values = [None if v is None else next(present) for v in values]
    series = pl.Series(values, dtype=pl.String)
    may = core._may_repeat(series)
    assert not (series.is_duplicated() & ~may).any()
    if core._in_order(series):  # then exact for every present value
        assert (series.is_duplicated() | series.is_null()).to_list() == may.to_list()


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(GENERIC_MAPPING)


def generated(rows: int, defect_rate: float, seed: int, shuffled: bool) -> Extracted:
    frame, _, _ = build_frame(GENERIC, rows, seed=seed, defect_rate=defect_rate)
    if shuffled:  # a contact's rows apart, and the ids out of order
        frame = frame.sample(fraction=1.0, shuffle=True, seed=seed)
    frame = frame.with_columns(
        pl.lit("export.csv").alias(SOURCE_FILE),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias(SOURCE_ROW),
    )
    info = SourceInfo(path="export.csv", format="csv", rows=frame.height, columns=tuple(frame.columns[:-2]))
    return Extracted(frame=frame, info=info)


def frames(result: ValidationResult) -> list[pl.DataFrame]:
    return [result.clients, result.cases, result.rejects, result.warnings, result.rejected_rows]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), share=st.floats(0.0, 0.5), shuffled=st.booleans())
def test_keys_in_order_give_what_the_general_grouping_gives(
    spec: MappingSpec, monkeypatch: pytest.MonkeyPatch, seed: int, share: float, shuffled: bool
) -> None:
    extracted = generated(300, share, seed, shuffled)
    expected = validate(apply_mapping([extracted], spec), spec, today=TODAY)
    with monkeypatch.context() as patched:
        patched.setattr(core, "_in_order", lambda values: False)
        general = validate(apply_mapping([extracted], spec), spec, today=TODAY)
    for ours, plain in zip(frames(expected), frames(general), strict=True):
        assert ours.equals(plain)


def test_generated_exports_do_take_the_roads_for_keys_in_order(spec: MappingSpec) -> None:
    """The comparison above means something only if sorted exports reach the in-order path."""
    mapped = apply_mapping([generated(300, 0.05, 1, shuffled=False)], spec)
    assert core._in_order(mapped.clients.get_column("external_source_id"))
    assert core._in_order(mapped.cases.get_column("external_source_id"))
    result = validate(mapped, spec, today=TODAY)
    assert result.warnings.height  # contacts with several rows that disagree


def _frame_with_keys(spec: MappingSpec, key_values: list[str | None]) -> pl.DataFrame:
    contract = case_contract(spec)
    rows = len(key_values)
    return pl.DataFrame(
        {name: ["x"] * rows if name != SOURCE_ROW else [2] * rows for name in contract.columns},
        schema={name: c.dtype for name, c in contract.columns.items()},
    ).with_columns(
        external_source_id=pl.Series(key_values, dtype=pl.String),
        type=pl.lit(spec.case_types[0]),
        status=pl.lit(spec.case_statuses[0]),
        **{"external_source_data.incident_date": pl.lit("2021-01-02")},
    )


@settings(max_examples=120, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "ab"])), max_size=8),
    sort=st.booleans(),
)
def test_the_contract_counts_repeated_keys_whether_ascending_or_not(
    spec: MappingSpec, values: list[str | None], sort: bool
) -> None:
    if sort:
        values = sorted(v for v in values if v is not None)
    frame = _frame_with_keys(spec, values)
    found = [
        p for p in contract_problems(frame, case_contract(spec)) if p.startswith("external_source_id: unique")
    ]
    repeats = len(values) - pl.Series(values, dtype=pl.String).n_unique()
    assert found == ([f"external_source_id: unique failed {repeats}x"] if repeats else [])


@settings(max_examples=120, deadline=None)
@given(
    allowed=st.lists(
        st.sampled_from(["open", "closed", "Open", "a", "b", "c", "d", "e", "f", "g", "h"]),
        min_size=1,
        max_size=10,
        unique=True,
    ),
    cells=st.lists(st.one_of(st.none(), st.sampled_from(["open", "closed", "Open", "a", "h", "", "z"]))),
)
def test_an_allowed_list_holds_exactly_for_its_members_short_or_long(
    allowed: list[str], cells: list[str | None]
) -> None:
    column = pl.Series("c", cells, dtype=pl.String)
    holds = column.to_frame().select(Rule("isin", tuple(allowed)).holds(pl.col("c"))).to_series()
    assert [h for h, c in zip(holds.to_list(), cells, strict=True) if c is not None] == [
        c in allowed for c in cells if c is not None
    ]


def test_the_client_contract_still_finds_a_repeated_ascending_neighbour(spec: MappingSpec) -> None:
    contract = client_contract(spec)
    frame = pl.DataFrame(
        {name: ["x"] * 3 if name != SOURCE_ROW else [2] * 3 for name in contract.columns},
        schema={name: c.dtype for name, c in contract.columns.items()},
    ).with_columns(external_source_id=pl.Series(["a", "b", "b"]), state=pl.lit("TX"))
    assert [p for p in contract_problems(frame, contract) if p.startswith("external_source_id")] == [
        "external_source_id: unique failed 1x"
    ]
