"""The validate stage: mapped text in, what would be sent plus every reason a row was refused out.

A source row is the unit. Every field of every row is normalized at once (polars
expressions, phones via `phones.to_e164`); a row with any problem contributes nothing, and
each of its problems is reported, with the source column name the user knows and the value
as read. Valid rows become one client per contact (first valid row wins; disagreements are
warnings) and one case per case id (later duplicates are refused).

This stage must never touch the network and never raise on bad data: bad data is a result.
"""

from __future__ import annotations

import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from pipeline.mapping import CASE_FIELDS, CLIENT_FIELDS
from pipeline.model import (
    CASE_CLIENT_KEY,
    CLIENT_KEY,
    REJECT_SCHEMA,
    SOURCE_FILE,
    SOURCE_ROW,
    FieldSpec,
    MappedFrames,
    MappingSpec,
    ValidationResult,
    empty_rejects,
)
from pipeline.validate import normalize as n
from pipeline.validate.phones import to_e164
from pipeline.validate.schema import case_schema, check_output, client_schema, ordered_fields

_ROW = "__row"  # position of the row in the mapped frames: 0..rows-1 (extract-only problems after)
_ORDER = "__order"  # position of the check, so a row's problems are listed in mapping order


@dataclass(frozen=True)
class _Check:
    """One column of one entity to normalize, and how to report it."""

    entity: str  # "client" or "case"
    kayse_field: str
    label: str  # the source column name (what the user sees), else the Kayse field
    raw_column: str | None  # the column of `raw` holding the value as read
    spec: FieldSpec


def _checks(spec: MappingSpec) -> list[_Check]:
    key_spec = FieldSpec(kayse_field=CLIENT_KEY, column=None, type="string", required=True)
    checks = [_Check("client", CLIENT_KEY, spec.client.key_column, spec.client.key_column, key_spec)]
    checks += [
        _Check("client", f.kayse_field, f.column or f.kayse_field, f.column, f)
        for f in ordered_fields(spec.client.fields, CLIENT_FIELDS)
    ]
    checks.append(_Check("case", CLIENT_KEY, spec.case.key_column, spec.case.key_column, key_spec))
    checks += [
        _Check("case", f.kayse_field, f.column or f.kayse_field, f.column, f)
        for f in ordered_fields(spec.case.fields, CASE_FIELDS)
    ]
    return checks


def _normalizer(check: _Check, spec: MappingSpec, text: pl.Series, today: dt.date) -> n.Normalized:
    kind = check.spec.type
    if kind == "phone":
        e164 = to_e164(text, spec.phone_region)
        judged = pl.DataFrame({"text": text, "e164": e164}).select(
            reason=pl.when(n.trimmed(pl.col("text")).is_not_null() & pl.col("e164").is_null()).then(
                pl.lit("phone")
            )
        )
        return n.Normalized(e164, judged.get_column("reason").cast(pl.String))
    if kind == "name":
        return n.normalize_name(text)
    if kind == "email":
        return n.normalize_email(text)
    if kind == "date":
        return n.normalize_date(text, spec.date_order)
    if kind == "birth_date":
        return n.normalize_birth_date(text, spec.date_order, today)
    if kind == "state":
        return n.normalize_state(text)
    if kind == "zip":
        return n.normalize_zip(text)
    if kind == "bool":
        return n.normalize_bool(text)
    if kind == "case_type":
        return n.normalize_choice(text, spec.case_types, "case-type")
    if kind == "case_status":
        return n.normalize_choice(text, spec.case_statuses, "case-status")
    return n.normalize_string(text)


def _message(check: _Check, reason: str, value: pl.Expr, spec: MappingSpec) -> pl.Expr:
    tail = n.REASONS[reason][1]
    if reason == "missing":
        return pl.lit(f"{check.label} {tail}")
    allowed = spec.case_types if reason == "case-type" else spec.case_statuses
    tail = tail.replace("{region}", spec.phone_region).replace("{allowed}", ", ".join(allowed))
    return pl.concat_str([pl.lit(f"{check.label} '"), value.fill_null(""), pl.lit(f"' {tail}")])


