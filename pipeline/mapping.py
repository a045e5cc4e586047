"""The map stage: read a mapping file, and rename a source's columns to Kayse fields.

A mapping (mappings/*.yaml) says which source column feeds which Kayse field, how to read it
and which case types and statuses Kayse knows. `load_mapping` turns the YAML into a
`MappingSpec`, rejecting every mistake with a message that names the file and the key path;
`apply_mapping` builds the still-text clients and cases frames from extracted sources.

This module must never interpret values (that is validate's job: no trimming of phones, no
date parsing) and never touch the network. The only value work here is what the mapping
itself asks for: value maps and defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import os
import re
import stat
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar, cast, get_args

import phonenumbers
import polars as pl
import yaml

from pipeline.model import (
    CASE_CLIENT_KEY,
    CASE_FIELDS,
    CLIENT_FIELDS,
    CLIENT_KEY,
    EXTRA_DATA_PREFIX,
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    CampaignSpec,
    EntitySpec,
    Extracted,
    FieldSpec,
    FieldType,
    ListSpec,
    LookupSpec,
    MappedFrames,
    MappingSpec,
    UserError,
    empty_rejects,
    printable,
    problem,
)

FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
_T = TypeVar("_T")

_INFERRED_TYPE: dict[str, FieldType] = {
    "first_name": "name",
    "last_name": "name",
    "email": "email",
    "mobile": "phone",
    "date_of_birth": "birth_date",
    "state": "state",
    "postal_code": "zip",
    "type": "case_type",
    "status": "case_status",
    "case_number": "string",
    "created_date": "date",
    "court_date": "date",
    "end_date": "date",
    "voice_calls_opted_out": "bool",
    "is_obo": "bool",
    "opt_out_voice_calls": "bool",
}
_REQUIRED_BY_DEFAULT = frozenset({"first_name", "last_name", "type", "status", "case_number"})

_TOP_KEYS = (
    "name",
    "description",
    "external_source",
    "phone_region",
    "date_order",
    "client",
    "case",
    "allowed",
    "case_list",
    "campaign",
    "tables",
)
_ENTITY_KEYS = ("key", "fields")
_LINKED_CLIENT_KEYS = ("table", "key", "fields")
_LINKED_CASE_KEYS = ("table", "key", "client_key", "fields")
_FIELD_KEYS = ("column", "type", "required", "default", "value_map", "fallback")
_LINKED_FIELD_KEYS = (*_FIELD_KEYS, "lookup")
_LOOKUP_KEYS = ("table", "key", "column")
_ALLOWED_KEYS = ("case_types", "case_statuses")
_LIST_KEYS = ("name", "description", "per_case_type")
_CAMPAIGN_KEYS = ("name", "messaging_only", "days", "agent_id", "start_time", "end_time")
_EXTRA_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_\-]*$")
_HH_MM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


# --------------------------------------------------------------------------------------
# load_mapping
# --------------------------------------------------------------------------------------


class _Reader:
    """Walks the parsed YAML, raising UserErrors that name the file and the key path."""

    def __init__(self, path: Path) -> None:
        self.label = str(path)
        self.problems: list[UserError] = []  # collected, so a person sees every mistake at once

    def collect(self, check: Callable[..., _T], *args: Any) -> _T | None:
        """Run one independent check; a mistake is kept for the end, and None returned."""
        try:
            return check(*args)
        except UserError as error:
            self.problems.append(error)
            return None

    def raise_collected(self) -> None:
        """One mistake as it is; several as one UserError listing them all."""
        if len(self.problems) == 1:
            raise self.problems[0]
        if self.problems:
            lines = [f"{self.label} has {len(self.problems)} problems:"]
            lines += [f"  - {error.message}" for error in self.problems]
            hints = list(dict.fromkeys(error.hint for error in self.problems if error.hint))
            raise UserError(
                "\n".join(lines), "fix them all, then run again" + "".join(f"; {h}" for h in hints)
            )

    def fail(self, key_path: str, problem: str, hint: str | None = None) -> UserError:
        where = f"{self.label}: {key_path}" if key_path else self.label
        return UserError(f"{where} {problem}", hint)

    def table(self, value: Any, key_path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(
                key_path,
                f"must be a table of keys (found {_kind(value)})",
                "indent its keys below it, as in mappings/generic.yaml",
            )
        for key in value:
            if not isinstance(key, str):
                raise self.fail(key_path, f"has a key that is not text: {key!r}", "quote the key")
        return dict(value)

    def known_keys(self, table: dict[str, Any], allowed: tuple[str, ...], key_path: str) -> None:
        for key in table:
            if key not in allowed:
                where = f"{key_path}.{key}" if key_path else key
                raise self.fail(where, "is not a known key", _did_you_mean(key, allowed))

    def text(self, value: Any, key_path: str, *, empty_ok: bool = False) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(key_path, f"must be text (found {_kind(value)})", "put the value in quotes")
        text = str(value)
        if not text.strip() and not empty_ok:
            raise self.fail(key_path, "must not be empty", "give a value, or remove the key")
        return text

    def required(self, table: dict[str, Any], key: str, key_path: str) -> Any:
        if table.get(key) is None:
            where = f"{key_path}.{key}" if key_path else key
            raise self.fail(where, "is required but missing", "see mappings/generic.yaml for an example")
        return table[key]

    def flag(self, value: Any, key_path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(
                key_path,
                f"must be true or false (found {_kind(value)})",
                "write true or false, without quotes",
            )
        return value

    def text_list(self, value: Any, key_path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not value:
            raise self.fail(
                key_path,
                "must be a non-empty list of text, e.g. [civil, criminal]",
                "write the values in [ ], separated by commas",
            )
        items = tuple(self.text(item, f"{key_path}[{i}]").strip() for i, item in enumerate(value))
        seen: set[str] = set()
        for item in items:
            if item.lower() in seen:
                raise self.fail(
                    key_path, f"lists {item!r} twice (values match case-insensitively)", "keep one of them"
                )
            seen.add(item.lower())
        return items


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"true/false ({value})"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "expected one of: " + ", ".join(choices)


class _DuplicateKey(Exception):
    pass


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key written twice in one table (YAML would keep the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # an odd key is refused later, with its path
            if key in seen:
                line = key_node.start_mark.line + 1
                raise _DuplicateKey(f"has the key {key!r} twice (again at line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_mapping(path: Path) -> MappingSpec:
    """Read and check a mapping file; every mistake is a UserError naming the file and key path."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            # A pipe (/dev/stdin too), a device or a socket would be read forever, or never end.
            raise UserError(
                f"mapping file {printable(path)} is not a regular file (a pipe, device or socket)",
                "give the path of the mapping's .yaml file",
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(
            f"mapping file {printable(path)} does not exist", "check the --mapping path"
        ) from None
    except OSError as error:
        raise UserError(
            f"mapping file {printable(path)} cannot be read: {error.strerror}", "check the file's permissions"
        ) from None
    reader = _Reader(path)
    try:
        parsed = yaml.load(data.decode("utf-8"), Loader=_StrictLoader)
    except UnicodeDecodeError:
        raise reader.fail("", "is not UTF-8 text", "save the mapping file as UTF-8") from None
    except _DuplicateKey as error:
        raise reader.fail("", str(error), "each key may appear only once in its table") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "is not valid YAML"
        raise reader.fail(
            "", f"is not valid YAML{where}: {problem}", "check indentation and quotes"
        ) from None
    if parsed is None:
        raise reader.fail("", "is empty", 'see the README, "Mapping files", for the format')
    top = reader.table(parsed, "")
    reader.collect(reader.known_keys, top, _TOP_KEYS, "")

    name = reader.collect(
        lambda: reader.text(top["name"], "name").strip() if top.get("name") is not None else path.stem
    )
    external_source = reader.collect(
        lambda: reader.text(reader.required(top, "external_source", ""), "external_source").strip()
    )
    region = reader.collect(_phone_region, reader, top)
    date_order = reader.collect(_date_order, reader, top)
    case_types, case_statuses = reader.collect(_allowed, reader, top) or ((), ())
    tables = reader.collect(_tables, reader, top.get("tables")) or {}
    client = reader.collect(
        lambda: _entity(reader, reader.required(top, "client", ""), "client", CLIENT_FIELDS, tables)
    )
    case = reader.collect(
        lambda: _entity(reader, reader.required(top, "case", ""), "case", CASE_FIELDS, tables)
    )
    if tables and client is not None and case is not None and client.table == case.table:
        reader.problems.append(
            reader.fail(
                "case.table",
                f"is {case.table!r}, the client's table too",
                "when one row holds a contact and its case, use the flat form (no tables:)",
            )
        )
    for field_spec in case.fields if case is not None else ():
        if field_spec.type == "case_type":
            reader.collect(_check_choices, reader, field_spec, case_types, "allowed.case_types")
        elif field_spec.type == "case_status":
            reader.collect(_check_choices, reader, field_spec, case_statuses, "allowed.case_statuses")
    case_list = reader.collect(_case_list, reader, top.get("case_list"))
    campaign = reader.collect(_campaign, reader, top.get("campaign"))
    reader.raise_collected()
    assert name is not None and external_source is not None and region is not None and date_order is not None
    assert client is not None and case is not None

    return MappingSpec(
        name=name,
        path=str(path),
        external_source=external_source,
        client=client,
        case=case,
        phone_region=region,
        date_order=cast(Any, date_order),
        case_types=case_types,
        case_statuses=case_statuses,
        case_list=case_list,
        campaign=campaign,
        sha256=hashlib.sha256(data).hexdigest(),
        tables=tables,
    )


def _phone_region(reader: _Reader, top: dict[str, Any]) -> str:
    region = reader.text(top.get("phone_region", "US"), "phone_region").strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise reader.fail(
            "phone_region",
            f"is {region!r}, which is not a known region code",
            "use a two-letter country code such as US, CA or GB",
        )
    return region


def _date_order(reader: _Reader, top: dict[str, Any]) -> str:
    date_order = reader.text(top.get("date_order", "MDY"), "date_order").strip().upper()
    if date_order not in ("MDY", "DMY", "YMD"):
        raise reader.fail(
            "date_order", f"is {date_order!r}; it must be MDY, DMY or YMD", "MDY reads 03/04/2021 as March 4"
        )
    return date_order


def _allowed(reader: _Reader, top: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    case_types: tuple[str, ...] = ()
    case_statuses: tuple[str, ...] = ()
    if top.get("allowed") is not None:
        allowed = reader.table(top["allowed"], "allowed")
        reader.known_keys(allowed, _ALLOWED_KEYS, "allowed")
        if allowed.get("case_types") is not None:
            case_types = reader.text_list(allowed["case_types"], "allowed.case_types")
        if allowed.get("case_statuses") is not None:
            case_statuses = reader.text_list(allowed["case_statuses"], "allowed.case_statuses")
    return case_types, case_statuses


def _tables(reader: _Reader, value: Any) -> dict[str, str]:
    """The linked form's `tables:` — name → file name, each file named once."""
    if value is None:
        return {}
    table = reader.table(value, "tables")
    if not table:
        raise reader.fail("tables", "is empty", "name the tables, e.g. tables: {contacts: contacts.csv}")
    files: dict[str, str] = {}
    seen: dict[str, str] = {}
    for name, file_name in table.items():
        text = reader.text(file_name, f"tables.{name}").strip()
        if "/" in text or "\\" in text:
            raise reader.fail(
                f"tables.{name}",
                f"is {text!r}; give the file's name only, without a folder",
                "the folder is the one you pass to validate, plan or load",
            )
        if text.lower() in seen:
            raise reader.fail(
                f"tables.{name}",
                f"names {text!r}, which tables.{seen[text.lower()]} names too",
                "each table has its own file",
            )
        seen[text.lower()] = name
        files[name] = text
    return files


def _entity(
    reader: _Reader, value: Any, where: str, kayse_fields: tuple[str, ...], tables: dict[str, str]
) -> EntitySpec:
    table = reader.table(value, where)
    if tables:
        reader.known_keys(table, _LINKED_CASE_KEYS if where == "case" else _LINKED_CLIENT_KEYS, where)
    elif "table" in table or "client_key" in table:
        raise reader.fail(
            f"{where}.{'table' if 'table' in table else 'client_key'}",
            "belongs to the linked form, which needs a top-level tables: list",
            "add e.g. tables: {contacts: contacts.csv, leads: leads.csv}, or remove this key",
        )
    else:
        reader.known_keys(table, _ENTITY_KEYS, where)
    table_name: str | None = None
    client_key_column: str | None = None
    if tables:
        table_name = reader.text(reader.required(table, "table", where), f"{where}.table").strip()
        if table_name not in tables:
            raise reader.fail(
                f"{where}.table",
                f"is {table_name!r}, not a name under tables:",
                _did_you_mean(table_name, list(tables)),
            )
        if where == "case":
            client_key_column = reader.text(reader.required(table, "client_key", where), "case.client_key")
    key_column = reader.text(reader.required(table, "key", where), f"{where}.key")
    fields_table = reader.table(reader.required(table, "fields", where), f"{where}.fields")
    specs: list[FieldSpec] = []
    for kayse_field, field_value in fields_table.items():
        spec = reader.collect(_entity_field, reader, where, kayse_fields, kayse_field, field_value, tables)
        if spec is not None:
            specs.append(spec)
    order = {name: i for i, name in enumerate(kayse_fields)}
    specs.sort(key=lambda spec: order.get(spec.kayse_field, len(order)))
    return EntitySpec(
        key_column=key_column,
        fields=tuple(specs),
        table=table_name,
        client_key_column=client_key_column,
    )


def _entity_field(
    reader: _Reader,
    where: str,
    kayse_fields: tuple[str, ...],
    kayse_field: str,
    field_value: Any,
    tables: dict[str, str],
) -> FieldSpec:
    key_path = f"{where}.fields.{kayse_field}"
    if kayse_field.startswith(EXTRA_DATA_PREFIX) and where == "case":
        extra_key = kayse_field[len(EXTRA_DATA_PREFIX) :]
        if not _EXTRA_KEY.match(extra_key):
            raise reader.fail(
                key_path,
                "needs a key after 'external_source_data.' made of letters, digits, _ or -",
                "e.g. external_source_data.incident_date",
            )
    elif kayse_field not in kayse_fields:
        choices = list(kayse_fields) + (["external_source_data.<key>"] if where == "case" else [])
        raise reader.fail(key_path, f"is not a Kayse {where} field", _did_you_mean(kayse_field, choices))
    return _field(reader, kayse_field, field_value, key_path, tables)


def _lookup(reader: _Reader, value: Any, key_path: str, tables: dict[str, str]) -> LookupSpec:
    table = reader.table(value, key_path)
    reader.known_keys(table, _LOOKUP_KEYS, key_path)
    name = reader.text(reader.required(table, "table", key_path), f"{key_path}.table").strip()
    if name not in tables:
        raise reader.fail(
            f"{key_path}.table", f"is {name!r}, not a name under tables:", _did_you_mean(name, list(tables))
        )
    return LookupSpec(
        table=name,
        key=reader.text(reader.required(table, "key", key_path), f"{key_path}.key"),
        column=reader.text(reader.required(table, "column", key_path), f"{key_path}.column"),
    )


def _field(reader: _Reader, kayse_field: str, value: Any, key_path: str, tables: dict[str, str]) -> FieldSpec:
    inferred: FieldType = _INFERRED_TYPE.get(kayse_field, "string")
    required = kayse_field in _REQUIRED_BY_DEFAULT
    if not isinstance(value, Mapping):
        return FieldSpec(
            kayse_field=kayse_field, column=reader.text(value, key_path), type=inferred, required=required
        )
    table = reader.table(value, key_path)
    if "lookup" in table and not tables:
        raise reader.fail(
            f"{key_path}.lookup",
            "belongs to the linked form, which needs a top-level tables: list",
            "add e.g. tables: {leads: leads.csv, stages: pipeline_stages.csv}",
        )
    reader.known_keys(table, _LINKED_FIELD_KEYS if tables else _FIELD_KEYS, key_path)
    column = reader.text(table["column"], f"{key_path}.column") if table.get("column") is not None else None
    fallback = (
        reader.text(table["fallback"], f"{key_path}.fallback") if table.get("fallback") is not None else None
    )
    lookup = _lookup(reader, table["lookup"], f"{key_path}.lookup", tables) if table.get("lookup") else None
    if (fallback is not None or lookup is not None) and column is None:
        raise reader.fail(
            key_path,
            f"has a {'lookup' if lookup is not None else 'fallback'} but no column",
            f"e.g. {key_path.rsplit('.', 1)[-1]}: {{column: My Column, ...}}",
        )
    field_type: FieldType = inferred
    if table.get("type") is not None:
        type_name = reader.text(table["type"], f"{key_path}.type").strip()
        if type_name not in FIELD_TYPES:
            raise reader.fail(
                f"{key_path}.type",
                f"is {type_name!r}, not a known type",
                _did_you_mean(type_name, FIELD_TYPES),
            )
        field_type = cast(FieldType, type_name)
        if (kayse_field in ("type", "status")) != (field_type in ("case_type", "case_status")) or (
            field_type != inferred and kayse_field in ("type", "status")
        ):
            raise reader.fail(
                f"{key_path}.type",
                f"is {type_name!r}, which does not fit the Kayse field {kayse_field!r}",
                "case_type is only for the case's type field, case_status only for its status field",
            )
    if table.get("required") is not None:
        required = reader.flag(table["required"], f"{key_path}.required")
    default = (
        reader.text(table["default"], f"{key_path}.default") if table.get("default") is not None else None
    )
    if column is None and default is None:
        raise reader.fail(
            key_path,
            "needs a column (or a default)",
            f"e.g. {key_path.rsplit('.', 1)[-1]}: {{column: My Column}}",
        )
    value_map: dict[str, str] = {}
    if table.get("value_map") is not None:
        raw_map = table["value_map"]
        map_path = f"{key_path}.value_map"
        if not isinstance(raw_map, Mapping):
            raise reader.fail(
                map_path,
                f"must be a table mapping text to text (found {_kind(raw_map)})",
                'e.g. value_map: {"Personal Injury": personal_injury}',
            )
        for source_value, target in raw_map.items():
            if not _is_text(source_value) or not _is_text(target):
                raise reader.fail(
                    map_path,
                    f"must map text to text (found {_kind(source_value)} → {_kind(target)})",
                    'quote both sides, e.g. {"Yes": "true"}',
                )
            folded = str(source_value).strip().lower()
            if folded in value_map:
                raise reader.fail(
                    map_path,
                    f"lists {source_value!r} twice (keys match case-insensitively)",
                    "keep one of them",
                )
            value_map[folded] = str(target).strip()
    return FieldSpec(
        kayse_field=kayse_field,
        column=column,
        type=field_type,
        required=required,
        default=default,
        value_map=value_map,
        fallback=fallback,
        lookup=lookup,
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _check_choices(reader: _Reader, spec: FieldSpec, allowed: tuple[str, ...], allowed_path: str) -> None:
    """A case type/status field needs the allowed list, and its map targets must be in it."""
    key_path = f"case.fields.{spec.kayse_field}"
    if not allowed:
        raise reader.fail(
            allowed_path,
            f"is required because {key_path} is a {spec.type.replace('_', ' ')}",
            "list the values configured in Kayse, e.g. allowed: {case_types: [civil, criminal]}",
        )
    folded = {choice.lower() for choice in allowed}
    targets = [(f"{key_path}.value_map", target) for target in spec.value_map.values()]
    if spec.default is not None:
        targets.append((f"{key_path}.default", spec.default))
    for where, target in targets:
        if target.strip().lower() not in folded:
            raise reader.fail(
                where, f"gives {target!r}, which is not in {allowed_path}", _did_you_mean(target, allowed)
            )


def _case_list(reader: _Reader, value: Any) -> ListSpec | None:
    if value is None:
        return None
    table = reader.table(value, "case_list")
    reader.known_keys(table, _LIST_KEYS, "case_list")
    return ListSpec(
        name=reader.text(reader.required(table, "name", "case_list"), "case_list.name"),
        description=reader.text(table["description"], "case_list.description")
        if table.get("description") is not None
        else None,
        per_case_type=reader.flag(table.get("per_case_type", True), "case_list.per_case_type"),
    )


def _campaign(reader: _Reader, value: Any) -> CampaignSpec | None:
    if value is None:
        return None
    table = reader.table(value, "campaign")
    reader.known_keys(table, _CAMPAIGN_KEYS, "campaign")
    days = table.get("days", 14)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise reader.fail(
            "campaign.days",
            f"must be a whole number of days, 1 or more (found {_kind(days)})",
            "e.g. days: 14",
        )
    times: dict[str, str | None] = {}
    for key in ("start_time", "end_time"):
        if table.get(key) is None:
            times[key] = None
            continue
        text = reader.text(table[key], f"campaign.{key}").strip()
        if not _HH_MM.match(text):
            raise reader.fail(
                f"campaign.{key}",
                f"is {text!r}; write it as HH:mm, 24-hour, in quotes",
                f'e.g. {key}: "09:00"',
            )
        times[key] = text
    return CampaignSpec(
        name=reader.text(reader.required(table, "name", "campaign"), "campaign.name"),
        messaging_only=reader.flag(table.get("messaging_only", True), "campaign.messaging_only"),
        days=days,
        agent_id=reader.text(table["agent_id"], "campaign.agent_id")
        if table.get("agent_id") is not None
        else None,
        start_time=times["start_time"],
        end_time=times["end_time"],
    )


# --------------------------------------------------------------------------------------
# apply_mapping
# --------------------------------------------------------------------------------------


def mapped_columns(spec: MappingSpec) -> list[str]:
    """Every source column the mapping reads, in mapping order, without repeats (flat form)."""
    columns = [spec.client.key_column, spec.case.key_column]
    for entity in (spec.client, spec.case):
        columns.extend(_field_columns(entity))
    return list(dict.fromkeys(columns))


def _field_columns(entity: EntitySpec) -> list[str]:
    columns: list[str] = []
    for f in entity.fields:
        columns.extend(c for c in (f.column, f.fallback) if c is not None)
    return columns


def table_columns(spec: MappingSpec) -> dict[str, list[str]]:
    """Linked form: per table name, the columns the mapping reads from it, in mapping order."""
    needed: dict[str, list[str]] = {name: [] for name in spec.tables}
    for entity in (spec.client, spec.case):
        assert entity.table is not None
        keys = [entity.key_column, *([entity.client_key_column] if entity.client_key_column else [])]
        needed[entity.table] += [*keys, *_field_columns(entity)]
        for f in entity.fields:
            if f.lookup is not None:
                needed[f.lookup.table] += [f.lookup.key, f.lookup.column]
    return {name: list(dict.fromkeys(columns)) for name, columns in needed.items()}


def _check_columns(source: Extracted, needed: list[str], spec: MappingSpec) -> None:
    """A column the mapping names but the source lacks: one line listing what is missing and what exists."""
    present = [c for c in source.frame.columns if c not in (SOURCE_FILE, SOURCE_ROW)]
    missing = [c for c in needed if c not in present]
    if missing:
        file_name = Path(source.info.path).name
        raise UserError(
            f"{file_name} lacks {len(missing)} column(s) the mapping {Path(spec.path).name} names: "
            + ", ".join(repr(c) + _column_like(c, present) for c in missing)
            + ". The file has: "
            + ", ".join(repr(c) for c in present),
            f"fix the column names in {spec.path}, or rename the headers in {file_name}",
        )


def _column_like(name: str, present: list[str]) -> str:
    """' (did you mean 'First Name'?)' for a header that differs in case, spaces or a typo."""

    def folded(text: str) -> str:
        return re.sub(r"[\s_\-]+", "", text).casefold()

    same = [c for c in present if folded(c) == folded(name)]
    close = same or difflib.get_close_matches(name, present, n=1, cutoff=0.75)
    if not close:
        by_fold = {folded(c): c for c in present}
        close = [by_fold[m] for m in difflib.get_close_matches(folded(name), list(by_fold), n=1, cutoff=0.8)]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _reader_problems(sources: list[Extracted]) -> pl.DataFrame:
    return pl.concat(
        [empty_rejects(), *(s.problems.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA) for s in sources)]  # type: ignore[arg-type]
    )


def apply_mapping(sources: list[Extracted] | Mapping[str, Extracted], spec: MappingSpec) -> MappedFrames:
    """Rename the sources' columns to Kayse fields (still text), applying value maps and defaults.

    Flat form: one output row per source row, in source order; several sources are stacked.
    Linked form (the mapping has `tables:`): `sources` maps each table name to its table; see
    `apply_linked_mapping`. A column the mapping names but a source lacks is a UserError listing
    what is missing and what exists.
    """
    if spec.linked:
        if not isinstance(sources, Mapping):
            raise ValueError("a linked mapping takes its tables by name (a bug in kayse-etl)")
        return apply_linked_mapping(sources, spec)
    if isinstance(sources, Mapping):
        sources = list(sources.values())
    if not sources:
        raise UserError("no source files were given", "name at least one CSV or XLSX file")
    needed = mapped_columns(spec)
    for source in sources:
        _check_columns(source, needed, spec)
    clients = pl.concat([_entity_frame(s.frame, spec.client, client_key=None) for s in sources])
    cases = pl.concat([_entity_frame(s.frame, spec.case, client_key=spec.client.key_column) for s in sources])
    raw = pl.concat([s.frame for s in sources], how="diagonal") if len(sources) > 1 else sources[0].frame
    return MappedFrames(
        clients=clients,
        cases=cases,
        raw=raw,
        sources=tuple(s.info for s in sources),
        problems=_reader_problems(sources),
    )


def apply_linked_mapping(tables: Mapping[str, Extracted], spec: MappingSpec) -> MappedFrames:
    """Clients from the client table (one row each), cases from the case table, values looked up
    in other tables by key. Linking a case to its contact is validate's job: here a case only
    carries its contact's key. A key a lookup cannot find is a `lookup-missing` problem of the row."""
    missing_tables = [name for name in spec.tables if name not in tables]
    if missing_tables:
        raise UserError(
            "the tables "
            + ", ".join(f"{name} ({spec.tables[name]})" for name in missing_tables)
            + f" the mapping {Path(spec.path).name} names were not given",
            "pass the folder that holds them, or every table file",
        )
    for name, needed in table_columns(spec).items():
        _check_columns(tables[name], needed, spec)
    assert spec.client.table is not None and spec.case.table is not None
    client_table, case_table = tables[spec.client.table], tables[spec.case.table]
    clients, client_misses = _linked_frame(client_table, spec.client, tables, spec, client_key=None)
    cases, case_misses = _linked_frame(
        case_table, spec.case, tables, spec, client_key=spec.case.client_key_column
    )
    ordered = [
        client_table,
        case_table,
        *(t for n, t in tables.items() if n not in (spec.client.table, spec.case.table)),
    ]
    return MappedFrames(
        clients=clients,
        cases=cases,
        raw=case_table.frame,
        sources=tuple(t.info for t in ordered),
        problems=pl.concat([_reader_problems(ordered), client_misses, case_misses]),
        client_raw=client_table.frame,
    )


_LOOKUP_PREFIX = "__lookup."


def _linked_frame(
    table: Extracted,
    entity: EntitySpec,
    tables: Mapping[str, Extracted],
    spec: MappingSpec,
    *,
    client_key: str | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The entity's mapped frame from its table, with each lookup field's value fetched by key,
    and a `lookup-missing` problem for every key not found (unless a fallback fills the field)."""
    frame = table.frame
    fields: list[FieldSpec] = []
    misses: list[pl.DataFrame] = [empty_rejects()]
    for f in entity.fields:
        if f.lookup is None or f.column is None:
            fields.append(f)
            continue
        found_column = _LOOKUP_PREFIX + f.kayse_field
        other = tables[f.lookup.table].frame
        found = (
            other.select(
                pl.col(f.lookup.key).cast(pl.String).str.strip_chars().alias("__key"),
                pl.col(f.lookup.column).cast(pl.String).alias(found_column),
                pl.lit(True).alias("__found"),
            )
            .filter(pl.col("__key").is_not_null() & (pl.col("__key") != ""))
            .unique("__key", keep="first", maintain_order=True)
        )
        frame = frame.with_columns(pl.col(f.column).cast(pl.String).str.strip_chars().alias("__key")).join(
            found, on="__key", how="left", maintain_order="left"
        )
        missed = pl.col("__key").is_not_null() & (pl.col("__key") != "") & pl.col("__found").is_null()
        if f.fallback is not None:
            missed = missed & _is_empty(pl.col(f.fallback).cast(pl.String))
        table_file = tables[f.lookup.table].info.path
        misses.append(
            frame.filter(missed).select(
                SOURCE_FILE,
                pl.col(SOURCE_ROW).cast(pl.Int64),
                field=pl.lit(f.column),
                value=pl.col(f.column).cast(pl.String),
                code=pl.lit(problem("lookup-missing").code),
                message=problem("lookup-missing").expression(
                    field=f.column,
                    value=pl.col(f.column).cast(pl.String),
                    key=f.lookup.key,
                    table_file=Path(table_file).name,
                    column=f.lookup.column,
                ),
            )
        )
        frame = frame.drop("__key", "__found")
        fields.append(dataclasses.replace(f, column=found_column))
    mapped = _entity_frame(frame, dataclasses.replace(entity, fields=tuple(fields)), client_key=client_key)
    return mapped, pl.concat(misses).cast(REJECT_SCHEMA)  # type: ignore[arg-type]


def _entity_frame(frame: pl.DataFrame, entity: EntitySpec, *, client_key: str | None) -> pl.DataFrame:
    columns: list[pl.Expr] = [
        pl.col(SOURCE_FILE).cast(pl.String),
        pl.col(SOURCE_ROW).cast(pl.Int64),
        pl.col(entity.key_column).cast(pl.String).alias(CLIENT_KEY),
    ]
    if client_key is not None:
        columns.append(pl.col(client_key).cast(pl.String).alias(CASE_CLIENT_KEY))
    per_distinct = [f for f in entity.fields if f.value_map and f.fallback is None]
    with ThreadPoolExecutor(max_workers=max(1, min(len(per_distinct), os.cpu_count() or 1))) as pool:
        worked_out = pool.map(lambda f: _mapped_per_distinct(frame, f), per_distinct)
        mapped = {f.kayse_field: values for f, values in zip(per_distinct, worked_out, strict=True)}
    for f in entity.fields:
        value = pl.lit(mapped[f.kayse_field]) if f.kayse_field in mapped else field_expr(f)
        columns.append(value.alias(f.kayse_field))
    return frame.select(columns)


def _mapped_per_distinct(frame: pl.DataFrame, spec: FieldSpec) -> pl.Series:
    """`field_expr` of a value-mapped field, worked out once per distinct cell and gathered back:
    a status column holds a few dozen spellings over a million rows, and folding each cell's case
    is most of the work. One hashing pass (a categorical cast of the column's own) finds them;
    such fields are worked out side by side (polars releases the GIL)."""
    assert spec.column is not None
    categories = pl.Categories.random()
    categorical = frame.get_column(spec.column).cast(pl.String).cast(pl.Categorical(categories))
    distinct = categories.to_series().extend_constant(None, 1).rename(spec.column)  # null last
    mapped = distinct.to_frame().select(field_expr(spec)).to_series()
    return mapped.gather(categorical.to_physical().fill_null(distinct.len() - 1))


def _is_empty(cell: pl.Expr) -> pl.Expr:
    trimmed = cell.str.strip_chars()
    return trimmed.is_null() | (trimmed == "")


def field_expr(spec: FieldSpec) -> pl.Expr:
    """The field's text: the cell (else its fallback's), its value-map target if it has one, the
    default if empty."""
    if spec.column is None:
        return pl.lit(spec.default, dtype=pl.String)
    cell = pl.col(spec.column).cast(pl.String)
    if spec.fallback is not None:
        cell = pl.when(_is_empty(cell)).then(pl.col(spec.fallback).cast(pl.String)).otherwise(cell)
    trimmed = cell.str.strip_chars()
    value = cell
    if spec.value_map:
        keys = list(spec.value_map)
        value = (
            trimmed.str.to_lowercase()
            .replace_strict(keys, [spec.value_map[k] for k in keys], default=None, return_dtype=pl.String)
            .fill_null(cell)
        )
    if spec.default is not None:
        value = pl.when(trimmed.is_null() | (trimmed == "")).then(pl.lit(spec.default)).otherwise(value)
    return value
