"""The decisions CSV: the operator's answers for many uncertain records at once.

`kayse-etl uncertain --csv FILE` writes one row per uncertain record with an empty `kayse_id`;
the operator fills in the id found in the Kayse web app, or the word `recreate`, and passes the
file to `kayse-etl resolve --from-csv FILE`. Rows left blank stay uncertain.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.model import ENTITY_KINDS, Decision, UncertainRow, UserError, printable

COLUMNS = ("kind", "key", "run", "batch", "kayse_id")


def write_decisions_template(rows: Sequence[UncertainRow], path: Path) -> Path:
    """One row per uncertain record, `kayse_id` left for the operator to fill in. The file is
    the owner's only (0600): its keys are the source system's ids of people."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file that was there keeps no wider mode
    with open(descriptor, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows([r.kind, r.source_key, r.run_id, r.batch_id, ""] for r in rows)
    return path


def read_decisions(path: Path) -> list[Decision]:
    """Rows with a Kayse id or the word `recreate` in `kayse_id`; blank rows are left uncertain."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as error:
        raise UserError(f"cannot read {printable(path)}: {error.strerror}") from None
    decisions = []
    for number, row in enumerate(rows, start=2):
        kind, key, value = ((row.get(c) or "").strip() for c in ("kind", "key", "kayse_id"))
        if not value:
            continue
        if kind not in ENTITY_KINDS or not key:
            raise UserError(
                f"{path} row {number}: kind must be one of {', '.join(ENTITY_KINDS)} and key must be set"
            )
        if value.lower() == "recreate":
            decisions.append(Decision(kind, key, None))
        elif value.isdigit():
            decisions.append(Decision(kind, key, int(value)))
        else:
            raise UserError(
                f"{path} row {number}: kayse_id must be a number or the word recreate, not {value!r}"
            )
    return decisions
