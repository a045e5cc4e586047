"""The contract of what validation hands on: pandera schemas for the clients and cases frames.

These schemas are the documented truth of what would be sent to Kayse: column names and
order, dtypes, and the shape of every normalized value (E.164 phones, ISO dates, USPS state
codes, ZIP codes, allowed case types and statuses). `validate` checks its own output against
them before returning, so a bug in a normalizer can never reach the API.

A schema failure here is our bug, never the user's data: it must not reach a person as
pandera's raw failure table. `check_output` summarizes it in one line.
"""

from __future__ import annotations

import pandera.errors
import pandera.polars as pa
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

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
ISO_DATE_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


def _key_column() -> pa.Column:
    return pa.Column(pl.String, pa.Check.str_length(min_value=1), nullable=False, unique=True)


def _field_column(spec: FieldSpec, mapping: MappingSpec) -> pa.Column:
    nullable = not spec.required
    if spec.type == "bool":
        return pa.Column(pl.Boolean, nullable=nullable)
    checks: list[pa.Check] = []
    if spec.type in ("name", "string"):
        checks.append(pa.Check.str_length(min_value=1))
    elif spec.type == "email":
        checks.append(pa.Check.str_matches(EMAIL_PATTERN))
    elif spec.type == "phone":
        checks.append(pa.Check.str_matches(E164_PATTERN))
    elif spec.type in ("date", "birth_date"):
        checks.append(pa.Check.str_matches(ISO_DATE_PATTERN))
    elif spec.type == "state":
        checks.append(pa.Check.isin(sorted(STATES)))
    elif spec.type == "zip":
        checks.append(pa.Check.str_matches(ZIP_PATTERN))
    elif spec.type == "case_type" and mapping.case_types:
        checks.append(pa.Check.isin(list(mapping.case_types)))
    elif spec.type == "case_status" and mapping.case_statuses:
        checks.append(pa.Check.isin(list(mapping.case_statuses)))
    return pa.Column(pl.String, checks, nullable=nullable)


def _source_columns() -> dict[str, pa.Column]:
    return {
        SOURCE_FILE: pa.Column(pl.String, nullable=False),
        SOURCE_ROW: pa.Column(pl.Int64, pa.Check.ge(1), nullable=False),
    }


def ordered_fields(fields: tuple[FieldSpec, ...], canonical: tuple[str, ...]) -> list[FieldSpec]:
    """Kayse fields in the canonical order; external_source_data.* after them, in mapping order."""
    return sorted(
        fields, key=lambda f: canonical.index(f.kayse_field) if f.kayse_field in canonical else len(canonical)
    )


def client_schema(mapping: MappingSpec) -> pa.DataFrameSchema:
    """Clients: external_source_id, the mapped client fields in CLIENT_FIELDS order, source_file, source_row."""
    columns: dict[str, pa.Column] = {CLIENT_KEY: _key_column()}
    for spec in ordered_fields(mapping.client.fields, CLIENT_FIELDS):
        columns[spec.kayse_field] = _field_column(spec, mapping)
    columns.update(_source_columns())
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="clients")


def case_schema(mapping: MappingSpec) -> pa.DataFrameSchema:
    """Cases: external_source_id, case fields (CASE_FIELDS order, then external_source_data.* in
    mapping order), client_external_source_id, source_file, source_row."""
    columns: dict[str, pa.Column] = {CLIENT_KEY: _key_column()}
    for spec in ordered_fields(mapping.case.fields, CASE_FIELDS):
        columns[spec.kayse_field] = _field_column(spec, mapping)
    columns[CASE_CLIENT_KEY] = pa.Column(pl.String, pa.Check.str_length(min_value=1), nullable=False)
    columns.update(_source_columns())
    return pa.DataFrameSchema(columns, strict=True, ordered=True, name="cases")


def check_output(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> None:
    """Check a frame against its contract; a failure becomes one readable line (it is our bug).

    Uniqueness is checked with one n_unique per key column (a third of pandera's cost on a
    million rows); every other rule is pandera's own.
    """
    unique_columns = [name for name, column in schema.columns.items() if column.unique]
    relaxed = schema
    for name in unique_columns:
        relaxed = relaxed.update_column(name, unique=False)
    problems: list[str] = []
    try:
        relaxed.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        summary = (
            cases.group_by("column", "check", maintain_order=True)
            .agg(pl.len().alias("n"), pl.col("failure_case").cast(pl.String).first().alias("example"))
            .head(5)
        )
        problems += [
            f"{r['column']}: {r['check']} failed {r['n']}x (e.g. {r['example']!r})"
            for r in summary.to_dicts()
        ]
    except pandera.errors.SchemaError as error:
        problems.append(str(error.args[0]).splitlines()[0])
    for name in unique_columns:
        if name in frame.columns and frame.get_column(name).n_unique() != frame.height:
            problems.append(f"{name}: values are not unique")
    if problems:
        raise UserError(
            f"internal error: the validated {schema.name} broke their contract: " + "; ".join(problems),
            "this is a bug in kayse-etl, not in your file; please report it with this message",
        )
