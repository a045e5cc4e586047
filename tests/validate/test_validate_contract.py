"""The run-time output check says exactly what pandera says of the same frame.

`validate` checks its output with polars expressions built from the same rules as the pandera
schemas (so a million rows do not pay for importing and running pandera); this holds the two
to the same verdict, column by column, on frames made to break every rule.
"""

from __future__ import annotations

from pathlib import Path

import pandera.errors
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.mapping import load_mapping
from pipeline.model import MappingSpec
from pipeline.validate.schema import Contract, client_contract, contract_problems

ROOT = Path(__file__).resolve().parents[2]

# Per client column of mappings/generic.yaml: values that keep the rule, and values that break it.
GOOD = {
    "external_source_id": ["C1", "C2", "C3", "Ω"],
    "first_name": ["Ana", "Zoë"],
    "last_name": ["Li", "O'Neil"],
    "email": ["a@b.co", "x.y@example.com"],
    "mobile": ["+12125550123", "+447911123456"],
    "date_of_birth": ["1980-02-29", "2001-12-31"],
    "address_line1": ["1 Main St"],
    "address_line2": ["Apt 2"],
    "city": ["Austin"],
    "state": ["TX", "DC"],
    "postal_code": ["12345", "12345-6789"],
    "source_file": ["a.csv"],
}
BAD = {
    "external_source_id": [""],
    "first_name": [""],
    "email": ["a@b", "a b@c.de"],
    "mobile": ["212-555-0123", "+0123456789"],
    "date_of_birth": ["1980-13-01", "01/02/1980"],
    "state": ["Texas", "tx"],
    "postal_code": ["1234", "12345-67"],
}


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(ROOT / "mappings" / "generic.yaml")


def _pandera_columns(frame: pl.DataFrame, contract: Contract) -> set[str]:
    try:
        contract.to_pandera().validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        return {str(c) for c in errors.failure_cases.get_column("column").to_list() if c is not None}
    return set()


def _ours(frame: pl.DataFrame, contract: Contract) -> set[str]:
    return {problem.split(":")[0] for problem in contract_problems(frame, contract)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_polars_check_agrees_with_pandera(spec: MappingSpec, data: st.DataObject) -> None:
    contract = client_contract(spec)
    height = data.draw(st.integers(1, 4))
    columns: dict[str, list[object]] = {}
    for name, rules in contract.columns.items():
        if name == "source_row":
            columns[name] = data.draw(st.lists(st.integers(-1, 5), min_size=height, max_size=height))
            continue
        choices = GOOD.get(name, ["x"]) + BAD.get(name, []) + ([None] if rules.nullable or height > 1 else [])
        columns[name] = data.draw(st.lists(st.sampled_from(choices), min_size=height, max_size=height))
    frame = pl.DataFrame(columns, schema={name: c.dtype for name, c in contract.columns.items()})
    assert _ours(frame, contract) == _pandera_columns(frame, contract)


def test_a_frame_that_keeps_the_contract_passes_both(spec: MappingSpec) -> None:
    contract = client_contract(spec)
    frame = pl.DataFrame(
        {name: [GOOD.get(name, ["x"])[0]] if name != "source_row" else [2] for name in contract.columns},
        schema={name: c.dtype for name, c in contract.columns.items()},
    )
    assert contract_problems(frame, contract) == []
    contract.to_pandera().validate(frame)


def test_wrong_columns_or_dtypes_are_named(spec: MappingSpec) -> None:
    contract = client_contract(spec)
    frame = pl.DataFrame({name: ["x"] for name in contract.columns})  # source_row as text
    assert contract_problems(frame, contract) == ["source_row: dtype String is not Int64"]
    assert "columns are" in contract_problems(frame.drop("city"), contract)[0]
