"""The vocabulary of the house: the values that pass between the pipeline's stages.

extract → map → validate → plan → load → report. Each stage takes and returns only the
types below (plus polars frames), so no stage needs to import another. Keep this module
free of behaviour beyond small helpers on the values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any, Literal

import polars as pl

# --------------------------------------------------------------------------------------
# Exit codes and user-facing errors
# --------------------------------------------------------------------------------------


class ExitCode(IntEnum):
    """Process exit codes, documented in the README. Stay within 0–125."""

    OK = 0  # everything valid / loaded
    REJECTED = 1  # finished, but some rows were rejected (validation or by the API)
    USAGE = 2  # usage or configuration problem: nothing was done
    STOPPED = 3  # stopped early (API unreachable, key refused, --max-wait exceeded); rerun continues
    INTERNAL = 4  # a bug in kayse-etl (never a data problem): reported with its traceback


class UserError(Exception):
    """A foreseeable problem a person can fix: shown as one line plus a hint, never a traceback.

    Raise it anywhere a user's input (file, mapping, flag, key, network) is at fault. The
    message must never contain the API key.
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: ExitCode = ExitCode.USAGE):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


# --------------------------------------------------------------------------------------
# Extract
# --------------------------------------------------------------------------------------

SOURCE_ROW = "source_row"
"""Column present in every frame from extract on: the row number a person sees in the
spreadsheet (header = row 1, first data row = row 2; a CSV record spanning lines counts once)."""

SOURCE_FILE = "source_file"
"""Column naming the file (basename) a row came from, so rows of several sources stay traceable."""


@dataclass(frozen=True)
class SourceInfo:
    """What a reader detected about one source, shown in reports ("read leads.csv as cp1252…")."""

    path: str
    format: Literal["csv", "xlsx", "crm"]
    rows: int
    columns: tuple[str, ...]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = [f"{Path(self.path).name}: {self.format}"]
        if self.encoding:
            parts.append(self.encoding)
        if self.delimiter:
            parts.append(
                {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}.get(
                    self.delimiter, repr(self.delimiter)
                )
                + "-delimited"
            )
        if self.sheet:
            parts.append(f"sheet {self.sheet!r}")
        parts.append(f"{self.rows:,} row{'' if self.rows == 1 else 's'}")
        return ", ".join(parts)


REJECT_SCHEMA: dict[str, Any] = {
    SOURCE_FILE: pl.String,
    SOURCE_ROW: pl.Int64,
    "field": pl.String,
    "value": pl.String,
    "code": pl.String,
    "message": pl.String,
}
"""One problem per row of a rejects frame. `field` is the source column name where there is one
(what the user sees), `code` a stable slug (`invalid-phone`, `ragged-row`, …), `message` plain words."""


def empty_rejects() -> pl.DataFrame:
    return pl.DataFrame(schema=REJECT_SCHEMA)


@dataclass(frozen=True)
class Extracted:
    """One source read as text: every column pl.String, plus SOURCE_FILE and SOURCE_ROW.

    `problems` holds rows the reader could not take as they are (ragged rows): shaped like
    REJECT_SCHEMA, they are reported as rejects, never silently padded or dropped.
    """

    frame: pl.DataFrame
    info: SourceInfo
    problems: pl.DataFrame = field(default_factory=empty_rejects)


# --------------------------------------------------------------------------------------
# Mapping (parsed from mappings/*.yaml by pipeline.mapping)
# --------------------------------------------------------------------------------------

FieldType = Literal[
    "string",
    "name",
    "email",
    "phone",
    "date",
    "birth_date",
    "state",
    "zip",
    "bool",
    "case_type",
    "case_status",
]


@dataclass(frozen=True)
class FieldSpec:
    """Where one Kayse field comes from and how it is normalized."""

    kayse_field: str  # e.g. "mobile", or "external_source_data.incident_date"
    column: str | None  # source column; None when only a default feeds it
    type: FieldType = "string"
    required: bool = False
    default: str | None = None
    value_map: dict[str, str] = field(default_factory=dict)  # matched after trim, case-insensitive


@dataclass(frozen=True)
class EntitySpec:
    """How one Kayse entity (client or case) is built from a source row."""

    key_column: str  # source column holding the external_source_id
    fields: tuple[FieldSpec, ...]


