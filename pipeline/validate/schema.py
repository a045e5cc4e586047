"""The contract of what validation hands on: the clients and cases frames, as pandera schemas.

These schemas are the documented truth of what would be sent to Kayse: column names and
order, dtypes, and the shape of every normalized value (E.164 phones, ISO dates, USPS state
codes, ZIP codes, allowed case types and statuses). `validate` checks its own output against
the same rules before returning, so a bug in a normalizer can never reach the API.

Both the pandera schemas and that run-time check are built from one table of rules
(`contract`), so they cannot drift apart. The run-time check evaluates the rules as polars
expressions over whole columns, all in one pass, without importing pandera (~0.3 s of import
and ~0.4 s of checking on a million rows otherwise); a test holds it to pandera's verdicts.

A failure here is our bug, never the user's data: it must not reach a person as a raw failure
table. `check_output` summarizes it in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import polars as pl

from pipeline.model import (
    CASE_CLIENT_KEY,
    CASE_FIELDS,
    CLIENT_FIELDS,
    CLIENT_KEY,
    SOURCE_FILE,
    SOURCE_ROW,
    FieldSpec,
    MappingSpec,
    UserError,
)
from pipeline.validate.normalize import EMAIL_PATTERN, STATES, ZIP_PATTERN

if TYPE_CHECKING:
    import pandera.polars as pa

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
ISO_DATE_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
MAX_FAILURES_NAMED = 5
_FEW_ALLOWED = 8


@dataclass(frozen=True)
class Rule:
    """One rule every non-null value of a column obeys (pandera's Check of the same name)."""

    kind: Literal["str_length_min", "str_matches", "isin", "ge"]
    argument: int | str | tuple[str, ...]  # the minimum, the pattern, or the allowed values

    def name(self) -> str:
        return {"str_length_min": "str_length", "str_matches": "str_matches", "isin": "isin", "ge": "ge"}[
            self.kind
        ]

    def holds(self, column: pl.Expr) -> pl.Expr:
        argument = self.argument
        if isinstance(argument, tuple):
            if len(argument) <= _FEW_ALLOWED:  # comparing with each costs less than hashing every cell
                return pl.any_horizontal(*(column == allowed for allowed in argument))
            return column.is_in(pl.Series(list(argument), dtype=pl.String).implode())
        if self.kind == "str_matches":
            return column.str.contains(str(argument))
        if self.kind == "str_length_min":
            # A string has a character exactly when it has a byte: counting bytes is cheaper.
            return (column.str.len_bytes() if argument == 1 else column.str.len_chars()) >= argument
        return column >= argument

    def to_pandera(self) -> pa.Check:
        import pandera.polars as pa

        argument = self.argument
        if isinstance(argument, tuple):
            return pa.Check.isin(list(argument))
        if self.kind == "str_matches":
            return pa.Check.str_matches(str(argument))
        if self.kind == "str_length_min":
            return pa.Check.str_length(min_value=int(argument))
        return pa.Check.ge(argument)


@dataclass(frozen=True)
class ColumnRules:
    dtype: type[pl.DataType]
    rules: tuple[Rule, ...] = ()
    nullable: bool = False
    unique: bool = False


@dataclass(frozen=True)
class Contract:
    """A frame's contract: exactly these columns, in this order, each with its rules."""

    name: str
    columns: dict[str, ColumnRules]

    def to_pandera(self) -> pa.DataFrameSchema:
        import pandera.polars as pa

        columns = {
            name: pa.Column(c.dtype, [r.to_pandera() for r in c.rules], nullable=c.nullable, unique=c.unique)
            for name, c in self.columns.items()
        }
        return pa.DataFrameSchema(columns, strict=True, ordered=True, name=self.name)


def _key_column() -> ColumnRules:
    return ColumnRules(pl.String, (Rule("str_length_min", 1),), unique=True)


def _field_column(spec: FieldSpec, mapping: MappingSpec) -> ColumnRules:
    nullable = not spec.required
    if spec.type == "bool":
        return ColumnRules(pl.Boolean, nullable=nullable)
    rule: Rule | None = None
    if spec.type in ("name", "string"):
        rule = Rule("str_length_min", 1)
    elif spec.type == "email":
        rule = Rule("str_matches", EMAIL_PATTERN)
    elif spec.type == "phone":
        rule = Rule("str_matches", E164_PATTERN)
    elif spec.type in ("date", "birth_date"):
        rule = Rule("str_matches", ISO_DATE_PATTERN)
    elif spec.type == "state":
        rule = Rule("isin", tuple(sorted(STATES)))
    elif spec.type == "zip":
        rule = Rule("str_matches", ZIP_PATTERN)
    elif spec.type == "case_type" and mapping.case_types:
        rule = Rule("isin", tuple(mapping.case_types))
    elif spec.type == "case_status" and mapping.case_statuses:
        rule = Rule("isin", tuple(mapping.case_statuses))
    return ColumnRules(pl.String, (rule,) if rule else (), nullable=nullable)


def _source_columns() -> dict[str, ColumnRules]:
    return {SOURCE_FILE: ColumnRules(pl.String), SOURCE_ROW: ColumnRules(pl.Int64, (Rule("ge", 1),))}


def ordered_fields(fields: tuple[FieldSpec, ...], canonical: tuple[str, ...]) -> list[FieldSpec]:
    """Kayse fields in the canonical order; external_source_data.* after them, in mapping order."""
    return sorted(
        fields, key=lambda f: canonical.index(f.kayse_field) if f.kayse_field in canonical else len(canonical)
    )


def client_contract(mapping: MappingSpec) -> Contract:
    """Clients: external_source_id, the mapped client fields in CLIENT_FIELDS order, source_file, source_row."""
    columns: dict[str, ColumnRules] = {CLIENT_KEY: _key_column()}
    for spec in ordered_fields(mapping.client.fields, CLIENT_FIELDS):
        columns[spec.kayse_field] = _field_column(spec, mapping)
    columns.update(_source_columns())
    return Contract("clients", columns)


def case_contract(mapping: MappingSpec) -> Contract:
    """Cases: external_source_id, case fields (CASE_FIELDS order, then external_source_data.* in
    mapping order), client_external_source_id, source_file, source_row."""
    columns: dict[str, ColumnRules] = {CLIENT_KEY: _key_column()}
    for spec in ordered_fields(mapping.case.fields, CASE_FIELDS):
        columns[spec.kayse_field] = _field_column(spec, mapping)
    columns[CASE_CLIENT_KEY] = ColumnRules(pl.String, (Rule("str_length_min", 1),))
    columns.update(_source_columns())
    return Contract("cases", columns)


def client_schema(mapping: MappingSpec) -> pa.DataFrameSchema:
    """The clients' contract as a pandera schema (the documented form)."""
    return client_contract(mapping).to_pandera()


def case_schema(mapping: MappingSpec) -> pa.DataFrameSchema:
    """The cases' contract as a pandera schema (the documented form)."""
    return case_contract(mapping).to_pandera()


def contract_problems(frame: pl.DataFrame, contract: Contract) -> list[str]:
    """What in `frame` breaks `contract`, one phrase per broken rule (empty when it holds).

    Columns (names and order) and dtypes first; then every rule, null and uniqueness count
    of every column in one polars select, so a million rows cost one parallel pass.
    """
    expected = list(contract.columns)
    if frame.columns != expected:
        return [f"columns are {frame.columns}, the contract says {expected}"]
    problems = [
        f"{name}: dtype {frame.schema[name]} is not {c.dtype.__name__}"
        for name, c in contract.columns.items()
        if frame.schema[name] != c.dtype
    ]
    if problems:
        return problems
    counts: list[pl.Expr] = []
    labels: list[tuple[str, str, pl.Expr | None]] = []  # column, check, the cells that break it
    for name, c in contract.columns.items():
        column = pl.col(name)
        if not c.nullable:
            labels.append((name, "not_nullable", None))
            counts.append(column.null_count().alias(f"{len(counts)}"))
        if c.unique:
            # Strictly ascending values (ids in export order) are distinct: one comparison a row.
            # Other columns pay for the count below.
            labels.append((name, "unique", None))
            ascending = (column > column.shift(1)).all() & (column.null_count() == 0)
            counts.append(ascending.not_().cast(pl.UInt32).alias(f"{len(counts)}"))
        for rule in c.rules:
            breaks = column.is_not_null() & ~rule.holds(column)
            labels.append((name, rule.name(), breaks))
            counts.append(breaks.sum().alias(f"{len(counts)}"))
    found = frame.select(counts).row(0)
    for (name, check, broken), failures in zip(labels, found, strict=True):
        if failures and check == "unique":
            failures = _duplicates(frame, name)
        if failures:
            # Only a broken rule (a bug: rare) pays for a second pass, to show one example.
            example = None
            if broken is not None:
                example = frame.select(pl.col(name).filter(broken).first().cast(pl.String)).item()
            shown = f" (e.g. {example!r})" if example is not None else ""
            problems.append(f"{name}: {check} failed {failures}x{shown}")
    return problems


def _duplicates(frame: pl.DataFrame, name: str) -> int:
    """How many values of the column repeat an earlier one. Distinct hashes mean distinct values:
    only a repeated hash (a duplicate, or rarely two values with one hash) pays for counting the
    values themselves."""
    if not frame.select(pl.len() - pl.col(name).hash().n_unique()).item():
        return 0
    return int(frame.select(pl.len() - pl.col(name).n_unique()).item())


def check_output(frame: pl.DataFrame, contract: Contract) -> None:
    """Check a frame against its contract; a failure becomes one readable line (it is our bug)."""
    problems = contract_problems(frame, contract)
    if problems:
        raise UserError(
            f"internal error: the validated {contract.name} broke their contract: "
            + "; ".join(problems[:MAX_FAILURES_NAMED]),
            "this is a bug in kayse-etl, not in your file; please report it with this message",
        )
