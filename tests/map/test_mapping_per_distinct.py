"""Value-mapped fields are worked out once per distinct cell: the same text as cell by cell."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.mapping import apply_mapping, field_expr, load_mapping
from pipeline.model import SOURCE_FILE, SOURCE_ROW, Extracted, SourceInfo

MAPPING = """
external_source: import
client:
  key: Contact ID
  fields: {first_name: First, last_name: Last}
case:
  key: Case ID
  fields:
    type: {column: Type, value_map: {"PI": personal_injury, " Slip ": premises}}
    status: {column: Status, default: open, value_map: {"Open - Active": open, "done": closed}}
allowed: {case_types: [personal_injury, premises, civil], case_statuses: [open, closed]}
"""

_CELLS = [
    "PI",
    " pi ",
    "Pi",
    "slip",
    " SLIP",
    "civil",
    "",
    " ",
    "Open - Active",
    "open - active ",
    "done",
    "DONE",
]
cells = st.lists(st.one_of(st.none(), st.sampled_from(_CELLS), st.text(max_size=4)), min_size=1, max_size=30)


def source(types: list[str | None], statuses: list[str | None], pieces: int) -> Extracted:
    rows = len(types)
    frame = pl.DataFrame(
        {
            "Contact ID": [f"C{i}" for i in range(rows)],
            "First": ["Ana"] * rows,
            "Last": ["Lee"] * rows,
            "Case ID": [f"K{i}" for i in range(rows)],
            "Type": types,
            "Status": statuses,
        },
        schema={c: pl.String for c in ("Contact ID", "First", "Last", "Case ID", "Type", "Status")},
    ).with_columns(
        pl.lit("leads.csv").alias(SOURCE_FILE), pl.int_range(2, rows + 2, dtype=pl.Int64).alias(SOURCE_ROW)
    )
    size = -(-rows // pieces)
    frame = pl.concat([frame.slice(i, size) for i in range(0, rows, size)], rechunk=False)
    info = SourceInfo(path="/data/leads.csv", format="csv", rows=rows, columns=tuple(frame.columns[:-2]))
    return Extracted(frame=frame, info=info)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), pieces=st.integers(1, 4))
def test_value_maps_per_distinct_cell_match_the_cell_by_cell_expression(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, pieces: int
) -> None:
    types = data.draw(cells)
    statuses = data.draw(
        st.lists(st.one_of(st.none(), st.sampled_from(_CELLS)), min_size=len(types), max_size=len(types))
    )
    path = tmp_path_factory.mktemp("map") / "m.yaml"
    path.write_text(MAPPING, encoding="utf-8")
    spec = load_mapping(path)
    extracted = source(types, statuses, pieces)
    mapped = apply_mapping([extracted], spec)
    by_cell = extracted.frame.select(field_expr(f).alias(f.kayse_field) for f in spec.case.fields)
    assert mapped.cases.select(by_cell.columns).equals(by_cell)
    assert mapped.cases.schema["type"] == pl.String and mapped.cases.schema["status"] == pl.String
