"""Synthetic generic exports (the benchmark's shape), built with polars so 1M rows take a second.

`generic_export(rows, defect_share=0.02, seed=0)` returns the raw text frame an extract of
the generic export would give (columns as in mappings/generic.yaml, plus source_file and
source_row). Every row it damages gets exactly one defect, so tests know the expected count.
Run as a script to time map + validate on a large frame:  python -m tests.validate.export_maker 1000000
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import polars as pl

from pipeline.model import SOURCE_FILE, SOURCE_ROW, Extracted, SourceInfo

COLUMNS = (
    "Contact ID", "First Name", "Last Name", "Email", "Mobile Phone", "Date of Birth", "Address 1",
    "Address 2", "City", "State", "ZIP", "Case ID", "Case Number", "Case Name", "Case Type",
    "Case Status", "Incident Date", "Description",
)  # fmt: skip

GENERIC_MAPPING = """\
name: generic
description: Generic flat lead export, one row per lead (a contact and one case).
external_source: import
phone_region: US
date_order: MDY
client:
  key: Contact ID
  fields:
    first_name: First Name
    last_name: Last Name
    email: Email
    mobile: Mobile Phone
    date_of_birth: Date of Birth
    address_line1: Address 1
    address_line2: Address 2
    city: City
    state: State
    postal_code: ZIP
case:
  key: Case ID
  fields:
    case_number: Case Number
    name: Case Name
    type:
      column: Case Type
      value_map: {"PI": personal_injury, "Personal Injury": personal_injury}
    status:
      column: Case Status
      default: open
      value_map: {"Open - Active": active}
    description: Description
    external_source_data.incident_date:
      column: Incident Date
      type: date
allowed:
  case_types: [personal_injury, civil, mass_tort, workers_comp, criminal]
  case_statuses: [active, open, pending, closed]
case_list:
  name: "kayse-etl import – {case_type}"
  per_case_type: true
"""

_FIRST = ["Ana", "José", "Zoë", "Li", "Mary Ann", "Oluwaseun", "Brian", "Siobhán", "Nguyễn", "Sam"]
_LAST = ["López", "Smith", "O'Brien", "Kowalski", "Đặng", "Johnson", "Müller", "Lee", "García", "Brown"]
_AREAS = ["212", "415", "617", "312", "713", "305", "404", "206", "303", "702", "801", "919"]
_STATES = ["NY", "California", "ma", "Texas", "FL", "il", "Washington", "CO", "nevada", "GA"]
_TYPES = ["PI", "civil", "Personal Injury", "mass_tort", "workers_comp", "criminal"]
_STATUSES = ["Open - Active", "open", "", "pending", "closed"]
_DEFECTS = [
    ("Mobile Phone", "555-0100"),
    ("Date of Birth", "02/30/1999"),
    ("Email", "not an email"),
    ("State", "Narnia"),
    ("Case Type", "bankruptcy"),
    ("Last Name", ""),
    ("ZIP", "12"),
]


def generic_export(
    rows: int, defect_share: float = 0.02, seed: int = 0, file_name: str = "export.csv"
) -> pl.DataFrame:
    salts = iter(range(1000))

    def ints(low: int, high: int) -> pl.Series:
        """Deterministic pseudo-random integers in [low, high), from polars' hash (no numpy here)."""
        hashed = pl.int_range(rows, eager=True).hash(seed * 1000 + next(salts))
        return (hashed % (high - low)).cast(pl.Int64) + low

    def pick(choices: list[str]) -> pl.Series:
        return pl.Series(choices, dtype=pl.String).gather(ints(0, len(choices)))

    index = pl.int_range(rows, eager=True)
    contact = (index // 2).cast(pl.String)  # two cases per contact
    frame = pl.DataFrame(
        {
            "Contact ID": "C" + contact,
            "First Name": pick(_FIRST),
            "Last Name": pick(_LAST),
            "Email": "person" + contact + "@example.com",
            "Mobile Phone": pick(_AREAS),
            "Date of Birth": ints(1, 13).cast(pl.String)
            + "/"
            + ints(1, 29).cast(pl.String)
            + "/"
            + ints(1940, 2005).cast(pl.String),
            "Address 1": ints(1, 9999).cast(pl.String) + " Main St",
            "Address 2": pick(["", "", "Apt 2"]),
            "City": pick(["Springfield", "Boston", "Austin"]),
            "State": pick(_STATES),
            "ZIP": ints(1000, 99999).cast(pl.String),
            "Case ID": "K" + index.cast(pl.String),
            "Case Number": "2024-" + index.cast(pl.String),
            "Case Name": "Matter " + index.cast(pl.String),
            "Case Type": pick(_TYPES),
            "Case Status": pick(_STATUSES),
            "Incident Date": "2024-0" + ints(1, 10).cast(pl.String) + "-15",
            "Description": pick(["Rear-end collision", "Slip and fall", ""]),
        }
    )
    phone = (
        "("
        + pick(_AREAS)
        + ") "
        + ints(200, 1000).cast(pl.String)
        + "-"
        + ints(0, 10000).cast(pl.String).str.zfill(4)
    )
    frame = frame.with_columns(phone.alias("Mobile Phone"))
    # Contacts keep one set of details across their rows, so only defects cause disagreement.
    same = (
        "First Name",
        "Last Name",
        "Mobile Phone",
        "Date of Birth",
        "Address 1",
        "Address 2",
        "City",
        "State",
        "ZIP",
    )
    frame = frame.with_columns(pl.col(c).first().over("Contact ID") for c in same)
    defective = ints(0, 1_000_000) < int(defect_share * 1_000_000)
    kind = ints(0, len(_DEFECTS))
    for k, (column, bad) in enumerate(_DEFECTS):
        mask = defective & (kind == k)
        frame = frame.with_columns(pl.when(mask).then(pl.lit(bad)).otherwise(pl.col(column)).alias(column))
    return frame.with_columns(
        pl.lit(file_name).alias(SOURCE_FILE), (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias(SOURCE_ROW)
    )


def as_extracted(frame: pl.DataFrame, file_name: str = "export.csv") -> Extracted:
    info = SourceInfo(
        path=file_name, format="csv", rows=frame.height, columns=COLUMNS, encoding="utf-8", delimiter=","
    )
    return Extracted(frame=frame, info=info)


def _time(rows: int) -> None:
    import tempfile

    from pipeline.mapping import apply_mapping, load_mapping
    from pipeline.validate import validate

    frame = generic_export(rows)
    with tempfile.TemporaryDirectory() as tmp:
        mapping_path = Path(tmp) / "generic.yaml"
        mapping_path.write_text(GENERIC_MAPPING, encoding="utf-8")
        csv_path = Path(tmp) / "export.csv"
        frame.drop(SOURCE_FILE, SOURCE_ROW).write_csv(csv_path)
        started = time.perf_counter()
        pl.read_csv(csv_path, infer_schema=False)
        read_csv = time.perf_counter() - started
        spec = load_mapping(mapping_path)
        started = time.perf_counter()
        mapped = apply_mapping([as_extracted(frame)], spec)
        mapped_at = time.perf_counter()
        result = validate(mapped, spec)
        done = time.perf_counter()
    print(
        f"{rows:,} rows: read_csv {read_csv:.2f}s, apply_mapping {mapped_at - started:.2f}s, "
        f"validate {done - mapped_at:.2f}s; valid {result.rows_valid:,}, rejected {result.rows_rejected:,}, "
        f"clients {result.clients.height:,}, cases {result.cases.height:,}, warnings {result.warnings.height:,}"
    )


if __name__ == "__main__":
    _time(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
