"""Records into CSV tables, and a folder that is complete or absent.

Why it exists: a migration reads these files days later; they must hold every record once,
every value as served, and never look finished when the extract was killed half-way. So each
table is built whole in memory (the columns are the union of every record's fields, in first
seen order), the folder is written beside the target under a hidden name, and renamed over it
only once every file is on disk. Files are 0600 and folders 0700: they hold personal data.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.extract.axiomatic.jsontext import flatten
from pipeline.model import CrmFinding, UserError, problem

SUMMARY_FILE = "extract.json"
FILE_MODE = 0o600
DIR_MODE = 0o700


@dataclass
class Table:
    """One resource as rows of text cells, plus every JSON type seen per column."""

    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, str]] = field(default_factory=list)
    types: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # column → type → example ids


def build_table(records: Iterable[dict[str, Any]]) -> Table:
    table = Table()
    known: set[str] = set()
    for record in records:
        seen_types: dict[str, str] = {}
        cells = flatten(record, seen_types)
        for column in cells:
            if column not in known:
                known.add(column)
                table.columns.append(column)
        table.rows.append(cells)
        record_id = record.get("id")
        for column, json_kind in seen_types.items():
            if json_kind == "null":
                continue
            examples = table.types.setdefault(column, {}).setdefault(json_kind, [])
            if len(examples) < 3 and record_id is not None:
                examples.append(str(record_id))
    return table


def type_findings(resource: str, table: Table) -> list[CrmFinding]:
    """One finding per field served as more than one JSON type (null goes with any type)."""
    findings = []
    for column, kinds in table.types.items():
        if len(kinds) > 1:
            detail = " and ".join(sorted(kinds))
            examples = tuple(ex for kind in sorted(kinds) for ex in kinds[kind][:1])
            findings.append(
                CrmFinding(
                    problem("field-type-changed").code,
                    resource,
                    field=column,
                    detail=detail,
                    examples=examples,
                )
            )
    return findings


def _write_private(path: Path, write: Any) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with open(fd, "w", encoding="utf-8", newline="") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_csv(path: Path, table: Table) -> None:
    def write(handle: Any) -> None:
        writer = csv.DictWriter(handle, fieldnames=table.columns, restval="", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(table.rows)

    _write_private(path, write)


def write_json(path: Path, body: dict[str, Any]) -> None:
    _write_private(path, lambda handle: handle.write(json.dumps(body, indent=2, ensure_ascii=False) + "\n"))


def check_target(out_dir: Path) -> None:
    """Refuse to replace a folder that is not a previous extract (or empty): nothing else is lost."""
    parent = out_dir.parent
    if not parent.is_dir():
        raise UserError(
            f"{parent} does not exist", hint="create the parent folder first, or pick another --out"
        )
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UserError(f"{out_dir} exists and is not a folder", hint="pick another --out")
        entries = list(out_dir.iterdir())
        if entries and not (out_dir / SUMMARY_FILE).is_file():
            raise UserError(
                f"{out_dir} exists and is not an extract folder (no {SUMMARY_FILE})",
                hint="an extract replaces its --out folder whole: pick a new or empty folder",
            )


class StagingFolder:
    """A hidden folder beside the target; `publish` renames it over the target, else it is removed."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
        os.chmod(self.path, DIR_MODE)

    def publish(self) -> None:
        """Swap in the finished folder. A crash between the two renames leaves the target absent
        and the previous extract under `.NAME.old-*` beside it: never a half-written target."""
        _fsync_dir(self.path)
        old: Path | None = None
        if self.out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{self.out_dir.name}.old-", dir=self.out_dir.parent))
            os.rename(self.out_dir, old / self.out_dir.name)
        os.rename(self.path, self.out_dir)
        _fsync_dir(self.out_dir.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
