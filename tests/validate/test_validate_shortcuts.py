"""The shortcuts validate takes for speed give exactly what the plain computation gives.

Distinct values are judged once and given back to the rows (a row keeping its own cell when the
normalizer leaves it as written); repeated keys are found through hashes; a column with nothing
to trim is handed on as it is. Each is held here to the plain, cell-by-cell answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.generate import GENERIC, build_frame
from pipeline.mapping import apply_mapping, load_mapping
from pipeline.model import SOURCE_FILE, SOURCE_ROW, Extracted, MappingSpec, SourceInfo, ValidationResult
from pipeline.validate import core, validate
from pipeline.validate import normalize as n
from pipeline.validate.phones import normalize_phone, to_e164
from pipeline.validate.schema import client_contract, contract_problems

TODAY = dt.date(2026, 6, 15)
GENERIC_MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "generic.yaml"

# Cells close to what each normalizer sees, with padding, case and blanks, so lists repeat values.
_CELLS = [
    "", " ", "\u00a0", "\t x \n", "Ana", " ana ", "ANA", "Zoë  Li", "Mary   Ann", "x", "X",
    "NY", " n.y. ", "New York", "texas", "Tx", "zz", "02134", "2134", " 12345 6789", "123456789",
    "12345.0", "1234567", "03/04/1980", "1980-3-4", " 2021-03-04T00:00:00 ", "02/30/1999",
    "3/4/85", "12/31/2099", "01/01/1850", "yes", "N", "0", "maybe", "civil", " PI ",
    "Personal_Injury", "a@b.co", " A@B.CO ", "a@b", "x y@z.de", "(212) 555-1234", "2125551234",
    "+44 20 7946 0958", "555-0100", "İstanbul", "ǅemal", "Σ",
]  # fmt: skip
cells = st.lists(st.one_of(st.none(), st.sampled_from(_CELLS), st.text(max_size=6)), max_size=40)

NORMALIZERS: dict[str, Callable[[pl.Series], n.Normalized]] = {
    "string": n.normalize_string,
    "name": n.normalize_name,
    "email": n.normalize_email,
    "date": lambda s: n.normalize_date(s, "MDY"),
    "date DMY": lambda s: n.normalize_date(s, "DMY"),
    "birth_date": lambda s: n.normalize_birth_date(s, "MDY", TODAY),
    "state": n.normalize_state,
    "zip": n.normalize_zip,
    "bool": n.normalize_bool,
    "choice": lambda s: n.normalize_choice(s, ("civil", "Personal_Injury"), "case-type"),
    "phone": lambda s: normalize_phone(s, "US"),
}


def chunked(values: list[str | None], pieces: int) -> pl.Series:
    """The values as one Series of several chunks, as the CSV reader hands them on."""
    size = max(1, -(-len(values) // pieces))
    parts = [pl.Series("x", values[i : i + size], dtype=pl.String) for i in range(0, len(values), size)]
    return pl.concat(parts, rechunk=False) if parts else pl.Series("x", [], dtype=pl.String)


def one_by_one(normalizer: Callable[[pl.Series], n.Normalized], values: list[str | None]) -> list[object]:
    results = [normalizer(pl.Series("x", [value], dtype=pl.String)) for value in values]
    return [(r.value.to_list()[0], r.reason.to_list()[0]) for r in results]


@pytest.mark.parametrize("kind", list(NORMALIZERS))
@settings(max_examples=40, deadline=None)
@given(values=cells, pieces=st.integers(1, 4))
def test_a_column_is_judged_as_its_cells_one_by_one(kind: str, values: list[str | None], pieces: int) -> None:
    normalizer = NORMALIZERS[kind]
    result = normalizer(chunked(values, pieces))
    assert list(zip(result.value.to_list(), result.reason.to_list(), strict=True)) == one_by_one(
        normalizer, values
    )
    assert result.value.name == "x" and result.value.len() == len(values)
    assert result.bad().to_list() == [reason is not None for reason in result.reason.to_list()]
    bad = result.bad().arg_true()
    assert result.reasons_at(bad).to_list() == result.reason.gather(bad).to_list()


@settings(max_examples=80, deadline=None)
@given(values=cells, pieces=st.integers(1, 4))
def test_distinct_values_give_every_cell_back(values: list[str | None], pieces: int) -> None:
    text = chunked(values, pieces)
    positions, distinct = n.distinct_values(text)
    assert distinct.get_column("text").gather(positions).to_list() == values
    assert distinct.get_column("text").drop_nulls().n_unique() == distinct.height - 1  # each once, null last
    assert distinct.get_column("text")[-1] is None


@settings(max_examples=80, deadline=None)
@given(
    values=st.lists(st.sampled_from(["a", "b", "c", "d", None]), max_size=60),
    changes=st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]), st.one_of(st.none(), st.sampled_from(["a", "z"]))
    ),
)
def test_rows_keep_their_cell_only_where_the_value_is_that_cell(
    values: list[str | None], changes: dict[str, str | None]
) -> None:
    """Whether few rows change (written into the column) or many (all gathered), or some empty."""
    text = pl.Series("x", values, dtype=pl.String)
    positions, distinct = n.distinct_values(text)
    table = distinct.get_column("text")
    value = pl.Series(
        [changes.get(v, v) if v is not None else None for v in table.to_list()], dtype=pl.String
    )
    assert n.per_row(text, table, value, positions).to_list() == value.gather(positions).to_list()


@settings(max_examples=80, deadline=None)
@given(values=cells, pieces=st.integers(1, 4))
def test_a_string_column_is_trimmed_whether_or_not_it_needs_it(values: list[str | None], pieces: int) -> None:
    text = chunked(values, pieces)
    assert (
        n.normalize_string(text).value.to_list() == pl.select(n.trimmed(pl.lit(text))).to_series().to_list()
    )


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["K1", "K2", "", "k1", "K1 "]), st.text(max_size=3))))
def test_may_repeat_marks_every_repeated_value(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.String)
    may = core._may_repeat(series)
    assert not (series.is_duplicated() & ~may).any()


def test_phone_normalizer_is_to_e164_with_a_reason_for_each_bad_cell() -> None:
    texts = ["(212) 555-1234", " ", "", None, "bad", "555-0100", "+44 20 7946 0958", "bad"]
    result = normalize_phone(pl.Series("m", texts, dtype=pl.String), "US")
    assert result.value.to_list() == to_e164(pl.Series("m", texts, dtype=pl.String), "US").to_list()
    assert result.reason.to_list() == [None, None, None, None, "phone", "phone", None, "phone"]


def test_a_repeated_key_is_counted_exactly_by_the_contract() -> None:
    spec = load_mapping(GENERIC_MAPPING)
    contract = client_contract(spec)
    frame = pl.DataFrame(
        {name: ["x"] * 5 if name != "source_row" else [2] * 5 for name in contract.columns},
        schema={name: c.dtype for name, c in contract.columns.items()},
    ).with_columns(external_source_id=pl.Series(["a", "a", "b", "b", "b"]), state=pl.lit("TX"))
    assert [p for p in contract_problems(frame, contract) if p.startswith("external_source_id")] == [
        "external_source_id: unique failed 3x"
    ]


# ---- whole validations -------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> MappingSpec:
    return load_mapping(GENERIC_MAPPING)


def generated(rows: int, defect_rate: float, seed: int, pieces: int) -> Extracted:
    frame, _, _ = build_frame(GENERIC, rows, seed=seed, defect_rate=defect_rate)
    frame = frame.with_columns(
        pl.lit("export.csv").alias(SOURCE_FILE),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias(SOURCE_ROW),
    )
    size = -(-rows // pieces)
    frame = pl.concat([frame.slice(i, size) for i in range(0, rows, size)], rechunk=False)
    info = SourceInfo(path="export.csv", format="csv", rows=frame.height, columns=tuple(frame.columns[:-2]))
    return Extracted(frame=frame, info=info)


def frames(result: ValidationResult) -> list[pl.DataFrame]:
    return [result.clients, result.cases, result.rejects, result.warnings, result.rejected_rows]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), share=st.floats(0.0, 0.5), pieces=st.integers(1, 5))
def test_a_prefilter_that_lets_every_row_through_changes_nothing(
    spec: MappingSpec, monkeypatch: pytest.MonkeyPatch, seed: int, share: float, pieces: int
) -> None:
    """Repeated keys are only narrowed down by hash: the grouping after it decides, exactly."""
    extracted = generated(300, share, seed, pieces)
    expected = validate(apply_mapping([extracted], spec), spec, today=TODAY)
    with monkeypatch.context() as patched:
        patched.setattr(core, "_may_repeat", lambda values: pl.repeat(True, values.len(), eager=True))
        everything = validate(apply_mapping([extracted], spec), spec, today=TODAY)
    for ours, plain in zip(frames(expected), frames(everything), strict=True):
        assert ours.equals(plain)


def test_a_shared_hash_alone_is_not_a_duplicate_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uniqueness is first counted by hash; when hashes collide, the values themselves decide."""
    spec = load_mapping(GENERIC_MAPPING)
    contract = client_contract(spec)
    frame = pl.DataFrame(
        {name: ["x"] * 3 if name != "source_row" else [2] * 3 for name in contract.columns},
        schema={name: c.dtype for name, c in contract.columns.items()},
    ).with_columns(external_source_id=pl.Series(["a", "b", "c"]), state=pl.lit("TX"))
    monkeypatch.setattr(pl.Expr, "hash", lambda self, *args, **kwargs: pl.lit(0, dtype=pl.UInt64))
    assert not [p for p in contract_problems(frame, contract) if p.startswith("external_source_id")]
    duplicated = frame.with_columns(external_source_id=pl.Series(["a", "b", "a"]))
    assert [p for p in contract_problems(duplicated, contract) if p.startswith("external_source_id")] == [
        "external_source_id: unique failed 1x"
    ]
