"""The vocabulary of the house: the values that pass between the pipeline's stages.

extract → map → validate → plan → load → report. Each stage takes and returns only the
types below (plus polars frames), so no stage needs to import another. Keep this module
free of behaviour beyond small helpers on the values themselves.
"""

from __future__ import annotations

import errno
import math
import re
import string
from collections.abc import Mapping
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
    TOO_MANY_REJECTED = 5  # load --max-rejected: the export is bad, nothing was sent


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


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: object) -> str:
    """`text` (a path, a file or sheet name, a message) safe to show on a terminal: every control
    character (newline, ESC, C1) is written as its escape, so a file named with a newline or a
    terminal escape sequence cannot forge lines or colours on the operator's screen."""
    return _CONTROL_CHARS.sub(lambda m: repr(m.group())[1:-1], str(text))


def storage_problem(error: BaseException, what: str) -> tuple[str, str] | None:
    """What a full disk, a read-only or a damaged file means, for `what` (e.g. "the ledger
    x.sqlite"): (message, hint). None when `error` is none of these, i.e. no fault of the machine.
    SQLite's errors are told apart by their result code's name."""
    name = str(getattr(error, "sqlite_errorname", ""))
    code = getattr(error, "errno", None)
    again = "then run the same command again"
    if name == "SQLITE_FULL" or code in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk holding {what} is full", f"free some space, {again}"
    if code == errno.EFBIG:
        return (
            f"{what} grew past the largest file this machine allows (ulimit -f, or the file system)",
            f"raise the limit or use another disk, {again}",
        )
    if name.startswith("SQLITE_IOERR") or code == errno.EIO:
        return (
            f"{what} could not be written or read (an input/output error: {error})",
            f"check the disk — free space, a file size limit (ulimit -f), the drive itself — {again}",
        )
    if name.startswith("SQLITE_READONLY") or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (
            f"{what} is read-only for you",
            f"make it (and its folder) writable by you, e.g. chmod u+w, {again}",
        )
    if name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB":
        return (
            f"{what} is damaged ({error})",
            "restore it from a backup copy of the file; loading without it would create everything again",
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return (
            f"{what} cannot be opened ({error})",
            f"check that it and its folder are yours to write, {again}",
        )
    return None


# --------------------------------------------------------------------------------------
# Problems: every reason a row is refused or noted, with words for people
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One kind of problem a row can have: a stable code, a title and the message it gets.

    `title` says what is wrong in words for the person fixing the spreadsheet (the report lists
    problems under it); `template` is the message of one occurrence, with {placeholders} filled
    per row. `variants` are other messages of the same problem (a date can be unreadable, have a
    two-digit year or not exist): same code, other explanation.
    """

    code: str
    title: str
    template: str
    variants: Mapping[str, str] = field(default_factory=dict, hash=False)

    def template_for(self, variant: str | None = None) -> str:
        if variant is None:
            return self.template
        if variant not in self.variants:
            raise ValueError(f"problem {self.code!r} has no variant {variant!r} (a bug in kayse-etl)")
        return self.variants[variant]

    def placeholders(self, variant: str | None = None) -> tuple[str, ...]:
        """The names a message of this problem (or of its variant) needs."""
        parsed = string.Formatter().parse(self.template_for(variant))
        return tuple(dict.fromkeys(name for _, name, _, _ in parsed if name is not None))

    def message(self, *, variant: str | None = None, **values: object) -> str:
        """One occurrence's message, e.g. "ZIP '12' is not a ZIP code (use 12345 or 12345-6789)"."""
        return self.template_for(variant).format(**values)

    def expression(self, *, variant: str | None = None, **values: str | pl.Expr) -> pl.Expr:
        """The message as a polars expression: a value may be a column, giving one message per row.

        Same words as `message`; a null in a column makes that row's message null, so fill
        columns that may hold empty cells first.
        """
        parts: list[pl.Expr] = []
        for literal, name, _, _ in string.Formatter().parse(self.template_for(variant)):
            if literal:
                parts.append(pl.lit(literal))
            if name is not None:
                value = values[name]
                parts.append(value if isinstance(value, pl.Expr) else pl.lit(str(value)))
        return pl.concat_str(parts)


PROBLEMS: dict[str, Problem] = {
    found.code: found
    for found in (
        Problem("missing-required", "a required cell is empty", "{field} is empty, but it is required"),
        Problem(
            "invalid-phone",
            "the phone number is not a real phone number",
            "{field} '{value}' is not a valid phone number for region {region}",
        ),
        Problem(
            "invalid-date",
            "a date cannot be read or does not exist",
            "{field} '{value}' is not a date we can read (write it as MM/DD/YYYY or YYYY-MM-DD)",
            variants={
                "day-first": "{field} '{value}' is not a date we can read (write it as DD/MM/YYYY or YYYY-MM-DD)",
                "year-first": "{field} '{value}' is not a date we can read (write it as YYYY-MM-DD)",
                "two-digit-year": "{field} '{value}' has a two-digit year, which is ambiguous "
                "(write the year in full, e.g. 1985)",
                "impossible": "{field} '{value}' is not a real calendar date",
            },
        ),
        Problem(
            "date-of-birth-in-future",
            "the date of birth is in the future",
            "{field} '{value}' is a date of birth in the future",
        ),
        Problem(
            "date-of-birth-too-old",
            "the date of birth is before 1900",
            "{field} '{value}' is a date of birth before 1900",
        ),
        Problem(
            "invalid-email",
            "the email address is not a valid address",
            "{field} '{value}' is not a valid email address",
        ),
        Problem(
            "invalid-state",
            "the state is not a US state or territory",
            "{field} '{value}' is not a US state or territory (use a name like Texas or a code like TX)",
        ),
        Problem(
            "invalid-zip",
            "the ZIP code is not 5 digits (or ZIP+4)",
            "{field} '{value}' is not a ZIP code (use 12345 or 12345-6789)",
        ),
        Problem(
            "invalid-boolean",
            "a yes/no cell holds something else",
            "{field} '{value}' is not yes or no (use true/false, yes/no, y/n or 1/0)",
        ),
        Problem(
            "unknown-case-type",
            "the case type is not one this import allows",
            "{field} '{value}' is not a known case type; allowed: {allowed}",
        ),
        Problem(
            "unknown-case-status",
            "the case status is not one this import allows",
            "{field} '{value}' is not a known case status; allowed: {allowed}",
        ),
        Problem(
            "duplicate-case-id",
            "the case id was already used by an earlier row",
            "{field} '{value}' appears more than once; the first, in row {first_row} of {first_file}, is kept",
        ),
        Problem(
            "ragged-row",
            "the row has a different number of cells than the header",
            "row {row} has {found} but the header has {expected}",
        ),
        Problem(
            "nul-byte",
            "a cell holds an invisible NUL character (a damaged export)",
            "row {row}, column '{column}' (column {position}): holds a NUL byte, an invisible control "
            "character (shown as {shown}); remove it and export the file again",
        ),
        Problem(
            "excel-error",
            "a cell held an Excel error such as #DIV/0! and was read as empty",
            "{count} with an Excel error read as empty (excel-error): {cells}",
        ),
        Problem(
            "lookup-missing",
            "a value refers to a row of another table that is not there",
            "{field} '{value}' matches no row of {table_file} (column {key}), so its {column} cannot be "
            "looked up",
        ),
        Problem(
            "contact-missing",
            "the case's contact is not in the contacts table",
            "{field} '{value}': its contact is not in {client_file}, so the case has no client",
        ),
        Problem(
            "no-contact",
            "the case names no contact",
            "{field} is empty: the case names no contact in {client_file}, and Kayse needs a client "
            "for every case",
        ),
        Problem(
            "contact-rejected",
            "the case's contact was rejected, so the case cannot be linked",
            "{field} '{value}': its contact, in row {client_row} of {client_file}, was rejected ({reasons})",
        ),
        Problem(
            "conflicting-contact",
            "the same contact id appears with different details",
            "{key_field} '{key}' has {field} {here} here but {there} in row {first_row} of {first_file}; "
            "the contact is sent with the first row's value",
        ),
        # notify: why a (case, client) pair's message is not sent, or not yet
        Problem(
            "already-sent",
            "the message was already sent",
            "this message was already sent to this client for this case",
        ),
        Problem(
            "message-uncertain",
            "the message may have gone out (its answer was lost)",
            "this message may have gone out (its answer was lost); `kayse-etl resolve message` decides",
        ),
        Problem(
            "sms-opted-out",
            "the client opted out of SMS",
            "the case's client opted out of SMS (Kayse says so at send time)",
        ),
        Problem(
            "email-opted-out",
            "the client opted out of email",
            "the case's client opted out of email (Kayse says so at send time)",
        ),
        Problem("no-mobile", "the client has no mobile number", "the client has no mobile number in Kayse"),
        Problem("no-email", "the client has no email address", "the client has no email address in Kayse"),
        Problem(
            "quiet-hours",
            "it is outside 08:00–21:00 where the client lives",
            "it is outside 08:00–21:00 where the client lives; a later run sends it",
        ),
        Problem(
            "message-refused",
            "Kayse refused the message",
            "Kayse refused the message (skipped.csv has its answer)",
        ),
        Problem(
            "case-not-found",
            "Kayse has no such case",
            "Kayse has no such case (deleted in the web app?)",
        ),
        Problem(
            "client-not-found",
            "Kayse has no such client",
            "Kayse has no such client (deleted in the web app?)",
        ),
        Problem(
            "not-in-ledger",
            "the ledger knows no such case",
            "the ledger knows no such case for this Kayse account",
        ),
        Problem(
            "checked-at-send",
            "checked when the message is sent",
            "its opt-outs, mobile number or email and time zone are read from Kayse at send time",
        ),
        # extract axiomatic: what reading a legacy CRM noticed (severity: CRM_FINDINGS)
        Problem(
            "page-not-json",
            "a page of the CRM was not JSON",
            "a page of {resource} was not JSON, even after retries ({detail}): the table stops there",
        ),
        Problem(
            "envelope-without-list",
            "a page of the CRM held no list of records",
            "a page of {resource} held no list of records ({detail}): the table stops there",
        ),
        Problem(
            "envelope-ambiguous",
            "a page of the CRM held several lists",
            "a page of {resource} held several lists and none is named like it ({detail}): the table stops there",
        ),
        Problem(
            "repeated-page",
            "the CRM served the same page twice",
            "{resource} served the same records for two pages in a row ({detail}): stopped there",
        ),
        Problem(
            "page-ceiling",
            "the CRM never stopped serving pages",
            "{resource} was still serving pages after {count} pages: stopped there",
        ),
        Problem(
            "page-refused",
            "the CRM refused a page",
            "Axiomatic refused a page of {resource}: {detail}",
        ),
        Problem(
            "record-not-object",
            "a CRM list held items that are not records",
            "{count} item(s) in the {resource} list are not records (objects)",
        ),
        Problem(
            "record-without-id",
            "CRM records without an id",
            "{count} {resource} record(s) have no id: kept, but cannot be deduplicated",
        ),
        Problem(
            "duplicates-dropped",
            "CRM records served twice",
            "{count} {resource} record(s) were served twice (same id): kept once",
        ),
        Problem(
            "field-type-changed",
            "a CRM field changes type between records",
            "{resource} field {field} is served as {detail}",
        ),
        Problem(
            "stage-count-mismatch",
            "a pipeline stage's lead count does not match its leads",
            "stage {field} says {detail}",
        ),
        Problem(
            "lead-contact-missing",
            "leads name a contact the CRM did not serve",
            "{count} lead(s) name a contact that was not served (deleted?)",
        ),
        Problem(
            "lead-without-contact",
            "leads without a contact",
            "{count} lead(s) have no contact",
        ),
        Problem(
            "lead-stage-missing",
            "leads name a stage the CRM did not serve",
            "{count} lead(s) name a stage that was not served",
        ),
        Problem(
            "not-paginated",
            "the CRM ignores paging",
            "{resource} ignores paging: every page served the same {count} records",
        ),
        Problem(
            "page-size-capped",
            "the CRM serves fewer records per page than asked",
            "{resource} served {count} records per page (fewer than asked)",
        ),
    )
}
"""The one catalogue of problem codes. A code used anywhere must be here (a test checks it)."""


def problem(code: str) -> Problem:
    """The catalogue's entry for `code`. An unknown code is a bug in kayse-etl, never the data's."""
    found = PROBLEMS.get(code)
    if found is None:
        raise ValueError(f"problem code {code!r} is not in pipeline.model.PROBLEMS (a bug in kayse-etl)")
    return found


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
    format: Literal["csv", "xlsx"]
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
(what the user sees), `code` a key of PROBLEMS (`invalid-phone`, `ragged-row`, …), `message` plain words."""


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

CLIENT_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "mobile",
    "date_of_birth",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "voice_calls_opted_out",
)
"""Kayse client fields a mapping may fill, in the order the clients frame lists them."""

CASE_FIELDS: tuple[str, ...] = (
    "case_number",
    "name",
    "type",
    "status",
    "description",
    "court_name",
    "jurisdiction",
    "is_obo",
    "created_date",
    "court_date",
    "end_date",
    "opt_out_voice_calls",
)
"""Kayse case fields a mapping may fill (plus `external_source_data.<key>`), in frame order."""

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
class LookupSpec:
    """Take a field's value from another table: the row of `table` whose `key` column equals the
    cell, its `column`. E.g. a lead's stageId → pipeline_stages.csv `id` → that stage's `name`."""

    table: str  # a name from MappingSpec.tables
    key: str  # the column of that table matched against the cell
    column: str  # the column of that table whose value is taken


@dataclass(frozen=True)
class FieldSpec:
    """Where one Kayse field comes from and how it is normalized."""

    kayse_field: str  # e.g. "mobile", or "external_source_data.incident_date"
    column: str | None  # source column; None when only a default feeds it
    type: FieldType = "string"
    required: bool = False
    default: str | None = None
    value_map: dict[str, str] = field(default_factory=dict)  # matched after trim, case-insensitive
    fallback: str | None = None  # a column of the same row, used when `column` (or its lookup) is empty
    lookup: LookupSpec | None = None  # `column` holds a key into another table

    @property
    def label(self) -> str:
        """The field as a person knows it in the source: its column, and where the value really came from."""
        name = self.column or self.kayse_field
        if self.lookup is not None:
            name = f"{self.lookup.table}.{self.lookup.column} (by {name})"
        if self.fallback is not None:
            name = f"{name} (or {self.fallback})"
        return name


@dataclass(frozen=True)
class EntitySpec:
    """How one Kayse entity (client or case) is built from a source row."""

    key_column: str  # source column holding the external_source_id
    fields: tuple[FieldSpec, ...]
    table: str | None = None  # linked form: the name (in MappingSpec.tables) of the table it comes from
    client_key_column: str | None = None  # linked form, cases: the column holding the contact's key


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
    tables: dict[str, str] = field(default_factory=dict)
    """Linked form: table name → file name (in the source folder). Empty: the flat form, one row
    holds a contact and its case."""

    @property
    def linked(self) -> bool:
        return bool(self.tables)


@dataclass(frozen=True)
class MappedFrames:
    """The map stage's output, still text: one row per source row.

    clients / cases: SOURCE_FILE, SOURCE_ROW, the key (`external_source_id`; cases also
    CASE_CLIENT_KEY) and one column per FieldSpec.kayse_field, defaults and value maps applied.
    raw: the extracted rows as read (for rejects.csv), same row order.

    Linked form (`client_raw` is not None): clients has one row per row of the client table and
    client_raw holds those rows as read; cases and raw are the case table's rows.
    """

    clients: pl.DataFrame
    cases: pl.DataFrame
    raw: pl.DataFrame
    sources: tuple[SourceInfo, ...]
    problems: pl.DataFrame = field(default_factory=empty_rejects)
    client_raw: pl.DataFrame | None = None


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


def estimate_hours(requests: int, limit_per_hour: int = 500, remaining: int | None = None) -> float:
    """Hours a load of `requests` needs at the hourly quota (0 when it fits what is left now)."""
    available = limit_per_hour if remaining is None else remaining
    if requests <= available:
        return 0.0
    return math.ceil((requests - available) / limit_per_hour)


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


@dataclass(frozen=True)
class RunRow:
    """One run as the ledger recorded it (`kayse-etl runs`)."""

    id: int
    target: str
    command: str
    started_at: float
    finished_at: float | None
    inputs: dict[str, Any]
    counts: dict[str, Any]
    planned_requests: int | None
    requests_sent: int | None
    outcome: str


# --------------------------------------------------------------------------------------
# Results of the orchestrator's checks
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    """The key's rate-limit state right now, as the API reported it on one cheap request."""

    limit: int
    remaining: int
    resets_in_seconds: float


# --------------------------------------------------------------------------------------
# Results of the orchestrator: what each `pipeline.run` function returns
# --------------------------------------------------------------------------------------

ENTITY_KINDS: tuple[EntityKind, ...] = ("client", "case", "case_list", "campaign")


@dataclass(frozen=True)
class ValidationOutcome(ValidationResult):
    """What `run.validate` returns: the validation result itself (so every view of one takes it
    as it is) plus the report files written, none unless a report folder was given."""

    report_files: tuple[Path, ...] = ()

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.rows_rejected else ExitCode.OK


@dataclass(frozen=True)
class PlanOutcome:
    """What `run.plan` returns: the rows checked, what a load would send, and (only when asked
    for, at the cost of one request) what is left of this hour's quota."""

    validation: ValidationResult
    plan: Plan
    quota: Quota | None = None

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.validation.rows_rejected else ExitCode.OK


@dataclass(frozen=True)
class LoadOutcome:
    """What `run.load` returns. `result` is None for a dry run, which sends nothing."""

    validation: ValidationResult
    plan: Plan
    result: RunResult | None
    report_files: tuple[Path, ...] = ()
    # The reports could not be written after the load had sent its requests: the load's outcome
    # (and exit code) stands, this says what went wrong with the files.
    report_error: str | None = None

    @property
    def exit_code(self) -> ExitCode:
        if self.result is not None and self.result.outcome == "stopped":
            return ExitCode.STOPPED
        if self.validation.rows_rejected or (self.result is not None and self.result.outcome == "rejected"):
            return ExitCode.REJECTED
        return ExitCode.OK


@dataclass(frozen=True)
class UncertainRow:
    """A record whose create was sent and whose answer was lost (`kayse-etl uncertain`)."""

    kind: EntityKind
    source_key: str
    batch_id: int | None
    run_id: int | None


@dataclass(frozen=True)
class Decision:
    """The operator's word on one uncertain record: its Kayse id, or None to re-create it."""

    kind: str
    key: str
    kayse_id: int | None


@dataclass(frozen=True)
class MappingCheck:
    """The mapping's allowed case types and statuses against what the Kayse account has."""

    account_types: dict[str, list[str]]  # case type → its statuses
    unknown_types: list[str]  # allowed by the mapping, unknown to Kayse: every such case is refused
    unknown_statuses: list[str]  # allowed by the mapping, unknown to Kayse: Kayse creates them on first use

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.REJECTED if self.unknown_types else ExitCode.OK


@dataclass(frozen=True)
class RollbackSummary:
    """What `run.rollback` deleted, per kind, and what it had to leave in Kayse."""

    run_id: int
    deleted: dict[str, int]
    failed: dict[str, int]
    left: dict[str, int]  # lists and campaigns: the API offers no delete for them
    kept_clients: int = 0  # the run's clients kept because live cases of other runs need them
    dependent_cases: dict[int, int] = field(default_factory=dict)  # run → its cases on this run's clients
    dependents_deleted: bool = False  # --with-dependent-cases: those cases were deleted too

    @property
    def exit_code(self) -> ExitCode:
        kept = self.kept_clients and not self.dependents_deleted
        return ExitCode.REJECTED if any(self.failed.values()) or kept else ExitCode.OK


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback is about to delete, shown to the operator before anything is sent.

    `to_delete` counts per kind; with `with_dependent_cases` it includes the cases of other runs
    linked to this run's clients (`dependent_cases`, per run), else those clients are kept."""

    run_id: int
    to_delete: dict[str, int]
    dependent_cases: dict[int, int]
    kept_clients: int
    with_dependent_cases: bool
    left: dict[str, int]


# --------------------------------------------------------------------------------------
# Messages (`notify`: SMS and email to the clients of loaded cases)
# --------------------------------------------------------------------------------------

Channel = Literal["sms", "email"]

QUIET_HOURS_START = 8
QUIET_HOURS_END = 21
"""Messages go out only from 08:00 to 21:00 in the client's time zone unless --any-hour."""

MESSAGE_REASONS: tuple[str, ...] = (
    "already-sent",
    "message-uncertain",
    "sms-opted-out",
    "email-opted-out",
    "no-mobile",
    "no-email",
    "quiet-hours",
    "message-refused",
    "case-not-found",
    "client-not-found",
    "not-in-ledger",
    "checked-at-send",
)
"""The problem codes a (case, client) pair can have when its message is not sent (or not yet);
their words are in PROBLEMS like every other code."""


@dataclass(frozen=True)
class MessageText:
    """The exact text (and email subject) sent; template variables like {{first_name}} stay as
    they are, for Kayse to fill in. Its hash is part of each message's identity in the ledger."""

    channel: Channel
    message: str
    subject: str | None = None

    @property
    def sha256(self) -> str:
        import hashlib

        material = f"{self.channel}\0{self.subject or ''}\0{self.message}"
        return hashlib.sha256(material.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MessagePair:
    """One (case, client) a message is meant for, by ids and ledger keys only: never a name,
    phone or email. `reason` is a problem code (one of MESSAGE_REASONS) when it was not sent; `detail` adds
    e.g. the time zone a held message waits on."""

    case_id: int | None
    case_key: str
    client_id: int | None = None
    client_key: str = ""
    reason: str = ""
    detail: str = ""


@dataclass
class NotifyOutcome:
    """What `notify` did (or, in preview, would do). `outcome`: "preview", "ok", "rejected"
    (finished, some messages refused or uncertain) or "stopped" (ended early; rerun continues)."""

    channel: Channel
    message_sha256: str
    send: bool
    any_hour: bool
    default_timezone: str
    cases_selected: int
    sent: list[MessagePair] = field(default_factory=list)
    skipped: list[MessagePair] = field(default_factory=list)
    held: list[MessagePair] = field(default_factory=list)
    uncertain: list[MessagePair] = field(default_factory=list)
    failed: list[MessagePair] = field(default_factory=list)
    to_check: int = 0  # preview: cases whose clients are read at send time
    planned_requests: int = 0
    requests_sent: int = 0
    hourly_quota: int = 500
    closed_zones: tuple[str, ...] = ()  # zones outside 08:00–21:00 at the time of the run
    run_id: int | None = None
    outcome: Literal["preview", "ok", "rejected", "stopped"] = "preview"
    stopped_reason: str | None = None

    @property
    def hours_at_quota(self) -> float:
        return self.planned_requests / self.hourly_quota if self.hourly_quota else 0.0

    @property
    def exit_code(self) -> ExitCode:
        if self.outcome == "stopped":
            return ExitCode.STOPPED
        if self.failed or self.uncertain:
            return ExitCode.REJECTED
        return ExitCode.OK


@dataclass(frozen=True)
class UncertainMessage:
    """A message whose send was started but whose answer never came: it may have gone out."""

    key: str  # channel:case_id:client_id:hash12, what `resolve message KEY` takes
    channel: str
    case_id: int
    client_id: int
    case_key: str
    run_id: int | None


# --------------------------------------------------------------------------------------
# CRM field mappings (`crm fields pull/push`: the mappings as a file in version control)
# --------------------------------------------------------------------------------------

CRM_DIRECTIONS = ("inbound", "outbound", "bidirectional")
CRM_DEFAULT_DIRECTION = "bidirectional"


@dataclass(frozen=True)
class CrmMapping:
    kayse_field: str
    crm_field: str
    direction: str = CRM_DEFAULT_DIRECTION

    def as_api(self) -> dict[str, str]:
        return {"kayse_field": self.kayse_field, "crm_field": self.crm_field, "direction": self.direction}


@dataclass(frozen=True)
class CrmDiff:
    """The file against what Kayse holds, keyed by kayse_field. The API cannot delete a mapping,
    so what only Kayse holds (`only_in_kayse`) stays there whatever the file says."""

    added: tuple[CrmMapping, ...]
    changed: tuple[tuple[CrmMapping, CrmMapping], ...]  # (in Kayse, in the file)
    unchanged: tuple[CrmMapping, ...]
    only_in_kayse: tuple[CrmMapping, ...]

    @property
    def to_send(self) -> tuple[CrmMapping, ...]:
        return self.added + tuple(new for _, new in self.changed)


@dataclass(frozen=True)
class CrmPushOutcome:
    diff: CrmDiff
    sent: bool  # True when the one POST went out
    requests_sent: int
    updated: int | None = None  # the API's `updated` count


# --------------------------------------------------------------------------------------
# CRM snapshots (`kayse-etl extract axiomatic`: a legacy CRM read into a folder of CSVs)
# --------------------------------------------------------------------------------------

FindingSeverity = Literal["error", "warning", "info"]

CRM_FINDINGS: dict[str, FindingSeverity] = {
    # errors: a table may be incomplete; the extract exits 1 and says which
    "page-not-json": "error",
    "envelope-without-list": "error",
    "envelope-ambiguous": "error",
    "repeated-page": "error",
    "page-ceiling": "error",
    "page-refused": "error",
    "record-not-object": "error",
    # warnings: the tables are complete, but the data needs a look before it loads
    "record-without-id": "warning",
    "duplicates-dropped": "warning",
    "field-type-changed": "warning",
    "stage-count-mismatch": "warning",
    "lead-contact-missing": "warning",
    "lead-without-contact": "warning",
    "lead-stage-missing": "warning",
    # notes
    "not-paginated": "info",
    "page-size-capped": "info",
}
"""The severity of every finding code of a CRM extract; its words are in PROBLEMS like every code."""


@dataclass(frozen=True)
class CrmFinding:
    """Something an extract noticed: in extract.json and the summary, never silently dropped.

    `examples` holds record ids (UUIDs, never names or emails) so a person can look them up."""

    code: str
    resource: str
    count: int = 1
    field: str = ""
    detail: str = ""
    examples: tuple[str, ...] = ()

    @property
    def severity(self) -> FindingSeverity:
        return CRM_FINDINGS[self.code]

    @property
    def message(self) -> str:
        return problem(self.code).message(
            resource=self.resource, count=self.count, field=self.field, detail=self.detail
        )


@dataclass(frozen=True)
class EndpointRead:
    """How one list endpoint was read: what its envelope looked like and what it cost."""

    resource: str
    path: str
    list_key: str | None  # None: a bare array
    pages: int
    records: int  # kept, after deduplication
    requests: int  # every attempt sent, retries included
    retries: int
    page_size_asked: int
    page_size_served: int | None
    stopped_by: str  # "empty page", "short page", "total reached", "hasMore false", or an error code
    complete: bool


@dataclass(frozen=True)
class AxiomaticExtract:
    """What `extract axiomatic` wrote: the folder, the entity, the tables and their findings."""

    out_dir: Path
    entity_id: str
    entity_name: str
    extracted_at: str  # ISO 8601 UTC
    tables: dict[str, int]  # file name → rows
    endpoints: tuple[EndpointRead, ...]
    findings: tuple[CrmFinding, ...]
    requests: int
    retries: int
    waited_seconds: float
    memberships_via: str

    @property
    def complete(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.complete else ExitCode.REJECTED