@dataclass(frozen=True)
class ListSpec:
    """The case list(s) loaded cases go into. `name` may contain {case_type}."""

    name: str
    description: str | None = None
    per_case_type: bool = True


@dataclass(frozen=True)
class CampaignSpec:
    """A campaign on each list. Off unless the user passes --campaign: outreach reaches real people."""

    name: str  # may contain {case_type}
    messaging_only: bool = True
    days: int = 14  # run window length, starting on the load date
    agent_id: str | None = None
    start_time: str | None = None  # HH:mm, only for runs that place calls
    end_time: str | None = None


@dataclass(frozen=True)
class MappingSpec:
    name: str
    path: str
    external_source: str  # sent as external_source on clients and cases
    client: EntitySpec
    case: EntitySpec
    phone_region: str = "US"
    date_order: Literal["MDY", "DMY", "YMD"] = "MDY"
    case_types: tuple[str, ...] = ()
    case_statuses: tuple[str, ...] = ()
    case_list: ListSpec | None = None
    campaign: CampaignSpec | None = None
    sha256: str = ""  # of the mapping file's bytes, recorded with each run


@dataclass(frozen=True)
class MappedFrames:
    """The map stage's output, still text: one row per source row.

    clients / cases: SOURCE_FILE, SOURCE_ROW, the key (`external_source_id`; cases also
    CASE_CLIENT_KEY) and one column per FieldSpec.kayse_field, defaults and value maps applied.
    raw: the extracted rows as read (for rejects.csv), same row order.
    """

    clients: pl.DataFrame
    cases: pl.DataFrame
    raw: pl.DataFrame
    sources: tuple[SourceInfo, ...]
    problems: pl.DataFrame = field(default_factory=empty_rejects)


# --------------------------------------------------------------------------------------
# Validate
# --------------------------------------------------------------------------------------

CLIENT_KEY = "external_source_id"
CASE_CLIENT_KEY = "client_external_source_id"
"""On the cases frame: the external id of the case's contact (resolved to a Kayse id at load)."""

EXTRA_DATA_PREFIX = "external_source_data."
"""Frame columns named `external_source_data.<key>` become keys of the case's external_source_data."""


@dataclass(frozen=True)
class ValidationResult:
    """The outcome of validation: what would be sent, what was rejected, and why.

    clients: one row per contact, Kayse field names, normalized (strings; dates ISO; phones
             E.164; bool columns pl.Boolean), nulls for empty, plus SOURCE_FILE/SOURCE_ROW of
             the first valid row that carried the contact.
    cases:   one row per case, Kayse field names plus CASE_CLIENT_KEY and SOURCE_FILE/SOURCE_ROW.
    rejects: REJECT_SCHEMA, one row per problem; a rejected row contributes nothing.
    rejected_rows: the original columns (as read) of every rejected row, with SOURCE_FILE/SOURCE_ROW.
    warnings: REJECT_SCHEMA-shaped notes that did not reject a row (e.g. conflicting-contact).
    source_rows: every row as read (original columns, SOURCE_FILE/SOURCE_ROW), in source order,
             rows the reader could not take (ragged) included with empty cells: the annotated
             workbook and failed.csv show them as the user knows them. Shares the extracted
             frame's memory, so holding it costs no copy.
    """

    sources: tuple[SourceInfo, ...]
    mapping: MappingSpec
    rows_read: int
    clients: pl.DataFrame
    cases: pl.DataFrame
    rejects: pl.DataFrame
    rejected_rows: pl.DataFrame
    warnings: pl.DataFrame = field(default_factory=empty_rejects)
    source_rows: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def rows_rejected(self) -> int:
        return self.rejected_rows.height

    @property
    def rows_valid(self) -> int:
        return self.rows_read - self.rows_rejected


# --------------------------------------------------------------------------------------
# Plan and load (what to send, what the ledger already knows, what happened)
# --------------------------------------------------------------------------------------

EntityKind = Literal["client", "case", "case_list", "campaign"]


