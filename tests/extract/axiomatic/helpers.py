"""Helpers of the extractor's tests: a small CRM, reading the tables, the test's own oracle."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def small(server: Any, **changes: Any) -> None:
    """A small CRM (still messy): about 60 requests per extract."""
    server.configure(**{"contacts": 60, "companies": 8, "leads": 80, **changes})


def read_table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def summary(out: Path) -> dict[str, Any]:
    return json.loads((out / "extract.json").read_text(encoding="utf-8"))


def served_cells(record: dict[str, Any]) -> dict[str, Any]:
    """The test's own reading of a record as served: dotted leaves, each the text json.dumps wrote
    (the local Axiomatic serves with json.dumps), lists kept as values to compare after parsing."""
    cells: dict[str, Any] = {}

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, name + ".")
            elif isinstance(value, list):
                cells[name] = value
            elif value is None:
                cells[name] = ""
            elif isinstance(value, str):
                cells[name] = value
            else:  # numbers and booleans: their JSON text
                cells[name] = json.dumps(value)

    walk(record, "")
    return cells


def assert_table_is_exactly(rows: list[dict[str, str]], records: list[dict[str, Any]], what: str) -> None:
    """Every served record once, every field's text equal to the served value, no extra values."""
    assert len(rows) == len(records), f"{what}: {len(rows)} rows for {len(records)} records"
    by_id = {row["id"]: row for row in rows if row.get("id")}
    without_id = [row for row in rows if not row.get("id")]
    unmatched = list(without_id)
    for record in records:
        expected = served_cells(record)
        if record.get("id") is not None:
            row = by_id[str(record["id"])]
        else:  # no id: find it by its content
            row = next(r for r in unmatched if all(_same(r.get(k, ""), v) for k, v in expected.items()))
            unmatched.remove(row)
        for column, value in row.items():
            if column not in expected:
                assert value == "", f"{what} {record.get('id')}: {column}={value!r} was never served"
        for column, value in expected.items():
            assert _same(row[column], value), (
                f"{what} {record.get('id')}: {column} {row[column]!r} != {value!r}"
            )


def _same(cell: str, expected: Any) -> bool:
    if isinstance(expected, list):
        return json.loads(cell) == expected if cell else False
    return cell == expected