def validate(mapped: MappedFrames, spec: MappingSpec, *, today: dt.date | None = None) -> ValidationResult:
    """Normalize every mapped row, refuse bad rows with all their problems, build clients and cases.

    `today` (default: the local date) is the limit for dates of birth in the future.
    """
    rows = mapped.raw.height
    if mapped.clients.height != rows or mapped.cases.height != rows:
        raise ValueError("mapped clients, cases and raw must have one row per source row")
    checks = _checks(spec)
    raw = mapped.raw.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))
    located = raw.select(_ROW, SOURCE_FILE, pl.col(SOURCE_ROW).cast(pl.Int64))  # row i at position i
    raw_values = {
        check.raw_column: raw.get_column(check.raw_column).cast(pl.String)
        for check in checks
        if check.raw_column is not None
    }

    work = _normalize_all(mapped, spec, checks, today or dt.date.today())
    field_rejects = _field_rejects(work, checks, raw_values, spec)
    extract_rejects, orphans = _extract_rejects(mapped.problems, located, rows)
    rejected = work.get_column(_ROW).is_in(
        pl.concat([field_rejects.get_column(_ROW), extract_rejects.get_column(_ROW)]).implode()
    )
    duplicate_rejects = _duplicate_cases(work, checks, rejected, located, raw_values)
    rejected = rejected | work.get_column(_ROW).is_in(duplicate_rejects.get_column(_ROW).implode())

    located_all = pl.concat([located, orphans])  # still row i at position i
    rejects = pl.concat([extract_rejects, field_rejects, duplicate_rejects]).sort(
        _ROW, _ORDER, maintain_order=True
    )
    rejects = (
        rejects.hstack(located_all.drop(_ROW).select(pl.all().gather(rejects.get_column(_ROW))))
        .select(list(REJECT_SCHEMA))
        .cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    )

    valid = work.select(_ROW, pl.col(r"^v\d+$")).hstack(located.drop(_ROW)).filter(~rejected)
    clients, warnings = _clients(valid, checks, raw_values)
    cases = _cases(valid, checks)
    check_output(clients, client_schema(spec))
    check_output(cases, case_schema(spec))

    rejected_rows = (
        pl.concat([raw.filter(rejected), orphans], how="diagonal_relaxed")
        if orphans.height
        else raw.filter(rejected)
    )
    return ValidationResult(
        sources=mapped.sources,
        mapping=spec,
        rows_read=rows + orphans.height,
        clients=clients,
        cases=cases,
        rejects=rejects,
        rejected_rows=rejected_rows.sort(_ROW).drop(_ROW),
        warnings=warnings,
    )


def _normalize_all(
    mapped: MappedFrames, spec: MappingSpec, checks: list[_Check], today: dt.date
) -> pl.DataFrame:
    """_ROW plus, per check i, the value to send (v{i}) and the reason it is bad (r{i}, null if fine).

    Columns are independent and polars releases the GIL, so they are normalized in threads.
    """
    texts = [
        (mapped.clients if check.entity == "client" else mapped.cases)
        .get_column(check.kayse_field)
        .cast(pl.String)
        for check in checks
    ]
    with ThreadPoolExecutor(max_workers=min(len(checks), os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda i: _normalizer(checks[i], spec, texts[i], today), range(len(checks))))
    columns: list[pl.Series] = [pl.int_range(mapped.raw.height, dtype=pl.Int64, eager=True).alias(_ROW)]
    missing: list[pl.Expr] = []
    for i, (check, normalized) in enumerate(zip(checks, results, strict=True)):
        columns += [normalized.value.alias(f"v{i}"), normalized.reason.cast(pl.String).alias(f"r{i}")]
        if check.spec.required:
            # Every normalizer gives neither a value nor a reason exactly for an empty cell.
            empty = pl.col(f"v{i}").is_null() & pl.col(f"r{i}").is_null()
            missing.append(pl.when(empty).then(pl.lit("missing")).otherwise(f"r{i}").alias(f"r{i}"))
    return pl.DataFrame(columns).with_columns(missing)


def _empty_located_rejects() -> pl.DataFrame:
    return pl.DataFrame(
        schema={_ROW: pl.Int64, "field": pl.String, "value": pl.String, "code": pl.String,
                "message": pl.String, _ORDER: pl.Int64}
    )  # fmt: skip


