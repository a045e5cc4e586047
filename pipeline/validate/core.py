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
    today = today or dt.date.today()
    rows = mapped.raw.height
    if mapped.clients.height != rows or mapped.cases.height != rows:
        raise ValueError("mapped clients, cases and raw must have one row per source row")
    checks = _checks(spec)
    raw = mapped.raw.with_row_index(_ROW).with_columns(pl.col(_ROW).cast(pl.Int64))

    # ---- one wide frame: value (v{i}) and reason (r{i}) per check ----
    # Columns are independent, and polars releases the GIL, so they are normalized in threads.
    texts = [
        (mapped.clients if check.entity == "client" else mapped.cases).get_column(check.kayse_field).cast(pl.String)
        for check in checks
    ]
    with ThreadPoolExecutor(max_workers=min(len(checks), os.cpu_count() or 1)) as pool:
        results = list(pool.map(lambda i: _normalizer(checks[i], spec, texts[i], today), range(len(checks))))
    columns: list[pl.Series] = [raw.get_column(_ROW)]
    missing: list[pl.Expr] = []
    for i, (check, normalized) in enumerate(zip(checks, results, strict=True)):
        columns += [normalized.value.alias(f"v{i}"), normalized.reason.cast(pl.String).alias(f"r{i}")]
        if check.spec.required:
            columns.append(texts[i].alias(f"t{i}"))
            missing.append(
                pl.when(n.trimmed(pl.col(f"t{i}")).is_null())
                .then(pl.lit("missing"))
                .otherwise(f"r{i}")
                .alias(f"r{i}")
            )
    work = pl.DataFrame(columns).with_columns(missing).select(pl.exclude(r"^t\d+$"))

    # ---- rejects: every problem of every row ----
    raw_values = {
        check.raw_column: raw.get_column(check.raw_column).cast(pl.String)
        for check in checks
        if check.raw_column is not None
    }
    located = raw.select(_ROW, SOURCE_FILE, pl.col(SOURCE_ROW).cast(pl.Int64))
    pieces: list[pl.DataFrame] = []
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
        per_reason: list[pl.DataFrame] = []
        for reason in bad.get_column(reason_col).unique().to_list():
            subset = bad.filter(pl.col(reason_col) == reason)
            per_reason.append(
                subset.select(
                    _ROW,
                    field=pl.lit(check.label),
                    value=pl.col("value"),
                    code=pl.lit(n.REASONS[reason][0]),
                    message=_message(check, reason, pl.col("value"), spec),
                    **{_ORDER: pl.lit(i)},
                )
            )
        pieces.extend(per_reason)
    field_rejects = pl.concat(pieces) if pieces else None
    bad_rows = (
        field_rejects.get_column(_ROW).unique()
        if field_rejects is not None
        else pl.Series(_ROW, [], pl.Int64)
    )

    # ---- extract problems (ragged rows): a row the reader refused is rejected too ----
    problems = mapped.problems.select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    problems = problems.join(located, on=[SOURCE_FILE, SOURCE_ROW], how="left", maintain_order="left")
    orphans = (
        problems.filter(pl.col(_ROW).is_null()).select(SOURCE_FILE, SOURCE_ROW).unique(maintain_order=True)
    )
    orphans = orphans.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + rows).alias(_ROW))
    problems = problems.join(orphans, on=[SOURCE_FILE, SOURCE_ROW], how="left", suffix="_orphan")
    problems = problems.with_columns(pl.coalesce(_ROW, f"{_ROW}_orphan").alias(_ROW)).drop(f"{_ROW}_orphan")
    problem_rows = problems.get_column(_ROW).unique()

    rejected_mask = work.select(
        pl.col(_ROW).is_in(bad_rows.implode()) | pl.col(_ROW).is_in(problem_rows.implode())
    ).to_series()

    # ---- duplicate case ids: the first otherwise-valid occurrence wins ----
    case_key_index = next(
        i for i, c in enumerate(checks) if c.entity == "case" and c.kayse_field == CLIENT_KEY
    )
    case_key = f"v{case_key_index}"
    keyed = work.select(_ROW, case_key).with_columns(rejected_mask.alias("rejected"))
    first_seen = (
        keyed.filter(~pl.col("rejected") & pl.col(case_key).is_not_null())
        .group_by(case_key)
        .agg(pl.col(_ROW).min().alias("first_row"))
    )
    duplicates = (
        keyed.join(first_seen, on=case_key, how="inner")
        .filter(pl.col(_ROW) > pl.col("first_row"))
        .join(
            located.rename({_ROW: "first_row", SOURCE_FILE: "first_file", SOURCE_ROW: "first_source_row"}),
            on="first_row",
        )
    )
    case_key_check = checks[case_key_index]
    duplicate_rejects = duplicates.select(
        _ROW,
        field=pl.lit(case_key_check.label),
        value=raw_values[case_key_check.raw_column].gather(duplicates.get_column(_ROW))
        if case_key_check.raw_column
        else pl.lit(None, pl.String),
        code=pl.lit("duplicate-case-id"),
        message=pl.concat_str(
            [
                pl.lit(f"{case_key_check.label} '"),
                pl.col(case_key),
                pl.lit("' appears more than once; the first, in row "),
                pl.col("first_source_row").cast(pl.String),
                pl.lit(" of "),
                pl.col("first_file"),
                pl.lit(", is kept"),
            ]
        ),
        **{_ORDER: pl.lit(len(checks))},
    )
    rejected_mask = rejected_mask | work.get_column(_ROW).is_in(duplicates.get_column(_ROW).implode())

    # ---- assemble rejects, sorted by row then by the mapping's field order ----
    located_all = pl.concat([located, orphans.select(_ROW, SOURCE_FILE, SOURCE_ROW)])
    extract_rejects = problems.select(_ROW, "field", "value", "code", "message", **{_ORDER: pl.lit(-1)})
    reject_frames = [extract_rejects, duplicate_rejects] + (
        [field_rejects] if field_rejects is not None else []
    )
    rejects = (
        pl.concat([f.cast({_ORDER: pl.Int64, _ROW: pl.Int64}) for f in reject_frames])
        .join(located_all, on=_ROW, how="left")
        .sort(_ROW, _ORDER, maintain_order=True)
        .select(list(REJECT_SCHEMA))
        .cast(REJECT_SCHEMA)  # type: ignore[arg-type]
    )

    # ---- valid rows → clients and cases ----
    valid = work.hstack(located.drop(_ROW)).filter(~rejected_mask)
    clients, warnings = _clients(valid, checks, raw_values)
    cases = _cases(valid, checks)
    check_output(clients, client_schema(spec))
    check_output(cases, case_schema(spec))

    rejected_rows = raw.filter(rejected_mask)
    if orphans.height:
        rejected_rows = pl.concat([rejected_rows, orphans], how="diagonal_relaxed")
    rejected_rows = rejected_rows.sort(_ROW).drop(_ROW)
    return ValidationResult(
        sources=mapped.sources,
        mapping=spec,
        rows_read=rows + orphans.height,
        clients=clients,
        cases=cases,
        rejects=rejects,
        rejected_rows=rejected_rows,
        warnings=warnings,
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
                            pl.lit(f"' has {check.label} '"),
                            pl.col("__here").fill_null(""),
                            pl.lit("' here but '"),
                            pl.col("__there").fill_null(""),
                            pl.lit("' in row "),
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


def _cases(valid: pl.DataFrame, checks: list[_Check]) -> pl.DataFrame:
    client_key = next(i for i, c in enumerate(checks) if c.entity == "client" and c.kayse_field == CLIENT_KEY)
    return valid.select(
        *_value_columns(checks, "case"),
        pl.col(f"v{client_key}").alias(CASE_CLIENT_KEY),
        SOURCE_FILE,
        SOURCE_ROW,
    )