def payload_hash(payload: dict[str, Any]) -> str:
    """Fingerprint of exactly what was (or would be) sent: unchanged records are skipped on it."""
    import hashlib
    import json

    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one record on one target. `uncertain`: a create was sent and its
    answer lost, so Kayse may or may not hold it; it is never re-created without the operator."""

    kayse_id: int | None
    payload_hash: str | None
    state: Literal["done", "uncertain"]


@dataclass(frozen=True)
class LedgerSnapshot:
    """A read-only view of the ledger for one target, for planning. Keys are source keys:
    clients and cases "<external_source>:<external_source_id>", lists and campaigns their name."""

    target: str
    clients: dict[str, LedgerEntry] = field(default_factory=dict)
    cases: dict[str, LedgerEntry] = field(default_factory=dict)
    case_lists: dict[str, LedgerEntry] = field(default_factory=dict)
    campaigns: dict[str, LedgerEntry] = field(default_factory=dict)
    members: dict[str, frozenset[str]] = field(default_factory=dict)  # list key → case keys in it


@dataclass(frozen=True)
class RecordOp:
    """One client or case to send: a create (kayse_id None) or a full-record update.

    For cases, `payload` lacks `client_ids`: the load step adds `client_id`, or for a contact
    created in the same run the id Kayse gave it."""

    kind: Literal["client", "case"]
    key: str
    payload: dict[str, Any]
    kayse_id: int | None
    source_file: str
    source_row: int
    client_key: str | None = None  # cases: the contact's key
    client_id: int | None = None  # cases: the contact's Kayse id when already known at plan time

    @property
    def is_create(self) -> bool:
        return self.kayse_id is None


@dataclass(frozen=True)
class ListOp:
    """A case list to create (taking its first members in the create call), to recover by name
    (a previous create's answer was lost), or an existing list to attach new cases to and detach
    cases from that now belong in another list (their case type changed)."""

    key: str
    payload: dict[str, Any]  # name, description, … (include_ids added at load)
    case_type: str | None
    kayse_id: int | None
    recover: bool
    new_case_keys: tuple[str, ...]
    moved_case_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CampaignOp:
    key: str
    list_key: str
    payload: dict[str, Any]  # everything but case_list_id, added at load


@dataclass(frozen=True)
class RecordRef:
    """A record named for a person: which entity, which source row."""

    kind: EntityKind
    key: str
    source_file: str | None = None
    source_row: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    """What a load would send, decided entirely before anything is sent."""

    target: str
    batch_size: int
    clients: tuple[RecordOp, ...]
    cases: tuple[RecordOp, ...]
    case_lists: tuple[ListOp, ...]
    campaigns: tuple[CampaignOp, ...]
    unchanged: dict[str, int]  # kind → records already in Kayse as they are
    uncertain: tuple[RecordRef, ...]  # known uncertain, not sent until the operator resolves them
    blocked: tuple[RecordRef, ...]  # cases not sent because their client is uncertain
    requests: dict[str, int]  # step → API requests the plan needs

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def count(self, ops: tuple[RecordOp, ...], create: bool) -> int:
        return sum(1 for op in ops if op.is_create == create)


STEPS = ("clients", "cases", "case_lists", "membership", "campaigns")


@dataclass
class StepResult:
    sent: int = 0  # records sent (items, not requests)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    uncertain: int = 0
    blocked: int = 0
    removed: int = 0  # membership: cases taken out of a list (their case type changed)
    requests: int = 0  # API requests this step sent (retries and split batches included)


@dataclass(frozen=True)
class FailedRecord:
    """A record Kayse refused (or that could not be sent), with the API's words."""

    kind: EntityKind
    key: str
    source_file: str | None
    source_row: int | None
    error: str
    message: str


@dataclass(frozen=True)
class LoadedRow:
    """A source row whose case Kayse accepted in this run, with the ids Kayse holds it under."""

    source_file: str
    source_row: int
    client_key: str
    client_id: int | None
    case_key: str
    case_id: int
    action: Literal["created", "updated"]


@dataclass
class RunResult:
    """What a load did. Outcome: "ok", "rejected" (finished, some rows rejected or refused or
    uncertain), or "stopped" (ended early; the ledger holds what was done, a rerun continues)."""

    run_id: int
    target: str
    planned_requests: int
    steps: dict[str, StepResult] = field(default_factory=lambda: {s: StepResult() for s in STEPS})
    failed: list[FailedRecord] = field(default_factory=list)
    uncertain: list[RecordRef] = field(default_factory=list)
    blocked: list[RecordRef] = field(default_factory=list)
    loaded: list[LoadedRow] = field(default_factory=list)  # cases created or updated, in plan order
    requests_sent: int = 0
    outcome: Literal["ok", "rejected", "stopped"] = "ok"
    stopped_reason: str | None = None