def _field_rejects(
    work: pl.DataFrame, checks: list[_Check], raw_values: dict[str, pl.Series], spec: MappingSpec
) -> pl.DataFrame:
    """One reject per bad cell: _ROW, field (source column), value as read, code, message, _ORDER."""
    pieces = [_empty_located_rejects()]
    for i, check in enumerate(checks):
        reason_col = f"r{i}"
        bad = work.select(_ROW, reason_col).filter(pl.col(reason_col).is_not_null())
        if bad.height == 0:
            continue
        value = (
            raw_values[check.raw_column].gather(bad.get_column(_ROW))
            if check.raw_column is not None
            else pl.Series([None] * bad.height, dtype=pl.String)
        )
        bad = bad.with_columns(value.alias("value"))
        for reason in bad.get_column(reason_col).unique().to_list():
            pieces.append(
                bad.filter(pl.col(reason_col) == reason).select(
                    _ROW,
                    field=pl.lit(check.label),
                    value=pl.col("value"),
                    code=pl.lit(n.REASONS[reason][0]),
                    message=_message(check, reason, pl.col("value"), spec),
                    **{_ORDER: pl.lit(i, dtype=pl.Int64)},
                )
            )
    return pl.concat(pieces)


def _extract_rejects(
    problems: pl.DataFrame, located: pl.DataFrame, rows: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The reader's problems (ragged rows) as rejects, and the rows they name that are not in the frame.

    Such "orphan" rows (the reader left them out) get positions after the frame's rows, so they
    can be located, counted as read and listed among the rejected rows like any other.
    """
    problems = problems.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    if problems.height == 0:
        orphans = located.clear().select(_ROW, SOURCE_FILE, SOURCE_ROW)
        return _empty_located_rejects(), orphans
    problems = problems.join(located, on=[SOURCE_FILE, SOURCE_ROW], how="left", maintain_order="left")
    orphans = (
        problems.filter(pl.col(_ROW).is_null())
        .select(SOURCE_FILE, SOURCE_ROW)
        .unique(maintain_order=True)
        .select((pl.int_range(pl.len(), dtype=pl.Int64) + rows).alias(_ROW), SOURCE_FILE, SOURCE_ROW)
    )
    problems = problems.join(orphans, on=[SOURCE_FILE, SOURCE_ROW], how="left", suffix="_orphan")
    rejects = problems.select(
        pl.coalesce(_ROW, f"{_ROW}_orphan").alias(_ROW),
        "field",
        "value",
        "code",
        "message",
        **{_ORDER: pl.lit(-1, dtype=pl.Int64)},
    )
    return rejects, orphans


def _duplicate_cases(
    work: pl.DataFrame,
    checks: list[_Check],
    rejected: pl.Series,
    located: pl.DataFrame,
    raw_values: dict[str, pl.Series],
) -> pl.DataFrame:
    """Rows whose case id an earlier row without other problems already has: the first one wins."""
    index = next(i for i, c in enumerate(checks) if c.entity == "case" and c.kayse_field == CLIENT_KEY)
    check, case_key = checks[index], f"v{index}"
    keyed = (
        work.select(_ROW, case_key)
        .with_columns(rejected.alias("rejected"))
        .filter(pl.col(case_key).is_duplicated())  # usually few rows: the rest is cheap
    )
    first_seen = (
        keyed.filter(~pl.col("rejected") & pl.col(case_key).is_not_null())
        .group_by(case_key)
        .agg(pl.col(_ROW).min().alias("first_row"))
    )
    duplicates = keyed.join(first_seen, on=case_key, how="inner").filter(pl.col(_ROW) > pl.col("first_row"))
    first = located.select(pl.all().gather(duplicates.get_column("first_row")))
    duplicates = duplicates.with_columns(
        first.get_column(SOURCE_FILE).alias("first_file"),
        first.get_column(SOURCE_ROW).alias("first_source_row"),
        (
            raw_values[check.raw_column].gather(duplicates.get_column(_ROW))
            if check.raw_column is not None
            else pl.Series([None] * duplicates.height, dtype=pl.String)
        ).alias("value"),
    )
    return duplicates.select(
        _ROW,
        field=pl.lit(check.label),
        value=pl.col("value"),
        code=pl.lit("duplicate-case-id"),
        message=pl.concat_str(
            [
                pl.lit(f"{check.label} '"),
                pl.col(case_key),
                pl.lit("' appears more than once; the first, in row "),
                pl.col("first_source_row").cast(pl.String),
                pl.lit(" of "),
                pl.col("first_file"),
                pl.lit(", is kept"),
            ]
        ),
        **{_ORDER: pl.lit(len(checks), dtype=pl.Int64)},
    )


def _value_columns(checks: list[_Check], entity: str) -> list[pl.Expr]:
    return [
        pl.col(f"v{i}").alias(check.kayse_field) for i, check in enumerate(checks) if check.entity == entity
    ]


def _clients(
    valid: pl.DataFrame, checks: list[_Check], raw_values: dict[str, pl.Series]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One client per contact key: the first valid row's values; disagreements become warnings."""
    per_row = valid.select(_ROW, *_value_columns(checks, "client"), SOURCE_FILE, SOURCE_ROW)
    clients = per_row.filter(pl.col(CLIENT_KEY).is_first_distinct()).drop(_ROW)

    # Pair every later row of a contact with the contact's first valid row, by position in
    # per_row: only the narrow (key, position) frame is sorted, the values are gathered.
    is_first = pl.col(CLIENT_KEY).ne_missing(pl.col(CLIENT_KEY).shift(1))
    pairs = (
        per_row.select(CLIENT_KEY, here=pl.int_range(pl.len(), dtype=pl.Int64))
        .filter(pl.col(CLIENT_KEY).is_duplicated())
        .sort(CLIENT_KEY, maintain_order=True)
        .with_columns(there=pl.when(is_first).then(pl.col("here")).forward_fill(), first=is_first)
        .filter(~pl.col("first"))
    )
    key_label = next(c.label for c in checks if c.entity == "client" and c.kayse_field == CLIENT_KEY)
    warnings = [empty_rejects().with_columns(pl.lit(None, pl.Int64).alias(_ROW), pl.lit(0).alias(_ORDER))]
    if pairs.height:
        here, there = pairs.get_column("here"), pairs.get_column("there")
        for order, check in enumerate(checks):
            if check.entity != "client" or check.kayse_field == CLIENT_KEY:
                continue
            column = per_row.get_column(check.kayse_field)
            differs = column.gather(here).ne_missing(column.gather(there))
            if not differs.any():
                continue
            rows_here, rows_there = here.filter(differs), there.filter(differs)
            at_here = per_row.select(_ROW, CLIENT_KEY, SOURCE_FILE, SOURCE_ROW)[rows_here]
            at_there = per_row.select(_ROW, SOURCE_FILE, SOURCE_ROW)[rows_there]
            if check.raw_column is not None:
                read_here = raw_values[check.raw_column].gather(at_here.get_column(_ROW))
                read_there = raw_values[check.raw_column].gather(at_there.get_column(_ROW))
            else:
                read_here = read_there = pl.Series([None] * rows_here.len(), dtype=pl.String)
            frame = at_here.with_columns(
                read_here.alias("__here"),
                read_there.alias("__there"),
                at_there.get_column(SOURCE_ROW).alias("__there_row"),
                at_there.get_column(SOURCE_FILE).alias("__there_file"),
            )
            warnings.append(
                frame.select(
                    SOURCE_FILE,
                    SOURCE_ROW,
                    field=pl.lit(check.label),
                    value=pl.col("__here"),
                    code=pl.lit("conflicting-contact"),
                    message=pl.concat_str(
                        [
                            pl.lit(f"{key_label} '"),
                            pl.col(CLIENT_KEY),
                            pl.lit(f"' has {check.label} "),
                            _quoted(pl.col("__here")),
                            pl.lit(" here but "),
                            _quoted(pl.col("__there")),
                            pl.lit(" in row "),
                            pl.col("__there_row").cast(pl.String),
                            pl.lit(" of "),
                            pl.col("__there_file"),
                            pl.lit("; the contact is sent with the first row's value"),
                        ]
                    ),
                    **{_ROW: pl.col(_ROW), _ORDER: pl.lit(order)},
                )
            )
    warning_frame = (
        pl.concat(warnings, how="diagonal_relaxed")
        .sort(_ROW, _ORDER, maintain_order=True)
        .select(list(REJECT_SCHEMA))
        .cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    )
    return clients, warning_frame


def _quoted(value: pl.Expr) -> pl.Expr:
    """'value' as read, or (empty) for a blank cell."""
    return (
        pl.when(n.trimmed(value).is_null())
        .then(pl.lit("(empty)"))
        .otherwise(pl.concat_str([pl.lit("'"), value, pl.lit("'")]))
    )


def _cases(valid: pl.DataFrame, checks: list[_Check]) -> pl.DataFrame:
    client_key = next(i for i, c in enumerate(checks) if c.entity == "client" and c.kayse_field == CLIENT_KEY)
    return valid.select(
        *_value_columns(checks, "case"),
        pl.col(f"v{client_key}").alias(CASE_CLIENT_KEY),
        SOURCE_FILE,
        SOURCE_ROW,
    )
